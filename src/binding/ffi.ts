// A Node participant's binding to libpincoh.so, through koffi: every function
// of native-shim/include/pincoh.h, typed.
//
// The process must run under the shim (`pincoh run -- node app.mjs` preloads
// it): loading the library that is already mapped returns it, so the calls
// here share its connection and tables with the hooks. Loaded into a program
// started without the shim, the library stays inert (no libc patch, nothing
// printed) and every call that needs a coordinator throws ENOTCONN saying so.
//
// Invalidation callbacks. koffi runs a JS callback in the JS thread only: a
// call from another thread is queued to the event loop while that thread
// waits, and a call at exit (the shim invalidates everything then) comes after
// V8 has gone and crashes the process. The shim calls back inside munmap,
// free and exit, in any thread, with malloc's locks held, so a JS callback
// there can deadlock or crash. onInvalidate therefore never hands a JS
// function to the shim: a native queue in the shim (pincoh_binding_queue)
// records each invalidation, and this binding delivers them in the JS thread,
// in the order they happened:
// - before any call of this binding returns (or throws), every invalidation
//   queued by then is delivered: a free(), deregister, put or get that
//   invalidates or finds a handle revoked has run the callback for it when it
//   returns or throws;
// - one made by another thread, or by a libc call of the program that does
//   not go through this binding, is delivered from the event loop (the shim
//   pokes a socketpair that Node watches), or at the next call of this
//   binding, or at progress();
// - at exit, nothing is delivered (the queue outlives JS, harmlessly).
// The queue holds 4,096; beyond that invalidations are counted as lost, and
// the callback is told how many (`lost`), so the program can re-check isValid.

import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import koffi from 'koffi';
import { addressOf, AF_UNIX, lastErrno, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, sys, view } from '../libc.js';
import { shimPath } from '../paths.js';
import { REASON } from '../protocol/constants.js';
import { errnoName } from '../protocol/errno.js';


/** What a registration needs from its pages (PINCOH_READ, PINCOH_WRITE). */
export const READ = 1;
export const WRITE = 2;
/** pincoh_is_valid: valid here, but the coordinator was lost and has not heard of it since. */
export const VALID_UNSYNCED = 2;

/** Why an invalidation happened (enum pincoh_reason): the coordinator's table (protocol/constants.ts). */
export { REASON };
export type ReasonName = Lowercase<keyof typeof REASON>;
const REASON_NAMES = new Map(Object.entries(REASON).map(([k, v]) => [v as number, k.toLowerCase() as ReasonName]));

/** How libc's internal calls are covered (PINCOH_LIBC_*). */
export type LibcCoverage = 'none' | 'patched' | 'norelease';
const LIBC_NAMES: LibcCoverage[] = ['none', 'patched', 'norelease'];

/** struct pincoh_stats */
export interface Stats {
  /** hooked calls that overlapped a registration */
  slowCalls: number;
  /** registrations invalidated by this process's calls */
  invalidations: number;
  /** waits for the coordinator that hit PINCOH_TIMEOUT_MS */
  timeouts: number;
  /** a wait timed out or the coordinator vanished */
  degraded: boolean;
  /** a coordinator connection is up */
  connected: boolean;
  /** how libc's internal calls are covered */
  libc: LibcCoverage;
  /** libc entries whose calls also go through another interposer's hook */
  chained: number;
}

export interface HandleInfo {
  /** the owner's pid */
  pid: number;
  /** where the registration lies in the owner */
  addr: bigint;
  len: number;
  /** false once the owner's memory changed (puts then fail with ESTALE) */
  live: boolean;
}

export interface Invalidation {
  /** the registration's key, or (reason 'revoked') the handle */
  key: bigint;
  addr: bigint;
  len: number;
  reason: number;
  reasonName: ReasonName | `reason ${number}`;
  /** invalidations the shim's queue dropped (full) just before this one; normally 0 */
  lost: number;
}

export type InvalidateFn = (inv: Invalidation) => void;

// The C API's tables (docs/c-api.md), shortened: what each error means of each call.
const EXPLAIN: Record<string, Record<string, string>> = {
  '*': {
    ESTALE: "the owner's memory changed; the handle is dead",
    ERANGE: "out of the registration's bounds",
    EBADF: 'no such handle here (never attached, or detached)',
    EACCES: "the registration's permissions do not allow it",
    EFAULT: "the owner's memory changed behind pincoh's back",
    EOWNERDEAD: 'a process of the job died without exiting',
    ENOSPC: "past the coordinator's per-process registration limit",
    EINVAL: 'bad arguments',
    EMFILE: 'no descriptor left for the connection to the coordinator',
    EPERM: 'not permitted (a seccomp filter, or the ptrace rules put and get need)',
    EAGAIN: 'the coordinator has too many requests waiting, or a thread could not start',
    EPROTO: "the coordinator speaks another protocol version than this shim's",
    ETIMEDOUT: 'the coordinator did not answer in time',
  },
  pincoh_register: { EINVAL: 'bad arguments, or a range ending at or past 2^53' },
  pincoh_deregister: { ENOENT: 'the registration is not (or no longer) valid' },
  pincoh_is_valid: { EINVAL: 'a key never issued in this process' },
  pincoh_query: { EINVAL: 'a key never issued in this process' },
  pincoh_publish: {
    ENOENT: 'the key is not a valid registration',
    EEXIST: 'the name is already published in this job',
    EFAULT: 'the range is not memory this process has',
    EINVAL: 'a name must be 1 to 63 bytes',
  },
  pincoh_attach: {
    ETIMEDOUT: 'nothing was published under that name in time',
    EAGAIN: 'the thread that watches for the coordinator could not start',
    EINVAL: 'a name must be 1 to 63 bytes, and the timeout not negative',
  },
  pincoh_barrier: { ETIMEDOUT: 'not every rank of the job arrived in time' },
  pincoh_detach: { EBADF: 'no such handle here (never attached, or detached already)' },
  pincoh_handle_info: { EBADF: 'no such handle here (never attached, or detached)' },
};

/** A pincoh_* call (or the binding's own mmap) failed: `.errno` is positive, `.code` its name. */
export class PincohCallError extends Error {
  readonly code: string;
  constructor(
    readonly call: string,
    readonly errno: number,
    explanation?: string,
  ) {
    const code = errnoName(errno);
    const why = explanation ?? EXPLAIN[call]?.[code] ?? EXPLAIN['*']![code];
    super(`${call} failed: ${code}${why ? ` (${why})` : ''}`);
    this.name = 'PincohCallError';
    this.code = code;
  }
}

/** Pinned-style memory for a Node rank: mmap'd outside V8's heap, so it never moves. */
export interface Region {
  ptr: unknown;
  /** the address, as query() and handleInfo() give addresses */
  addr: bigint;
  len: number;
  bytes: Uint8Array;
}

/** The libpincoh.so already mapped in this process (preloaded), if any. */
function mappedShim(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const path = line.slice(line.indexOf('/'));
      if (line.includes('/') && /\/libpincoh[^/]*\.so(\.\d+)*$/.test(path)) return path;
    }
  } catch {
    /* no /proc: load by path */
  }
  return undefined;
}

type Fn = (...a: any[]) => any;

// declared by name for pincoh_get_stats' signature below
koffi.struct('pincoh_stats', {
  slow_calls: 'uint64_t',
  invalidations: 'uint64_t',
  timeouts: 'uint64_t',
  degraded: 'int',
  connected: 'int',
  libc: 'int',
  chained: 'int',
});
const QREC_BYTES = 32;
const DRAIN_MAX = 256;

export class Pincoh {
  private readonly f: Record<string, Fn>;
  /** libpincoh.so was mapped before this binding loaded it: the hooks are live */
  readonly preloaded: boolean;
  /** the library the calls go to */
  readonly path: string;
  private listener: InvalidateFn | undefined;
  private wake: Socket | undefined;
  private draining = false;
  private readonly drainBuf = Buffer.alloc(QREC_BYTES * DRAIN_MAX);

  constructor(path?: string) {
    const mapped = mappedShim();
    this.preloaded = mapped !== undefined;
    this.path = path ?? mapped ?? process.env.PINCOH_SHIM ?? shimPath();
    const lib = koffi.load(this.path);
    const libc = sys();
    this.f = {
      register: lib.func('int pincoh_register(void *addr, size_t len, unsigned int flags, _Out_ uint64_t *key)'),
      deregister: lib.func('int pincoh_deregister(uint64_t key)'),
      isValid: lib.func('int pincoh_is_valid(uint64_t key)'),
      query: lib.func('int pincoh_query(uint64_t key, _Out_ uintptr_t *addr, _Out_ size_t *len)'),
      publish: lib.func('int pincoh_publish(const char *name, uint64_t key)'),
      attach: lib.func('int pincoh_attach(const char *name, int timeout_ms, _Out_ uint64_t *handle)'),
      put: lib.func('int pincoh_put(uint64_t handle, size_t offset, const void *src, size_t len)'),
      get: lib.func('int pincoh_get(uint64_t handle, size_t offset, _Out_ void *dst, size_t len)'),
      detach: lib.func('int pincoh_detach(uint64_t handle)'),
      progress: lib.func('int pincoh_progress(void)'),
      barrier: lib.func('int pincoh_barrier(int timeout_ms)'),
      handleInfo: lib.func(
        'int pincoh_handle_info(uint64_t handle, _Out_ int *owner_pid, _Out_ uintptr_t *addr, _Out_ size_t *len, _Out_ int *live)',
      ),
      rank: lib.func('int pincoh_rank(void)'),
      size: lib.func('int pincoh_size(void)'),
      getStats: lib.func('int pincoh_get_stats(_Out_ pincoh_stats *out)'),
      queue: lib.func('int pincoh_binding_queue(int wake_fd)'),
      drain: lib.func('int pincoh_binding_drain(_Out_ void *out, int max, _Out_ uint64_t *lost)'),
      mmap: libc.mmap as Fn,
      munmap: libc.munmap as Fn,
      socketpair: libc.socketpair as Fn,
      close: libc.close,
    };
  }

  /** Why ENOTCONN, in this process. */
  private notConnected(call: string): PincohCallError {
    const sock = process.env.PINCOH_SOCKET;
    const why = !this.preloaded
      ? 'libpincoh.so is not preloaded in this process, so its hooks see nothing: run it as `pincoh run -- node app.mjs` (or with LD_PRELOAD=libpincoh.so and PINCOH_SOCKET set)'
      : !sock
        ? 'no coordinator: PINCOH_SOCKET is not set; run it as `pincoh run -- node app.mjs`'
        : `the coordinator at PINCOH_SOCKET=${sock} cannot be reached (is it running?)`;
    return new PincohCallError(call, 107, why);
  }

  /** Delivers what the shim queued, then throws for a negative rc. */
  private call(name: string, rc: number): number {
    this.deliver();
    if (rc < 0) throw rc === -107 ? this.notConnected(name) : new PincohCallError(name, -rc);
    return rc;
  }

  get rank(): number {
    return this.f.rank!();
  }
  get size(): number {
    return this.f.size!();
  }

  /** len bytes of private anonymous memory, outside V8's heap. */
  alloc(len: number): Region {
    const ptr = this.f.mmap!(null, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const addr = ptr === null ? -1n : addressOf(ptr);
    if (addr === -1n || addr === 0n) throw new PincohCallError('mmap', lastErrno());
    return { ptr, addr, len, bytes: new Uint8Array(view(ptr, len)) };
  }

  /** munmap goes through the shim's hook: registrations on it are invalidated
   * first, and their callbacks have run when this returns. Do not touch
   * r.bytes afterwards. */
  free(r: Region): void {
    const rc = this.f.munmap!(r.ptr, r.len);
    const err = rc < 0 ? lastErrno() : 0;
    this.deliver();
    if (rc < 0) throw new PincohCallError('munmap', err);
  }

  /** Registers r; returns the key. */
  register(r: Region, flags = READ | WRITE): bigint {
    const key = [0n];
    this.call('pincoh_register', this.f.register!(r.ptr, r.len, flags, key));
    return BigInt(key[0]!);
  }
  deregister(key: bigint): void {
    this.call('pincoh_deregister', this.f.deregister!(key));
  }
  /** true valid (VALID_UNSYNCED counts as valid: see validity()), false invalidated or deregistered. */
  isValid(key: bigint): boolean {
    return this.validity(key) !== 0;
  }
  /** pincoh_is_valid's own answer: 1, 0, or VALID_UNSYNCED (2). */
  validity(key: bigint): number {
    return this.call('pincoh_is_valid', this.f.isValid!(key));
  }
  /** Where a valid registration is now (it moves under --mremap follow); undefined once it is not valid. */
  query(key: bigint): { addr: bigint; len: number } | undefined {
    const addr = [0n];
    const len = [0];
    const rc = this.f.query!(key, addr, len);
    if (rc === -2) {
      this.deliver();
      return undefined; // ENOENT: issued here, no longer valid
    }
    this.call('pincoh_query', rc);
    return { addr: BigInt(addr[0]!), len: Number(len[0]!) };
  }
  publish(name: string, key: bigint): void {
    this.call('pincoh_publish', this.f.publish!(name, key));
  }
  attach(name: string, timeoutMs: number): bigint {
    const h = [0n];
    this.call('pincoh_attach', this.f.attach!(name, timeoutMs, h));
    return BigInt(h[0]!);
  }
  put(handle: bigint, offset: number, src: Uint8Array): void {
    this.call('pincoh_put', this.f.put!(handle, offset, src, src.length));
  }
  get(handle: bigint, offset: number, dst: Uint8Array): void {
    this.call('pincoh_get', this.f.get!(handle, offset, dst, dst.length));
  }
  detach(handle: bigint): void {
    this.call('pincoh_detach', this.f.detach!(handle));
  }
  handleInfo(handle: bigint): HandleInfo {
    const pid = [0];
    const addr = [0n];
    const len = [0];
    const live = [0];
    this.call('pincoh_handle_info', this.f.handleInfo!(handle, pid, addr, len, live));
    return { pid: pid[0]!, addr: BigInt(addr[0]!), len: Number(len[0]!), live: live[0] !== 0 };
  }
  /** Runs the callback for every handle revoked since (once per handle), and
   * delivers everything else queued; returns how many revoked handles it found. */
  progress(): number {
    return this.call('pincoh_progress', this.f.progress!());
  }
  barrier(timeoutMs: number): void {
    this.call('pincoh_barrier', this.f.barrier!(timeoutMs));
  }
  stats(): Stats {
    const s: Record<string, number | bigint> = {};
    this.call('pincoh_get_stats', this.f.getStats!(s));
    const libc = Number(s.libc);
    return {
      slowCalls: Number(s.slow_calls),
      invalidations: Number(s.invalidations),
      timeouts: Number(s.timeouts),
      degraded: s.degraded !== 0,
      connected: s.connected !== 0,
      libc: LIBC_NAMES[libc] ?? ('none' as LibcCoverage),
      chained: Number(s.chained),
    };
  }

  /**
   * fn runs once per invalidated registration (and, in an attacher, once per
   * revoked handle), in the JS thread, in the order they happened: before the
   * binding call that caused or found it returns, else from the event loop.
   * null stops delivery (what is queued is dropped). See the top of this file.
   */
  onInvalidate(fn: InvalidateFn | null): void {
    if (!fn) {
      this.listener = undefined;
      return;
    }
    if (!this.wake) {
      const sv = new Int32Array(2);
      if (this.f.socketpair!(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) throw new PincohCallError('socketpair', lastErrno());
      const rc = this.f.queue!(sv[1]);
      if (rc < 0) {
        this.f.close!(sv[0]);
        this.f.close!(sv[1]);
        throw new PincohCallError('pincoh_on_invalidate', -rc);
      }
      // sv[1] stays open for the life of the process: the shim may poke it
      // from any thread, up to the exit hook
      const wake = new Socket({ fd: sv[0]!, readable: true, writable: false });
      wake.on('data', () => this.deliver());
      wake.on('error', () => {});
      wake.unref(); // delivery never keeps the process alive
      this.wake = wake;
    }
    this.listener = fn;
  }

  /** Delivers every invalidation queued so far, in order, in this (the JS) thread. */
  private deliver(): void {
    if (!this.wake || this.draining) return; // nested (a callback calling the binding): the outer loop goes on
    this.draining = true;
    try {
      for (;;) {
        const lost = [0n];
        const n: number = this.f.drain!(this.drainBuf, DRAIN_MAX, lost);
        let dropped = Number(lost[0]);
        for (let i = 0; i < n; i++) {
          const o = i * QREC_BYTES;
          const reason = this.drainBuf.readInt32LE(o + 24);
          const inv: Invalidation = {
            key: this.drainBuf.readBigUInt64LE(o),
            addr: this.drainBuf.readBigUInt64LE(o + 8),
            len: Number(this.drainBuf.readBigUInt64LE(o + 16)),
            reason,
            reasonName: REASON_NAMES.get(reason) ?? `reason ${reason}`,
            lost: dropped,
          };
          dropped = 0;
          const fn = this.listener;
          if (fn)
            try {
              fn(inv);
            } catch (e) {
              queueMicrotask(() => {
                throw e; // the program's own error, as from an event listener
              });
            }
        }
        if (n < DRAIN_MAX) break;
      }
    } finally {
      this.draining = false;
    }
  }
}
