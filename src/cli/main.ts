// pincoh's command line: run, serve, exec, status, report, audit.

import { closeSync, openSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { AuditEntry } from '../coherence/engine.js';
import { Coordinator, type Crash } from '../coordinator.js';
import { T } from '../protocol/constants.js';
import type { Farewell } from '../protocol/messages.js';
import { DEFAULTS } from '../defaults.js';
import { PincohError } from '../errors.js';
import { isStaticElf, resolveCommand } from '../job/elf.js';
import { launch, worstStatus, type RankResult } from '../job/launch.js';
import { deathSignal } from '../job/ended.js';
import { clearJobDir, endedRanks, jobEnded, leftRanks, recordLog, removeDeadJobDirs } from '../job/jobdir.js';
import { lockWithin } from '../job/native.js';
import { shimPath, version } from '../paths.js';
import { ask } from '../transport/control.js';
import { execCommand } from './exec.js';
import { reportCommand } from './report.js';
import { statusCommand } from './status.js';
import { HELP, parseCli, revokeTimeoutFor, USAGE, type AuditOptions, type RunOptions, type ServeOptions } from './options.js';
import { RunningLog } from './running-log.js';

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
function sayCrash(c: Crash, say: (text: string) => void = (t) => process.stderr.write(t)): void {
  say(
    `pincoh: pid ${c.pid} (${c.command}, rank ${c.rank}) of job ${c.job} died without exiting${c.signal ? ` (${c.signal})` : ' (killed or crashed)'}; ` +
      `its job's barriers and attaches now fail with EOWNERDEAD\n`,
  );
}

/** The coordinator's options as run, serve and exec take them. */
const coordinatorOptions = (o: RunOptions | ServeOptions) => ({
  mremap: o.mremap, fork: o.fork, free: o.free, coherence: o.coherence, trace: o.trace, metrics: o.metrics,
  maxFrame: o.maxFrame, maxRegistrations: o.maxRegistrations, maxAttachments: o.maxAttachments, maxNames: o.maxNames, maxPending: o.maxPending,
});

async function run(o: RunOptions): Promise<number> {
  const shim = shimPath();
  const file = resolveCommand(o.argv[0]!);
  // An attacher that does not answer a revoke is cut off well before the owner's own wait ends.
  // A rank reaped before its connection's end is read: /proc no longer has its signal, we do.
  const rankSignals = new Map<number, string>();
  const c = await Coordinator.start({ ...coordinatorOptions(o), revokeTimeoutMs: revokeTimeoutFor(o.timeoutMs), auditOnExit: o.audit, failuresStick: true, signalOf: (pid) => rankSignals.get(pid) });
  // Ranks that pincoh itself ends (a signal passed on to them, or --abort-on-failure) die without
  // exiting by design: their ends are said as ranks' ends, not as crashes. Which comes first, the
  // coordinator hearing a socket close or launch reaping the rank, is a race: decide on neither.
  let aborting = false; // --abort-on-failure: every end but the first failure's is ours
  let passedOn = false; // a signal of ours was passed on: every end from here is ours
  let firstFailure: RankResult | undefined;
  const signalled = () => void (passedOn = true);
  const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  c.on('crash', (x) => void (passedOn || (aborting && x.pid !== firstFailure?.pid) ? undefined : sayCrash(x)));
  try {
    if (!o.quiet) process.stderr.write(`pincoh: coordinator on ${c.socket} (watch it: pincoh status --socket ${c.socket})${c.metricsUrl ? `; metrics on ${c.metricsUrl}` : ''}\n`);
    if (!o.coherence) process.stderr.write('pincoh: --no-coherence: attachments are never revoked; stale writes will happen\n');
    // a launcher as the rank: its ranks would all be pincoh rank 0 of 1, and a crash would be the launcher's
    if (/^(mpirun|mpiexec(\.\w+)?|orterun|prterun|srun)$/.test(basename(o.argv[0]!)))
      process.stderr.write(
        `pincoh: ${basename(o.argv[0]!)} runs as one rank of pincoh run here: the ranks it starts all get PINCOH_RANK=0 and PINCOH_SIZE=${o.ranks}, and a rank's crash is reported as ${basename(o.argv[0]!)}'s; ` +
          `run each rank under pincoh instead: ${basename(o.argv[0]!)} ... pincoh-exec -- CMD (docs/running.md, On a cluster)\n`,
      );
    if (file && isStaticElf(file)) process.stderr.write(`pincoh: ${o.argv[0]} is statically linked: the shim cannot be preloaded into it, so none of its calls are seen (docs/limits.md, statically linked programs)\n`);
    const job = `run-${process.pid}-${Date.now().toString(36)}`;
    // Each rank's end is said the moment it happens, as mpirun does.
    const onExit = (r: RankResult) => {
      if (r.pid !== undefined && r.signal) rankSignals.set(r.pid, r.signal);
      const ends = o.abortOnFailure && !firstFailure ? '; ending the job (--abort-on-failure)' : '';
      if ((r.signal || r.code) && !firstFailure && !passedOn) {
        firstFailure = r;
        if (o.abortOnFailure) aborting = true;
      }
      if (r.error) process.stderr.write(`pincoh: rank ${r.rank} cannot run ${o.argv[0]}: ${r.error} [PINCOH_ERR_EXEC]\n`);
      else if (r.signal) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) killed by ${r.signal}${ends}\n`);
      else if (r.code) process.stderr.write(`pincoh: rank ${r.rank} (pid ${r.pid}) exited with status ${r.code}${ends}\n`);
    };
    for (const sig of forwarded) process.on(sig, signalled); // before launch's own, which passes them on
    const results = await launch({ argv: o.argv, ranks: o.ranks, shim, socket: c.socket, timeoutMs: o.timeoutMs, job, preload: o.preload, onExit, abortOnFailure: o.abortOnFailure });
    // The ranks are gone; let the coordinator see their sockets close (and a
    // forked grandchild finish) so the summary and trace are complete.
    await c.drain(1000);
    if (!o.quiet) process.stderr.write(c.engine.stats.summary(o.ranks) + '\n');
    // aborted: the status of the rank that failed first, as mpirun reports it
    const worst = o.abortOnFailure && firstFailure ? worstStatus([firstFailure]) : worstStatus(results);
    if (o.audit) {
      const lines = formatAudit(c.engine.exitAudits, false);
      process.stderr.write(lines.length ? `pincoh: audit found registrations no longer mapped as registered:\n${lines.join('\n')}\n` : 'pincoh: audit: every registration held at exit was still mapped as registered\n');
      if (lines.length && worst === 0) return 3;
    }
    return worst;
  } finally {
    for (const sig of forwarded) process.off(sig, signalled);
    await c.close();
  }
}

async function serve(o: ServeOptions): Promise<number> {
  // --log (exec's node log): messages there, and the summary so far as its last line
  const log = o.log !== undefined ? new RunningLog(o.log) : undefined;
  const say = (text: string) => (log ? log.say(text) : process.stderr.write(text));
  // the summary so far: as each process arrives and goes, and its counts every 250 ms
  let soFar = '';
  let engineNow: Coordinator['engine'] | undefined; // once started (a process may connect before start returns)
  // exec's ranks that ended without ever connecting: said once each (the log has their pid from the rank file),
  // unless they said farewell (the summary counts those)
  const seen = new Set<number>();
  const told = new Set<number>();
  const update = () => {
    if (!engineNow) return;
    for (const p of engineNow.processes.values()) seen.add(p.pid);
    // (a rank marked in `left` exited cleanly: its farewell, maybe not read yet, says what it did)
    const left = log && dir ? leftRanks(dir) : new Set<number>();
    if (log && dir)
      for (const r of endedRanks(dir))
        if (!seen.has(r.pid) && !told.has(r.pid) && !left.has(r.local)) {
          told.add(r.pid);
          const sig = deathSignal(r.pid);
          say(`pincoh: rank ${r.local} (pid ${r.pid}) ended${sig ? ` by ${sig}` : ''} without connecting: it made no pincoh call, or died before its first (the launcher has its exit status)\n`);
        }
    const s = engineNow.stats.summary();
    if (log && s !== soFar) log.soFar((soFar = s));
  };
  // exec's ranks say farewell at exit; the job's last one to leave waits for the answer, given
  // once this log is whole, so that the launcher, seeing it end, finds the log complete
  const dir = o.untilRanks !== undefined ? dirname(o.socket) : undefined;
  const leaving = new Set<number>();
  let held: (() => void)[] = [];
  const release = () => {
    for (const go of held) go();
    held = [];
  };
  let watch: ReturnType<typeof jobEnded> | undefined;
  const farewell = (pid: number, f: Farewell): Promise<void> | void => {
    leaving.add(pid);
    seen.add(pid);
    update();
    if (f.last) {
      watch?.check();
      return new Promise<void>((go) => held.push(go));
    }
    if (held.length) watch?.check(); // the last may be waiting for this one
  };
  // started by the job's first rank on the node (pincoh exec, pincoh-exec), which holds the job's
  // lock until this listens: what killed coordinators left goes (their logs told), and this log is
  // recorded for the next job to tell if this one is killed
  if (dir) {
    await removeDeadJobDirs(dir);
    if (o.log !== undefined) recordLog(dir, resolve(o.log));
    rmSync(join(dir, 'left'), { force: true }); // a killed coordinator's job of the same name counted its own ranks there
  }
  // exec's node coordinator (--until-ranks) serves one job and ends with it: its failures stick
  const c = await Coordinator.start({
    ...coordinatorOptions(o), socket: o.socket, revokeTimeoutMs: o.revokeTimeoutMs, allowUids: o.allowUids, failuresStick: o.untilRanks !== undefined,
    ...(log && { log: (line: string) => say(`pincoh: ${line}\n`), onMembers: () => update() }),
    ...(dir && { onFarewell: farewell }),
  });
  c.on('crash', (x) => sayCrash(x, say));
  const engine = c.engine;
  engineNow = engine;
  update();
  const keep = log && setInterval(update, 250);
  keep && keep.unref();
  // pincoh exec's coordinators end with their job on this node, and take its directory with them
  const live = () => [...engine.processes.values()].filter((p) => !leaving.has(p.pid)).length;
  watch = dir ? jobEnded(dir, o.untilRanks!, o.idleExitMs ?? DEFAULTS.idleExitMs, live, leaving) : undefined;
  let lockFd: number | undefined;
  let settled = false;
  const ended = new Promise<boolean>((resolve) => {
    const end = (signal: boolean) => void (settled || ((settled = true), resolve(signal)));
    // a closed terminal (SIGHUP) ends it as cleanly as Ctrl-C or kill: listened for
    // before it says it serves, so a signal sent on that line never finds the default action
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => end(true));
    void watch?.ended.then((fd) => {
      if (settled) return void (fd !== undefined && closeSync(fd)); // a signal came first
      lockFd = fd;
      end(false);
    });
  });
  say(
    `pincoh: serving on ${o.socket} (mremap ${o.mremap})${c.metricsUrl ? `; metrics on ${c.metricsUrl}` : ''}; ` +
      (o.untilRanks !== undefined ? `ends once ${o.untilRanks === 1 ? '1 rank has' : `${o.untilRanks} ranks have`} come and gone\n` : 'stop with Ctrl-C\n'),
  );
  const bySignal = await ended;
  watch?.stop();
  if (dir && bySignal) {
    // the lock first, so no rank takes this coordinator for alive while it closes
    try {
      const fd = openSync(join(dir, 'lock'), 'a');
      if (await lockWithin(fd, 5000)) lockFd = fd;
      else {
        closeSync(fd);
        say(`pincoh: ${dir} stays: a rank has held its lock for 5 s\n`);
      }
    } catch {
      /* the directory is gone already */
    }
  }
  // a farewell written just before its rank ended may not be read yet: its rank is counted by it
  const unread = () => dir !== undefined && endedRanks(dir).some((r) => leftRanks(dir).has(r.local) && !leaving.has(r.pid));
  for (const until = Date.now() + 1000; unread() && Date.now() < until; ) await new Promise((r) => setTimeout(r, 5));
  await c.close(); // reads the last events of processes still connected
  if (keep) clearInterval(keep);
  update(); // the ranks that ended since the last look
  if (log) log.close(engine.stats.summary());
  else process.stderr.write(engine.stats.summary() + '\n');
  if (dir && lockFd !== undefined) {
    clearJobDir(dir);
    closeSync(lockFd);
  }
  release(); // the log is whole, the directory gone: the last rank may end
  return 0;
}

async function auditCommand(o: AuditOptions): Promise<number> {
  const entries = (await ask(o.socket, T.AUDIT, Buffer.from(new Int32Array([o.pid, 0]).buffer))) as AuditEntry[];
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
    if (err instanceof PincohError) {
      process.stderr.write(`pincoh: ${err.message} [${err.code}]\n`);
      return err.status;
    }
    throw err;
  }
}
