// A job's table (native-shim/src/proto.h, "the job table"), from the
// coordinator's side: the control plane of sharing. Every member of the job
// maps it; the coordinator fills in who is a member, and which attachers are
// linked to which export, and holds the robust mutex whose word says it lives.
// The members keep each other coherent through it with no help from us: an
// owner marks its export dead and waits for the linked attachers' puts in
// flight, in its own call. We write a member's segment only when it is
// dropped: then we revoke its exports in its stead.
//
// A sealed memfd (it can never shrink under a member's mapping), created and
// mapped here through koffi, opened by each member as /proc/OUR_PID/fd/N.

import { TableError, type Membership, type Table } from '../coherence/ports.js';
import { JT, M, OFF, PROTO_VERSION, X } from '../protocol/constants.js';
import { addressOf, F_ADD_SEALS, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, MAP_FAILED, MAP_SHARED, MFD_ALLOW_SEALING, MFD_CLOEXEC, pageSize, PROT_READ, PROT_WRITE, sys, view } from '../libc.js';

export { TableError, type Membership };

const GEN_MASK = 0x0fffffff;
const nextGen = (g: number): number => ((g + 1) & GEN_MASK) || 1;
const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

interface Layout {
  memberOff: number;
  headOff: number;
  linkOff: number;
  segOff: number;
  segSize: number;
  size: number;
}

function layout(page: number): Layout {
  const memberOff = JT.HDR_BYTES;
  const headOff = memberOff + JT.MEMBERS * 16;
  const linkOff = headOff + JT.MEMBERS * JT.EXPORTS * 4;
  const segOff = roundUp(linkOff + JT.LINKS * 16, page);
  const segSize = roundUp(JT.SEG_BYTES, page);
  return { memberOff, headOff, linkOff, segOff, segSize, size: segOff + JT.MEMBERS * segSize };
}

export class JobTable implements Table {
  private u32: Uint32Array;
  private readonly lay: Layout;
  private ptr: unknown;
  /** the coordinator's descriptor of the memfd (-1: in memory, for tests) */
  readonly fd: number;
  /** what the liveness word holds while we serve the job */
  readonly coordTid: number;
  private readonly gens = new Uint32Array(JT.MEMBERS);
  private readonly freeMembers: number[];
  private readonly freeLinks: number[];
  private locked = false;

  private constructor(buf: ArrayBuffer, lay: Layout, ptr: unknown, fd: number, coordTid: number) {
    this.u32 = new Uint32Array(buf);
    this.lay = lay;
    this.ptr = ptr;
    this.fd = fd;
    this.coordTid = coordTid;
    // lowest first, so a small job's members and links stay in the first pages
    this.freeMembers = Array.from({ length: JT.MEMBERS }, (_, i) => JT.MEMBERS - 1 - i);
    this.freeLinks = Array.from({ length: JT.LINKS }, (_, i) => JT.LINKS - 1 - i);
    const h = [JT.MAGIC, PROTO_VERSION, JT.MEMBERS, JT.EXPORTS, JT.HANDLES, JT.LINKS, lay.size, lay.segSize, lay.memberOff, lay.headOff, lay.linkOff, lay.segOff];
    this.u32.set(h, 0);
    Atomics.store(this.u32, OFF.JT_HDR.coord_tid / 4, coordTid);
  }

  /** A new table in a sealed memfd, its liveness word held by this thread (the main one: it lives as long as we do). */
  static create(job: string): JobTable {
    const c = sys();
    const lay = layout(pageSize());
    const fd = c.memfd_create(`pincoh-job-${job}`.slice(0, 240), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) throw new TableError(`cannot create the job table (memfd_create: errno ${c.errno()})`);
    let ptr: unknown;
    try {
      if (c.ftruncate(fd, BigInt(lay.size)) !== 0) throw new TableError(`cannot size the job table to ${lay.size} bytes (errno ${c.errno()})`);
      if (c.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !== 0) throw new TableError(`cannot seal the job table (errno ${c.errno()})`);
      ptr = c.mmap(null, lay.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
      if (addressOf(ptr) === MAP_FAILED) throw new TableError(`cannot map the job table (errno ${c.errno()})`);
    } catch (err) {
      c.close(fd);
      throw err;
    }
    const t = new JobTable(view(ptr, lay.size), lay, ptr, fd, c.gettid());
    t.lock();
    return t;
  }

  /** A table in this process's own memory, laid out as a real one (unit tests: nobody else maps it). */
  static inMemory(coordTid = 4242): JobTable {
    const lay = layout(4096);
    const t = new JobTable(new ArrayBuffer(lay.size), lay, undefined, -1, coordTid);
    Atomics.store(t.u32, OFF.JT_HDR.lock / 4, coordTid); // as a held mutex's word reads
    return t;
  }

  /** The robust mutex: initialised process-shared and robust, and locked; the kernel marks its word when we die. */
  private lock(): void {
    const c = sys();
    const attr = Buffer.alloc(16);
    const m = addressOf(this.ptr) + BigInt(OFF.JT_HDR.lock);
    if (c.pthread_mutexattr_init(attr) || c.pthread_mutexattr_setpshared(attr, 1) || c.pthread_mutexattr_setrobust(attr, 1) || c.pthread_mutex_init(m, attr) || c.pthread_mutex_lock(m))
      throw new TableError('cannot set up the job table\'s robust mutex');
    c.pthread_mutexattr_destroy(attr);
    this.locked = true;
    if (this.liveness !== this.coordTid) throw new TableError(`the job table's liveness word is ${this.liveness}, not our thread ${this.coordTid}`);
  }

  get size(): number {
    return this.lay.size;
  }

  get mapped(): boolean {
    return this.u32.length > 0;
  }

  /** The liveness word as members read it. */
  get liveness(): number {
    return Atomics.load(this.u32, OFF.JT_HDR.lock / 4);
  }

  /** The job is over here: members see the liveness word change (0), and every handle dies. */
  close(): void {
    if (!this.mapped) return;
    const c = this.ptr === undefined ? undefined : sys();
    // unlocked before unmapped: glibc keeps held robust mutexes on a list it walks
    if (this.locked && c) c.pthread_mutex_unlock(addressOf(this.ptr) + BigInt(OFF.JT_HDR.lock));
    this.locked = false;
    Atomics.store(this.u32, OFF.JT_HDR.lock / 4, 0);
    this.u32 = new Uint32Array(0);
    if (c) {
      c.munmap(this.ptr, this.lay.size);
      c.close(this.fd);
    }
    this.ptr = undefined;
  }

  // ---- members ----

  private rec(m: number): number {
    return (this.lay.memberOff + m * 16) / 4;
  }

  /** A slot for a new member, or undefined when all are taken. */
  join(pid: number): Membership | undefined {
    if (!this.mapped) return undefined;
    const m = this.freeMembers.pop();
    if (m === undefined) return undefined;
    const gen = (this.gens[m] = nextGen(this.gens[m]!));
    const word = ((gen << 4) | M.ACTIVE) >>> 0;
    Atomics.store(this.u32, this.rec(m) + 1, pid);
    Atomics.store(this.u32, this.rec(m), word);
    return { member: m, word };
  }

  memberState(m: number): number {
    if (!this.mapped) return M.FREE;
    return Atomics.load(this.u32, this.rec(m)) & 15;
  }

  memberPid(m: number): number {
    if (!this.mapped) return 0;
    return Atomics.load(this.u32, this.rec(m) + 1);
  }

  /** Dropped while it may still run: its puts are refused from now on; its slot stays its own until it is gone. */
  expel(m: number): void {
    if (!this.mapped) return;
    Atomics.store(this.u32, this.rec(m), ((this.gens[m]! << 4) | M.EXPELLED) >>> 0);
  }

  /** The member's process is gone: nothing of it is in flight. Its segment is cleared, its exports' links freed, its slot given back. */
  release(m: number): void {
    if (!this.mapped) return;
    Atomics.store(this.u32, this.rec(m), ((this.gens[m]! << 4) | M.GONE) >>> 0);
    for (let x = 1; x <= JT.EXPORTS; x++) this.freeList(m, x, undefined);
    const seg = (this.lay.segOff + m * this.lay.segSize) / 4;
    this.u32.fill(0, seg, seg + JT.SEG_BYTES / 4);
    Atomics.store(this.u32, this.rec(m) + 1, 0);
    Atomics.store(this.u32, this.rec(m), ((this.gens[m]! << 4) | M.FREE) >>> 0);
    this.freeMembers.push(m);
  }

  // ---- a member's words ----

  private exportAt(owner: number, x: number): number {
    return (this.lay.segOff + owner * this.lay.segSize + JT.SEG_EXPORTS_OFF + (x - 1) * 8) / 4;
  }

  /** Owner's export word (export slot + 1, as the shim numbers it). */
  exportWord(owner: number, x: number): number {
    if (!this.mapped) return 0;
    return Atomics.load(this.u32, this.exportAt(owner, x));
  }

  isLive(owner: number, x: number, gen: number): boolean {
    return this.exportWord(owner, x) === (((gen << 4) | X.LIVE) >>> 0);
  }

  /** Marks the export dead in the owner's stead (it was dropped); true if it was live at that generation. */
  killExport(owner: number, x: number, gen: number, reason: number): boolean {
    if (!this.mapped) return false;
    const i = this.exportAt(owner, x);
    const live = ((gen << 4) | X.LIVE) >>> 0;
    if (Atomics.load(this.u32, i) !== live) return false;
    Atomics.store(this.u32, i + 1, reason);
    return Atomics.compareExchange(this.u32, i, live, ((gen << 4) | X.DEAD) >>> 0) === live;
  }

  /** Puts of member m's handle slot in flight now. */
  inflight(m: number, slot: number): number {
    if (!this.mapped) return 0;
    return Atomics.load(this.u32, (this.lay.segOff + m * this.lay.segSize + JT.SEG_INFLIGHT_OFF + slot * 4) / 4);
  }

  // ---- links: who is attached to which export ----

  private headAt(owner: number, x: number): number {
    return (this.lay.headOff + (owner * JT.EXPORTS + (x - 1)) * 4) / 4;
  }

  private linkAt(i: number): number {
    return (this.lay.linkOff + i * 16) / 4;
  }

  /**
   * Links attacher (member, handle slot) to owner's export: written whole,
   * then published at the list's head, before the attach is answered. An
   * owner that marks the export dead afterwards reads it; one that read the
   * head before has marked the export dead before our answer, so the
   * attacher's first put sees it dead. undefined when every link is taken.
   */
  link(owner: number, x: number, gen: number, attacher: number, slot: number): number | undefined {
    if (!this.mapped) return undefined;
    const i = this.freeLinks.pop();
    if (i === undefined) return undefined;
    const at = this.linkAt(i);
    const head = this.headAt(owner, x);
    Atomics.store(this.u32, at, ((owner << 16) | (x - 1)) >>> 0);
    Atomics.store(this.u32, at + 1, gen);
    Atomics.store(this.u32, at + 2, ((attacher << 16) | slot) >>> 0);
    Atomics.store(this.u32, at + 3, Atomics.load(this.u32, head));
    Atomics.store(this.u32, head, i + 1);
    return i;
  }

  /** The attacher let go (detached, or died): the link stays in its list, empty, until its export dies. */
  unlink(i: number): void {
    if (!this.mapped) return;
    Atomics.store(this.u32, this.linkAt(i) + 2, JT.LINK_NONE);
  }

  /** The export's generation `gen` died and its owner has revoked it (REVOKED): its links are free again (every generation's, if undefined). */
  freeList(owner: number, x: number, gen: number | undefined): void {
    if (!this.mapped) return;
    const head = this.headAt(owner, x);
    let i = Atomics.load(this.u32, head);
    const keep: number[] = [];
    for (let n = 0; i !== 0 && n < JT.LINKS; n++) {
      const at = this.linkAt(i - 1);
      const next = Atomics.load(this.u32, at + 3);
      if (gen === undefined || Atomics.load(this.u32, at + 1) === gen) this.freeLinks.push(i - 1);
      else keep.push(i - 1);
      i = next;
    }
    let next = 0;
    for (const k of keep.reverse()) {
      Atomics.store(this.u32, this.linkAt(k) + 3, next);
      next = k + 1;
    }
    Atomics.store(this.u32, head, next);
  }

  /** Links in use (status, tests). */
  get linksUsed(): number {
    return JT.LINKS - this.freeLinks.length;
  }

  /** Members with a slot, quarantined ones included (status, tests). */
  get membersUsed(): number {
    return JT.MEMBERS - this.freeMembers.length;
  }

  /** For tests: the raw words. */
  get words(): Uint32Array {
    return this.u32;
  }

  /** For tests: a member's segment offset in words. */
  segmentWord(m: number): number {
    return (this.lay.segOff + m * this.lay.segSize) / 4;
  }
}
