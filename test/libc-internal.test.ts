// libc calls munmap/mremap/madvise/sbrk internally (free, realloc, malloc_trim,
// a thread arena's trim, free lowering the break), past any LD_PRELOAD hook.
// The shim patches libc's entries (PINCOH_LIBC=patch, the default on x86_64);
// each case below also
// runs with PINCOH_LIBC=off to show it fails without the mechanism, and with
// the no-release fallback.

import { describe, expect, it } from 'vitest';
import { CLI, prog, run } from './helpers.js';

const mallocs = (mode: string, libc?: string) =>
  run(process.execPath, [CLI, 'run', '--', prog('mallocs'), mode], { ...process.env, ...(libc !== undefined && { PINCOH_LIBC: libc }) });

describe('libc-internal calls', () => {
  for (const mode of ['free', 'realloc', 'trim', 'arena', 'top']) {
    it(`${mode}: the invalidation arrives inside the libc call, and is missed without the patch`, async () => {
      const patched = await mallocs(mode);
      expect(patched.stdout).toMatch(new RegExp(`^${mode}: fired 1 valid 0 mapped \\d kept \\d libc 1$`, 'm'));
      expect(patched.stderr).toMatch(/libc's own calls: code patch in 1 process/);
      const off = await mallocs(mode, 'off');
      expect(off.stdout).toMatch(new RegExp(`^${mode}: fired 0 valid 1 mapped \\d kept 0 libc 0$`, 'm'));
    });
  }

  it('the no-release fallback: free, realloc, malloc_trim, a thread arena and the heap\'s top give nothing back', async () => {
    for (const mode of ['free', 'realloc', 'trim', 'arena', 'top']) {
      const r = await mallocs(mode, 'norelease');
      // not seen, and needs not be: the registered memory stays mapped with its contents
      expect(r.stdout).toMatch(new RegExp(`^${mode}: fired 0 valid 1 mapped 1 kept 1 libc 2$`, 'm'));
      expect(r.stderr).toMatch(/libc's own calls: no-release malloc in 1 process/);
    }
  });
});
