// The libc calls Node does not offer, through koffi: flock (one starter per
// node per job) and exec (the rank replaces `pincoh exec`, so no process of
// ours stays between the launcher and the rank).

import koffi from 'koffi';

const LOCK_EX = 2;
const LOCK_NB = 4;
const F_SETFD = 2;

let fns: { flock: (fd: number, op: number) => number; execvpe: (file: string, argv: (string | null)[], envp: (string | null)[]) => number; fcntl: (fd: number, cmd: number, arg: number) => number; errno: () => number } | undefined;
function libc(): NonNullable<typeof fns> {
  if (!fns) {
    const lib = koffi.load('libc.so.6');
    fns = {
      flock: lib.func('int flock(int fd, int op)'),
      execvpe: lib.func('int execvpe(const char *file, const char **argv, const char **envp)'),
      fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
      errno: () => koffi.errno(),
    };
  }
  return fns;
}

/** Takes an exclusive flock on fd if nobody holds one. */
export function tryLock(fd: number): boolean {
  return libc().flock(fd, LOCK_EX | LOCK_NB) === 0;
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

/** Replaces this process with file (PATH searched). Returns the errno only if that failed. */
export function execReplacing(file: string, argv: string[], env: NodeJS.ProcessEnv): number {
  const f = libc();
  // Node marks its standard descriptors close-on-exec: the program needs them
  for (const fd of [0, 1, 2]) f.fcntl(fd, F_SETFD, 0);
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  f.execvpe(file, [...argv, null], [...envp, null]);
  return f.errno();
}
