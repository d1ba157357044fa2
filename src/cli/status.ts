// pincoh status: what a running coordinator sees, once, as JSON, or redrawn
// in place like top.

import { plural } from '../coherence/stats.js';
import type { Percentiles, StatusSnapshot } from '../coherence/status.js';
import { PincohError } from '../errors.js';
import { version } from '../paths.js';
import { fetchStatus, findCoordinators } from '../transport/control.js';
import { jobsBases } from '../transport/socket-path.js';
import type { StatusOptions } from './options.js';

const us = (v: number | null) => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} µs`);
const pct = (p: Percentiles) => (p.count ? `p50 ${us(p.p50_us)}, p99 ${us(p.p99_us)} (${p.count})` : 'none');

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** The status as a screen: a header of job-wide counts and rates, then a line per process. */
export function formatStatus(s: StatusSnapshot): string {
  const c = s.coordinator;
  const t = s.totals;
  const causes = Object.entries(t.invalidations_by_cause).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  const pol = c.policies;
  const lines = [
    `pincoh ${version()}: coordinator pid ${c.pid} on ${c.socket}, up ${c.uptime_s.toFixed(1)} s; mremap ${pol.mremap}, fork ${pol.fork}, free ${pol.free}${pol.coherence ? '' : ', NO COHERENCE'}`,
    `processes: ${s.processes.length} connected, ${t.processes} so far; ${t.crashed} died without exiting, ${t.cut_off} cut off; ${plural(t.dropped, 'event')} lost`,
    `totals: ${plural(t.registrations, 'registration')}, ${plural(t.invalidations, 'invalidation')}${causes ? ` (${causes})` : ''}, ${plural(t.calls, 'call')} on registered memory (${t.waited} waited), ${plural(t.timeouts, 'timeout')}, ${plural(t.attachments, 'attachment')}, ${plural(t.revokes, 'revoke')}`,
    `rates over ${s.rates.window_s.toFixed(1)} s: ${s.rates.invalidations.toFixed(1)} invalidations/s, ${s.rates.revokes.toFixed(1)} revokes/s, ${s.rates.calls.toFixed(1)} calls/s, ${s.rates.registrations.toFixed(1)} registrations/s`,
    `latency: pincoh's part of a call ${pct(s.latency.call)}; revoke ${pct(s.latency.revoke)}; owner's wait for puts in flight ${pct(s.latency.sync_wait)}`,
  ];
  for (const j of s.jobs.filter((j) => j.failed)) lines.push(`job ${j.id} FAILED: pid ${j.failed!.pid} (rank ${j.failed!.rank}) died${j.failed!.signal ? ` (${j.failed!.signal})` : ''}`);
  lines.push('');
  const head = ['PID', 'RANK', 'JOB', 'COMMAND', 'LIBC', 'REGS', 'BYTES', 'EXPORTS', 'ATTACHED', 'HANDLES', 'STATE'];
  const rows = s.processes.map((p) => [
    String(p.pid), String(p.rank), p.job, p.command, p.libc + (p.chained ? '+chain' : ''), String(p.registrations), bytes(p.bytes),
    String(p.exports), String(p.attached_by), String(p.attachments), p.degraded ? `degraded (${p.timeouts} timeouts)` : 'ok',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const left = new Set([2, 3, 4, 10]);
  const fmt = (r: string[]) => r.map((v, i) => (left.has(i) ? v.padEnd(width[i]!) : v.padStart(width[i]!))).join('  ').trimEnd();
  lines.push(fmt(head), ...rows.map(fmt));
  if (rows.length === 0) lines.push('(no process connected: a process connects at its first pincoh call)');
  return lines.join('\n');
}

async function resolveSocket(o: StatusOptions): Promise<string | undefined> {
  if (o.socket) return o.socket;
  if (process.env.PINCOH_SOCKET) return process.env.PINCOH_SOCKET;
  const found = await findCoordinators();
  if (found.length === 1) return found[0];
  if (found.length === 0) throw new PincohError('PINCOH_ERR_COORDINATOR', `no coordinator of yours listens under ${jobsBases().join(' or ')}; pass --socket PATH (pincoh run prints it at start)`);
  // several: each in a line (or a JSON document), then choose
  const each = await Promise.all(found.map(async (socket) => ({ socket, status: await fetchStatus(socket).catch(() => undefined) })));
  if (o.watch) throw new PincohError('PINCOH_ERR_COORDINATOR', `${found.length} coordinators of yours listen under ${jobsBases().join(' or ')}: choose one to watch with --socket PATH (pincoh status lists them)`);
  if (o.json) {
    const list = each.map(({ socket, status: s }) => (s ? { socket, pid: s.coordinator.pid, uptime_s: s.coordinator.uptime_s, processes: s.processes.length, jobs: s.jobs.map((j) => j.id) } : { socket, answered: false }));
    process.stdout.write(JSON.stringify({ version: 1, coordinators: list }, null, 2) + '\n');
    return undefined;
  }
  for (const { socket, status: s } of each)
    process.stdout.write(s ? `${socket}  pid ${s.coordinator.pid}, up ${s.coordinator.uptime_s.toFixed(0)} s, ${plural(s.processes.length, 'process', 'processes')}, jobs ${s.jobs.map((j) => j.id).join(' ') || '-'}\n` : `${socket}  (did not answer)\n`);
  process.stdout.write(`${found.length} coordinators: choose one with --socket PATH\n`);
  return undefined;
}

export async function statusCommand(o: StatusOptions): Promise<number> {
  const socket = await resolveSocket(o);
  if (!socket) return 0;
  const show = (s: StatusSnapshot) => (o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
  if (!o.watch) {
    process.stdout.write(show(await fetchStatus(socket)) + '\n');
    return 0;
  }
  // like top: on a terminal, each screen replaces the last; elsewhere they follow each other
  const tty = process.stdout.isTTY === true;
  let stop = false;
  const onSignal = () => void (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let first = true;
    while (!stop) {
      let s: StatusSnapshot;
      try {
        s = await fetchStatus(socket);
      } catch (err) {
        if (first) throw err;
        process.stdout.write(`pincoh: the coordinator at ${socket} has ended\n`);
        return 0;
      }
      process.stdout.write((tty ? '\x1b[H\x1b[J' : first ? '' : '\n') + show(s) + '\n');
      first = false;
      await new Promise((r) => setTimeout(r, o.intervalMs));
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
