// Starts the ranks of a job under the shim and waits for all of them.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';

export interface LaunchOptions {
  argv: string[];
  ranks: number;
  shim: string;
  socket: string;
  timeoutMs?: number;
  job?: string;
  preload?: string[];
  /** told as each rank ends, the moment it does */
  onExit?: (r: RankResult) => void;
  /** a rank killed by a signal or exiting non-zero ends the others (SIGTERM, then SIGKILL after 2 s), as mpirun does */
  abortOnFailure?: boolean;
}

export interface RankResult {
  rank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** it could not be started: why, as a shell says it (the status is a shell's too: 127 not found, 126 otherwise) */
  error?: string;
}

/**
 * Why CMD could not run, as a shell says it, with a shell's status: 127 "not
 * found", 126 otherwise. execvp's EACCES for a bare name may only mean a
 * directory on PATH it may not search; a shell says "not found" then, unless
 * a file of that name is there on PATH and cannot run (code: ENOENT, EACCES...).
 */
export function cannotRun(file: string, code: string, path = process.env.PATH ?? ''): { why: string; status: 126 | 127 } {
  const onPath = () => path.split(':').some((d) => existsSync(join(d || '.', file)));
  if (code === 'ENOENT' || (code === 'EACCES' && !file.includes('/') && !onPath())) return { why: 'not found', status: 127 };
  return { why: code === 'EACCES' ? 'permission denied' : code, status: 126 };
}

/** The shim first, so it sees the calls before anything else preloaded; only a
 * sanitizer runtime (libasan, libtsan...) goes before it, as those must. */
export function preloadWith(shim: string, existing: string | undefined): string {
  const entries = (existing ?? '').split(/[:\s]+/).filter(Boolean);
  const sanitizers = entries.filter((e) => /lib(a|t|ub|hwa|l)san[.-]/.test(e));
  return [...sanitizers, shim, ...entries.filter((e) => !sanitizers.includes(e))].join(':');
}

/** A process's place in its job, as pincoh's variables say it (each absent: not set). */
export interface RankPlace {
  /** PINCOH_RANK, PINCOH_SIZE: its rank and the ranks of its job here (under a launcher: on this node) */
  rank?: number;
  size?: number;
  job?: string;
  /** PINCOH_GLOBAL_RANK, PINCOH_GLOBAL_SIZE: across the launcher's whole job */
  globalRank?: number;
  globalSize?: number;
  /** PINCOH_TIMEOUT_MS: how long its shim waits for the coordinator */
  timeoutMs?: number;
  /** PINCOH_RANK_PID: the pid pincoh exec's rank runs as (CMD in its place); at exit it says farewell */
  rankPid?: number;
  /** libraries preloaded after the shim, before what was preloaded already (`pincoh run --preload`) */
  preload?: string[];
}

/**
 * The variables a process needs to run under a coordinator: the shim
 * preloaded (preloadWith), the socket, its place in the job. The one place
 * they are made: Coordinator.env, pincoh run's ranks (rankEnv) and pincoh exec.
 * `preloaded`: the LD_PRELOAD it would have had (default: ours).
 */
export function pincohEnv(shim: string, socket: string, place: RankPlace = {}, preloaded = process.env.LD_PRELOAD): Record<string, string> {
  const env: Record<string, string> = { LD_PRELOAD: preloadWith(shim, [...(place.preload ?? []), preloaded ?? ''].join(':')), PINCOH_SOCKET: socket };
  if (place.rank !== undefined) env.PINCOH_RANK = String(place.rank);
  if (place.size !== undefined) env.PINCOH_SIZE = String(place.size);
  if (place.job !== undefined) env.PINCOH_JOB = place.job;
  if (place.globalRank !== undefined) env.PINCOH_GLOBAL_RANK = String(place.globalRank);
  if (place.globalSize !== undefined) env.PINCOH_GLOBAL_SIZE = String(place.globalSize);
  if (place.timeoutMs !== undefined) env.PINCOH_TIMEOUT_MS = String(place.timeoutMs);
  if (place.rankPid !== undefined) env.PINCOH_RANK_PID = String(place.rankPid);
  return env;
}

export function rankEnv(o: LaunchOptions, rank: number): NodeJS.ProcessEnv {
  return { ...process.env, ...pincohEnv(o.shim, o.socket, { rank, size: o.ranks, job: o.job, timeoutMs: o.timeoutMs, preload: o.preload }) };
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Signals a rank's process group: the rank and whatever it started (a group outlives its leader while a member is left). */
function signalGroup(c: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (c.pid !== undefined) process.kill(-c.pid, sig);
  } catch {
    /* the group is empty: all gone */
  }
}

/** Runs every rank with inherited stdio, each in a process group of its own (as
 * mpirun's daemons do), so SIGINT, SIGTERM and SIGHUP to us, and an abort,
 * reach what the ranks started too. */
export async function launch(o: LaunchOptions): Promise<RankResult[]> {
  const children: ChildProcess[] = [];
  const forward = (sig: NodeJS.Signals) => children.forEach((c) => signalGroup(c, sig));
  let aborting = false;
  const abort = () => {
    if (aborting) return;
    aborting = true;
    forward('SIGTERM');
    setTimeout(() => forward('SIGKILL'), 2000).unref();
  };
  for (const sig of FORWARDED) process.on(sig, forward);
  try {
    const waits = Array.from({ length: o.ranks }, (_, rank) => {
      // detached: a session and process group of its own (the terminal's Ctrl-C reaches the ranks through us)
      const child = spawn(o.argv[0]!, o.argv.slice(1), { stdio: 'inherit', env: rankEnv(o, rank), detached: true });
      children.push(child);
      return new Promise<RankResult>((resolve) => {
        const done = (r: RankResult) => {
          o.onExit?.(r);
          if (o.abortOnFailure && !aborting && (r.signal || r.code)) abort();
          resolve(r);
        };
        child.once('error', (err: NodeJS.ErrnoException) => {
          const { why, status } = cannotRun(o.argv[0]!, err.code ?? err.message, rankEnv(o, rank).PATH);
          done({ rank, pid: child.pid, code: status, signal: null, error: why });
        });
        child.once('exit', (code, signal) => done({ rank, pid: child.pid, code, signal }));
      });
    });
    return await Promise.all(waits);
  } finally {
    for (const sig of FORWARDED) process.off(sig, forward);
  }
}

/** The job's status: the worst rank's, a signal counting as 128 + its number. */
export function worstStatus(results: RankResult[]): number {
  let worst = 0;
  for (const r of results) {
    const s = r.signal ? 128 + (constants.signals[r.signal] ?? 0) : (r.code ?? 1);
    if (s > worst) worst = s;
  }
  return worst;
}
