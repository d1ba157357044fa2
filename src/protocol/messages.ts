// Payload layouts of src/proto.h, decoded from a DataView at an offset.

import { encodeFrame, putU64 } from './codec.js';
import { JOB_MAX, NAME_MAX, OFF, PROTO_VERSION, SIZE, T } from './constants.js';

export interface Hello { version: number; pid: number; ppid: number; rank: number; size: number; pageSize: number; argv0: string; job: string; libc?: number; chained?: number; areaFd: number; areaSize: number }

/** How a process's libc-internal calls are covered (pincoh.h PINCOH_LIBC_*). */
export const LIBC_MODES = ['not covered', 'code patch', 'no-release malloc'] as const;
/** A process's libc coverage as the summary counts it: its mode, and whether another interposer's hooks share the entries. */
export function libcCoverage(libc: number | undefined, chained: number | undefined): string {
  const mode = LIBC_MODES[libc ?? 0] ?? `mode ${libc}`;
  return chained ? `${mode} (chained with another interposer)` : mode;
}
/** What the shim did in one of pincoh exec's ranks, said at its exit (proto.h struct pc_farewell). */
export interface Farewell { libc: number; chained: number; connected: boolean; last: boolean; slowCalls: number }
export interface AttachRequest { handle: bigint; timeoutMs: number; name: string }
/** Where an attached registration is, and the owner's export word a put checks (owner's member slot, export slot + 1, generation, the owner's member record). */
export interface Attached { addr: number; len: number; pid: number; flags: number; owner: number; export: number; xgen: number; ownerWord: number }
/** WELCOME's account of the job table (proto.h struct pc_welcome). */
export interface TableGrant { revokeMs: number; fd: number; size: number; member: number; memberWord: number; coordTid: number }
export interface Publish { key: bigint; name: string; terminated: boolean; export: number; xgen: number }
export interface Stuck { member: number; slot: number; export: number; xgen: number }

/** A NUL-padded string field. */
function cstr(v: DataView, o: number, max: number): string {
  const bytes = new Uint8Array(v.buffer, v.byteOffset + o, max);
  const nul = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, nul < 0 ? max : nul)).toString('utf8');
}

export function readHello(v: DataView, o: number): Hello {
  return {
    version: v.getUint32(o, true),
    pid: v.getInt32(o + 4, true),
    ppid: v.getInt32(o + 8, true),
    rank: v.getInt32(o + 12, true),
    size: v.getInt32(o + 16, true),
    pageSize: v.getUint32(o + 20, true),
    argv0: cstr(v, o + 24, 64),
    job: cstr(v, o + 88, JOB_MAX),
    libc: v.getUint32(o + 120, true),
    chained: v.getUint32(o + 124, true),
    areaFd: v.getInt32(o + 128, true),
    areaSize: v.getUint32(o + 132, true),
  };
}

export function readPublish(v: DataView, o: number): Publish {
  return {
    key: v.getBigUint64(o, true),
    name: cstr(v, o + 8, NAME_MAX),
    terminated: new Uint8Array(v.buffer, v.byteOffset + o + 8, NAME_MAX).includes(0),
    export: v.getUint32(o + 72, true),
    xgen: v.getUint32(o + 76, true),
  };
}

export function readFarewell(v: DataView, o: number): Farewell {
  return {
    libc: v.getUint32(o, true),
    chained: v.getUint32(o + 4, true),
    connected: v.getUint32(o + OFF.FAREWELL.connected, true) !== 0,
    last: v.getUint32(o + OFF.FAREWELL.last, true) !== 0,
    slowCalls: Number(v.getBigUint64(o + OFF.FAREWELL.slow_calls, true)),
  };
}

export function readStuck(v: DataView, o: number): Stuck {
  return { member: v.getUint32(o, true), slot: v.getUint32(o + 4, true), export: v.getUint32(o + 8, true), xgen: v.getUint32(o + 12, true) };
}

export function readAttach(v: DataView, o: number): AttachRequest & { terminated: boolean } {
  return {
    handle: v.getBigUint64(o, true),
    timeoutMs: v.getInt32(o + 8, true),
    name: cstr(v, o + 16, NAME_MAX),
    terminated: new Uint8Array(v.buffer, v.byteOffset + o + 16, NAME_MAX).includes(0),
  };
}

export function readBarrierTimeout(v: DataView, o: number): number {
  return v.getInt32(o, true);
}

export function readKey(v: DataView, o: number): bigint {
  return v.getBigUint64(o, true);
}

export function readSyncCall(v: DataView, o: number): number {
  return v.getUint32(o, true);
}

// ---- encoders (the coordinator's side, and test clients') ----

/** table: the job table this process may map; without it, sharing is refused (jt_fd -1). */
export function encodeWelcome(flags: number, maxRegs: number, table?: TableGrant): Buffer {
  const p = new DataView(new ArrayBuffer(SIZE.WELCOME));
  p.setUint32(0, PROTO_VERSION, true);
  p.setUint32(4, flags, true);
  p.setUint32(8, maxRegs, true);
  p.setUint32(12, table?.revokeMs ?? 0, true);
  p.setInt32(16, table?.fd ?? -1, true);
  p.setUint32(20, table?.size ?? 0, true);
  p.setUint32(24, table?.member ?? 0, true);
  p.setUint32(28, table?.memberWord ?? 0, true);
  p.setInt32(32, table?.coordTid ?? 0, true);
  return encodeFrame(T.WELCOME, 0, 0n, new Uint8Array(p.buffer));
}

/** REPLY is the hot path's answer: 24 bytes, built without intermediate objects. */
export function encodeReply(seq: bigint, status: number): Buffer {
  const buf = Buffer.allocUnsafe(24);
  buf.writeUInt32LE(24, 0);
  buf.writeUInt16LE(T.REPLY, 4);
  buf.writeUInt16LE(0, 6);
  buf.writeBigUInt64LE(seq, 8);
  buf.writeInt32LE(status, 16);
  buf.writeUInt32LE(0, 20);
  return buf;
}

/** REPLY to ATTACH: the status, then where the registration is. */
export function encodeAttached(seq: bigint, a: Attached): Buffer {
  const buf = Buffer.alloc(16 + SIZE.REPLY + SIZE.ATTACHED);
  buf.writeUInt32LE(buf.length, 0);
  buf.writeUInt16LE(T.REPLY, 4);
  buf.writeBigUInt64LE(seq, 8);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  putU64(v, 24, a.addr);
  putU64(v, 32, a.len);
  v.setInt32(40, a.pid, true);
  v.setUint32(44, a.flags, true);
  v.setUint32(48, a.owner, true);
  v.setUint32(52, a.export, true);
  v.setUint32(56, a.xgen, true);
  v.setUint32(60, a.ownerWord, true);
  return buf;
}

export function encodeError(seq: bigint, code: number, message: string): Buffer {
  const msg = Buffer.from(message.slice(0, 400), 'utf8');
  const p = Buffer.alloc(SIZE.ERROR + msg.length);
  p.writeInt32LE(code, 0);
  msg.copy(p, SIZE.ERROR);
  return encodeFrame(T.ERROR, 0, seq, p);
}

export function encodeHello(h: Hello): Buffer {
  const p = Buffer.alloc(SIZE.HELLO);
  p.writeUInt32LE(h.version, 0);
  p.writeInt32LE(h.pid, 4);
  p.writeInt32LE(h.ppid, 8);
  p.writeInt32LE(h.rank, 12);
  p.writeInt32LE(h.size, 16);
  p.writeUInt32LE(h.pageSize, 20);
  p.write(h.argv0.slice(0, 63), 24, 'utf8');
  p.write(h.job.slice(0, JOB_MAX - 1), 88, 'utf8');
  p.writeUInt32LE(h.libc ?? 0, 120);
  p.writeUInt32LE(h.chained ?? 0, 124);
  p.writeInt32LE(h.areaFd, 128);
  p.writeUInt32LE(h.areaSize, 132);
  return encodeFrame(T.HELLO, 0, 0n, p);
}

export function encodeSync(seq: bigint, call = 0): Buffer {
  const p = Buffer.alloc(SIZE.SYNC);
  p.writeUInt32LE(call, 0);
  return encodeFrame(T.SYNC, 0, seq, p);
}

export function encodeAttach(seq: bigint, a: AttachRequest): Buffer {
  const p = Buffer.alloc(SIZE.ATTACH);
  p.writeBigUInt64LE(a.handle, 0);
  p.writeInt32LE(a.timeoutMs, 8);
  p.write(a.name.slice(0, NAME_MAX - 1), 16, 'utf8');
  return encodeFrame(T.ATTACH, 0, seq, p);
}
