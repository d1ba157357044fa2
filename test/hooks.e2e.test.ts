// Each hook end to end: a real process under the shim, a real coordinator.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driver, startCoordinator, until, type Coordinator } from './helpers.js';
import { EINVAL, ENOENT } from '../src/protocol/errno.js';

let c: Coordinator;
let follow: Coordinator;

beforeAll(async () => {
  c = await startCoordinator();
  follow = await startCoordinator({ mremapFollow: true });
});
afterAll(async () => {
  await c.close();
  await follow.close();
});

describe('the table', () => {
  it('5,000 registrations: the key index grows with them and finds every one; the coordinator holds what is left', async () => {
    const r = await driver(c.path, 'map 0 20480000 regmany 0 5000 say');
    expect(r.lines).toEqual(['map 0 ok', 'regmany valid 2500 refused 2500', 'said']);
  });
});

describe('munmap', () => {
  it('invalidates a registration it covers, calling back before it returns', async () => {
    const r = await driver(c.path, 'cb map 0 65536 reg 0 4096 8192 rw unmap 0 4096 8192 valid 0 stats');
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'cb 0 reason 1 len 8192', 'munmap 0 777', 'valid 0 0', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
  });

  it('invalidates the whole registration on a partial overlap', async () => {
    const r = await driver(c.path, 'cb map 0 65536 reg 0 4096 12288 rw unmap 0 8192 4096 valid 0');
    expect(r.lines).toContain('cb 0 reason 1 len 12288');
    expect(r.lines).toContain('valid 0 0');
  });

  it('leaves alone registrations it only borders', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 4096 4096 rw unmap 0 0 4096 unmap 0 8192 4096 valid 0 stats');
    expect(r.lines).toContain('valid 0 1');
    expect(r.lines).toContain('stats slow 0 inval 0 timeouts 0 degraded 0 connected 1');
  });

  it('rounds to pages as the kernel does: unmapping one byte drops the page', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 8000 100 r unmap 0 4096 1 valid 0');
    expect(r.lines).toContain('valid 0 0');
  });

  it('the coordinator drops the registration too', async () => {
    // counted once the coordinator has read each process's last events (at its
    // goodbye): the previous test's, then this one's. Reading the count as soon as
    // a process has exited raced the coordinator (3 once, under load)
    const settled = async () => expect(await until(() => c.engine.stats.live === 0)).toBe(true);
    await settled();
    const before = c.engine.stats.invalidations.munmap!;
    await driver(c.path, 'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 r unmap 0 0 65536');
    await settled();
    expect(c.engine.stats.invalidations.munmap! - before).toBe(2);
  });
});

describe('mprotect', () => {
  it('invalidates when a needed permission goes, keeps it when permissions are added', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 r reg 0 8192 4096 rw prot 0 0 4096 rwx prot 0 8192 4096 r valid 0 valid 1');
    expect(r.lines).toContain('valid 0 1'); // read-only registration, rwx added: kept
    expect(r.lines).toContain('valid 1 0'); // read-write registration lost write
  });

  it('PROT_NONE invalidates every registration in the range', async () => {
    const r = await driver(c.path, 'cb map 0 65536 reg 0 0 4096 r reg 0 4096 4096 w prot 0 0 8192 none valid 0 valid 1');
    expect(r.lines.filter((l) => l.startsWith('cb')).sort()).toEqual(['cb 0 reason 2 len 4096', 'cb 1 reason 2 len 4096']);
  });
});

describe('mremap', () => {
  it('invalidates by default', async () => {
    const r = await driver(c.path, 'cb map 0 65536 reg 0 4096 4096 rw remap 0 65536 1048576 maymove valid 0');
    expect(r.lines).toContain('cb 0 reason 3 len 4096');
    expect(r.lines).toContain('valid 0 0');
  });

  it('with --mremap follow, the registration moves with the mapping', async () => {
    // map 1 right after map 0 would make the grow move; either way the offset is kept
    const r = await driver(follow.path, 'map 0 65536 reg 0 4096 4096 rw remap 0 65536 1048576 maymove valid 0 query 0');
    expect(r.lines).toContain('valid 0 1');
    expect(r.lines).toContain('query 0 0 4096 4096'); // same offset in the new mapping, same length
  });

  it('with --mremap follow, a shrink that cuts the registration invalidates it', async () => {
    const r = await driver(follow.path, 'map 0 65536 reg 0 8192 8192 rw remap 0 65536 12288 0 valid 0');
    expect(r.lines).toContain('valid 0 0');
  });

  it('the destination of MREMAP_FIXED is unmapped first: its registrations go', async () => {
    const r = await driver(follow.path, 'cb map 0 65536 map 1 65536 reg 1 0 4096 rw remap 0 65536 65536 maymove+fixed 1 valid 0');
    expect(r.lines).toContain('mremap ok 777 atdest');
    expect(r.lines).toContain('valid 0 0');
  });

  it('a failed mremap with follow leaves the registration where it was', async () => {
    // growing in place without MREMAP_MAYMOVE fails when the next page is taken
    const r = await driver(follow.path, 'map 0 65536 reg 0 0 4096 rw remap 0 65536 1048576 0 valid 0 query 0');
    if (r.lines.includes('mremap ok 777 inplace')) return; // the kernel found room: nothing to check
    expect(r.lines).toContain('valid 0 1');
    expect(r.lines).toContain('query 0 0 0 4096');
  });
});

describe('madvise', () => {
  it('advice that drops pages (DONTNEED, FREE, REMOVE, PAGEOUT, MERGEABLE...) invalidates; other advice keeps', async () => {
    // 4 DONTNEED, 8 FREE, 3 WILLNEED, 10 DONTFORK, 14 HUGEPAGE
    const r = await driver(c.path, 'cb map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw reg 0 16384 4096 rw advise 0 0 4096 3 advise 0 0 4096 10 advise 0 0 4096 14 advise 0 0 4096 4 advise 0 8192 4096 8 valid 0 valid 1 valid 2 stats');
    // (and at exit the one left goes too: reason 7)
    expect(r.lines.filter((l) => l.startsWith('cb'))).toEqual(['cb 0 reason 5 len 4096', 'cb 1 reason 5 len 4096', 'cb 2 reason 7 len 4096']);
    expect(r.lines.filter((l) => l.startsWith('valid'))).toEqual(['valid 0 0', 'valid 1 0', 'valid 2 1']);
    expect(r.lines).toContain('stats slow 2 inval 2 timeouts 0 degraded 0 connected 1'); // the keeping advice never left the fast path
  });
});

describe('mmap MAP_FIXED', () => {
  it('replacing registered memory invalidates it; MAP_FIXED_NOREPLACE fails and keeps it', async () => {
    const r = await driver(c.path, 'cb map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw mapnorep 0 0 4096 valid 0 mapfix 0 8192 8192 valid 1 valid 0');
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'reg 1 0', 'mmap fail 17', 'valid 0 1', 'cb 1 reason 6 len 4096', 'mmap ok 777', 'valid 1 0', 'valid 0 1', 'cb 0 reason 7 len 4096']);
  });
});

describe('shmdt', () => {
  it('detaching a segment invalidates registrations on it; a second shmdt fails as the bare one does', async () => {
    const r = await driver(c.path, 'cb shm 65536 reg 14 4096 8192 rw shmdt valid 0 shmdt');
    expect(r.lines).toEqual(['shm ok', 'reg 0 0', 'cb 0 reason 1 len 8192', 'shmdt 0 777', 'valid 0 0', 'shmdt -1 22']);
  });
});

describe('brk and sbrk', () => {
  it('lowering the break over registered memory invalidates it; raising it or lowering elsewhere does not', async () => {
    // `say` first: stdout's buffer comes from malloc, which moves the same break
    const r = await driver(c.path, 'say cb grow 65536 reg 15 0 8192 rw reg 15 32768 8192 rw shrink 16384 valid 0 valid 1 brkdown 32768 valid 1 valid 0 stats');
    expect(r.lines).toEqual([
      'said',
      'grow ok',
      'reg 0 0',
      'reg 1 0',
      'shrink 0 777', // the top 16 KiB go: nothing registered there
      'valid 0 1',
      'valid 1 1',
      'cb 1 reason 1 len 8192',
      'brkdown 0 777', // 32 KiB more: the second registration goes
      'valid 1 0',
      'valid 0 1',
      'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1',
      'cb 0 reason 7 len 8192',
    ]);
  });
});

describe('registration API', () => {
  it('deregister, then is_valid says 0; a second deregister is -ENOENT; a key never issued is -EINVAL', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 rw dereg 0 valid 0 dereg 0 valid 9');
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'dereg 0 0', 'valid 0 0', `dereg 0 -${ENOENT}`, `valid 9 -${EINVAL}`]);
  });

  it('rejects bad arguments without asking anyone', async () => {
    const r = await driver(c.path, 'map 0 65536 reg 0 0 0 rw reg 0 0 4096 x');
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${EINVAL}`, `reg -1 -${EINVAL}`]);
  });

  it('a process that exits loses all its registrations in the coordinator', async () => {
    const live = c.engine.stats.live;
    const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw');
    expect(await until(() => c.engine.stats.live === live)).toBe(true);
    expect([...c.engine.processes.values()].some((p) => p.pid === r.pid)).toBe(false);
    for (const p of c.engine.processes.values()) expect(p.registry.size).toBe(0);
  });
});
