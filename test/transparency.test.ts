// Invariant 3: every hooked call returns what the bare call returns, with the
// same errno, valid arguments or not. Each script runs bare and under the shim
// with the range registered, so the shim's slow path is the one compared.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareEnv, driver, prog, run, startCoordinator, type Coordinator } from './helpers.js';

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator()));
afterAll(async () => c.close());

// Region 0 is 64 KiB, registered whole before each call; region 1 is a spare.
const PRE = 'map 0 65536 map 1 65536 reg 0 0 65536 rw';
const CASES: Record<string, string> = {
  'munmap, valid': 'unmap 0 0 65536',
  'munmap, unaligned address (EINVAL)': 'unmap 0 1 4096',
  'munmap, zero length (EINVAL)': 'unmap 0 0 0',
  'munmap, twice (0 both times)': 'unmap 0 0 65536 reg 0 0 4096 rw unmap 0 0 65536',
  'munmap, past the end of the address space (EINVAL)': 'unmap 0 0 0xfffffffffffff000',
  'mprotect, valid': 'prot 0 0 4096 r',
  'mprotect, unaligned (EINVAL)': 'prot 0 100 4096 r',
  'mprotect, bad protection bits (EINVAL)': 'prot 0 0 4096 bad',
  'mprotect, zero length (0)': 'prot 0 0 0 none',
  'mprotect, unmapped memory (ENOMEM)': 'unmap 0 0 65536 reg 0 0 4096 r prot 0 0 4096 r',
  'mremap, shrink in place': 'remap 0 65536 4096 0',
  'mremap, grow with MAYMOVE': 'remap 0 65536 1048576 maymove',
  'mremap, unknown flag (EINVAL)': 'remap 0 65536 131072 maymove+bad',
  'mremap, FIXED without MAYMOVE (EINVAL)': 'remap 0 65536 65536 fixed 1',
  'mremap, FIXED onto region 1': 'remap 0 65536 65536 maymove+fixed 1',
  'mremap, DONTUNMAP': 'remap 0 65536 65536 maymove+dontunmap',
  'mremap, DONTUNMAP with a different size (EINVAL)': 'remap 0 65536 131072 maymove+dontunmap',
  'mremap, zero new length (EINVAL)': 'remap 0 65536 0 maymove',
  'mremap, unaligned old address (EINVAL)': 'rawremap 0x1001 4096 8192 maymove 0',
  'madvise DONTNEED, valid': 'advise 0 0 8192 4',
  'madvise FREE, unaligned (EINVAL)': 'advise 0 1 4096 8',
  'madvise REMOVE on private anonymous memory (EINVAL)': 'advise 0 0 4096 9',
  'madvise DONTNEED, unmapped (ENOMEM)': 'unmap 0 0 65536 reg 0 0 4096 r advise 0 0 4096 4',
  'mmap MAP_FIXED over registered memory': 'mapfix 0 0 8192',
  'mmap MAP_FIXED, unaligned (EINVAL)': 'mapfix 0 1 4096',
  'mmap MAP_FIXED_NOREPLACE over a mapping (EEXIST)': 'mapnorep 0 0 4096',
  'shmdt of a registered segment': 'shm 65536 reg 14 0 65536 rw shmdt',
  'shmdt twice (EINVAL)': 'shm 65536 reg 14 0 65536 rw shmdt reg 14 0 4096 r shmdt',
  'sbrk shrinking over registered memory': 'grow 65536 reg 15 0 65536 rw shrink 65536',
  'brk lowering over registered memory': 'grow 65536 reg 15 0 65536 rw brkdown 65536',
  'sbrk shrinking past the start of the address space (ENOMEM)': 'grow 65536 reg 15 0 65536 rw shrink 0x7fffffffffffffff',
  'clone without CLONE_VM': 'clone novm',
  'clone with CLONE_VM|CLONE_VFORK': 'clone vm',
  'clone, CLONE_SIGHAND without CLONE_VM (EINVAL)': 'clone bad',
  'clone, no function (EINVAL)': 'clone nofn',
};

const calls = (lines: string[]) => lines.filter((l) => /^(munmap|mprotect|mremap|madvise|mmap|shmdt|shrink|brkdown|clone)/.test(l)).map((l) => l.replace(/ (inplace|atdest)$/, ''));

describe('hooked calls return what the bare calls return, errno included', () => {
  for (const [name, script] of Object.entries(CASES)) {
    it(name, async () => {
      const full = `${PRE} ${script} stats`;
      const bare = await run(prog('driver'), full.split(' '), bareEnv());
      const shim = await driver(c.path, full);
      expect(shim.code).toBe(0);
      expect(calls(shim.lines)).toEqual(calls(bare.lines));
      // the slow path really ran (otherwise this compared two bare calls)
      // (a zero length or an address outside the registration touches nothing: fast path)
      // (and MAP_FIXED_NOREPLACE replaces nothing, so it never leaves the fast path either;
      // nor does a clone, a shmdt of nothing attached, or an sbrk that would wrap around)
      if (!/raw| 0 0$| 0 0 none$|mapnorep|clone|shmdt reg|0x7fff/.test(script)) expect(shim.stdout).not.toMatch(/stats slow 0 /);
    });
  }

  it('errno set before a successful call is still there after it (777)', async () => {
    const r = await driver(c.path, `${PRE} prot 0 0 4096 rw unmap 0 0 65536`);
    expect(calls(r.lines)).toEqual(['mprotect 0 777', 'munmap 0 777']);
  });
});

describe('free and realloc under --free invalidate return what the bare calls return, errno included', () => {
  let fc: Coordinator;
  beforeAll(async () => (fc = await startCoordinator({ freeInvalidate: true })));
  afterAll(async () => fc.close());

  // Region 2 is a 4 KiB heap chunk, registered, before each script.
  const HEAP = 'malloc 2 4096 reg 2 0 4096 rw';
  const FREE_CASES: Record<string, string> = {
    'free of a registered chunk': 'free 2',
    'free of a chunk holding a registration at an offset': 'malloc 3 65536 reg 3 100 200 rw free 3',
    'free(NULL)': 'malloc 4 0 free 5',
    'realloc growing (moves)': 'realloc 2 1048576',
    'realloc shrinking (in place)': 'realloc 2 1024',
    'realloc to 0 (frees)': 'realloc 2 0',
    'realloc of NULL (mallocs)': 'realloc 6 4096',
    'realloc too big (ENOMEM, the chunk kept)': 'realloc 2 0x7fffffffffffffff free 2',
  };
  const heapCalls = (lines: string[]) => lines.filter((l) => /^(free|realloc)/.test(l));
  for (const [name, script] of Object.entries(FREE_CASES)) {
    it(name, async () => {
      const full = `${HEAP} ${script} stats`;
      const bare = await run(prog('driver'), full.split(' '), bareEnv());
      const shim = await driver(fc.path, full);
      expect(shim.code).toBe(0);
      expect(heapCalls(shim.lines)).toEqual(heapCalls(bare.lines));
      if (!/free 5|realloc 6/.test(script)) expect(shim.stdout).not.toMatch(/stats slow 0 /); // the slow path ran
    });
  }
});
