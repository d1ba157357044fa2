// Starts the ranks of a job under the shim and waits for all of them.

import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

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
  error?: string;
}

/** The shim first, so it sees the calls before anything else preloaded; only a
 * sanitizer runtime (libasan, libtsan...) goes before it, as those must. */
export function preloadWith(shim: string, existing: string | undefined): string {
  const entries = (existing ?? '').split(/[:\s]+/).filter(Boolean);
  const sanitizers = entries.filter((e) => /lib(a|t|ub|hwa|l)san[.-]/.test(e));
  return [...sanitizers, shim, ...entries.filter((e) => !sanitizers.includes(e))].join(':');
}

export function rankEnv(o: LaunchOptions, rank: number): NodeJS.ProcessEnv {
  const preload = preloadWith(o.shim, [...(o.preload ?? []), process.env.LD_PRELOAD ?? ''].join(':'));
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: preload, PINCOH_SOCKET: o.socket, PINCOH_RANK: String(rank), PINCOH_SIZE: String(o.ranks) };
  if (o.timeoutMs !== undefined) env.PINCOH_TIMEOUT_MS = String(o.timeoutMs);
  if (o.job !== undefined) env.PINCOH_JOB = o.job;
  return env;
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
        child.once('error', (err) => done({ rank, pid: child.pid, code: 127, signal: null, error: err.message }));
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
