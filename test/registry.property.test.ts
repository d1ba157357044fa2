// The interval index against a naive model, over random operations; its tree's
// own invariants; and its work per operation, counted in nodes, never timed.

import { describe, expect, it } from 'vitest';
import { IntervalIndex, type Registration } from '../src/registry/interval-index.js';

/** A small deterministic PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
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

  it('lists equal starts by key, in iteration and in overlap queries alike', () => {
    const idx = new IntervalIndex(4);
    for (const k of [5n, 3n, 9n, 1n, 7n, 2n]) idx.add({ key: k, start: 100, end: 100 + Number(k), flags: 1 });
    idx.add({ key: 4n, start: 50, end: 101, flags: 1 });
    idx.add({ key: 8n, start: 101, end: 200, flags: 1 }); // starts where key 1 ends
    expect([...idx].map((r) => r.key)).toEqual([4n, 1n, 2n, 3n, 5n, 7n, 9n, 8n]);
    expect(idx.overlapping(101, 102).map((r) => r.key)).toEqual([2n, 3n, 5n, 7n, 9n, 8n]);
    expect(idx.overlapping(0, 100).map((r) => r.key)).toEqual([4n]);
    idx.checkInvariants();
  });

  it('hands out entries that cannot be changed under it, and keeps none of the caller\'s objects', () => {
    const idx = new IntervalIndex();
    const mine = { key: 1n, start: 0, end: 10, flags: 1 };
    idx.add(mine);
    mine.end = 1 << 30; // the caller's object is its own
    const r = idx.get(1n)!;
    expect(r).toEqual({ key: 1n, start: 0, end: 10, flags: 1 });
    expect(idx.overlapping(0, 1)[0]).toBe(r);
    expect([...idx][0]).toBe(r);
    expect(() => {
      r.start = 5;
    }).toThrow(TypeError);
    expect(idx.remove(1n)).toBe(r);
  });

  // Long runs: the population swells to a few thousand and drains to nothing,
  // twice, so nodes split, merge and redistribute at every level, and the root
  // grows and shrinks. Removals oldest first, newest first or at random.
  for (const seed of [7, 99, 2024]) {
    for (const order of ORDERS) {
      it(`matches the model over 20,000 operations, removing ${order} (seed ${seed})`, () => {
        modelRun({ seed, order, steps: 20_000, invariantsEvery: 250 });
      });
    }
  }

  // The tree's own shape checked after every operation; width 4 makes it deep.
  for (const width of [4, 5, 32]) {
    for (const order of ORDERS) {
      it(`keeps its invariants after every operation (width ${width}, removing ${order})`, () => {
        modelRun({ seed: width * 31 + order.length, order, steps: 3000, width, invariantsEvery: 1 });
      });
    }
  }
});

const ORDERS = ['oldest first', 'newest first', 'at random'] as const;

/** (start, key) order: how iteration and overlapping list entries */
function byStartKey(x: Registration, y: Registration): number {
  return x.start - y.start || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
}

/**
 * Random operations against a model Map. Intervals short and long, some empty,
 * some sharing a start, some starting where another ends; queries at random,
 * empty, and touching an entry without overlapping it. The chance of adding
 * swings around a half over `steps / 2`, so the population rises and drains.
 */
function modelRun(o: { seed: number; order: (typeof ORDERS)[number]; steps: number; width?: number; invariantsEvery: number }): void {
  const rnd = prng(o.seed);
  const idx = new IntervalIndex(o.width);
  const model = new Map<bigint, Registration>();
  const live: bigint[] = []; // keys in arrival order (under random removal, in no order)
  let nextKey = 1n;
  const span = 1 << 20;
  const below = (n: number) => Math.floor(rnd() * n);
  const someEntry = () => model.get(live[below(live.length)]!)!;
  // keys joined into one string: toEqual over thousands of bigints is slow
  const keysOf = (rs: Iterable<Registration>) => Array.from(rs, (m) => m.key).join();
  const wantOf = (a: number, b: number) => keysOf([...model.values()].filter((m) => m.start < b && a < m.end).sort(byStartKey));
  for (let step = 0; step < o.steps; step++) {
    const pAdd = 0.5 + 0.45 * Math.sin((4 * Math.PI * step) / o.steps);
    const c = rnd();
    if (c < 0.15 && model.size > 0) {
      const q = rnd();
      let a: number;
      let b: number;
      if (q < 0.15) {
        const e = someEntry();
        a = e.end; // just after e
        b = a + 1 + below(64);
      } else if (q < 0.3) {
        const e = someEntry();
        b = e.start; // just before e
        a = Math.max(0, b - 1 - below(64));
      } else if (q < 0.35) {
        a = b = below(span); // empty
      } else {
        a = below(span);
        b = a + 1 + below(rnd() < 0.1 ? span : 1024);
      }
      expect(keysOf(idx.overlapping(a, b)), `overlapping(${a}, ${b})`).toBe(wantOf(a, b));
    } else if (c < 0.15 + 0.85 * pAdd || model.size === 0) {
      const s = rnd();
      const start = model.size > 0 && s < 0.2 ? someEntry().start : model.size > 0 && s < 0.3 ? someEntry().end : below(span);
      const l = rnd();
      const len = l < 0.02 ? 0 : l < 0.9 ? 1 + below(256) : below(span);
      const reg = { key: nextKey++, start, end: start + len, flags: 1 + below(3) };
      expect(idx.add(reg)).toBe(true);
      model.set(reg.key, reg);
      live.push(reg.key);
      if (rnd() < 0.01) expect(idx.add({ ...someEntry(), start: below(span) })).toBe(false);
    } else {
      let key: bigint;
      if (o.order === 'oldest first') key = live.shift()!;
      else if (o.order === 'newest first') key = live.pop()!;
      else {
        const i = below(live.length);
        key = live[i]!;
        live[i] = live[live.length - 1]!;
        live.pop();
      }
      expect(idx.remove(key)).toEqual(model.get(key));
      model.delete(key);
      expect(idx.has(key)).toBe(false);
      if (rnd() < 0.01) expect(idx.remove(key)).toBeUndefined();
    }
    expect(idx.size).toBe(model.size);
    if (model.size > 0 && rnd() < 0.05) {
      const e = someEntry();
      expect(idx.get(e.key)).toEqual(e);
    }
    if (step % o.invariantsEvery === 0) idx.checkInvariants();
    if (step % 100 === 0 || step === o.steps - 1) {
      expect(idx.bytes).toBe([...model.values()].reduce((n, m) => n + m.end - m.start, 0));
      const all = [...idx];
      expect(all.findIndex((m, i) => i > 0 && all[i - 1]!.start > m.start), 'an entry starting before the one iterated ahead of it').toBe(-1);
      expect(keysOf(all)).toBe(keysOf([...model.values()].sort(byStartKey)));
    }
  }
  idx.checkInvariants();
}

// Work per operation, counted in nodes entered (IntervalIndex.visits): no clock.
// A linear structure would do 100 times the work at 100,000 entries as at 1,000.
describe('IntervalIndex work per operation', () => {
  /** n registrations, keys in arrival order 1..n, starts at random or rising with arrival (as allocations often do) */
  function filled(n: number, layout: 'random' | 'rising'): IntervalIndex {
    const rnd = prng(n);
    const idx = new IntervalIndex();
    for (let k = 1; k <= n; k++) {
      const start = layout === 'rising' ? k * 1024 : Math.floor(rnd() * n * 1024);
      idx.add({ key: BigInt(k), start, end: start + 1 + Math.floor(rnd() * 512), flags: 1 });
    }
    return idx;
  }

  /** the average visits of `ops` operations, each done by f(i) */
  function perOp(idx: IntervalIndex, ops: number, f: (i: number) => void): number {
    const before = idx.visits;
    for (let i = 0; i < ops; i++) f(i);
    return (idx.visits - before) / ops;
  }

  for (const layout of ['random', 'rising'] as const) {
    it(`grows like log n from 1,000 to 100,000 entries: add, remove oldest, overlapping (${layout} starts)`, () => {
      const cost = (n: number) => {
        const idx = filled(n, layout);
        const rnd = prng(3);
        const add = perOp(idx, 200, (i) => {
          const start = Math.floor(rnd() * n * 1024);
          idx.add({ key: BigInt(n + 1 + i), start, end: start + 100, flags: 1 });
        });
        const removeOldest = perOp(idx, 200, (i) => idx.remove(BigInt(i + 1)));
        const overlapping = perOp(idx, 200, () => {
          const a = Math.floor(rnd() * n * 1024);
          idx.overlapping(a, a + 64);
        });
        return { add, removeOldest, overlapping };
      };
      const small = cost(1000);
      const big = cost(100_000);
      for (const op of ['add', 'removeOldest', 'overlapping'] as const) {
        expect(big[op], `${op}: ${small[op]} visits at 1,000, ${big[op]} at 100,000`).toBeLessThan(10 * small[op]);
        expect(big[op], op).toBeLessThan(30);
      }
    });
  }

  const drains = [
    ['oldest first', 'random'],
    ['oldest first', 'rising'],
    ['newest first', 'random'],
    ['at random', 'random'],
  ] as const;
  for (const [how, layout] of drains) {
    it(`builds and then empties 100,000 entries ${how} in well under 100 visits an operation (${layout} starts)`, () => {
      const n = 100_000;
      const idx = filled(n, layout);
      expect(idx.visits / n).toBeLessThan(100);
      const keys = Array.from({ length: n }, (_, i) => BigInt(i + 1));
      if (how === 'newest first') keys.reverse();
      if (how === 'at random') {
        const rnd = prng(11);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [keys[i], keys[j]] = [keys[j]!, keys[i]!];
        }
      }
      let removed = 0;
      const visits = perOp(idx, n, (i) => idx.remove(keys[i]!) && removed++);
      expect(removed).toBe(n);
      expect(visits).toBeLessThan(100);
      expect(visits).toBeLessThan(10); // about the depth, 4 here, and a neighbour now and then
      expect(idx.size).toBe(0);
      expect(idx.bytes).toBe(0);
      idx.checkInvariants();
    });
  }
});
