// What `pincoh run` prints at the end, and what status shows.

import { libcCoverage, type Farewell } from '../protocol/messages.js';

export class LatencySamples {
  private buf: Float64Array;
  private n = 0;
  private seen = 0;

  constructor(capacity = 1 << 18) {
    this.buf = new Float64Array(capacity);
  }

  /** Keeps a uniform sample of everything added (reservoir), so memory stays flat. */
  add(us: number): void {
    this.seen++;
    if (this.n < this.buf.length) this.buf[this.n++] = us;
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < this.buf.length) this.buf[j] = us;
    }
  }

  get count(): number {
    return this.seen;
  }

  percentile(p: number): number {
    if (this.n === 0) return NaN;
    const sorted = this.buf.slice(0, this.n).sort();
    return sorted[Math.min(this.n - 1, Math.floor((p / 100) * this.n))]!;
  }
}

export class Stats {
  processes = 0;
  live = 0;
  registrations = 0;
  invalidations: Record<string, number> = { munmap: 0, mprotect: 0, mremap: 0, madvise: 0, mmap: 0, free: 0, exit: 0 };
  follows = 0;
  /** hooked calls that touched registrations (the shim's CALL events) */
  slowCalls = 0;
  /** of those, the ones that waited for the coordinator (a put in flight handed to it, a full ring, an --audit exit) */
  waitedCalls = 0;
  timeouts = 0;
  /** events read from the processes' rings, and events they could not queue */
  events = 0;
  dropped = 0;
  cutOff = 0;
  /** processes whose connection closed without BYE: killed or crashed */
  crashed = 0;
  /** processes by how their libc-internal calls are covered (pincoh exec's ranks that never connected too, from their farewell) */
  libc: Record<string, number> = {};
  /** pincoh exec's ranks that said at exit they never connected (made no pincoh call) */
  unconnectedRanks = 0;
  attachments = 0;
  revokes = 0;
  /** how long an owner's revoke waited for puts in flight (REVOKED events that waited), µs */
  revokeWait = new LatencySamples();
  /** every SYNC's time from its arrival to its answer, since whoever watches last swapped it (the soak reports p99 over time) */
  syncWindow = new LatencySamples(1 << 14);
  revokeLatency = new LatencySamples();
  /** time the hooked calls on registered memory spent in pincoh before the real call (the shim measures it), µs */
  callLatencies = new LatencySamples(1 << 16);
  /** told of every latency measured, in seconds (the metrics' histograms) */
  onLatency: ((what: 'call' | 'revoke' | 'sync_wait', label: string, seconds: number) => void) | undefined;

  callLatency(call: string, us: number): void {
    this.callLatencies.add(us);
    this.onLatency?.('call', call, us / 1e6);
  }

  /** A rank's farewell: one that never connected is counted here alone (a connected one said its HELLO). */
  farewell(f: Farewell): void {
    if (f.connected) return;
    this.unconnectedRanks++;
    const libc = libcCoverage(f.libc, f.chained);
    this.libc[libc] = (this.libc[libc] ?? 0) + 1;
  }

  totalInvalidations(): number {
    return Object.values(this.invalidations).reduce((a, b) => a + b, 0);
  }

  /** The line pincoh run prints at the end; ranks: how many the job started (a rank connects at its first pincoh call). */
  summary(ranks?: number): string {
    const libc = Object.keys(this.libc).length ? `; libc's own calls: ${Object.entries(this.libc).map(([m, n]) => `${m} in ${plural(n, 'process', 'processes')}`).join(', ')}` : '';
    if (this.processes === 0) {
      // pincoh exec's ranks said at exit that the shim ran in them; pincoh run knows how many it started
      const n = this.unconnectedRanks || ranks;
      const why = this.unconnectedRanks ? `${plural(this.unconnectedRanks, 'rank')} ended without a pincoh call, the shim running in ${n === 1 ? 'it' : 'each'}`
        : n === 1 ? 'the rank did not register memory or call pincoh' : `none of the ${n} ranks registered memory or called pincoh`;
      return `pincoh: no process connected${n ? ` (${why})` : ''}${libc}`;
    }
    const byCall = Object.entries(this.invalidations)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    return (
      `pincoh: ${plural(this.processes, 'process', 'processes')} connected, ${plural(this.registrations, 'registration')}, ` +
      `${plural(this.totalInvalidations(), 'invalidation')}${byCall ? ` (${byCall})` : ''}` +
      `${this.follows ? `, ${this.follows} followed mremap` : ''}, ` +
      `${plural(this.slowCalls, 'call')} on registered memory (${this.waitedCalls} waited for the coordinator), ${plural(this.timeouts, 'timeout')}` +
      (this.attachments ? `, ${plural(this.attachments, 'attachment')}, ${plural(this.revokes, 'revoke')}` : '') +
      (this.cutOff ? `, ${this.cutOff} killed` : '') +
      (this.crashed ? `, ${plural(this.crashed, 'process', 'processes')} died without exiting` : '') +
      (this.dropped ? `, ${plural(this.dropped, 'event')} lost (a full ring the coordinator did not drain in time)` : '') +
      (this.unconnectedRanks ? `, ${plural(this.unconnectedRanks, 'rank')} ended without a pincoh call` : '') +
      libc
    );
  }
}

/** '1 call', '2 calls': counts that read as English. */
export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}
