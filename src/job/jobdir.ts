// A job's directory on a node, BASE/pincoh-UID-JOB: how the ranks that
// pincoh exec starts there and the node's coordinator for the job find each
// other, without a process of ours staying between launcher and rank. BASE is
// $XDG_RUNTIME_DIR when it is set and private to us (the system makes it for
// the user's session: nobody else can create anything there), else TMPDIR. In
// a shared TMPDIR another user may have made the name first: then the next of
// pincoh-UID-JOB.1, .2, ... that is ours or free, which every rank of the job
// on the node finds the same way (never a wait on someone else's directory).
//
//   lock     flock'd by a rank while it finds or starts the coordinator, and
//            by the coordinator while it decides to end and removes the
//            directory: a rank sees the coordinator whole, or none at all
//   c.sock   the coordinator's socket
//   rank-L   local rank L: its pid (CMD keeps it: exec replaces the process)
//            and start time (so a pid reused by another process is not taken
//            for it). The coordinator ends once every rank has been announced
//            and has gone, even one that never spoke to it.
//   left     a byte per local rank, set by the rank's shim at exit (under a
//            flock): the rank that sets the last waits for the job's summary
//   log      the path of the job's log on this node, for the next job to
//            tell it if it finds this directory left by a killed coordinator

import { closeSync, constants as fsc, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PincohError } from '../errors.js';
import { isLive, isPrivate, jobsBases } from '../transport/socket-path.js';
import { runningSince } from './ended.js';
import { closeOnExec, lockWithin, tryLock } from './native.js';

const uid = () => process.getuid?.() ?? 0;

const TAKEN_TRIES = 16;
/** The names job's directory may have in base: the first, then those past names others took.
 * '+' is never in a job's name (jobName), so no job's first name is another's fallback. */
const names = (base: string, job: string): string[] =>
  Array.from({ length: TAKEN_TRIES }, (_, i) => join(base, `pincoh-${uid()}-${job}${i === 0 ? '' : `+${i}`}`));

/** The job's directory on this node, made if need be: ours alone (0700, our uid). One that
 * exists already, in either base, is the job's (a rank that came earlier chose it while
 * XDG_RUNTIME_DIR was there, or before it appeared): every rank of the job finds the same one. */
export function jobDir(job: string): string {
  const bases = jobsBases();
  for (const base of bases)
    for (const dir of names(base, job)) {
      try {
        if (isPrivate(dir)) return dir;
      } catch {
        break; // no such name: those past it were never needed here
      }
    }
  const first = names(bases[0]!, job);
  for (const dir of first) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (isPrivate(dir)) return dir;
    // another user's, or not a private directory: taken, the next name
  }
  throw new PincohError('PINCOH_ERR_COORDINATOR', `${first[0]} and the next ${TAKEN_TRIES - 1} names after it are taken by directories not private to us; remove them, or set TMPDIR or XDG_RUNTIME_DIR to a directory of your own`);
}

/**
 * The lock pincoh-exec took and handed over (PINCOH_EXEC_LOCK_FD: it found no
 * coordinator, so this rank starts it, and the other ranks wait on the lock
 * meanwhile): used if it is the job's lock file, locked; the variable goes,
 * so CMD never sees it.
 */
function handedLock(job: string): { fd: number; dir: string } | undefined {
  const v = process.env.PINCOH_EXEC_LOCK_FD;
  delete process.env.PINCOH_EXEC_LOCK_FD;
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  const fd = Number(v);
  try {
    const dir = jobDir(job);
    const st = fstatSync(fd);
    // flock again on the same open file: succeeds if it holds the lock (it does: pincoh-exec took it)
    if (statSync(join(dir, 'lock')).ino === st.ino && st.dev === statSync(join(dir, 'lock')).dev && tryLock(fd)) {
      closeOnExec(fd); // handed over inheritable: neither the coordinator nor CMD may hold it
      return { fd, dir };
    }
    if (st.isFile()) closeSync(fd); // a lock file no longer the job's: held, it would block our own take below
  } catch {
    /* not a descriptor of ours, or not the job's lock: take it as usual */
  }
  return undefined;
}

/** The job's lock, held (close fd to let go): re-taken if the coordinator removed the directory meanwhile. */
export async function holdLock(job: string): Promise<{ fd: number; dir: string }> {
  const handed = handedLock(job);
  if (handed) return handed;
  for (let tries = 0; tries < 100; tries++) {
    let dir: string;
    let fd: number;
    const path = () => join(dir, 'lock');
    try {
      dir = jobDir(job);
      fd = openSync(path(), fsc.O_RDWR | fsc.O_CREAT, 0o600 /* Node opens close-on-exec */);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed between mkdir and open: again
      throw err;
    }
    if (!(await lockWithin(fd, 30_000))) {
      closeSync(fd);
      throw new PincohError('PINCOH_ERR_COORDINATOR', `waited 30 s for ${path()}: another rank holds it and does not let go`);
    }
    if (existsSync(path()) && statSync(path()).ino === fstatSync(fd).ino) return { fd, dir };
    closeSync(fd); // locked a file the coordinator had just removed: again
  }
  throw new PincohError('PINCOH_ERR_COORDINATOR', `the lock of job ${job} keeps going away`);
}

/**
 * Removes the job directories of ours on this node that nothing uses any more:
 * no rank holds the lock, no coordinator listens, no announced rank runs. A
 * coordinator killed with its job leaves one (Slurm's proctrack/cgroup kills
 * every process of a step the moment its last task ends). That job's own log
 * (its path in the directory's `log`) is told, not the caller's. Called by the
 * rank that starts a coordinator, holding its own job's lock (never waited for
 * here).
 */
export async function removeDeadJobDirs(except: string): Promise<void> {
  const prefix = `pincoh-${uid()}-`;
  for (const base of jobsBases())
  for (const name of readdirSync(base).filter((n) => n.startsWith(prefix))) {
    const dir = join(base, name);
    if (dir === except) continue;
    let fd: number;
    try {
      if (!isPrivate(dir)) continue; // not ours (a squatter's): never touched
      fd = openSync(join(dir, 'lock'), fsc.O_RDWR); // no lock file: being made right now
    } catch {
      continue;
    }
    try {
      if (!tryLock(fd) || (await isLive(join(dir, 'c.sock'))) || announcedRanks(dir, new Set()).running > 0) continue;
      const log = readIfThere(join(dir, 'log'));
      if (clearJobDir(dir) && log) tellLog(log, `pincoh: at ${new Date().toISOString().slice(11, 19)} UTC the next job on this node removed ${dir}, which this job's coordinator left: it was killed before its job ended\n`);
    } finally {
      closeSync(fd);
    }
  }
}

/** The job's log, for the next job that may find its directory dead (called holding the lock). */
export function recordLog(dir: string, log: string): void {
  writeFileSync(join(dir, 'log'), log, { mode: 0o600 });
}

const readIfThere = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** Appends to a dead job's log, if it is still there to append to (never made here). */
function tellLog(log: string, line: string): void {
  try {
    const fd = openSync(log, fsc.O_WRONLY | fsc.O_APPEND);
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* moved or gone: nobody to tell */
  }
}

/** This process is local rank `local` of the job whose directory is dir (called holding the lock). */
export function announceRank(dir: string, local: number): void {
  writeFileSync(join(dir, `rank-${local}`), `${process.pid} ${runningSince(process.pid)}\n`, { mode: 0o600 });
}

/** The ranks announced in dir that have ended: local rank and pid (a truncated or unreadable file is none). */
export function endedRanks(dir: string): { local: number; pid: number }[] {
  const ended: { local: number; pid: number }[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return ended;
  }
  for (const f of names.filter((name) => /^rank-\d+$/.test(name))) {
    try {
      const [pid, start] = readFileSync(join(dir, f), 'utf8').trim().split(' ');
      if (start && Number(pid) > 0 && runningSince(Number(pid)) !== start) ended.push({ local: Number(f.slice(5)), pid: Number(pid) });
    } catch {
      /* unreadable: not said */
    }
  }
  return ended;
}

/** The local ranks that have marked themselves gone in dir's `left` (their shim, at a clean exit, before its farewell). */
export function leftRanks(dir: string): Set<number> {
  const left = new Set<number>();
  try {
    readFileSync(join(dir, 'left')).forEach((b, i) => b === 0x31 && left.add(i)); // '1'
  } catch {
    /* none yet */
  }
  return left;
}

/** The ranks announced in dir: how many, and how many of them still run (a pid in leaving: as good as gone). */
function announcedRanks(dir: string, leaving: ReadonlySet<number>): { announced: number; running: number } {
  let announced = 0;
  let running = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { announced, running }; // removed under us: nobody is announced there any more
  }
  for (const f of names.filter((name) => /^rank-\d+$/.test(name))) {
    announced++;
    try {
      const [pid, start] = readFileSync(join(dir, f), 'utf8').trim().split(' ');
      if (start && !leaving.has(Number(pid)) && runningSince(Number(pid)) === start) running++; // a truncated file is no rank
    } catch {
      /* unreadable: taken as gone */
    }
  }
  return { announced, running };
}

/**
 * Says when the job has ended on this node, with its lock held (so no rank
 * finds the coordinator from then on): once `ranks` ranks have been announced
 * and every one, and every process connected (`live()`), has gone; or when
 * nothing has run for idleMs (ranks that never came: a launcher that died).
 * A rank whose pid is in `leaving` (it said farewell, and waits for the
 * answer) counts as gone. `ended` resolves with the lock's fd (the caller
 * clears the directory, then closes it), or undefined if the directory itself
 * is gone; `check` decides now rather than at the next tick; `stop` gives up
 * watching (a signal ends the coordinator instead).
 */
export function jobEnded(
  dir: string,
  ranks: number,
  idleMs: number,
  live: () => number,
  leaving: ReadonlySet<number> = new Set(),
): { ended: Promise<number | undefined>; check: () => void; stop: () => void } {
  let tick: NodeJS.Timeout | undefined;
  let idleSince = Date.now();
  const over = () => {
    const r = announcedRanks(dir, leaving);
    if (live() > 0 || r.running > 0) {
      idleSince = Date.now();
      return false;
    }
    return r.announced >= ranks || Date.now() - idleSince >= idleMs;
  };
  let decide = () => {};
  const ended = new Promise<number | undefined>((resolve) => {
    let deciding = false;
    decide = async () => {
      if (deciding || !over()) return;
      deciding = true;
      let fd: number;
      try {
        fd = openSync(join(dir, 'lock'), fsc.O_RDWR | fsc.O_CREAT, 0o600);
      } catch {
        clearInterval(tick); // the directory is gone (removed by hand): the job has ended, nothing to remove
        return resolve(undefined);
      }
      if ((await lockWithin(fd, 5000)) && tick && over()) {
        clearInterval(tick);
        return resolve(fd);
      }
      closeSync(fd); // a rank came meanwhile, or we were stopped
      deciding = false;
    };
    tick = setInterval(() => void decide(), 50);
    tick.unref();
  });
  return {
    ended,
    check: () => void decide(),
    stop: () => {
      clearInterval(tick);
      tick = undefined;
    },
  };
}

/**
 * Removes a job's directory: only what pincoh puts there (the socket, the lock,
 * the rank files), then the directory itself if that left it empty. Anything
 * else found there stays, and so does the directory. True if it is gone.
 */
export function clearJobDir(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return true; // gone already
  }
  for (const name of names.filter((n) => ['c.sock', 'lock', 'left', 'log'].includes(n) || /^rank-\d+$/.test(n))) {
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* gone meanwhile */
    }
  }
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false; // not empty: not all ours
  }
}
