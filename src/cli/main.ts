// pincoh's command line: run and serve.

import { closeSync, openSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { Engine, type AuditEntry } from '../coherence/engine.js';
import { encodeFrame, FrameReader } from '../protocol/codec.js';
import { T } from '../protocol/constants.js';
import { PincohError } from '../errors.js';
import { isStaticElf, resolveCommand } from '../job/elf.js';
import { launch, worstStatus, type RankResult } from '../job/launch.js';
import { clearJobDir, jobEnded } from '../job/jobdir.js';
import { lockWithin } from '../job/native.js';
import { execCommand } from './exec.js';
import type { ProcessState } from '../coherence/engine.js';
import { shimPath, version } from '../paths.js';
import { reportCommand } from './report.js';
import { statusCommand } from './status.js';
import { Trace } from '../trace.js';
import { CoordinatorServer } from '../transport/server.js';
import { privateSocketPath } from '../transport/socket-path.js';
import { parseCli, revokeTimeoutFor, USAGE, HELP, type AuditOptions, type LimitOptions, type RunOptions, type ServeOptions } from './options.js';

/** Lines for the processes with findings (or all, when `all`). */
function formatAudit(entries: AuditEntry[], all: boolean): string[] {
  const lines: string[] = [];
  for (const e of entries) {
    if (!all && e.findings.length === 0) continue;
    lines.push(`pid ${e.pid} (${e.argv0}, rank ${e.rank}): ${e.registrations} registrations, ${e.findings.length} stale`);
    for (const f of e.findings) lines.push(`  key ${f.key} at ${f.addr} +${f.len}: ${f.finding}`);
  }
  return lines;
}

/** A job member died without exiting: its job's waits fail now (EOWNERDEAD); say so at once. */
function sayCrash(p: ProcessState, signal: string | undefined): void {
  process.stderr.write(
    `pincoh: pid ${p.pid} (${p.hello.argv0}, rank ${p.rank}) of job ${p.hello.job} died without exiting${signal ? ` (${signal})` : ' (killed or crashed)'}; ` +
      `its job's barriers and attaches now fail with EOWNERDEAD\n`,
  );
}

const engineLimits = (o: LimitOptions) => ({
  ...(o.maxRegistrations !== undefined && { registrationsPerProcess: o.maxRegistrations }),
  ...(o.maxAttachments !== undefined && { attachmentsPerProcess: o.maxAttachments }),
  ...(o.maxNames !== undefined && { namesPerJob: o.maxNames }),
});

async function run(o: RunOptions): Promise<number> {
  const shim = shimPath();
  const { path, cleanup } = privateSocketPath();
  const trace = new Trace(o.trace);
  // An attacher that does not answer a revoke is cut off well before the owner's own wait ends.
  const revokeTimeoutMs = revokeTimeoutFor(o.timeoutMs);
  const engine = new Engine({ mremapFollow: o.mremap === 'follow', forkDontfork: o.fork === 'dontfork', freeInvalidate: o.free === 'invalidate', coherence: o.coherence, revokeTimeoutMs, trace, limits: engineLimits(o), auditOnExit: o.audit, onCrash: sayCrash });
  const server = new CoordinatorServer({ socketPath: path, engine, maxFrame: o.maxFrame, maxPending: o.maxPending });
  if (!o.coherence) process.stderr.write('pincoh: --no-coherence: attachments are never revoked; stale writes will happen\n');
  const file = resolveCommand(o.argv[0]!);
  if (file && isStaticElf(file)) process.stderr.write(`pincoh: ${o.argv[0]} is statically linked: the shim cannot be preloaded into it, so none of its calls are seen (README, limits)\n`);
  try {
    await server.listen();
    const job = `run-${process.pid}-${Date.now().toString(36)}`;
    // Each rank's end is said the moment it happens, as mpirun does.
    let firstFailure: RankResult | undefined;
    const onExit = (r: RankResult) => {
      const ends = o.abortOnFailure && !firstFailure ? '; ending the job (--abort-on-failure)' : '';
      if ((r.signal || r.code) && !firstFailure) firstFailure = r;
      if (r.error) process.stderr.write(`pincoh: rank ${r.rank} did not start: ${r.error}\n`);
      else if (r.signal) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) killed by ${r.signal}${ends}\n`);
      else if (r.code) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) exited with status ${r.code}${ends}\n`);
    };
    const results = await launch({ argv: o.argv, ranks: o.ranks, shim, socket: path, timeoutMs: o.timeoutMs, job, preload: o.preload, onExit, abortOnFailure: o.abortOnFailure });
    // The ranks are gone; let the coordinator see their sockets close (and a
    // forked grandchild finish) so the summary and trace are complete.
    await server.drain(1000);
    if (!o.quiet) process.stderr.write(engine.stats.summary() + '\n');
    // aborted: the status of the rank that failed first, as mpirun reports it
    const worst = o.abortOnFailure && firstFailure ? worstStatus([firstFailure]) : worstStatus(results);
    if (o.audit) {
      const lines = formatAudit(engine.exitAudits, false);
      process.stderr.write(lines.length ? `pincoh: audit found registrations no longer mapped as registered:\n${lines.join('\n')}\n` : 'pincoh: audit: every registration held at exit was still mapped as registered\n');
      if (lines.length && worst === 0) return 3;
    }
    return worst;
  } finally {
    await server.close();
    trace.close();
    cleanup();
  }
}

async function serve(o: ServeOptions): Promise<number> {
  const trace = new Trace(o.trace);
  const engine = new Engine({ mremapFollow: o.mremap === 'follow', forkDontfork: o.fork === 'dontfork', freeInvalidate: o.free === 'invalidate', coherence: o.coherence, revokeTimeoutMs: o.revokeTimeoutMs, trace, limits: engineLimits(o), onCrash: sayCrash });
  const server = new CoordinatorServer({ socketPath: o.socket, engine, allowUids: o.allowUids, maxFrame: o.maxFrame, maxPending: o.maxPending });
  await server.listen();
  process.stderr.write(
    `pincoh: serving on ${o.socket} (mremap ${o.mremap}); ` +
      (o.untilRanks !== undefined ? `ends once ${o.untilRanks === 1 ? '1 rank has' : `${o.untilRanks} ranks have`} come and gone\n` : 'stop with Ctrl-C\n'),
  );
  // pincoh exec's coordinators end with their job on this node, and take its directory with them
  const dir = o.untilRanks !== undefined ? dirname(o.socket) : undefined;
  const watch = dir ? jobEnded(dir, o.untilRanks!, o.idleExitMs ?? 30_000, () => engine.stats.live) : undefined;
  let lockFd: number | undefined;
  let settled = false;
  const bySignal = await new Promise<boolean>((resolve) => {
    const end = (signal: boolean) => void (settled || ((settled = true), resolve(signal)));
    // a closed terminal (SIGHUP) ends it as cleanly as Ctrl-C or kill
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => end(true));
    void watch?.ended.then((fd) => {
      if (settled) return void (fd !== undefined && closeSync(fd)); // a signal came first
      lockFd = fd;
      end(false);
    });
  });
  watch?.stop();
  if (dir && bySignal) {
    // the lock first, so no rank takes this coordinator for alive while it closes
    try {
      const fd = openSync(join(dir, 'lock'), 'a');
      if (await lockWithin(fd, 5000)) lockFd = fd;
      else {
        closeSync(fd);
        process.stderr.write(`pincoh: ${dir} stays: a rank has held its lock for 5 s\n`);
      }
    } catch {
      /* the directory is gone already */
    }
  }
  await server.close(); // reads the last events of processes still connected
  trace.close();
  process.stderr.write(engine.stats.summary() + '\n');
  if (dir && lockFd !== undefined) {
    clearJobDir(dir);
    closeSync(lockFd);
  }
  return 0;
}

async function auditCommand(o: AuditOptions): Promise<number> {
  const entries = await new Promise<AuditEntry[]>((resolve, reject) => {
    const s = createConnection(o.socket);
    const reader = new FrameReader();
    const p = Buffer.alloc(8);
    p.writeInt32LE(o.pid, 0);
    s.on('connect', () => s.write(encodeFrame(T.AUDIT, 0, 1n, p)));
    s.on('data', (d) =>
      reader.push(d, {
        frame(type, _f, _s, v, off, len) {
          if (type === T.REPORT) resolve(JSON.parse(Buffer.from(v.buffer, v.byteOffset + off, len).toString()));
          else reject(new Error(`the coordinator answered with frame type ${type}`));
          s.destroy();
        },
      }),
    );
    s.on('error', (e) => reject(new Error(`cannot reach a coordinator at ${o.socket}: ${e.message}`)));
  });
  if (o.pid && entries.length === 0) {
    process.stderr.write(`pincoh: no process ${o.pid} is connected to ${o.socket}\n`);
    return 2;
  }
  const lines = formatAudit(entries, true);
  process.stdout.write((lines.length ? lines.join('\n') : 'no processes connected') + '\n');
  return entries.some((e) => e.findings.length) ? 1 : 0;
}

export async function main(args: string[]): Promise<number> {
  try {
    const o = parseCli(args);
    if (o.command === 'help') {
      process.stdout.write((o.topic ? HELP[o.topic] : USAGE) + '\n');
      return 0;
    }
    if (o.command === 'version') {
      process.stdout.write(`pincoh ${version()}\n`);
      return 0;
    }
    if (o.command === 'report') return await reportCommand(o);
    if (o.command === 'status') return await statusCommand(o);
    if (o.command === 'audit') return await auditCommand(o);
    if (o.command === 'exec') return await execCommand(o);
    return o.command === 'run' ? await run(o) : await serve(o);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('cannot reach a coordinator')) {
      process.stderr.write(`pincoh: ${err.message}\n`);
      return 2;
    }
    if (err instanceof PincohError) {
      process.stderr.write(`pincoh: ${err.message} [${err.code}]\n`);
      return err.status;
    }
    throw err;
  }
}
