// libc through koffi, loaded once, for what Node itself cannot do: map shared
// memory (the processes' areas, the job tables), seal it, and hold a robust
// process-shared mutex whose word the kernel rewrites when we die.
// Pointers that are only passed along travel as addresses (bigint).

import koffi from 'koffi';

export interface Libc {
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: bigint) => unknown;
  munmap: (addr: unknown, len: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  memfd_create: (name: string, flags: number) => number;
  ftruncate: (fd: number, len: bigint) => number;
  close: (fd: number) => number;
  sysconf: (name: number) => number;
  gettid: () => number;
  pthread_mutexattr_init: (attr: Buffer) => number;
  pthread_mutexattr_setpshared: (attr: Buffer, v: number) => number;
  pthread_mutexattr_setrobust: (attr: Buffer, v: number) => number;
  pthread_mutexattr_destroy: (attr: Buffer) => number;
  pthread_mutex_init: (mutex: bigint, attr: Buffer) => number;
  pthread_mutex_lock: (mutex: bigint) => number;
  pthread_mutex_unlock: (mutex: bigint) => number;
  errno: () => number;
}

let libc: Libc | undefined;

export function sys(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const errnoLocation = lib.func('int *__errno_location(void)');
  libc = {
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    memfd_create: lib.func('int memfd_create(const char *name, unsigned int flags)'),
    ftruncate: lib.func('int ftruncate(int fd, int64_t len)'),
    close: lib.func('int close(int fd)'),
    sysconf: lib.func('long sysconf(int name)'),
    gettid: lib.func('int gettid(void)'),
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

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_FAILED = 0xffffffffffffffffn;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
const SC_PAGESIZE = 30;

export const pageSize = (): number => sys().sysconf(SC_PAGESIZE);

/** A shared mapping's address, for the calls that take one. */
export const addressOf = (ptr: unknown): bigint => koffi.address(ptr) as bigint;

export const view = (ptr: unknown, len: number): ArrayBuffer => koffi.view(ptr, len) as ArrayBuffer;
