import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameError, FrameReader, i64, putU64, u64 } from '../src/protocol/codec.js';
import { T } from '../src/protocol/constants.js';
import { encodeHello, readHello } from '../src/protocol/messages.js';

type Got = { type: number; flags: number; seq: bigint; bytes: number[] };
const collect = (got: Got[]) => ({
  frame(type: number, flags: number, seq: bigint, v: DataView, off: number, len: number) {
    got.push({ type, flags, seq, bytes: Array.from(new Uint8Array(v.buffer, v.byteOffset + off, len)) });
  },
});

describe('FrameReader', () => {
  it('reassembles frames from any split of the stream', () => {
    const frames = Array.from({ length: 50 }, (_, i) => encodeFrame(T.SYNC, i & 1, BigInt(i), Buffer.alloc(i * 37 % 300, i)));
    const stream = Buffer.concat(frames);
    for (const step of [1, 3, 16, 17, 1000, stream.length]) {
      const got: Got[] = [];
      const r = new FrameReader();
      for (let at = 0; at < stream.length; at += step) r.push(stream.subarray(at, at + step), collect(got));
      expect(got.map((g) => g.seq)).toEqual(frames.map((_, i) => BigInt(i)));
      expect(got[7]!.bytes).toEqual(Array(7 * 37 % 300).fill(7));
      expect(r.pending).toBe(0);
    }
  });

  it('keeps going past its buffer size with frames at the limit', () => {
    const r = new FrameReader(1024);
    const got: Got[] = [];
    const stream = Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeFrame(T.SYNC, 0, BigInt(i), Buffer.alloc(1024 - 16, i))));
    for (let at = 0; at < stream.length; at += 700) r.push(stream.subarray(at, at + 700), collect(got));
    expect(got.map((g) => Number(g.seq))).toEqual([...Array(20).keys()]);
    expect(got[19]!.bytes.every((b) => b === 19)).toBe(true);
  });

  it('refuses a length below the header or above the limit', () => {
    const r = new FrameReader(1024);
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(8, 0);
    expect(() => r.push(bad, collect([]))).toThrow(FrameError);
    const r2 = new FrameReader(1024);
    bad.writeUInt32LE(1025, 0);
    expect(() => r2.push(bad, collect([]))).toThrow(/outside 16..1024/);
  });
});

describe('FrameReader against random bytes', () => {
  it('only ever throws FrameError, and holds at most one frame\'s worth (property, 2,000 streams)', () => {
    let seed = 99;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let run = 0; run < 2000; run++) {
      const r = new FrameReader(1024);
      const bytes = Buffer.alloc(Math.floor(rnd() * 4000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rnd() < 0.5 ? 0 : Math.floor(rnd() * 256);
      // now and then a plausible length, so some frames get through
      if (bytes.length > 4 && rnd() < 0.5) bytes.writeUInt32LE(16 + Math.floor(rnd() * 100), 0);
      let frames = 0;
      try {
        for (let at = 0; at < bytes.length; at += 1 + Math.floor(rnd() * 300)) r.push(bytes.subarray(at, at + 1 + Math.floor(rnd() * 300)), { frame: () => void frames++ });
      } catch (e) {
        expect(e).toBeInstanceOf(FrameError);
        continue;
      }
      expect(r.pending).toBeLessThan(1024);
    }
  });
});

describe('payloads', () => {
  it('round-trip HELLO, every field', () => {
    const hello = { version: 2, pid: 77, ppid: -1, rank: 3, size: 8, pageSize: 65536, argv0: 'a'.repeat(63), job: 'j'.repeat(31), libc: 2, chained: 1, areaFd: 1023, areaSize: 331968 };
    const buf = encodeHello(hello);
    expect(readHello(new DataView(buf.buffer, buf.byteOffset, buf.length), 16)).toEqual(hello);
  });

  it('u64 saturates past 2^53 instead of losing precision', () => {
    const v = new DataView(new ArrayBuffer(8));
    putU64(v, 0, 2 ** 52 + 1);
    expect(u64(v, 0)).toBe(2 ** 52 + 1);
    v.setBigUint64(0, 2n ** 60n, true);
    expect(u64(v, 0)).toBe(Number.MAX_SAFE_INTEGER);
    v.setBigInt64(0, -12n, true);
    expect(i64(v, 0)).toBe(-12);
  });
});
