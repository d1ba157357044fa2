// The interval index against a naive model, over random operations.

import { describe, expect, it } from 'vitest';
import { IntervalIndex, type Registration } from '../src/registry/interval-index.js';

/** A small deterministic PRNG (mulberry32), so a failure replays. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('IntervalIndex', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    it(`matches a naive model, its byte count too (seed ${seed})`, () => {
      const rnd = prng(seed);
      const idx = new IntervalIndex();
      const model = new Map<bigint, Registration>();
      let nextKey = 1n;
      const span = 1 << 16;
      for (let step = 0; step < 3000; step++) {
        const r = rnd();
        if (r < 0.45 || model.size === 0) {
          const start = Math.floor(rnd() * span);
          const len = 1 + Math.floor(rnd() * (rnd() < 0.1 ? span : 512));
          const reg = { key: nextKey++, start, end: start + len, flags: 1 };
          expect(idx.add(reg)).toBe(true);
          model.set(reg.key, reg);
        } else if (r < 0.7) {
          const keys = [...model.keys()];
          const key = keys[Math.floor(rnd() * keys.length)]!;
          expect(idx.remove(key)?.key).toBe(key);
          model.delete(key);
        } else {
          const a = Math.floor(rnd() * span);
          const b = a + Math.floor(rnd() * 1024);
          const want = [...model.values()].filter((m) => m.start < b && a < m.end).map((m) => m.key).sort();
          const got = idx.overlapping(a, b).map((m) => m.key).sort();
          expect(got).toEqual(want);
        }
        expect(idx.size).toBe(model.size);
        expect(idx.bytes).toBe([...model.values()].reduce((n, m) => n + m.end - m.start, 0));
      }
    });
  }

  it('refuses a duplicate key and removes unknown keys as undefined', () => {
    const idx = new IntervalIndex();
    expect(idx.add({ key: 1n, start: 0, end: 10, flags: 1 })).toBe(true);
    expect(idx.add({ key: 1n, start: 20, end: 30, flags: 1 })).toBe(false);
    expect(idx.remove(2n)).toBeUndefined();
  });
});
