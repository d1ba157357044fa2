// Invariant 5: the coordinator trusts nothing it is told. 100,000 random,
// mutated and plausible frames over many connections (npm run fuzz sends
// 10^6): no crash, bounded memory, bad connections cut off alone, a
// well-behaved process beside them unaffected.

import { describe, expect, it } from 'vitest';
import { fuzz } from './fuzz/fuzzer.js';
import { example, run, shimEnv, startCoordinator, until } from './helpers.js';

describe('fuzzing the coordinator', () => {
  it('survives 100,000 frames while a well-behaved process works beside them', async () => {
    const c = await startCoordinator({ revokeTimeoutMs: 50 });
    const good = run(example('regcache'), ['3000'], shimEnv(c.path), 120_000);
    const heap0 = process.memoryUsage().heapUsed;
    const res = await fuzz(c.path, 100_000, 7);
    expect(res.frames).toBe(100_000);
    expect(res.mutated).toBeGreaterThan(50);
    const r = await good;
    expect(r.stdout).toMatch(/3000 rounds, .* stale registrations handed out 0/);
    expect(r.code).toBe(0);
    // every fuzz connection is gone, and so is its state
    expect(await until(() => c.engine.stats.live === 0)).toBe(true);
    for (const job of c.engine.jobs.values()) expect(job.names.size).toBe(0);
    expect(c.logs.filter((l) => l.startsWith('cut off')).length).toBeGreaterThan(10);
    expect(c.logs.some((l) => /unknown frame type|frame length|before HELLO|not NUL-terminated|second HELLO|payload of/.test(l))).toBe(true);
    // memory stays bounded (a generous bound: this is not a timing test)
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 * 2 ** 20);
    await c.close();
  });
});
