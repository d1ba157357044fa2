// Calls from places a plain LD_PRELOAD can miss or get wrong: a thread started
// before the shim's constructor, a library dlopen'd later (also with
// RTLD_DEEPBIND, which binds it to libc first), a signal handler; and a
// statically linked program, which no preload reaches at all.

import { describe, expect, it } from 'vitest';
import { isStaticElf, resolveCommand } from '../src/job/elf.js';
import { CLI, bareEnv, prog, run } from './helpers.js';

const loaders = (mode: string, libc?: string) =>
  run(process.execPath, [CLI, 'run', '-q', '--', prog('loaders'), mode], { ...process.env, ...(libc !== undefined && { PINCOH_LIBC: libc }) }, 60_000);

describe('where the calls come from', () => {
  it('a thread started by a library constructor before the shim\'s: its munmap is seen', async () => {
    const r = await loaders('early');
    expect(r.stdout).toBe('early thread started before the patch 1; munmap from it: fired 1 valid 0\n');
    expect(r.code).toBe(0);
  });

  it('a library dlopen\'d later: its munmap and its free are seen', async () => {
    const r = await loaders('dlopen');
    expect(r.stdout).toBe('munmap from the library: fired 1 valid 0\nfree from the library: fired 1 valid 0\n');
  });

  it('a library opened with RTLD_DEEPBIND binds to libc past the shim: only the libc patch sees it', async () => {
    const r = await loaders('deepbind');
    expect(r.stdout).toBe('munmap from the library: fired 1 valid 0\nfree from the library: fired 1 valid 0\n');
    const off = await loaders('deepbind', 'off');
    expect(off.stdout).toBe('munmap from the library: fired 0 valid 1\nfree from the library: fired 0 valid 1\n');
  });

  it('a signal handler: its munmap is seen, the callback running inside the handler', async () => {
    const r = await loaders('signal');
    expect(r.stdout).toBe('in the handler: fired 1; after it: fired 1 valid 0\n');
  });

  it('2,000 timer signals whose handler mprotects registered memory, interrupting the shim or not: no deadlock', async () => {
    const r = await loaders('sigstress');
    expect(r.signal).toBeNull();
    expect(r.stdout).toMatch(/^sigstress: 20\d\d handler calls, over 100 main-thread rounds, no deadlock$/m);
    expect(r.code).toBe(0);
  });
});

describe('a statically linked program', () => {
  it('is recognised from its ELF headers', () => {
    expect(isStaticElf(prog('static'))).toBe(true);
    expect(isStaticElf(prog('driver'))).toBe(false);
    expect(isStaticElf(resolveCommand('sh')!)).toBe(false);
    expect(isStaticElf(CLI)).toBe(false); // a script
    expect(isStaticElf('/nonexistent')).toBe(false);
  });

  it('pincoh run says the shim cannot reach it, and runs it unchanged', async () => {
    const bare = await run(prog('static'), [], bareEnv());
    const r = await run(process.execPath, [CLI, 'run', '--', prog('static')]);
    expect(r.stderr).toMatch(/static is statically linked: the shim cannot be preloaded into it, so none of its calls are seen/);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: bare.code, stdout: bare.stdout });
    expect(bare.code).toBe(5);
    const dynamic = await run(process.execPath, [CLI, 'run', '-q', '--', prog('driver')]);
    expect(dynamic.stderr).not.toMatch(/statically linked/);
  });
});
