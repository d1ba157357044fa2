// What `pincoh status` shows: every process the coordinator holds, and the
// job-wide counts and rates. The JSON is stable (docs/watching.md, pincoh status):
// fields are added, never renamed or removed.

import type { Engine, ProcessState } from './engine.js';
import type { LatencySamples, Stats } from './stats.js';

export interface ProcessStatus {
  pid: number;
  rank: number;
  job: string;
  command: string;
  /** how libc's own calls are covered in it ('code patch', 'no-release malloc', 'not covered') */
  libc: string;
  /** another interposer's hooks also run for libc's patched entries */
  chained: boolean;
  /** a call of it timed out waiting for the coordinator and went on alone */
  degraded: boolean;
  timeouts: number;
  registrations: number;
  bytes: number;
  /** its registrations others are attached to, and the attachments to them */
  exports: number;
  attached_by: number;
  /** its handles on others' registrations */
  attachments: number;
  connected_s: number;
}

export interface Percentiles {
  count: number;
  p50_us: number | null;
  p99_us: number | null;
}

export interface StatusSnapshot {
  version: 1;
  coordinator: { pid: number; socket: string; uptime_s: number; policies: { mremap: string; fork: string; free: string; coherence: boolean; revoke_timeout_ms: number } };
  processes: ProcessStatus[];
  jobs: Array<{ id: string; members: number; names: number; failed: { pid: number; rank: number; signal?: string } | null }>;
  totals: {
    processes: number;
    registrations: number;
    invalidations: number;
    invalidations_by_cause: Record<string, number>;
    followed: number;
    calls: number;
    waited: number;
    timeouts: number;
    attachments: number;
    revokes: number;
    cut_off: number;
    crashed: number;
    events: number;
    dropped: number;
  };
  /** per second, over the last `window_s` seconds */
  rates: { window_s: number; invalidations: number; revokes: number; calls: number; registrations: number };
  latency: { call: Percentiles; revoke: Percentiles; sync_wait: Percentiles };
}

const RATED = ['invalidations', 'revokes', 'calls', 'registrations'] as const;
type Rated = (typeof RATED)[number];

function rated(s: Stats): Record<Rated, number> {
  return { invalidations: s.totalInvalidations(), revokes: s.revokes, calls: s.slowCalls, registrations: s.registrations };
}

/** The counts of the last few seconds, sampled each second, so a single look shows rates. */
export class RateWindow {
  private readonly samples: Array<{ at: number; v: Record<Rated, number> }> = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly stats: Stats,
    private readonly span = 10,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  private sample(): void {
    this.samples.push({ at: Date.now(), v: rated(this.stats) });
    if (this.samples.length > this.span + 1) this.samples.shift();
  }

  rates(): StatusSnapshot['rates'] {
    const first = this.samples[0]!;
    const now = { at: Date.now(), v: rated(this.stats) };
    const s = Math.max(0.001, (now.at - first.at) / 1000);
    const r = { window_s: Number(s.toFixed(3)) } as StatusSnapshot['rates'];
    for (const k of RATED) r[k] = Number(((now.v[k] - first.v[k]) / s).toFixed(3));
    return r;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function percentiles(l: LatencySamples): Percentiles {
  const p = (q: number) => (l.count ? Number(l.percentile(q).toFixed(3)) : null);
  return { count: l.count, p50_us: p(50), p99_us: p(99) };
}

function processStatus(p: ProcessState, now: number): ProcessStatus {
  let attachedBy = 0;
  for (const set of p.exports.values()) attachedBy += set.size;
  return {
    pid: p.pid,
    rank: p.rank,
    job: p.hello.job,
    command: p.hello.argv0,
    libc: p.libc,
    chained: p.hello.chained !== 0,
    degraded: p.timeouts > 0,
    timeouts: p.timeouts,
    registrations: p.registry.size,
    bytes: p.registry.bytes,
    exports: p.exports.size,
    attached_by: attachedBy,
    attachments: p.attachments.size,
    connected_s: Number(((now - p.since) / 1000).toFixed(3)),
  };
}

/** The status now; the caller has drained every ring (CoordinatorServer.drainAll). */
export function statusOf(engine: Engine, socket: string, started: number, rates: RateWindow): StatusSnapshot {
  const s = engine.stats;
  const now = Date.now();
  return {
    version: 1,
    coordinator: {
      pid: process.pid,
      socket,
      uptime_s: Number(((now - started) / 1000).toFixed(3)),
      policies: {
        mremap: engine.mremapFollow ? 'follow' : 'invalidate',
        fork: engine.forkDontfork ? 'dontfork' : 'keep',
        free: engine.freeInvalidate ? 'invalidate' : 'keep',
        coherence: engine.coherence,
        revoke_timeout_ms: engine.revokeTimeoutMs,
      },
    },
    processes: [...engine.processes.values()].sort((a, b) => a.hello.job.localeCompare(b.hello.job) || a.rank - b.rank || a.pid - b.pid).map((p) => processStatus(p, now)),
    jobs: [...engine.jobs.values()].filter((j) => j.members > 0).map((j) => ({ id: j.id, members: j.members, names: j.names.size, failed: j.failed ?? null })),
    totals: {
      processes: s.processes,
      registrations: s.registrations,
      invalidations: s.totalInvalidations(),
      invalidations_by_cause: { ...s.invalidations },
      followed: s.follows,
      calls: s.slowCalls,
      waited: s.waitedCalls,
      timeouts: s.timeouts,
      attachments: s.attachments,
      revokes: s.revokes,
      cut_off: s.cutOff,
      crashed: s.crashed,
      events: s.events,
      dropped: s.dropped,
    },
    rates: rates.rates(),
    latency: { call: percentiles(s.callLatencies), revoke: percentiles(s.revokeLatency), sync_wait: percentiles(s.revokeWait) },
  };
}
