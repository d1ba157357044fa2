// A Node participant's binding to libpincoh.so, through koffi. The process
// must run under the shim (`pincoh run -- node app.mjs` preloads it): loading
// the same path again returns the library already loaded, so the calls here
// share its connection and tables with the hooks.

import koffi from 'koffi';
import { shimPath } from '../paths.js';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_ANONYMOUS = 0x20;

export const READ = 1;
export const WRITE = 2;

export class PincohCallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: errno ${errno}`);
    this.name = 'PincohCallError';
  }
}

/** Pinned-style memory for a Node rank: mmap'd outside V8's heap, so it never moves. */
export interface Region {
  ptr: unknown;
  len: number;
  bytes: Uint8Array;
}

export class Pincoh {
  private readonly f: Record<string, (...a: any[]) => any>;

  constructor(path = process.env.PINCOH_SHIM ?? shimPath()) {
    const lib = koffi.load(path);
    const libc = koffi.load('libc.so.6');
    this.f = {
      register: lib.func('int pincoh_register(void *addr, size_t len, unsigned int flags, _Out_ uint64_t *key)'),
      deregister: lib.func('int pincoh_deregister(uint64_t key)'),
      isValid: lib.func('int pincoh_is_valid(uint64_t key)'),
      publish: lib.func('int pincoh_publish(const char *name, uint64_t key)'),
      attach: lib.func('int pincoh_attach(const char *name, int timeout_ms, _Out_ uint64_t *handle)'),
      put: lib.func('int pincoh_put(uint64_t handle, size_t offset, const void *src, size_t len)'),
      get: lib.func('int pincoh_get(uint64_t handle, size_t offset, _Out_ void *dst, size_t len)'),
      detach: lib.func('int pincoh_detach(uint64_t handle)'),
      barrier: lib.func('int pincoh_barrier(int timeout_ms)'),
      rank: lib.func('int pincoh_rank(void)'),
      size: lib.func('int pincoh_size(void)'),
      mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
      munmap: libc.func('int munmap(void *addr, size_t len)'),
    };
  }

  private call(name: string, rc: number): number {
    if (rc < 0) throw new PincohCallError(name, -rc);
    return rc;
  }

  get rank(): number {
    return this.f.rank!();
  }
  get size(): number {
    return this.f.size!();
  }

  alloc(len: number): Region {
    const ptr = this.f.mmap!(null, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!ptr) throw new PincohCallError('mmap', koffi.errno());
    return { ptr, len, bytes: new Uint8Array(koffi.view(ptr, len)) };
  }

  /** munmap goes through the shim's hook: registrations on it are invalidated first. */
  free(r: Region): void {
    this.f.munmap!(r.ptr, r.len);
  }

  register(r: Region, flags = READ | WRITE): bigint {
    const key = [0n];
    this.call('pincoh_register', this.f.register!(r.ptr, r.len, flags, key));
    return BigInt(key[0]!);
  }
  deregister(key: bigint): void {
    this.call('pincoh_deregister', this.f.deregister!(key));
  }
  isValid(key: bigint): boolean {
    return this.call('pincoh_is_valid', this.f.isValid!(key)) === 1;
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
  barrier(timeoutMs: number): void {
    this.call('pincoh_barrier', this.f.barrier!(timeoutMs));
  }
}
