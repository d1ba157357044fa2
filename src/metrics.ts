// GET /metrics in Prometheus' text format (--metrics HOST:PORT). prom-client
// does the format, the escaping and the histograms; the counts come from the
// engine's Stats when scraped, so nothing is counted twice. No addresses,
// keys or pids as labels: their number is unbounded.

import { createServer, type Server } from 'node:http';
import { Counter, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine, ProcessState } from './coherence/engine.js';
import { PincohError } from './errors.js';
import { version } from './paths.js';

/** 1 µs to about 4 s, by fours: a pincoh call's part is microseconds, a revoke stuck behind a put is seconds. */
const BUCKETS = exponentialBuckets(1e-6, 4, 12);

/** A gauge whose value is read from the engine at scrape time. */
function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter whose value is read from the engine at scrape time. */
function counter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

export function pincohRegistry(engine: Engine): Registry {
  const registry = new Registry();
  const s = engine.stats;
  new Gauge({ name: 'pincoh_build_info', help: 'pincoh version (value 1)', labelNames: ['version', 'nodejs'], registers: [registry] }).set({ version: version(), nodejs: process.versions.node }, 1);
  /** summed over the processes connected now */
  const sum = (f: (p: ProcessState) => number) => () => {
    let n = 0;
    for (const p of engine.processes.values()) n += f(p);
    return n;
  };
  gauge(registry, 'pincoh_processes', 'processes connected now', () => engine.processes.size);
  gauge(registry, 'pincoh_registrations', 'registrations held now, by all connected processes', sum((p) => p.registry.size));
  gauge(registry, 'pincoh_registered_bytes', 'bytes registered now, by all connected processes', sum((p) => p.registry.bytes));
  gauge(registry, 'pincoh_attachments', "handles on other processes' registrations held now", sum((p) => p.attachments.size));
  counter(registry, 'pincoh_processes_connected_total', 'processes that connected', () => s.processes);
  counter(registry, 'pincoh_registrations_total', 'registrations made', () => s.registrations);
  new Counter({
    name: 'pincoh_invalidations_total',
    help: 'registrations invalidated, by the call that changed their memory',
    labelNames: ['cause'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cause, n] of Object.entries(s.invalidations)) this.inc({ cause }, n);
    },
  });
  counter(registry, 'pincoh_followed_mremaps_total', 'registrations moved with their memory (--mremap follow)', () => s.follows);
  counter(registry, 'pincoh_calls_total', 'hooked calls that touched registered memory', () => s.slowCalls);
  counter(registry, 'pincoh_calls_waited_total', 'of those, calls that waited for the coordinator (a put in flight handed to it, a full ring, an --audit exit)', () => s.waitedCalls);
  counter(registry, 'pincoh_timeouts_total', 'calls whose wait for the coordinator was not answered in time (the process went on alone)', () => s.timeouts);
  counter(registry, 'pincoh_attachments_total', 'attachments made', () => s.attachments);
  counter(registry, 'pincoh_revokes_total', 'handles revoked because their owner\'s memory changed', () => s.revokes);
  counter(registry, 'pincoh_cutoffs_total', 'processes cut off (killed) for breaking the protocol or a stuck put', () => s.cutOff);
  counter(registry, 'pincoh_crashes_total', 'processes that died without exiting', () => s.crashed);
  counter(registry, 'pincoh_events_total', 'events read from the processes\' rings', () => s.events);
  counter(registry, 'pincoh_events_dropped_total', 'events lost to a full ring', () => s.dropped);
  new Counter({
    name: 'pincoh_processes_libc_total',
    help: 'processes that connected, by how libc\'s own calls were covered in them',
    labelNames: ['coverage'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [coverage, n] of Object.entries(s.libc)) this.inc({ coverage }, n);
    },
  });
  const call = new Histogram({ name: 'pincoh_call_duration_seconds', help: 'time a hooked call on registered memory spent in pincoh before the real call (waits included)', labelNames: ['call'], buckets: BUCKETS, registers: [registry] });
  const revoke = new Histogram({ name: 'pincoh_revoke_duration_seconds', help: 'time to revoke a handle (waiting for a put in flight included), by outcome', labelNames: ['outcome'], buckets: BUCKETS, registers: [registry] });
  const syncWait = new Histogram({ name: 'pincoh_sync_wait_seconds', help: 'time an owner\'s call waited for its revokes', buckets: BUCKETS, registers: [registry] });
  s.onLatency = (what, label, seconds) => {
    if (what === 'call') call.observe({ call: label }, seconds);
    else if (what === 'revoke') revoke.observe({ outcome: label }, seconds);
    else syncWait.observe(seconds);
  };
  return registry;
}

/** Serves the registry at http://host:port/metrics; resolves once listening. beforeScrape: brings the
 * counts up to now (reads every process's ring). */
export async function serveMetrics(registry: Registry, host: string, port: number, beforeScrape: () => void = () => {}): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('pincoh serves GET /metrics only\n');
      return;
    }
    beforeScrape();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new PincohError('PINCOH_ERR_METRICS', `cannot serve metrics on ${host}:${port}: ${err.code ?? err.message}; choose another --metrics HOST:PORT`)),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics` };
}
