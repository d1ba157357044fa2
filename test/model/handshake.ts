// An explicit-state model checker for the revoke-versus-put handshake.
//
// The model. Processes share a job table; one OWNER published a memory
// region as export slot x (generation G); ATTACHERS hold handles on it and do
// one-sided puts (process_vm_writev into the owner). Before its real call
// (munmap/mremap/mprotect) the owner revokes every attachment in place and
// waits only for a put already in flight. Shared words:
//   E        the export word, LIVE(G) or DEAD (written by the owner)
//   list     the attachers linked to x (written by the coordinator)
//   I[a]     attacher a's in-flight counter (written by a only, atomic RMW)
//   M        the owner's memory, MAPPED until O4
//   reply[a] the coordinator's attach reply to a; dead[a] a is known dead
// Steps, and the C code each stands for:
//   O1 E := DEAD (xchg)                      pc_jt_export_kill
//   O2 L := list                             the link walk in the owner's slow path
//   O3 for a in L: await I[a] == 0, or a     the same walk: wait for a put in flight,
//      known dead, or (a stopped with I[a]   bounded; on expiry the coordinator
//      > 0) expire: the coordinator kills a  kills a (engine.ts cutOff)
//   O4 M := UNMAPPED                         the real call
//   C1 list |= {a}; C2 reply to a            the coordinator's attach
//   A0 await reply; A1 I[a]++ (RMW);         pincoh_put: fetch_add(inflight),
//   A2 read E, DEAD -> A2x I[a]-- and        load the export word (-ESTALE),
//      -ESTALE; A3 write M; A4 I[a]--        process_vm_writev, fetch_sub
// The environment may kill an attacher at any step (it takes no more steps;
// I[a] keeps its value), or stop one inside a put (after A1, before its
// decrement) and resume it; at most one stop per attacher, so the state graph
// is acyclic and a deadlock is exactly a final state with the owner unfinished.
// Safety: no A3 finds M UNMAPPED. Liveness: no reachable state from which the
// owner can never finish.
//
// Memory models. SC: every step is one atomic action in a total order (C11
// seq_cst). TSO (x86-TSO): every process has a FIFO store buffer; a plain store
// enters it; a load reads the process's newest buffered value for that word,
// else memory; a 'drain' step (any time, even after the process died: the
// buffer is the CPU's) moves the oldest entry to memory; an RMW, a fenced
// store (what gcc emits for a seq_cst store: xchg) and a syscall (A3, O4, the
// coordinator's socket reply) wait for an empty buffer and act on memory.
// Seq_cst loads are plain loads. In the correct protocol every store is fenced
// or locked, so no store is ever buffered and TSO reaches exactly SC's states;
// the variants with a plain store show what each fence is for.
//
// Search: breadth first over every interleaving, states deduplicated by key;
// the locals of a killed or finished attacher are cleared (they no longer
// matter), which merges states but loses no behaviour.
//
// Not covered: hardware models weaker than TSO (ARM, POWER: loads reordered
// with loads, no multi-copy atomicity on POWER; the C11 seq_cst mapping there
// is trusted, not checked); the kernel's side of process_vm_writev
// (the model takes a write as one instant, and "dead" as a process that can
// no longer write, so the C code must treat an attacher as dead only once it
// has exited, not when the signal is sent); the bounded wait's timing (an
// expiry is modelled only for a stopped attacher; a slow one that is killed is
// a kill); generations (G is fixed: one export, one revoke); more than one
// export, owner or revoke; the coordinator's own E writes.

export type MemoryModel = 'SC' | 'TSO';
export type OwnerPhase = 'O1' | 'O2' | 'O3' | 'O4';

export interface Variant {
  name: string;
  description: string;
  /** the owner's revoke, in program order */
  owner: readonly OwnerPhase[];
  /** O1 as a fenced store (xchg); else a plain store (matters under TSO only) */
  killFenced: boolean;
  /** O3 ends the wait for a known dead attacher */
  waitSeesDead: boolean;
  /** O3's bounded wait expires for a stopped attacher in a put */
  waitExpires: boolean;
  /** on expiry the coordinator kills the attacher */
  expiryKills: boolean;
  /** A1 (I[a]++) before A2 (read E) */
  announceFirst: boolean;
  /** A1 as a locked RMW; else a plain load and store (matters under TSO only) */
  announceFenced: boolean;
  /** C1 (link) before C2 (reply) */
  linkFirst: boolean;
}

export interface Params {
  memory: MemoryModel;
  attachers: number; // 1..3
  puts: number; // per attacher, 1..2
  /** the coordinator attaches during the revoke; else all are attached before */
  concurrentAttach: boolean;
  kills: boolean;
  stops: boolean;
}

export type ViolationKind = 'stale-write' | 'deadlock';

export interface Step {
  who: string; // 'owner', 'coord', 'a0'.. or 'env'
  op: string; // 'O1'..'O4', 'C1', 'C2', 'A0'..'A4', 'A2x', 'kill', 'stop', 'resume', 'expire', 'drain'
  text: string;
}

export interface Result {
  variant: string;
  params: Params;
  states: number;
  transitions: number;
  violation?: { kind: ViolationKind; trace: Step[] };
}

const correct: Variant = {
  name: 'correct',
  description: 'the protocol as specified',
  owner: ['O1', 'O2', 'O3', 'O4'],
  killFenced: true,
  waitSeesDead: true,
  waitExpires: true,
  expiryKills: true,
  announceFirst: true,
  announceFenced: true,
  linkFirst: true,
};

export const VARIANTS = {
  correct,
  checkBeforeAnnounce: { ...correct, name: 'check-before-announce', description: 'a: the attacher reads E before I[a]++ (A2 before A1)', announceFirst: false },
  waitBeforeKill: { ...correct, name: 'wait-before-kill', description: 'b: the owner reads the list and waits before E := DEAD (O2, O3, O1, O4)', owner: ['O2', 'O3', 'O1', 'O4'] },
  unfencedKill: { ...correct, name: 'unfenced-kill', description: 'c: E := DEAD is a plain store: under TSO it sits in the buffer while the owner reads I[a]', killFenced: false },
  unfencedAnnounce: { ...correct, name: 'unfenced-announce', description: 'c: I[a]++ is a plain store: under TSO it sits in the buffer while the attacher reads E', announceFenced: false },
  // Reply before link does break safety when attach races the revoke: a
  // replied-to attacher can pass A2 (E still LIVE) before O1, yet be missing
  // from the list the owner reads at O2 (C1 not done yet), so O3 does not
  // wait for it and O4 unmaps under its A3.
  replyBeforeLink: { ...correct, name: 'reply-before-link', description: 'd: the coordinator replies before it links (C2 before C1)', linkFirst: false },
  listBeforeKill: { ...correct, name: 'list-before-kill', description: 'd: the owner reads the list before E := DEAD (O2, O1, O3, O4)', owner: ['O2', 'O1', 'O3', 'O4'] },
  noWait: { ...correct, name: 'no-wait', description: 'e: the owner does not wait for puts in flight (no O3)', owner: ['O1', 'O2', 'O4'] },
  expiryWithoutKill: { ...correct, name: 'expiry-without-kill', description: 'e: the bounded wait expires but the stopped attacher is not killed', expiryKills: false },
  waitWithoutEscape: { ...correct, name: 'wait-without-escape', description: 'f: the owner waits for I[a] == 0 with no escape for a dead or stopped attacher', waitSeesDead: false, waitExpires: false },
} satisfies Record<string, Variant>;

// ---- states ----------------------------------------------------------------
// A state is a flat array of small integers, so that a copy is one slice and
// its key one short string; `Layout` names its slots.

type State = number[];

const DEAD = 1, UNMAPPED = 1; // LIVE and MAPPED are 0
/** an attacher's program counter */
const A0 = 0, A1 = 1, A2 = 2, A2x = 3, A3 = 4, A4 = 5, DONE = 6;
const PC = ['A0', 'A1', 'A2', 'A2x', 'A3', 'A4', 'done'];
/** an attacher's status */
const RUN = 0, STOPPED = 1, KILLED = 2;
/** processes (store buffers): the owner, the coordinator, then attacher a at 2 + a */
const OWNER = 0, COORD = 1, ATT = (a: number) => 2 + a;
/** a store buffer's capacity: no process here has more than one store pending */
const CAP = 2;

class Layout {
  // The words that go through store buffers come first: E, list, I[0..n-1].
  readonly E = 0;
  readonly LIST = 1;
  readonly M: number; // MAPPED or UNMAPPED
  readonly REPLY: number; // bitmask of attachers replied to
  readonly DEAD: number; // bitmask of attachers known dead
  readonly OPC: number; // the owner's pc: an index into variant.owner
  readonly OL: number; // the owner's snapshot L of the list (bitmask)
  readonly OK: number; // O3's next attacher
  readonly COORD: number; // 2a + 0/1 into the attach program; 2n when done
  readonly size: number;
  private readonly att: number;
  private readonly bufs: number;
  constructor(readonly n: number) {
    this.M = 2 + n;
    this.REPLY = this.M + 1;
    this.DEAD = this.M + 2;
    this.OPC = this.M + 3;
    this.OL = this.M + 4;
    this.OK = this.M + 5;
    this.COORD = this.M + 6;
    this.att = this.M + 7;
    this.bufs = this.att + 5 * n;
    this.size = this.bufs + (2 + n) * (1 + 2 * CAP);
  }
  I(a: number) { return 2 + a; }
  // Attacher a: its pc, puts finished, status, whether it was ever stopped,
  // and whether I[a] holds this put's increment (after A1, before A2x/A4).
  pc(a: number) { return this.att + 5 * a; }
  puts(a: number) { return this.att + 5 * a + 1; }
  status(a: number) { return this.att + 5 * a + 2; }
  stopped(a: number) { return this.att + 5 * a + 3; }
  held(a: number) { return this.att + 5 * a + 4; }
  /** process p's store buffer: its length, then [word, value] pairs, oldest first */
  buf(p: number) { return this.bufs + (1 + 2 * CAP) * p; }
  wordName(w: number) { return w === this.E ? 'E' : w === this.LIST ? 'list' : `I[${w - 2}]`; }
  wordValue(w: number, v: number) { return w === this.E ? (v === DEAD ? 'DEAD' : 'LIVE') : w === this.LIST ? ids(v) : String(v); }
}

const ids = (mask: number) => `{${[0, 1, 2].filter((a) => mask & (1 << a)).map((a) => `a${a}`).join(',')}}`;

/** A state's key: every slot is below 16, so four slots make one character. */
function key(s: State): string {
  const packed: number[] = [];
  for (let i = 0; i < s.length; i += 4) packed.push(s[i]! | (s[i + 1] ?? 0) << 4 | (s[i + 2] ?? 0) << 8 | (s[i + 3] ?? 0) << 12);
  return String.fromCharCode.apply(null, packed);
}

function initial(v: Variant, p: Params, at: Layout): State {
  const s: State = Array<number>(at.size).fill(0); // E LIVE, M MAPPED, I all 0, pcs A0, status RUN, buffers empty
  if (!p.concurrentAttach) {
    s[at.LIST] = s[at.REPLY] = (1 << p.attachers) - 1;
    s[at.COORD] = 2 * p.attachers;
  }
  normalizeOwner(v, at, s);
  return s;
}

// ---- memory ----------------------------------------------------------------

/** A plain load by process `proc`: its own newest buffered value, else memory. */
function load(at: Layout, s: State, proc: number, w: number): number {
  const b = at.buf(proc);
  for (let i = s[b]! - 1; i >= 0; i--) if (s[b + 1 + 2 * i] === w) return s[b + 2 + 2 * i]!;
  return s[w]!;
}

/** A plain store: into the buffer under TSO, straight to memory under SC. */
function storePlain(p: Params, at: Layout, s: State, proc: number, w: number, v: number): void {
  if (p.memory === 'SC') {
    s[w] = v;
    return;
  }
  const b = at.buf(proc), n = s[b]!;
  if (n === CAP) throw new Error('store buffer overflow: raise CAP');
  s[b + 1 + 2 * n] = w;
  s[b + 2 + 2 * n] = v;
  s[b] = n + 1;
}

/** Moves process `proc`'s oldest buffered store to memory. */
function drainOne(at: Layout, s: State, proc: number): void {
  const b = at.buf(proc), n = s[b]!;
  s[s[b + 1]!] = s[b + 2]!;
  for (let i = 1; i < 1 + 2 * (n - 1); i++) s[b + i] = s[b + i + 2]!;
  s[b + 2 * n - 1] = s[b + 2 * n] = 0;
  s[b] = n - 1;
}

/** An RMW, fenced store or syscall may run only with an empty buffer (always so under SC). */
const drained = (at: Layout, s: State, proc: number) => s[at.buf(proc)] === 0;

// ---- steps -----------------------------------------------------------------
// Each step function copies the state, changes the copy and pushes it; the
// text of a step is made by `describe`, only for a trace.

interface Next {
  proc: number; // the process that steps, or (kill, stop, resume) the attacher the environment acts on
  op: string;
  state: State;
  stale?: boolean;
}

/** Skips O3 past attachers not in L; leaves O3 when none is left; forgets L when no O3 is ahead. */
function normalizeOwner(v: Variant, at: Layout, s: State): void {
  while (v.owner[s[at.OPC]!] === 'O3') {
    const rest = s[at.OL]! >> s[at.OK]!;
    if (rest & 1) return;
    if (rest) s[at.OK]!++;
    else {
      s[at.OPC]!++;
      s[at.OK] = 0;
    }
  }
  if (!v.owner.includes('O3', s[at.OPC])) s[at.OL] = 0;
}

/** Kills attacher a; what it held in its locals no longer matters (I[a] and its buffer stay). */
function kill(at: Layout, s: State, a: number): void {
  s[at.status(a)] = KILLED;
  s[at.DEAD] = s[at.DEAD]! | (1 << a);
  forget(at, s, a);
}

/**
 * Clears the locals of an attacher that will take no more steps (killed or
 * done), so that states differing only in them are one state.
 */
function forget(at: Layout, s: State, a: number): void {
  s[at.pc(a)] = DONE;
  s[at.puts(a)] = s[at.stopped(a)] = s[at.held(a)] = 0;
}

function ownerSteps(v: Variant, p: Params, at: Layout, s: State, out: Next[]): void {
  const phase = v.owner[s[at.OPC]!];
  if (phase === undefined) return; // done
  const push = (op: string, t: State) => {
    normalizeOwner(v, at, t);
    out.push({ proc: OWNER, op, state: t });
  };
  const t = s.slice();
  switch (phase) {
    case 'O1':
      t[at.OPC]!++;
      if (v.killFenced || p.memory === 'SC') {
        if (!drained(at, s, OWNER)) return;
        t[at.E] = DEAD;
      } else storePlain(p, at, t, OWNER, at.E, DEAD);
      return push('O1', t);
    case 'O2':
      t[at.OPC]!++;
      t[at.OL] = load(at, s, OWNER, at.LIST);
      return push('O2', t);
    case 'O3': {
      const a = s[at.OK]!;
      const n = load(at, s, OWNER, at.I(a));
      t[at.OK]!++;
      if (n === 0 || (v.waitSeesDead && s[at.DEAD]! & (1 << a))) push('O3', t);
      if (v.waitExpires && n > 0 && s[at.status(a)] === STOPPED) {
        const u = t.slice();
        if (v.expiryKills) kill(at, u, a);
        push('expire', u);
      }
      return;
    }
    case 'O4':
      if (!drained(at, s, OWNER)) return;
      t[at.OPC]!++;
      t[at.M] = UNMAPPED;
      return push('O4', t);
  }
}

function coordSteps(v: Variant, p: Params, at: Layout, s: State, out: Next[]): void {
  const c = s[at.COORD]!;
  if (c >= 2 * p.attachers || !drained(at, s, COORD)) return; // C1 is a fenced store, C2 a syscall
  const a = c >> 1;
  const link = (c & 1) === (v.linkFirst ? 0 : 1);
  const t = s.slice();
  t[at.COORD] = c + 1;
  if (link) t[at.LIST] = t[at.LIST]! | (1 << a);
  else t[at.REPLY] = t[at.REPLY]! | (1 << a);
  out.push({ proc: COORD, op: link ? 'C1' : 'C2', state: t });
}

function attacherSteps(v: Variant, p: Params, at: Layout, s: State, a: number, out: Next[]): void {
  if (s[at.status(a)] !== RUN) return;
  const proc = ATT(a), I = at.I(a), pc = at.pc(a);
  const first = v.announceFirst ? A1 : A2;
  const t = s.slice();
  let op: string, stale = false;
  switch (s[pc]) {
    case A0:
      if (!(s[at.REPLY]! & (1 << a))) return;
      op = 'A0';
      t[pc] = first;
      break;
    case A1:
      op = 'A1';
      t[at.held(a)] = 1;
      t[pc] = v.announceFirst ? A2 : A3;
      if (v.announceFenced || p.memory === 'SC') {
        if (!drained(at, s, proc)) return;
        t[I]!++;
      } else storePlain(p, at, t, proc, I, load(at, s, proc, I) + 1);
      break;
    case A2:
      op = 'A2';
      if (load(at, s, proc, at.E) === DEAD) {
        if (v.announceFirst) t[pc] = A2x;
        else forget(at, t, a);
      } else t[pc] = v.announceFirst ? A3 : A1;
      break;
    case A2x:
      if (!drained(at, s, proc)) return;
      op = 'A2x';
      t[I]!--;
      forget(at, t, a);
      break;
    case A3:
      if (!drained(at, s, proc)) return; // a syscall
      op = 'A3';
      stale = s[at.M] === UNMAPPED;
      t[pc] = A4;
      break;
    case A4:
      if (!drained(at, s, proc)) return;
      op = 'A4';
      t[I]!--;
      t[at.held(a)] = 0;
      t[at.puts(a)]!++;
      if (t[at.puts(a)]! < p.puts) t[pc] = first;
      else forget(at, t, a);
      break;
    default:
      return; // done
  }
  out.push({ proc, op, state: t, stale });
}

function environmentSteps(p: Params, at: Layout, s: State, out: Next[]): void {
  for (let a = 0; a < p.attachers; a++) {
    const status = s[at.status(a)];
    if (p.kills && status !== KILLED && s[at.pc(a)] !== DONE) {
      const t = s.slice();
      kill(at, t, a);
      out.push({ proc: ATT(a), op: 'kill', state: t });
    }
    if (p.stops && status === RUN && s[at.held(a)] && !s[at.stopped(a)]) {
      const t = s.slice();
      t[at.status(a)] = STOPPED;
      t[at.stopped(a)] = 1;
      out.push({ proc: ATT(a), op: 'stop', state: t });
    }
    if (status === STOPPED) {
      const t = s.slice();
      t[at.status(a)] = RUN;
      out.push({ proc: ATT(a), op: 'resume', state: t });
    }
  }
  for (let proc = 0; proc < 2 + p.attachers; proc++) {
    if (!s[at.buf(proc)]) continue;
    const t = s.slice();
    drainOne(at, t, proc);
    out.push({ proc, op: 'drain', state: t });
  }
}

function successors(v: Variant, p: Params, at: Layout, s: State): Next[] {
  const out: Next[] = [];
  ownerSteps(v, p, at, s, out);
  coordSteps(v, p, at, s, out);
  for (let a = 0; a < p.attachers; a++) attacherSteps(v, p, at, s, a, out);
  environmentSteps(p, at, s, out);
  return out;
}

const ENVIRONMENT = ['kill', 'stop', 'resume'];
const procName = (proc: number) => (proc === OWNER ? 'owner' : proc === COORD ? 'coord' : `a${proc - 2}`);

/** The step from `s` to `n.state`, in words. */
function describe(v: Variant, p: Params, at: Layout, s: State, n: Next): Step {
  const who = ENVIRONMENT.includes(n.op) ? 'env' : procName(n.proc);
  const a = n.proc - 2, oa = s[at.OK]!, t = n.state;
  const where = () => `(at ${PC[s[at.pc(a)]!]}, I[${a}] = ${s[at.I(a)]})`;
  const fenced = (f: boolean) => f || p.memory === 'SC';
  const text: string = (() => {
    switch (n.op) {
      case 'O1': return `E := DEAD (${fenced(v.killFenced) ? 'xchg' : 'plain store'})`;
      case 'O2': return `L := list = ${ids(load(at, s, OWNER, at.LIST))}`;
      case 'O3': return load(at, s, OWNER, at.I(oa)) === 0 ? `I[${oa}] == 0` : `a${oa} is known dead`;
      case 'expire': return `the wait for a${oa} (stopped, I[${oa}] = ${load(at, s, OWNER, at.I(oa))}) expires${v.expiryKills ? `; the coordinator kills a${oa}` : ''}`;
      case 'O4': return 'real call: M := UNMAPPED';
      case 'C1': return `list := list + {a${s[at.COORD]! >> 1}}`;
      case 'C2': return `reply to a${s[at.COORD]! >> 1}`;
      case 'A0': return 'has its reply';
      case 'A1': return fenced(v.announceFenced) ? `I[${a}]++ (RMW) = ${t[at.I(a)]}` : `I[${a}] := ${load(at, t, n.proc, at.I(a))} (plain store)`;
      case 'A2': return `reads E = ${load(at, s, n.proc, at.E) === DEAD ? 'DEAD' : 'LIVE'}`;
      case 'A2x': return `I[${a}]-- (RMW); -ESTALE`;
      case 'A3': return n.stale ? 'writes into M, which is UNMAPPED: STALE WRITE' : 'writes into M';
      case 'A4': return `I[${a}]-- (RMW)`;
      case 'drain': {
        const b = at.buf(n.proc), w = s[b + 1]!;
        return `${at.wordName(w)} := ${at.wordValue(w, s[b + 2]!)} reaches memory`;
      }
      default: return `a${a} ${where()}`; // kill, stop, resume
    }
  })();
  return { who, op: n.op, text: `${who} ${n.op}: ${text}` };
}

// ---- search ----------------------------------------------------------------

/**
 * Explores every interleaving breadth first (so a counterexample is a
 * shortest one) and stops at the first stale write or deadlock. Every step
 * moves a pc forward, drains a buffer, kills, or stops (once) or resumes an
 * attacher, so the state graph is acyclic: an owner that can never finish
 * shows as a final state (no step enabled) with the owner unfinished.
 */
export function check(v: Variant, p: Params): Result {
  if (p.attachers < 1 || p.attachers > 3 || p.puts < 1 || p.puts > 2) throw new RangeError('1..3 attachers, 1..2 puts'); // every slot stays below 16
  const at = new Layout(p.attachers);
  const start = initial(v, p, at);
  const index = new Map<string, number>([[key(start), 0]]);
  const parent: number[] = [-1];
  const queue: (State | undefined)[] = [start]; // state i is queue[i] until expanded
  let transitions = 0;

  // Replays the steps from the start to state `id`, then `last`.
  const traceTo = (id: number, last?: Next): Step[] => {
    const chain: number[] = [];
    for (let i = id; i > 0; i = parent[i]!) chain.unshift(i);
    const steps: Step[] = [];
    let s = start;
    for (const i of chain) {
      const n = successors(v, p, at, s).find((x) => index.get(key(x.state)) === i);
      if (!n) throw new Error('trace replay lost its way');
      steps.push(describe(v, p, at, s, n));
      s = n.state;
    }
    if (last) steps.push(describe(v, p, at, s, last));
    return steps;
  };
  const found = (kind: ViolationKind, trace: Step[]): Result => ({ variant: v.name, params: p, states: index.size, transitions, violation: { kind, trace } });

  for (let id = 0; id < queue.length; id++) {
    const s = queue[id]!;
    queue[id] = undefined; // let it go
    const next = successors(v, p, at, s);
    if (next.length === 0 && s[at.OPC]! < v.owner.length) return found('deadlock', traceTo(id));
    for (const n of next) {
      transitions++;
      if (n.stale) return found('stale-write', traceTo(id, n));
      const k = key(n.state);
      if (index.has(k)) continue;
      index.set(k, queue.length);
      parent.push(id);
      queue.push(n.state);
    }
  }
  return { variant: v.name, params: p, states: index.size, transitions };
}

export function formatTrace(trace: readonly Step[]): string {
  return trace.map((s, i) => `${String(i + 1).padStart(3)}. ${s.text}`).join('\n');
}
