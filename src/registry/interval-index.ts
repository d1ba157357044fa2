// One process's registrations, in a B+tree of wide nodes ordered by
// (start, key). Each slot of a node carries two things about what lies under it:
// `lo`, its smallest entry (in a leaf, the entry itself), which routes descents;
// and `hi`, the largest end under it (in a leaf, the entry's own end), which
// prunes overlap queries. A subtree can hold a registration overlapping [a, b)
// only if its smallest start is below b and its largest end above a, so a query
// visits the path to b plus the paths to what it reports: O((1 + k) log n)
// nodes at worst, usually far fewer as reported entries share ancestors.
// add and remove descend once by (start, key) and fix summaries on the way back
// up (splitting, or merging and redistributing with a sibling): O(log n) nodes,
// O(width) work in each, whatever the order of operations. A Map finds an entry
// by key; its (start, key) then finds its leaf, with no scan.
// Wide nodes (parallel arrays of starts, ends and children) are the shape the
// shim's table is meant to take too.

export interface Registration {
  key: bigint;
  start: number;
  end: number;
  flags: number;
}

interface Node {
  /** leaf: its entries; inner: each child's smallest entry. Ascending by (start, key). */
  lo: Registration[];
  /** per slot, the largest end under it: the entry's end in a leaf, the child's max end in an inner node */
  hi: number[];
  /** an inner node's children, one per slot; null in a leaf */
  kids: Node[] | null;
}

/** x at or before e in (start, key) order */
function le(x: Registration, e: Registration): boolean {
  return x.start < e.start || (x.start === e.start && x.key <= e.key);
}

function maxOf(a: number[]): number {
  let m = -Infinity;
  for (const v of a) if (v > m) m = v;
  return m;
}

/** Moves n's upper half into a new node, returned. */
function split(n: Node): Node {
  const h = n.lo.length >> 1;
  return { lo: n.lo.splice(h), hi: n.hi.splice(h), kids: n.kids && n.kids.splice(h) };
}

export class IntervalIndex {
  private root: Node = { lo: [], hi: [], kids: null };
  /** Entries are frozen: a caller changing start or end would silently misplace them in the tree. */
  private byKey = new Map<bigint, Readonly<Registration>>();
  /** bytes registered, kept as registrations come and go (status and metrics read it) */
  private total = 0;
  private readonly width: number;
  private readonly min: number;
  private visited = 0;

  /** width: most slots per node (every node but the root holds at least half); smaller only in tests, to grow deep trees. */
  constructor(width = 32) {
    if (!Number.isInteger(width) || width < 4) throw new RangeError(`node width ${width}: at least 4`);
    this.width = width;
    this.min = width >> 1;
  }

  get size(): number {
    return this.byKey.size;
  }

  get bytes(): number {
    return this.total;
  }

  /** For tests: nodes entered so far by add, remove and overlapping, so work can be measured without a clock. */
  get visits(): number {
    return this.visited;
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
    const e = Object.freeze({ key: r.key, start: r.start, end: r.end, flags: r.flags });
    const right = this.insert(this.root, e);
    if (right) {
      const left = this.root;
      this.root = { lo: [left.lo[0]!, right.lo[0]!], hi: [maxOf(left.hi), maxOf(right.hi)], kids: [left, right] };
    }
    this.byKey.set(e.key, e);
    this.total += e.end - e.start;
    return true;
  }

  remove(key: bigint): Registration | undefined {
    const e = this.byKey.get(key);
    if (!e) return undefined;
    this.delete(this.root, e);
    if (this.root.kids?.length === 1) this.root = this.root.kids[0]!;
    this.byKey.delete(key);
    this.total -= e.end - e.start;
    return e;
  }

  /** Registrations overlapping [a, b) (start < b && a < end), in ascending (start, key) order. */
  overlapping(a: number, b: number): Registration[] {
    const out: Registration[] = [];
    this.collect(this.root, a, b, out);
    return out;
  }

  /** Every registration, in ascending (start, key) order. */
  *[Symbol.iterator](): IterableIterator<Registration> {
    const todo = [this.root];
    for (let n = todo.pop(); n; n = todo.pop()) {
      if (!n.kids) yield* n.lo;
      else for (let i = n.kids.length - 1; i >= 0; i--) todo.push(n.kids[i]!);
    }
  }

  /**
   * For tests: throws unless the tree is well formed: entries strictly ascending,
   * every lo and hi equal to what lies under its slot, every node but the root
   * between half full and full (an inner root with two children at least),
   * all leaves at one depth, and the map, size and bytes agreeing with the leaves.
   */
  checkInvariants(): void {
    const fail = (why: string): never => {
      throw new Error(`IntervalIndex: ${why}`);
    };
    let prev: Registration | undefined;
    let count = 0;
    let bytes = 0;
    let leafDepth = -1;
    const walk = (n: Node, depth: number, isRoot: boolean): void => {
      if (n.lo.length !== n.hi.length || (n.kids && n.kids.length !== n.lo.length)) fail('slot arrays of different lengths');
      if (n.lo.length > this.width) fail(`a node of ${n.lo.length} slots`);
      if (!isRoot && n.lo.length < this.min) fail(`a node of ${n.lo.length} slots, under half full`);
      if (isRoot && n.kids && n.kids.length < 2) fail('an inner root with one child');
      if (!n.kids) {
        if (leafDepth === -1) leafDepth = depth;
        else if (depth !== leafDepth) fail(`leaves at depths ${leafDepth} and ${depth}`);
        n.lo.forEach((e, i) => {
          if (prev && le(e, prev)) fail(`entry ${e.key} not after ${prev.key}`);
          if (n.hi[i] !== e.end) fail(`entry ${e.key}: hi ${n.hi[i]}, end ${e.end}`);
          if (this.byKey.get(e.key) !== e) fail(`entry ${e.key} not the one its key maps to`);
          prev = e;
          count++;
          bytes += e.end - e.start;
        });
        return;
      }
      n.kids.forEach((c, i) => {
        if (n.lo[i] !== c.lo[0]) fail(`slot ${i}: lo is not its child's first entry`);
        if (n.hi[i] !== maxOf(c.hi)) fail(`slot ${i}: hi ${n.hi[i]}, child's max end ${maxOf(c.hi)}`);
        walk(c, depth + 1, false);
      });
    };
    walk(this.root, 0, true);
    if (count !== this.byKey.size) fail(`${count} entries in leaves, ${this.byKey.size} keys`);
    if (bytes !== this.total) fail(`${bytes} bytes in leaves, ${this.total} counted`);
  }

  /** number of n's slots whose lo is at or before e */
  private upto(n: Node, e: Registration): number {
    let lo = 0;
    let hi = n.lo.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (le(n.lo[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** slot i of inner node n, after its child changed */
  private refresh(n: Node, i: number): void {
    const c = n.kids![i]!;
    n.lo[i] = c.lo[0]!;
    n.hi[i] = maxOf(c.hi);
  }

  /** Puts e under n; returns n's new right half if n overflowed. */
  private insert(n: Node, e: Registration): Node | null {
    this.visited++;
    const p = this.upto(n, e);
    if (!n.kids) {
      n.lo.splice(p, 0, e);
      n.hi.splice(p, 0, e.end);
    } else {
      // the last child starting at or before e; the first if e comes before them all
      const i = Math.max(p - 1, 0);
      const right = this.insert(n.kids[i]!, e);
      this.refresh(n, i);
      if (right) {
        n.kids.splice(i + 1, 0, right);
        n.lo.splice(i + 1, 0, right.lo[0]!);
        n.hi.splice(i + 1, 0, maxOf(right.hi));
      }
    }
    return n.lo.length > this.width ? split(n) : null;
  }

  /** Takes e (present) from under n; n may be left under half full, for its parent to mend. */
  private delete(n: Node, e: Registration): void {
    this.visited++;
    // lo is each slot's exact smallest entry, so e is in the last slot at or before it
    const i = this.upto(n, e) - 1;
    if (!n.kids) {
      if (n.lo[i] !== e) throw new Error(`IntervalIndex: entry ${e.key} not where its (start, key) leads`);
      n.lo.splice(i, 1);
      n.hi.splice(i, 1);
      return;
    }
    const c = n.kids[i]!;
    this.delete(c, e);
    if (c.lo.length < this.min) this.mend(n, i);
    else this.refresh(n, i);
  }

  /**
   * Child i of n fell under half full: pool it with a neighbour. If the two fit
   * in one node they stay merged; otherwise they are split evenly again, both
   * then at least half full. Either way n's slots for them are refreshed.
   */
  private mend(n: Node, i: number): void {
    this.visited++; // the neighbour
    const kids = n.kids!;
    const l = i > 0 ? i - 1 : i;
    const a = kids[l]!;
    const b = kids[l + 1]!;
    a.lo.push(...b.lo);
    a.hi.push(...b.hi);
    if (a.kids) a.kids.push(...b.kids!);
    if (a.lo.length <= this.width) {
      kids.splice(l + 1, 1);
      n.lo.splice(l + 1, 1);
      n.hi.splice(l + 1, 1);
    } else {
      kids[l + 1] = split(a);
      this.refresh(n, l + 1);
    }
    this.refresh(n, l);
  }

  /** Appends to out the entries under n overlapping [a, b), in order. */
  private collect(n: Node, a: number, b: number, out: Registration[]): void {
    this.visited++;
    // slots are ascending by start: once one starts at or after b, all later ones do
    for (let i = 0; i < n.lo.length && n.lo[i]!.start < b; i++) {
      if (n.hi[i]! <= a) continue;
      if (n.kids) this.collect(n.kids[i]!, a, b, out);
      else out.push(n.lo[i]!);
    }
  }
}
