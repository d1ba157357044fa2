// The soak: many processes with many registrations and attachments churning
// munmap/mremap/mprotect/fork against one coordinator, for a while. At the
// end the coordinator's registry is audited against every process's
// /proc/PID/maps. Used by `npm run soak` (64 processes, 10 minutes) and
// test/soak.test.ts (a short one).

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/coherence/engine.js';
import { LatencySamples } from '../../src/coherence/stats.js';
import { audit, readMaps } from '../../src/memory/maps.js';
import { CoordinatorServer } from '../../src/transport/server.js';
import { prog, shimEnv, tempDir, until } from '../helpers.js';

export interface SoakOptions {
  procs: number;
  regs: number;
  seconds: number;
  sampleEverySeconds?: number;
  /** false: never revoke (to show the checker catches stale writes) */
  coherence?: boolean;
  log?: (line: string) => void;
}

export interface RankReport {
  rank: number;
  ops: number;
  missed: number;
  stale_writes: number;
  puts: number;
  estale: number;
  reattach: number;
  forks: number;
  timeouts: number;
  degraded: number;
}

export interface SoakReport {
  ranks: RankReport[];
  exitCodes: Array<number | null>;
  auditFindings: number;
  audited: number;
  samples: Array<{ t: number; rssMiB: number; heapMiB: number; externalMiB: number; fds: number; p99us: number; calls: number }>;
  coordinator: { rssMiB: [number, number]; heapMiB: [number, number]; gc: boolean; fds: [number, number]; invalidations: number; revokes: number; cutOff: number; registrationsAtEnd: number };
}

const mib = () => Math.round(process.memoryUsage().rss / 2 ** 20);
// The live heap: after a full GC when node runs with --expose-gc (npm run soak),
// so growth and garbage not yet collected can be told apart.
const gc = (globalThis as { gc?: () => void }).gc;
const heapMiB = () => {
  gc?.();
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
};
const externalMiB = () => Math.round((process.memoryUsage().external / 2 ** 20) * 10) / 10; // Buffers and the like
const fds = () => readdirSync('/proc/self/fd').length;

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  const path = join(tempDir('soak'), 'c.sock');
  const engine = new Engine({ mremapFollow: false, revokeTimeoutMs: 5000, coherence: o.coherence ?? true });
  const server = new CoordinatorServer({ socketPath: path, engine, log: (l) => log(`coordinator: ${l}`) });
  await server.listen();
  const rss0 = mib();
  const heap0 = heapMiB();
  const fds0 = fds();
  const t0 = Date.now();
  const samples: SoakReport['samples'] = [];
  const sampler = setInterval(() => {
    const w = engine.stats.syncWindow;
    engine.stats.syncWindow = new LatencySamples(1 << 14);
    const s = { t: Math.round((Date.now() - t0) / 1000), rssMiB: mib(), heapMiB: heapMiB(), externalMiB: externalMiB(), fds: fds(), p99us: w.count ? Math.round(w.percentile(99)) : 0, calls: w.count };
    samples.push(s);
    log(`t=${s.t}s coordinator rss ${s.rssMiB} MiB, heap ${s.heapMiB} MiB${gc ? ' after GC' : ''}, external ${s.externalMiB} MiB, ${s.fds} fds, SYNC p99 ${s.p99us} µs over ${s.calls} SYNCs`);
  }, (o.sampleEverySeconds ?? 10) * 1000);

  const env = (rank: number) => shimEnv(path, { PINCOH_RANK: String(rank), PINCOH_SIZE: String(o.procs), PINCOH_JOB: 'soak', PINCOH_TIMEOUT_MS: '60000', PINCOH_QUIET: '1' }); // 64 spinning processes on 2 cores starve the coordinator: its first answers can take seconds
  const children = Array.from({ length: o.procs }, (_, rank) => {
    const child = spawn(prog('soak'), [String(o.regs), String(o.seconds)], { env: env(rank), stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const waiting = new Promise<void>((r) => child.stdout.on('data', () => out.includes('waiting') && r()));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    return { child, out: () => out, waiting, exited };
  });
  await Promise.race([Promise.all(children.map((c) => c.waiting)), Promise.all(children.map((c) => c.exited))]);
  clearInterval(sampler);

  // Every rank is done and still alive: audit what the coordinator holds against what the kernel maps.
  let findings = 0;
  let audited = 0;
  for (const p of engine.processes.values()) {
    engine.drain(p); // its last events (up to 10 ms old) before comparing
    const maps = readMaps(p.pid);
    if (!maps) continue;
    audited += p.registry.size;
    const bad = audit(p.registry, maps);
    findings += bad.length;
    for (const b of bad.slice(0, 5)) log(`audit: pid ${p.pid} key ${b.reg.key}: ${b.finding}`);
  }
  const registrationsAtEnd = audited;
  children.forEach((c) => c.child.stdin.end('go\n'));
  const exitCodes = await Promise.all(children.map((c) => c.exited));
  const ranks = children.map((c) => c.out().split('\n').find((l) => l.startsWith('{'))).filter(Boolean).map((l) => JSON.parse(l!) as RankReport);
  // every rank's connection closed and dropped, its pipes closed: then the descriptors are counted (a leak shows after 10 s)
  await until(() => engine.processes.size === 0 && fds() <= fds0, 10_000);
  const report: SoakReport = {
    ranks,
    exitCodes,
    auditFindings: findings,
    audited,
    samples,
    coordinator: {
      rssMiB: [rss0, mib()],
      heapMiB: [heap0, heapMiB()],
      gc: gc !== undefined,
      fds: [fds0, fds()],
      invalidations: engine.stats.totalInvalidations(),
      revokes: engine.stats.revokes,
      cutOff: engine.stats.cutOff,
      registrationsAtEnd,
    },
  };
  await server.close();
  return report;
}

export function summarize(r: SoakReport): string {
  const sum = (k: keyof RankReport) => r.ranks.reduce((a, x) => a + (x[k] as number), 0);
  return [
    `soak: ${r.ranks.length} processes, ${sum('ops')} changes (${sum('forks')} forks), ${r.coordinator.invalidations} invalidations, ${r.coordinator.revokes} revokes, ${sum('puts')} puts (${sum('estale')} found stale, ${sum('reattach')} attaches)`,
    `soak: missed invalidations ${sum('missed')}, stale writes ${sum('stale_writes')}, audit findings ${r.auditFindings} over ${r.audited} registrations, timeouts ${sum('timeouts')}, cut off ${r.coordinator.cutOff}`,
    `soak: coordinator RSS ${r.coordinator.rssMiB[0]} -> ${r.coordinator.rssMiB[1]} MiB, heap ${r.coordinator.heapMiB[0]} -> ${r.coordinator.heapMiB[1]} MiB${r.coordinator.gc ? ' after GC' : ''}, fds ${r.coordinator.fds[0]} -> ${r.coordinator.fds[1]}; exit codes ${[...new Set(r.exitCodes)].join(',')}`,
  ].join('\n');
}
