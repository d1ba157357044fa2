// Payload layouts of src/proto.h, decoded from a DataView at an offset.

import { encodeFrame, i64, putU64, u64 } from './codec.js';
import { PROTO_VERSION, SIZE, T } from './constants.js';

export interface Hello { version: number; pid: number; ppid: number; rank: number; size: number; pageSize: number; argv0: string }
export interface Register { key: bigint; addr: number; len: number; flags: number }
export interface Begin { op: number; arg: number; addr: number; len: number; newLen: number; newAddr: number }
export interface Done { op: number; flags: number; result: number; beginSeq: bigint }

export function readHello(v: DataView, o: number): Hello {
  const bytes = new Uint8Array(v.buffer, v.byteOffset + o + 24, 64);
  const nul = bytes.indexOf(0);
  return {
    version: v.getUint32(o, true),
    pid: v.getInt32(o + 4, true),
    ppid: v.getInt32(o + 8, true),
    rank: v.getInt32(o + 12, true),
    size: v.getInt32(o + 16, true),
    pageSize: v.getUint32(o + 20, true),
    argv0: Buffer.from(bytes.subarray(0, nul < 0 ? 64 : nul)).toString('utf8'),
  };
}

export function readRegister(v: DataView, o: number): Register {
  return { key: v.getBigUint64(o, true), addr: u64(v, o + 8), len: u64(v, o + 16), flags: v.getUint32(o + 24, true) };
}

export function readKey(v: DataView, o: number): bigint {
  return v.getBigUint64(o, true);
}

export function readBegin(v: DataView, o: number): Begin {
  return {
    op: v.getUint32(o, true),
    arg: v.getUint32(o + 4, true),
    addr: u64(v, o + 8),
    len: u64(v, o + 16),
    newLen: u64(v, o + 24),
    newAddr: u64(v, o + 32),
  };
}

export function readDone(v: DataView, o: number): Done {
  return { op: v.getUint32(o, true), flags: v.getUint32(o + 4, true), result: i64(v, o + 8), beginSeq: v.getBigUint64(o + 16, true) };
}

export function readForkChild(v: DataView, o: number): number {
  return v.getInt32(o, true);
}

// ---- encoders (the coordinator's side, and test clients') ----

export function encodeWelcome(flags: number): Buffer {
  const p = new DataView(new ArrayBuffer(SIZE.WELCOME));
  p.setUint32(0, PROTO_VERSION, true);
  p.setUint32(4, flags, true);
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
  return encodeFrame(T.HELLO, 0, 0n, p);
}

export function encodeRegister(seq: bigint, r: Register): Buffer {
  const p = new DataView(new ArrayBuffer(SIZE.REGISTER));
  p.setBigUint64(0, r.key, true);
  putU64(p, 8, r.addr);
  putU64(p, 16, r.len);
  p.setUint32(24, r.flags, true);
  return encodeFrame(T.REGISTER, 0, seq, new Uint8Array(p.buffer));
}

export function encodeBegin(seq: bigint, b: Begin): Buffer {
  const p = new DataView(new ArrayBuffer(SIZE.BEGIN));
  p.setUint32(0, b.op, true);
  p.setUint32(4, b.arg, true);
  putU64(p, 8, b.addr);
  putU64(p, 16, b.len);
  putU64(p, 24, b.newLen);
  putU64(p, 32, b.newAddr);
  return encodeFrame(T.BEGIN, 0, seq, new Uint8Array(p.buffer));
}

export function encodeDone(seq: bigint, d: Done): Buffer {
  const p = new DataView(new ArrayBuffer(SIZE.DONE));
  p.setUint32(0, d.op, true);
  p.setUint32(4, d.flags, true);
  p.setBigInt64(8, BigInt(d.result), true);
  p.setBigUint64(16, d.beginSeq, true);
  return encodeFrame(T.DONE, 1, seq, new Uint8Array(p.buffer));
}
