// Frames: u32 length (whole frame) | u16 type | u16 flags | u64 seq | payload.
// Decoding reads from a DataView over one reusable buffer per connection: one
// copy per socket chunk, no per-frame allocation beyond the decoded values.

import { FRAME_MAX, HDR_SIZE } from './constants.js';

/** u64 as a JS number; values past 2^53 saturate (no user address comes near). */
export function u64(v: DataView, off: number): number {
  const lo = v.getUint32(off, true);
  const hi = v.getUint32(off + 4, true);
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
}

export function i64(v: DataView, off: number): number {
  const hi = v.getInt32(off + 4, true);
  const lo = v.getUint32(off, true);
  if (hi >= 0x200000) return Number.MAX_SAFE_INTEGER;
  if (hi < -0x200000) return Number.MIN_SAFE_INTEGER;
  return hi * 0x100000000 + lo;
}

export function putU64(v: DataView, off: number, n: number): void {
  v.setUint32(off, n % 0x100000000, true);
  v.setUint32(off + 4, Math.floor(n / 0x100000000), true);
}

/** Builds one frame. Off the hot path only for the rare big frames; REPLY uses encodeReply. */
export function encodeFrame(type: number, flags: number, seq: bigint, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const buf = Buffer.allocUnsafe(HDR_SIZE + payload.length);
  buf.writeUInt32LE(HDR_SIZE + payload.length, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(flags, 6);
  buf.writeBigUInt64LE(seq, 8);
  buf.set(payload, HDR_SIZE);
  return buf;
}

export interface FrameSink {
  /** payload is at [off, off + len) of view; valid only during the call */
  frame(type: number, flags: number, seq: bigint, view: DataView, off: number, len: number): void;
}

export class FrameError extends Error {}

/** Reassembles frames from a byte stream. */
export class FrameReader {
  private buf: Buffer;
  private view: DataView;
  private start = 0;
  private end = 0;

  constructor(private readonly maxFrame = FRAME_MAX) {
    this.buf = Buffer.allocUnsafe(Math.max(2 * maxFrame, 4096));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Bytes held that are not yet a whole frame. */
  get pending(): number {
    return this.end - this.start;
  }

  /** Feeds a chunk; calls sink for every whole frame. Throws FrameError on a bad length. */
  push(chunk: Uint8Array, sink: FrameSink): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.end === this.buf.length) this.compact();
      const n = Math.min(chunk.length - at, this.buf.length - this.end);
      this.buf.set(chunk.subarray(at, at + n), this.end);
      this.end += n;
      at += n;
      this.drain(sink);
    }
  }

  private compact(): void {
    this.buf.copy(this.buf, 0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
  }

  private drain(sink: FrameSink): void {
    const v = this.view;
    while (this.end - this.start >= HDR_SIZE) {
      const len = v.getUint32(this.start, true);
      if (len < HDR_SIZE || len > this.maxFrame) throw new FrameError(`frame length ${len} outside ${HDR_SIZE}..${this.maxFrame}`);
      if (this.end - this.start < len) break;
      const type = v.getUint16(this.start + 4, true);
      const flags = v.getUint16(this.start + 6, true);
      const seq = v.getBigUint64(this.start + 8, true);
      const off = this.start + HDR_SIZE;
      this.start += len;
      sink.frame(type, flags, seq, v, off, len - HDR_SIZE);
    }
    if (this.start === this.end) this.start = this.end = 0;
  }
}
