// npx tsx bench/index.ts: the registry's IntervalIndex (a B+tree) against the
// sorted array it replaced (ArrayIndex below, copied unchanged from before), both
// measured in this run. µs per add and per remove at 1,000 / 10,000 / 100,000
// entries. It prints; it does not judge.
//
// Each row removes some of the entries (a tenth, at most 2,000) in the given
// order (oldest first, newest first, at random; keys are given in arrival order,
// starts at random) and puts them back; "add" is putting back the ones removed at
// random, into an index of 90% to 100% of n. Repeated for at least 6,000 timed
// operations (3 rounds at least); the best round is shown (on a busy machine a
// round's time swings many-fold with preemption; its work does not). Building is not
// timed: the tree is built in arrival order, as registrations come; the array in
// start order, which gives the very array arrival order would, in seconds fewer.

import { IntervalIndex, type Registration } from '../src/registry/interval-index.js';

// ---------------------------------------------------------------------------
// ArrayIndex: the baseline, the previous src/registry/interval-index.ts as it was
// (commit 9c7c248), only renamed. Linear per add and remove: a splice, and the
// running prefix maximum (pmax) rewritten from there to the end.

interface Slot extends Registration {
  pmax: number;
}

class ArrayIndex {
  private slots: Slot[] = [];
  private byKey = new Map<bigint, Slot>();
  /** bytes registered, kept as registrations come and go (status and metrics read it) */
  private total = 0;

  get size(): number {
    return this.slots.length;
  }

  get bytes(): number {
    return this.total;
  }

  get(key: bigint): Registration | undefined {
    return this.byKey.get(key);
  }

  has(key: bigint): boolean {
    return this.byKey.has(key);
  }

  /** Returns false if the key is already present. */
  add(r: Registration): boolean {
    if (this.byKey.has(r.key)) return false;
    const s: Slot = { key: r.key, start: r.start, end: r.end, flags: r.flags, pmax: 0 };
    const p = this.below(r.start + 1);
    if (p === this.slots.length) this.slots.push(s);
    else this.slots.splice(p, 0, s);
    this.byKey.set(r.key, s);
    this.total += r.end - r.start;
    this.fixPmax(p);
    return true;
  }

  remove(key: bigint): Registration | undefined {
    const s = this.byKey.get(key);
    if (!s) return undefined;
    let i = this.below(s.start);
    while (this.slots[i] !== s) i++;
    this.slots.splice(i, 1);
    this.byKey.delete(key);
    this.total -= s.end - s.start;
    this.fixPmax(i);
    return s;
  }

  /** Registrations overlapping [a, b), in descending start order. */
  overlapping(a: number, b: number): Registration[] {
    const out: Registration[] = [];
    for (let i = this.below(b) - 1; i >= 0; i--) {
      const s = this.slots[i]!;
      if (s.pmax <= a) break;
      if (s.end > a) out.push(s);
    }
    return out;
  }

  *[Symbol.iterator](): IterableIterator<Registration> {
    yield* this.slots;
  }

  /** number of entries with start < x */
  private below(x: number): number {
    let lo = 0;
    let hi = this.slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.slots[mid]!.start < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private fixPmax(from: number): void {
    let m = from > 0 ? this.slots[from - 1]!.pmax : 0;
    for (let i = from; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.end > m) m = s.end;
      s.pmax = m;
    }
  }
}
// ---------------------------------------------------------------------------

interface Index {
  add(r: Registration): boolean;
  remove(key: bigint): Registration | undefined;
}

/** mulberry32, so every run times the same entries */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ORDERS = ['oldest first', 'newest first', 'at random'] as const;
type Row = Record<(typeof ORDERS)[number] | 'add', number>;

/** µs per operation for one index at n entries */
function measure(make: () => Index, n: number, startOrder: boolean): Row {
  const rnd = prng(n);
  const regs: Registration[] = [];
  for (let k = 1; k <= n; k++) {
    const start = Math.floor(rnd() * n * 4096);
    regs.push({ key: BigInt(k), start, end: start + 1 + Math.floor(rnd() * (rnd() < 0.05 ? 1 << 24 : 8192)), flags: 3 });
  }
  const idx = make();
  for (const r of startOrder ? [...regs].sort((a, b) => a.start - b.start) : regs) idx.add(r);
  const m = Math.min(n / 10, 2000);
  const rounds = Math.max(3, Math.ceil(6000 / m));
  const shuffled = [...regs];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const row = { add: 0 } as Row;
  for (const order of ORDERS) {
    const some = order === 'oldest first' ? regs.slice(0, m) : order === 'newest first' ? regs.slice(n - m).reverse() : shuffled.slice(0, m);
    const removing: number[] = [];
    const adding: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let t = performance.now();
      for (const r of some) idx.remove(r.key);
      removing.push(((performance.now() - t) * 1000) / m);
      t = performance.now();
      for (const r of some) idx.add(r);
      adding.push(((performance.now() - t) * 1000) / m);
    }
    row[order] = Math.min(...removing);
    if (order === 'at random') row.add = Math.min(...adding);
  }
  return row;
}

const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)).padStart(9);

// warm both up, so neither pays for compiling
measure(() => new IntervalIndex(), 1000, false);
measure(() => new ArrayIndex(), 1000, true);

console.log('IntervalIndex (B+tree, nodes of 32) vs ArrayIndex (the sorted array it replaced, the baseline): µs per operation');
console.log(`${'entries'.padStart(9)}  ${'operation'.padEnd(22)}${'tree'.padStart(9)}${'array'.padStart(9)}  array/tree`);
for (const n of [1000, 10_000, 100_000]) {
  const tree = measure(() => new IntervalIndex(), n, false);
  const array = measure(() => new ArrayIndex(), n, true);
  for (const op of ['add', ...ORDERS] as const) {
    console.log(`${n.toLocaleString('en').padStart(9)}  ${(op === 'add' ? 'add' : `remove ${op}`).padEnd(22)}${fmt(tree[op])}${fmt(array[op])}  ${(array[op] / tree[op]).toFixed(1).padStart(9)}×`);
  }
}
