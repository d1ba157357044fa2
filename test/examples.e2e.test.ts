// The MPI-like examples as a user runs them, and the proof of coherence:
// corruption with --no-coherence, none with it.

import { describe, expect, it } from 'vitest';
import { example, pincoh, ROOT } from './helpers.js';
import { resolve } from 'node:path';


describe('the proof of coherence (examples/stalewrite)', () => {
  for (const mode of ['munmap', 'mremap', 'mprotect']) {
    it(`${mode}: with coherence off the canary is overwritten; on, never in 1000 rounds`, async () => {
      const off = await pincoh(['run', '-n', '2', '--no-coherence', '--', example('stalewrite'), mode, '100']);
      const hit = Number(off.stdout.match(/canary overwritten in (\d+)/)?.[1]);
      expect(hit).toBeGreaterThan(0);
      expect(off.code).toBe(3);

      const on = await pincoh(['run', '-n', '2', '--', example('stalewrite'), mode, '1000']);
      expect(on.stdout).toMatch(new RegExp(`stalewrite ${mode}: 1000 rounds, 1 attacher, canary overwritten in 0 `));
      expect(on.stdout).toMatch(/1000 handles found stale/);
      expect(on.code).toBe(0);
    });
  }

  it('munmap with 16 attachers: with coherence off the canary is overwritten; on, never in 200 rounds', async () => {
    const off = await pincoh(['run', '-n', '17', '--no-coherence', '--', example('stalewrite'), 'munmap', '30']);
    expect(Number(off.stdout.match(/canary overwritten in (\d+)/)?.[1])).toBeGreaterThan(0);
    expect(off.code).toBe(3);
    const on = await pincoh(['run', '-n', '17', '--', example('stalewrite'), 'munmap', '200']);
    expect(on.stdout).toMatch(/stalewrite munmap: 200 rounds, 16 attachers, canary overwritten in 0 /);
    expect(on.stdout.match(/200 handles found stale/g)).toHaveLength(16);
    expect(on.code).toBe(0);
  }, 120_000);
});

describe('each example shows its policy', () => {
  it('regcache --heap: free() keeps a heap chunk\'s registrations by default (they follow the mapping); --free invalidate drops them', async () => {
    const keep = await pincoh(['run', '-q', '--', example('regcache'), '300', '--heap']);
    expect(keep.stdout).toMatch(/cache hits 299, .* stale registrations handed out 299/);
    expect(keep.stdout).toMatch(/run under pincoh run --free invalidate/);
    expect(keep.code).toBe(1);
    const inval = await pincoh(['run', '-q', '--free', 'invalidate', '--', example('regcache'), '300', '--heap']);
    expect(inval.stdout).toMatch(/cache hits 0, misses 300, evicted by pincoh 300, stale registrations handed out 0/);
    expect(inval.code).toBe(0);
  });

  it('forkdemo: the child has a private copy of the registered pages, or under --fork dontfork none at all', async () => {
    const keep = await pincoh(['run', '-q', '--', example('forkdemo')]);
    expect(keep.stdout).toMatch(/its pages here: a private copy \(fork keep\); own registration: ok/);
    const dontfork = await pincoh(['run', '-q', '--fork', 'dontfork', '--', example('forkdemo')]);
    expect(dontfork.stdout).toMatch(/its pages here: not mapped \(fork dontfork: a touch is SIGSEGV\); own registration: ok/);
    expect([keep.code, dontfork.code]).toEqual([0, 0]);
  });
});

describe('MPI-like programs', () => {
  it('ring: 4 ranks, every byte of every message checked', async () => {
    const r = await pincoh(['run', '-n', '4', '--', example('ring'), '300']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/300 iterations from rank \d, 0 bad/g)).toHaveLength(4);
  });

  it('halo: buffers freed and reallocated, stale handles caught, re-attached, every byte checked', async () => {
    const r = await pincoh(['run', '-n', '4', '--', example('halo'), '100', '10']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/reallocated 10 times .* stale handles caught 9, re-attached 20, 0 bad/g)).toHaveLength(4);
  });

  it('C and Node ranks mix in one ring', async () => {
    const node = resolve(ROOT, 'examples/ring-node.mjs');
    const r = await pincoh(['run', '-n', '4', '--', 'sh', '-c', `if [ $((PINCOH_RANK % 2)) = 1 ]; then exec node ${node} 100; else exec ${example('ring')} 100; fi`]);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/\(node\): 100 iterations from rank \d, 0 bad/g)).toHaveLength(2);
    expect(r.stdout.match(/of 4: 100 iterations from rank \d, 0 bad/g)).toHaveLength(2);
  });
});
