// libc through koffi: the one place it is loaded (the binding, the job
// tables, the shared areas, peer credentials, the registration check, flock
// and exec all take their calls from here). For what Node itself cannot do:
// map shared memory (the processes' areas, the job tables), seal it, hold a
// robust process-shared mutex whose word the kernel rewrites when we die,
// read a peer's credentials and another process's memory, lock, exec.
// Pointers that are only passed along travel as addresses (bigint).

import koffi from 'koffi';

/** struct ucred (SO_PEERCRED). */
export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

export interface Libc {
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: bigint | number) => unknown;
  munmap: (addr: unknown, len: number) => number;
  /** fcntl with one int argument (F_SETFD, F_ADD_SEALS, F_GET_SEALS with 0) */
  fcntl: (fd: number, cmd: number, arg: number) => number;
  memfd_create: (name: string, flags: number) => number;
  ftruncate: (fd: number, len: bigint) => number;
  close: (fd: number) => number;
  sysconf: (name: number) => number;
  gettid: () => number;
  socketpair: (domain: number, type: number, protocol: number, sv: number[]) => number;
  flock: (fd: number, op: number) => number;
  execvpe: (file: string, argv: (string | null)[], envp: (string | null)[]) => number;
  signal: (sig: number, handler: unknown) => unknown;
  getsockopt_ucred: (fd: number, level: number, name: number, out: Ucred, len: number[]) => number;
  /** iovecs passed as raw pointers (Buffers that never move) */
  process_vm_readv: (pid: number, local: Buffer, liovcnt: number, remote: Buffer, riovcnt: number, flags: number) => number | bigint;
  pthread_mutexattr_init: (attr: Buffer) => number;
  pthread_mutexattr_setpshared: (attr: Buffer, v: number) => number;
  pthread_mutexattr_setrobust: (attr: Buffer, v: number) => number;
  pthread_mutexattr_destroy: (attr: Buffer) => number;
  pthread_mutex_init: (mutex: bigint, attr: Buffer) => number;
  pthread_mutex_lock: (mutex: bigint) => number;
  pthread_mutex_unlock: (mutex: bigint) => number;
  /** errno as it is now (read through __errno_location) */
  errno: () => number;
}

let libc: Libc | undefined;

export function sys(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const errnoLocation = lib.func('int *__errno_location(void)');
  // anonymous: a second copy of this module in the process (src/ and dist/) cannot clash on a type name
  const ucred = koffi.struct({ pid: 'int32', uid: 'uint32', gid: 'uint32' });
  libc = {
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    memfd_create: lib.func('int memfd_create(const char *name, unsigned int flags)'),
    ftruncate: lib.func('int ftruncate(int fd, int64_t len)'),
    close: lib.func('int close(int fd)'),
    sysconf: lib.func('long sysconf(int name)'),
    gettid: lib.func('int gettid(void)'),
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
    flock: lib.func('int flock(int fd, int op)'),
    execvpe: lib.func('int execvpe(const char *file, const char **argv, const char **envp)'),
    signal: lib.func('void *signal(int sig, void *handler)'),
    getsockopt_ucred: lib.func('getsockopt', 'int', ['int', 'int', 'int', koffi.out(koffi.pointer(ucred)), koffi.inout(koffi.pointer('uint32'))]),
    process_vm_readv: lib.func('intptr_t process_vm_readv(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)'),
    pthread_mutexattr_init: lib.func('int pthread_mutexattr_init(void *attr)'),
    pthread_mutexattr_setpshared: lib.func('int pthread_mutexattr_setpshared(void *attr, int v)'),
    pthread_mutexattr_setrobust: lib.func('int pthread_mutexattr_setrobust(void *attr, int v)'),
    pthread_mutexattr_destroy: lib.func('int pthread_mutexattr_destroy(void *attr)'),
    pthread_mutex_init: lib.func('int pthread_mutex_init(uintptr_t mutex, void *attr)'),
    pthread_mutex_lock: lib.func('int pthread_mutex_lock(uintptr_t mutex)'),
    pthread_mutex_unlock: lib.func('int pthread_mutex_unlock(uintptr_t mutex)'),
    errno: () => koffi.decode(errnoLocation(), 'int') as number,
  };
  return libc;
}

/** The errno koffi saved right after the last call made through it (not clobbered by what Node did since). */
export const lastErrno = (): number => koffi.errno();

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FAILED = 0xffffffffffffffffn;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
const SC_PAGESIZE = 30;

export const pageSize = (): number => sys().sysconf(SC_PAGESIZE);

/** A pointer's address (a shared mapping's, for the calls that take one; a Buffer's). */
export const addressOf = (ptr: unknown): bigint => koffi.address(ptr) as bigint;

export const view = (ptr: unknown, len: number): ArrayBuffer => koffi.view(ptr, len) as ArrayBuffer;
