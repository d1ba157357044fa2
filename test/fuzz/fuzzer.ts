// A frame fuzzer for the coordinator: many connections, each a stream of
// random, mutated and plausible frames. Used by test/fuzz.test.ts (short) and
// `npm run fuzz` (10^6 frames).

import { createConnection } from 'node:net';
import { FRAME_MAX, PROTO_VERSION, R, SIZE, T } from '../../src/protocol/constants.js';
import { fakeArea, type FakeArea } from '../helpers.js';

export interface FuzzResult {
  frames: number;
  mutated: number;
  connections: number;
  closedByCoordinator: number;
}

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAYLOAD: Record<number, number> = {
  [T.SYNC]: SIZE.SYNC,
  [T.PUBLISH]: SIZE.PUBLISH,
  [T.ATTACH]: SIZE.ATTACH,
  [T.DETACH]: SIZE.DETACH,
  [T.BARRIER]: SIZE.BARRIER,
};

/** Events in the connection's ring: mostly plausible (small keys, so they
 * meet each other), now and then one the shim would never write. */
function events(area: FakeArea, rnd: () => number, n: number): number {
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const key = BigInt(1 + Math.floor(rnd() * 16));
    const type = 1 + Math.floor(rnd() * 7);
    const mutate = rnd() < 0.01;
    if (mutate) bad++;
    area.write({
      type: mutate ? Math.floor(rnd() * 65536) : type,
      reason: 1 + Math.floor(rnd() * (mutate ? 60000 : 7)),
      call: Math.floor(rnd() * 4),
      flags: type === R.REG && !mutate ? 1 + Math.floor(rnd() * 3) : Math.floor(rnd() * 8),
      key: mutate && rnd() < 0.5 ? 0n : key,
      addr: 4096 * Math.floor(rnd() * 64),
      len: mutate ? Math.floor(rnd() * 2 ** 53) : 4096 * (1 + Math.floor(rnd() * 4)),
      result: Math.floor(rnd() * 100) - 50,
    });
  }
  return bad;
}
const TYPES = Object.keys(PAYLOAD).map(Number);

/** One frame: plausible (right type and size, random fields) or mutated. */
function frame(rnd: () => number, seq: number, mutate: boolean): Buffer {
  const type = TYPES[Math.floor(rnd() * TYPES.length)]!;
  let len = PAYLOAD[type]!;
  const p = Buffer.alloc(len);
  for (let i = 0; i < len; i++) p[i] = rnd() < 0.7 ? 0 : Math.floor(rnd() * 256); // mostly small numbers
  // names: NUL-terminated unless mutated
  if (type === T.PUBLISH) p.write(`n${Math.floor(rnd() * 8)}\0`, 8);
  if (type === T.ATTACH) {
    p.write(`n${Math.floor(rnd() * 8)}\0`, 16);
    p.writeInt32LE(Math.floor(rnd() * 50), 8); // short waits, mostly
  }
  if (type === T.BARRIER) p.writeInt32LE(Math.floor(rnd() * 50), 0);
  let hdrType = type;
  let hdrLen = 16 + len;
  if (mutate) {
    switch (Math.floor(rnd() * 6)) {
      case 0: hdrType = 16 + Math.floor(rnd() * 60000); break; // unknown type
      case 1: hdrLen = Math.floor(rnd() * 16); break; // below the header
      case 2: hdrLen = FRAME_MAX + 1 + Math.floor(rnd() * 1e6); break; // huge
      case 3: len = Math.floor(rnd() * len); hdrLen = 16 + len; break; // truncated payload
      case 4: p.fill(0xff); if (type === T.PUBLISH || type === T.ATTACH) break; else hdrType = T.HELLO; break; // a second HELLO
      default: p.fill(0x41); hdrType = T.PUBLISH; hdrLen = 16 + SIZE.PUBLISH; break; // unterminated name
    }
  }
  const out = Buffer.alloc(16 + Math.min(len, p.length));
  out.writeUInt32LE(hdrLen >>> 0, 0);
  out.writeUInt16LE(hdrType & 0xffff, 4);
  out.writeUInt16LE(rnd() < 0.1 ? 1 : 0, 6);
  out.writeBigUInt64LE(BigInt(rnd() < 0.05 ? Math.floor(rnd() * 1e9) : seq), 8); // out-of-order seq now and then
  p.copy(out, 16, 0, Math.min(len, p.length));
  return out;
}

/** Sends `frames` frames over connections of random length; `parallel` at a time. */
export async function fuzz(socketPath: string, frames: number, seed = 1, parallel = 8): Promise<FuzzResult> {
  const rnd = prng(seed);
  const res: FuzzResult = { frames: 0, mutated: 0, connections: 0, closedByCoordinator: 0 };
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const n = 1 + Math.floor(rnd() * 2000);
      const noHello = rnd() < 0.05;
      const area = fakeArea();
      if (!noHello) chunks.push(area.hello({ version: rnd() < 0.02 ? 7 : PROTO_VERSION, size: 2, argv0: 'fuzz', job: 'fuzz' }));
      res.mutated += events(area, rnd, Math.floor(rnd() * 200));
      for (let i = 0; i < n && res.frames < frames; i++) {
        const m = rnd() < 0.002;
        chunks.push(frame(rnd, i + 1, m));
        res.frames++;
        if (m) res.mutated++;
      }
      res.connections++;
      const s = createConnection(socketPath);
      let ended = false;
      s.on('data', () => {}); // replies, errors: read and dropped
      s.on('error', () => {});
      s.on('end', () => {
        if (!ended) res.closedByCoordinator++;
      });
      s.on('close', () => {
        area.close();
        resolve();
      });
      s.on('connect', () => {
        s.write(Buffer.concat(chunks));
        // linger a little for replies, then hang up
        setTimeout(() => {
          ended = true;
          s.destroy();
        }, 20);
      });
    });
  const running = new Set<Promise<void>>();
  while (res.frames < frames) {
    const p = one().then(() => void running.delete(p));
    running.add(p);
    if (running.size >= parallel) await Promise.race(running);
  }
  await Promise.all(running);
  return res;
}
