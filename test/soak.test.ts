// A short soak (npm run soak runs the long one): 8 processes churning for 8
// seconds, then the coordinator audited against /proc/PID/maps.

import { describe, expect, it } from 'vitest';
import { runSoak, summarize } from './soak/soak.js';

describe('soak (short)', () => {
  it('no missed invalidation, no stale write, a clean audit, no fd leaked', async () => {
    const r = await runSoak({ procs: 8, regs: 200, seconds: 8, sampleEverySeconds: 2 });
    const text = summarize(r);
    expect(r.ranks, text).toHaveLength(8);
    expect(r.exitCodes.every((c) => c === 0), text).toBe(true);
    for (const rank of r.ranks) {
      expect(rank.missed, text).toBe(0);
      expect(rank.stale_writes, text).toBe(0);
      expect(rank.ops).toBeGreaterThan(0);
      expect(rank.puts).toBeGreaterThan(0);
    }
    expect(r.coordinator.revokes).toBeGreaterThan(0);
    expect(r.audited).toBeGreaterThan(8 * 190);
    expect(r.auditFindings, text).toBe(0);
    expect(r.coordinator.fds[1], text).toBeLessThanOrEqual(r.coordinator.fds[0]);
  }, 120_000);

  it('the checker can fail: with coherence off it sees stale writes', async () => {
    const r = await runSoak({ procs: 4, regs: 100, seconds: 4, coherence: false });
    expect(r.ranks.reduce((a, x) => a + x.stale_writes, 0), summarize(r)).toBeGreaterThan(0);
  }, 120_000);
});
