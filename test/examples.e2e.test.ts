// The MPI-like examples as a user runs them, and the proof of coherence:
// corruption with --no-coherence, none with it.

import { describe, expect, it } from 'vitest';
import { CLI, example, run, ROOT } from './helpers.js';
import { resolve } from 'node:path';

const pincoh = (args: string[]) => run(process.execPath, [CLI, ...args], process.env, 120_000);

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
