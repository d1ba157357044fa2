// A process's shared area (native-shim/src/proto.h), seen from the
// coordinator: the shim's memfd, mapped here too. The coordinator drains the
// process's events from its ring: no system call, no help from the process,
// and still readable after the process is gone.
//
// The process hands over its descriptor's number in HELLO; we open it as
// /proc/PID/fd/N (PID from SO_PEERCRED), check that it is a sealed memfd of
// the right size (sealed: it can never shrink under us, which would be a
// SIGBUS here), and map it.

import { closeSync, constants, fstatSync, openSync, readlinkSync } from 'node:fs';
import { AREA, OFF, PROTO_VERSION } from '../protocol/constants.js';
import { addressOf, F_GET_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, sys, view } from '../libc.js';

export class AreaError extends Error {}

export class SharedArea {
  private u32: Uint32Array;
  private view: DataView;
  private tail = 0;
  private ptr: unknown;

  private constructor(buf: ArrayBuffer, ptr: unknown) {
    this.u32 = new Uint32Array(buf);
    this.view = new DataView(buf);
    this.ptr = ptr;
    this.tail = Atomics.load(this.u32, OFF.AREA_HDR.tail / 4);
  }

  /** Maps process pid's area through its descriptor fd. Throws AreaError saying why not. */
  static map(pid: number, fd: number, size: number): SharedArea {
    if (size !== AREA.BYTES) throw new AreaError(`its shared area is ${size} bytes, not ${AREA.BYTES}: another build of the shim`);
    // What the number names, before opening it: never open (and block on) a tty or FIFO of the process's.
    const link = `/proc/${pid}/fd/${fd}`;
    let f: number;
    try {
      const named = readlinkSync(link);
      if (!named.startsWith('/memfd:pincoh-area')) throw new AreaError(`descriptor ${fd} is ${named}, not a shared area`);
      f = openSync(link, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (err) {
      if (err instanceof AreaError) throw err;
      throw new AreaError(`cannot open its shared area (${link}): ${(err as Error).message}; a process of another user, or one that is not dumpable, cannot be served`);
    }
    try {
      const what = readlinkSync(`/proc/self/fd/${f}`); // what we opened: the number may have changed meanwhile
      if (!what.startsWith('/memfd:pincoh-area')) throw new AreaError(`descriptor ${fd} is ${what}, not a shared area`);
      const seals = sys().fcntl(f, F_GET_SEALS, 0);
      if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) !== (F_SEAL_SHRINK | F_SEAL_SEAL)) throw new AreaError('its shared area is not sealed against shrinking');
      // sealed at this size: a smaller file would be a SIGBUS here at the first read past its end
      const st = fstatSync(f);
      if (!st.isFile() || st.size !== AREA.BYTES) throw new AreaError(`its shared area's file is ${st.size} bytes, not ${AREA.BYTES}`);
      const ptr = sys().mmap(null, AREA.BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0n);
      if (addressOf(ptr) === MAP_FAILED) throw new AreaError('cannot map its shared area');
      const a = new SharedArea(view(ptr, AREA.BYTES), ptr);
      a.check();
      return a;
    } finally {
      closeSync(f);
    }
  }

  /** An area in this process's own memory, laid out as the shim lays it out (unit tests). */
  static inMemory(): SharedArea {
    const buf = new ArrayBuffer(AREA.BYTES);
    const u = new Uint32Array(buf);
    u.set([AREA.MAGIC, PROTO_VERSION, AREA.RING_SLOTS, 0, AREA.RING_OFF, 0, AREA.BYTES], 0);
    return new SharedArea(buf, undefined);
  }

  private check(): void {
    const u = this.u32;
    const want = [AREA.MAGIC, PROTO_VERSION, AREA.RING_SLOTS, 0, AREA.RING_OFF, 0, AREA.BYTES];
    if (want.some((v, i) => u[i] !== v)) {
      this.unmap();
      throw new AreaError('its shared area does not have the layout of this coordinator\'s protocol');
    }
  }

  get mapped(): boolean {
    return this.u32.length > 0;
  }

  /** Events the shim could not queue (the ring was full and we did not answer). */
  get dropped(): number {
    return this.mapped ? Atomics.load(this.u32, OFF.AREA_HDR.dropped / 4) : 0;
  }

  /** Records written and not yet drained. */
  get queued(): number {
    return this.mapped ? (Atomics.load(this.u32, OFF.AREA_HDR.head / 4) - this.tail) >>> 0 : 0;
  }

  /** Hands every record written since the last drain to fn (a view and the
   * record's offset, valid during the call), oldest first; returns how many.
   * Throws AreaError if the head cannot have been written by the shim. */
  drain(fn: (v: DataView, off: number) => void): number {
    if (!this.mapped) return 0;
    const head = Atomics.load(this.u32, OFF.AREA_HDR.head / 4);
    const n = (head - this.tail) >>> 0;
    if (n === 0) return 0;
    if (n > AREA.RING_SLOTS) throw new AreaError(`its event ring's head is ${n} records past the tail (at most ${AREA.RING_SLOTS})`);
    let i = 0;
    try {
      for (; i < n; i++) fn(this.view, AREA.RING_OFF + (((this.tail + i) >>> 0) & (AREA.RING_SLOTS - 1)) * 64);
    } finally {
      // past what was applied (a bad record included: never applied twice)
      this.tail = (this.tail + Math.min(i + 1, n)) >>> 0;
      Atomics.store(this.u32, OFF.AREA_HDR.tail / 4, this.tail); // the shim may reuse the slots now
    }
    return n;
  }

  /** The process is gone and drained: nothing may touch the area after this. */
  unmap(): void {
    if (!this.mapped) return;
    this.u32 = new Uint32Array(0);
    this.view = new DataView(new ArrayBuffer(0));
    if (this.ptr !== undefined) sys().munmap(this.ptr, AREA.BYTES);
    this.ptr = undefined;
  }

  /** For tests: the raw words. */
  get words(): Uint32Array {
    return this.u32;
  }
}
