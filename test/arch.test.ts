// The shim on an architecture it cannot patch: aarch64, built with Debian's
// cross compiler and run under qemu-user against the same coordinator. libc's
// own calls cannot be seen there; the shim must say so once and fall back to
// a malloc that gives nothing back, so that free, realloc, malloc_trim, a
// thread arena and the heap's top never leave a registration over memory that
// is gone. PINCOH_LIBC=off shows a free that does. The hooks themselves work
// as on x86_64.

import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ROOT, bareEnv, itWithProgs, prog, run, startCoordinator, type Coordinator } from './helpers.js';

const SHIM_AARCH64 = resolve(ROOT, 'native-shim/build/aarch64/libpincoh.so');
const PACKAGES = 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user';

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator()));
afterAll(async () => c.close());

// qemu-aarch64 -E sets the guest's LD_PRELOAD only (not qemu's own)
const underQemu = (name: string, args: string[], extra: string[] = []) =>
  run('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', '-E', `LD_PRELOAD=${SHIM_AARCH64}`, ...extra.flatMap((e) => ['-E', e]), prog(`aarch64/${name}`), ...args], { ...bareEnv(), PINCOH_SOCKET: c.path }, 60_000);

describe('aarch64 under qemu-user: no code patching, the no-release fallback', () => {
  itWithProgs(['aarch64/mallocs'], PACKAGES, 'says once that it falls back; free, realloc, malloc_trim, a thread arena and the heap\'s top give nothing back', async () => {
    for (const mode of ['free', 'realloc', 'trim', 'arena', 'top']) {
      const r = await underQemu('mallocs', [mode]);
      expect(r.stdout).toBe(`${mode}: fired 0 valid 1 mapped 1 kept 1 libc 2\n`);
      expect(r.stderr).toBe(
        `pincoh[${r.stderr.match(/pincoh\[(\d+)\]/)?.[1]}]: cannot see libc's internal munmap/mremap/madvise/mmap/sbrk: this architecture has no code patching\n` +
          `pincoh[${r.stderr.match(/pincoh\[(\d+)\]/)?.[1]}]: falling back to a malloc that never releases memory (PINCOH_LIBC=norelease)\n`,
      );
    }
    const off = await underQemu('mallocs', ['free'], ['PINCOH_LIBC=off']);
    expect(off.stdout).toBe('free: fired 0 valid 1 mapped 0 kept 0 libc 0\n');
  });

  itWithProgs(['aarch64/driver'], PACKAGES, 'the hooks: munmap, mprotect and mremap invalidate before the call returns', async () => {
    const script = 'cb map 0 65536 map 1 65536 reg 0 0 65536 rw reg 1 0 4096 rw prot 1 0 4096 r valid 0 valid 1 remap 0 65536 131072 maymove reg 1 0 4096 r unmap 1 0 65536 stats';
    const r = await underQemu('driver', script.split(' '), ['PINCOH_QUIET=1']);
    expect(r.lines).toEqual([
      'map 0 ok',
      'map 1 ok',
      'reg 0 0',
      'reg 1 0',
      'cb 1 reason 2 len 4096',
      'mprotect 0 777',
      'valid 0 1',
      'valid 1 0',
      'cb 0 reason 3 len 65536',
      'mremap ok 777',
      'reg 2 0',
      'cb 2 reason 1 len 4096',
      'munmap 0 777',
      'stats slow 3 inval 3 timeouts 0 degraded 0 connected 1',
    ]);
  });
});
