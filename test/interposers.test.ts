// Another interposer in the same process: UCX's ucm patches the same libc
// entries as the shim. Whichever comes second must chain to the other, not cut
// it out: a free() of a registered buffer must reach pincoh and ucm both, and
// ucm's own start-up check must still pass. ucm-first links libucm (ucm
// patches before the shim's constructor); ucm-late dlopens it, as MPI_Init
// does. PINCOH_LIBC=off (no patching, no chaining) shows what breaks without.

import { describe, expect, it } from 'vitest';
import { CLI, bareEnv, itWithProgs, prog, run } from './helpers.js';

const underShim = (name: string, libc?: string, args: string[] = []) =>
  run(process.execPath, [CLI, 'run', '--', prog(name), ...args], { ...process.env, ...(libc !== undefined && { PINCOH_LIBC: libc }) });

describe("with UCX's ucm in the process", () => {
  for (const name of ['ucm-first', 'ucm-late']) {
    itWithProgs([name], 'libucx-dev', `${name}: a free() reaches both pincoh and ucm; ucm installs as without the shim`, async () => {
      // (the churning threads only where the shim's own rewrite is under test)
      const bare = await run(prog(name), ['nochurn'], bareEnv());
      expect(bare.stdout).toBe('ucm status 0\nucm saw free 1\n');

      const r = await underShim(name);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^ucm status 0\npincoh fired 1 libc 1 chained 5\nucm saw free 1\n/);
      expect(r.stderr).toMatch(/chained to another interposer's hooks in \S*libucm\.so/);
      expect(r.stderr).toMatch(/libc's own calls: code patch \(chained with another interposer\) in 1 process/);

      const off = await underShim(name, 'off', ['nochurn']);
      expect(off.stdout).toMatch(/^ucm status -\d+\npincoh fired 0 libc 0 chained 0\nucm saw free 0\n/);
    });
  }
});

// An interposer written in the test (fakepatch) patches libc's munmap after the
// shim, with a raw mprotect that no hook sees, in each jump form the shim says
// it follows: the check at pincoh_register must find it and chain.
describe('another interposer patching behind the shim\'s back', () => {
  for (const form of ['rel32', 'rip', 'rax', 'r11']) {
    it(`${form}: found at the next registration and chained; a free() reaches both`, async () => {
      const r = await run(process.execPath, [CLI, 'run', '-q', '--', prog('fakepatch'), form]);
      expect(r.stdout).toBe(`${form}: fired 1 seen 1 chained 1\n`);
      expect(r.stderr).toMatch(/chained to another interposer's hooks in/);
    });
  }

  it('a form it cannot follow (movabs; jmp *%r10): said once, the other\'s patch left working, libc\'s own calls then missed', async () => {
    const r = await run(process.execPath, [CLI, 'run', '-q', '--', prog('fakepatch'), 'r10']);
    expect(r.stdout).toBe('r10: fired 0 seen 1 chained 0\n');
    expect(r.stderr.match(/another interposer replaced our patch on munmap/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/and cannot be chained: patched by another interposer in a form we cannot follow/);
    expect(r.code).toBe(0);
  });
});
