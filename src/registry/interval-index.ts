// One process's registrations: sorted by start, each entry also holding the
// largest end among itself and the entries before it (pmax). Then the entries
// overlapping [a, b) are exactly those found walking back from the last start
// below b while pmax > a. The same layout as the shim's table (table.c).

export interface Registration {
  key: bigint;
  start: number;
  end: number;
  flags: number;
}

interface Slot extends Registration {
  pmax: number;
}

export class IntervalIndex {
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
