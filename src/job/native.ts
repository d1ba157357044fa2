// The libc calls Node does not offer, through koffi: flock (one starter per
// node per job) and exec (the rank replaces `pincoh exec`, so no process of
// ours stays between the launcher and the rank).

import { constants } from 'node:os';
import { F_SETFD, FD_CLOEXEC, lastErrno, LOCK_EX, LOCK_NB, sys } from '../libc.js';

/** Takes an exclusive flock on fd if nobody holds one. */
/** fd closed at exec again (a descriptor handed over without it: the job's lock must reach no child). */
export function closeOnExec(fd: number): void {
  sys().fcntl(fd, F_SETFD, FD_CLOEXEC);
}

export function tryLock(fd: number): boolean {
  return sys().flock(fd, LOCK_EX | LOCK_NB) === 0;
}

/** Takes an exclusive flock on fd without blocking the event loop; false after timeoutMs. */
export async function lockWithin(fd: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!tryLock(fd)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Replaces this process with file (PATH searched), undoing what Node did to
 * what the launcher gave: Node marks every descriptor it inherited
 * close-on-exec and ignores SIGPIPE and SIGXFSZ. The standard descriptors and
 * PMI_FD (MPICH's and Slurm's PMI) are passed on; the two signals go back to
 * their default. Returns the errno only if exec failed (and puts them back).
 */
export function execReplacing(file: string, argv: string[], env: NodeJS.ProcessEnv): number {
  const f = sys();
  const pmi = env.PMI_FD !== undefined && /^\d+$/.test(env.PMI_FD) ? [Number(env.PMI_FD)] : [];
  for (const fd of [0, 1, 2, ...pmi]) f.fcntl(fd, F_SETFD, 0);
  const { SIGPIPE, SIGXFSZ } = constants.signals;
  const before = [SIGPIPE, SIGXFSZ].map((sig) => [sig, f.signal(sig, null /* SIG_DFL */)] as const);
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  f.execvpe(file, [...argv, null], [...envp, null]);
  const errno = lastErrno();
  for (const [sig, handler] of before) f.signal(sig, handler);
  return errno;
}
