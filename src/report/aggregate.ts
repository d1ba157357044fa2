// pincoh report, part 1: reads traces (--trace JSONL) line by line and folds
// them into a Report whose size does not grow with the number of events:
// counters, time bins per process (re-binned as the trace gets longer),
// log-scale latency buckets, and top-N lists of the worst moments.

import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { PincohError } from '../errors.js';
import { TRACE_SCHEMA, type PincohEvent, type TraceEventName } from '../trace.js';

/** Time bins per timeline row. */
export const BINS = 240;
/** Processes per trace file given a timeline row of their own; the rest share one. */
export const MAX_ROWS_PER_FILE = 200;
/** Entries in each list of worst moments. */
export const TOP_N = 20;

// ---- latency: log-scale buckets, 8 per power of two (each within 9%) ----

const SUB = 8;
const MIN_EXP = -4; // 1/16 µs; anything below goes in bucket 0
const MAX_EXP = 34; // ~4.8 hours in µs; anything above goes in the last bucket
const NBUCKETS = (MAX_EXP - MIN_EXP) * SUB + 1;

export class Histogram {
  readonly buckets = new Float64Array(NBUCKETS);
  count = 0;
  sum = 0;
  max = 0;
  min = Infinity;

  add(us: number): void {
    if (!Number.isFinite(us) || us < 0) return;
    const i = us <= 2 ** MIN_EXP ? 0 : Math.min(NBUCKETS - 1, Math.floor((Math.log2(us) - MIN_EXP) * SUB) + 1);
    this.buckets[i]! += 1;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
    if (us < this.min) this.min = us;
  }

  /** The q-quantile: the geometric middle of its bucket (within 4.4%), clamped to [min, max]. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < NBUCKETS; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) {
        const mid = i === 0 ? 2 ** MIN_EXP : 2 ** (MIN_EXP + (i - 0.5) / SUB);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  /** Counts per power of two: [exponent e, count of values in [2^e, 2^(e+1))] from the smallest to the largest used. */
  octaves(): Array<[number, number]> {
    const by = new Map<number, number>();
    for (let i = 0; i < NBUCKETS; i++) {
      const n = this.buckets[i]!;
      if (!n) continue;
      const e = i === 0 ? MIN_EXP : MIN_EXP + Math.floor((i - 1) / SUB);
      by.set(e, (by.get(e) ?? 0) + n);
    }
    if (by.size === 0) return [];
    const lo = Math.min(...by.keys());
    const hi = Math.max(...by.keys());
    const out: Array<[number, number]> = [];
    for (let e = lo; e <= hi; e++) out.push([e, by.get(e) ?? 0]);
    return out;
  }
}

// ---- the N largest by a score, kept sorted (largest first) ----

export class TopN<T> {
  readonly items: Array<{ score: number; item: T }> = [];
  constructor(readonly n: number) {}
  /** Would a score this large get in? (So callers build the item only then.) */
  admits(score: number): boolean {
    return this.items.length < this.n || score > this.items[this.items.length - 1]!.score;
  }
  add(score: number, item: T): void {
    if (!this.admits(score)) return;
    let i = this.items.length;
    while (i > 0 && this.items[i - 1]!.score < score) i--;
    this.items.splice(i, 0, { score, item });
    if (this.items.length > this.n) this.items.pop();
  }
}

/** The first N, and how many there were. */
export class FirstN<T> {
  readonly items: T[] = [];
  total = 0;
  constructor(readonly n: number) {}
  add(item: T): void {
    this.total++;
    if (this.items.length < this.n) this.items.push(item);
  }
}

// ---- timelines ----

/** One timeline row: a process (or the processes past the row limit, or all of a file's). */
export class Row {
  /** registrations held: the most in each bin, and at its last change (-1: no change in the bin) */
  readonly heldMax = new Int32Array(BINS).fill(-1);
  readonly heldEnd = new Int32Array(BINS).fill(-1);
  readonly events = new Float64Array(BINS);
  readonly calls = new Float64Array(BINS);
  /** revokes of attachments to its memory (it owns it) */
  readonly revokes = new Float64Array(BINS);
  /** revokes of its handles to others' memory (it attached) */
  readonly handlesRevoked = new Float64Array(BINS);
  readonly timeouts = new Float64Array(BINS);
  readonly dropped = new Float64Array(BINS);
  readonly inval = new Map<string, Float64Array>();
  held = 0;
  maxHeld = 0;
  eventCount = 0;
  start?: number;
  end?: number;
  how?: string;
  signal?: string;
  processes = 0;
  constructor(
    readonly kind: 'process' | 'others' | 'node',
    readonly pid: number,
    public rank: number,
    public argv0: string,
    public hello: boolean,
  ) {}

  setHeld(bin: number, n: number): void {
    this.held = Math.max(0, n);
    if (this.held > this.maxHeld) this.maxHeld = this.held;
    if (this.held > this.heldMax[bin]!) this.heldMax[bin] = this.held;
    this.heldEnd[bin] = this.held;
  }

  invalidated(bin: number, cause: string, n: number): void {
    let a = this.inval.get(cause);
    if (!a) this.inval.set(cause, (a = new Float64Array(BINS)));
    a[bin]! += n;
  }

  /** Bins twice as wide: bin i takes bins 2i and 2i+1. */
  halve(): void {
    const sum = (a: Float64Array) => {
      for (let i = 0; i < BINS / 2; i++) a[i] = a[2 * i]! + a[2 * i + 1]!;
      a.fill(0, BINS / 2);
    };
    for (const a of [this.events, this.calls, this.revokes, this.handlesRevoked, this.timeouts, this.dropped, ...this.inval.values()]) sum(a);
    for (let i = 0; i < BINS / 2; i++) {
      this.heldMax[i] = Math.max(this.heldMax[2 * i]!, this.heldMax[2 * i + 1]!);
      this.heldEnd[i] = this.heldEnd[2 * i + 1]! >= 0 ? this.heldEnd[2 * i + 1]! : this.heldEnd[2 * i]!;
    }
    this.heldMax.fill(-1, BINS / 2);
    this.heldEnd.fill(-1, BINS / 2);
  }
}

/** What a worst moment says: where, when, who, what. */
export interface Moment {
  file: number;
  t: number;
  pid: number;
  rank: number;
  argv0: string;
  what: string;
}

export interface FileReport {
  path: string;
  /** the node, from the trace's `start` event (undefined: a trace without one, as older traces are) */
  host?: string;
  /** its coordinator's wall clock at its t = 0 (ms since 1970 UTC), from `start` */
  wallMs?: number;
  /** its coordinator's pid, from `start` */
  coordinator?: number;
  /** added to each of its events' t to place it on the report's time line: its wallMs less the earliest
   * wallMs of the traces (Report.originMs); 0 for a trace without `start` */
  offsetMs: number;
  lines: number;
  /** events, past `start` */
  events: number;
  /** the first and last event on the report's time line (t + offsetMs) */
  tFirst: number;
  tLast: number;
  /** bin width in ms, the same for every file once read; bins start at the time line's 0 */
  binMs: number;
  rows: Row[];
  /** the processes past MAX_ROWS_PER_FILE, together */
  others?: Row;
  /** everything in the file */
  node: Row;
}

export interface Totals {
  events: number;
  processes: number;
  registrations: number;
  deregistrations: number;
  invalidations: number;
  invalidationsByCause: Record<string, number>;
  followed: number;
  heldAtGone: number;
  calls: number;
  callsByType: Record<string, number>;
  waited: number;
  timeouts: number;
  failedCalls: number;
  failedByErrno: Record<string, number>;
  publishes: number;
  attachments: number;
  /** attach events whose outcome is 'timed out': the name was not published (or was gone again) when the
   * attach's wait ended. A poll (timeout 0) for a name not there yet is one: stalewrite's attachers ask
   * "stale/done?" every 256 puts, hundreds of times in a healthy run. Not a fault by itself. */
  attachNoName: number;
  revokes: number;
  revokesByOutcome: Record<string, number>;
  cutoffs: number;
  crashes: number;
  goneByHow: Record<string, number>;
  dropped: number;
  forks: number;
  auditFindings: number;
  otherEvents: Record<string, number>;
}

export interface Report {
  files: FileReport[];
  /** the time line's 0: the earliest wall clock at a coordinator's start (ms since 1970 UTC) among the
   * traces with a `start` event; undefined when none has one (then every trace keeps its own t) */
  originMs?: number;
  totals: Totals;
  callLatency: Map<string, Histogram>;
  revokeLatency: Histogram;
  revokeLatencyByOutcome: Map<string, Histogram>;
  slowestCalls: TopN<Moment>;
  slowestRevokes: TopN<Moment>;
  timeouts: FirstN<Moment>;
  failedCalls: FirstN<Moment>;
  cutoffs: FirstN<Moment>;
  crashes: FirstN<Moment>;
  dropped: FirstN<Moment>;
}

const inc = (o: Record<string, number>, k: string, n = 1): void => void (o[k] = (o[k] ?? 0) + n);

export function emptyTotals(): Totals {
  return {
    events: 0, processes: 0, registrations: 0, deregistrations: 0, invalidations: 0, invalidationsByCause: {}, followed: 0, heldAtGone: 0,
    calls: 0, callsByType: {}, waited: 0, timeouts: 0, failedCalls: 0, failedByErrno: {}, publishes: 0, attachments: 0, attachNoName: 0,
    revokes: 0, revokesByOutcome: {}, cutoffs: 0, crashes: 0, goneByHow: {}, dropped: 0, forks: 0, auditFindings: 0, otherEvents: {},
  };
}

/** A trace record as far as the report needs it to be one. */
interface Rec {
  t: number;
  event: string;
  pid: number;
  rank: number;
  [k: string]: unknown;
}

/** An event of the schema (src/trace.ts) as read from a file: its fields by name, each of any value
 * (a trace may come from another version, or be edited by hand: each is checked where it is used). */
type Loose<E> = { t: number; pid: number; rank: number; event: E extends { event: infer N } ? N : never } & {
  [K in Exclude<keyof E, 't' | 'pid' | 'rank' | 'event'>]?: unknown;
};
type Known = PincohEvent extends infer E ? (E extends PincohEvent ? Loose<E> : never) : never;

/** The record as one of the schema's events, or undefined for an event it does not know. */
const known = (rec: Rec): Known | undefined => (Object.hasOwn(TRACE_SCHEMA, rec.event) ? (rec as Known & { event: TraceEventName }) : undefined);

function malformed(path: string, line: number, why: string, text: string): PincohError {
  const shown = text.length > 80 ? text.slice(0, 80) + '...' : text;
  return new PincohError('PINCOH_ERR_TRACE', `${path}:${line}: not a trace record (${why}): ${shown}`);
}

function parseLine(path: string, line: number, text: string): Rec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw malformed(path, line, 'not JSON', text);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(path, line, 'not a JSON object', text);
  const r = v as Record<string, unknown>;
  if (typeof r.t !== 'number' || !Number.isFinite(r.t) || r.t < 0) throw malformed(path, line, '"t" is not a time in ms', text);
  if (typeof r.event !== 'string') throw malformed(path, line, 'no "event"', text);
  if (typeof r.pid !== 'number' || !Number.isInteger(r.pid)) throw malformed(path, line, 'no "pid"', text);
  if (typeof r.rank !== 'number' || !Number.isInteger(r.rank)) throw malformed(path, line, 'no "rank"', text);
  return r as Rec;
}

const why = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (e as Error).message;
};

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : d);

/** Folds one file's records into the report. */
class FileFolder {
  readonly f: FileReport;
  /** live processes by pid (a pid may come back after its `gone`) */
  private readonly live = new Map<number, Row>();
  /** registrations each live process holds, by row (the shared rows hold several) */
  private readonly held = new Map<number, number>();

  constructor(readonly index: number, path: string, readonly r: Report, start: Start | undefined) {
    this.f = {
      path, host: start?.host, wallMs: start?.wallMs, coordinator: start?.pid, offsetMs: start && r.originMs !== undefined ? start.wallMs - r.originMs : 0,
      lines: 0, events: 0, tFirst: Infinity, tLast: 0, binMs: 1, rows: [], node: new Row('node', 0, -1, 'all processes', true),
    };
  }

  private allRows(): Row[] {
    return [...this.f.rows, ...(this.f.others ? [this.f.others] : []), this.f.node];
  }

  /** Bins twice as wide until t fits (or until they are binMs wide). */
  widen(t: number, binMs = 0): void {
    while (t >= BINS * this.f.binMs || this.f.binMs < binMs) {
      this.f.binMs *= 2;
      for (const row of this.allRows()) row.halve();
    }
  }

  private bin(t: number): number {
    this.widen(t);
    return Math.floor(t / this.f.binMs);
  }

  private rowFor(rec: Rec, b: number, hello: boolean): Row {
    let row = this.live.get(rec.pid);
    if (row && !hello) return row;
    if (row) this.end(row, rec.pid, rec.t, b, 'unknown (a new process with its pid said hello)');
    if (this.f.rows.length < MAX_ROWS_PER_FILE) {
      row = new Row('process', rec.pid, rec.rank, hello ? str(rec.argv0, '?') : '(no hello in the trace)', hello);
      this.f.rows.push(row);
    } else {
      row = this.f.others ??= new Row('others', 0, -1, 'more processes', true);
    }
    row.processes++;
    if (row.start === undefined) row.start = rec.t;
    this.live.set(rec.pid, row);
    this.held.set(rec.pid, 0);
    return row;
  }

  private changeHeld(pid: number, row: Row, b: number, delta: number): void {
    const before = this.held.get(pid) ?? 0;
    const after = Math.max(0, before + delta);
    this.held.set(pid, after);
    row.setHeld(b, row.kind === 'process' ? after : row.held + after - before);
    this.f.node.setHeld(b, this.f.node.held + after - before);
  }

  private end(row: Row, pid: number, t: number, b: number, how: string, signal?: string): number {
    const held = this.held.get(pid) ?? 0;
    this.changeHeld(pid, row, b, -held);
    this.live.delete(pid);
    this.held.delete(pid);
    if (row.kind === 'process') {
      row.end = t;
      row.how = how;
      row.signal = signal;
    } else row.end = Math.max(row.end ?? 0, t);
    return held;
  }

  fold(line: Rec): void {
    const { f, r } = this;
    const T = r.totals;
    if (line.event === 'start') return; // read before (readStart): where and when, not what happened
    line.t += f.offsetMs; // on the report's time line
    f.events++;
    T.events++;
    if (line.t < f.tFirst) f.tFirst = line.t;
    if (line.t > f.tLast) f.tLast = line.t;
    const b = this.bin(line.t);
    const hello = line.event === 'hello';
    const row = this.rowFor(line, b, hello);
    row.events[b]! += 1;
    row.eventCount++;
    f.node.events[b]! += 1;
    f.node.eventCount++;
    const rec = known(line);
    if (!rec) return inc(T.otherEvents, line.event); // another version's event: counted, and its row kept
    const moment = (what: string): Moment => ({ file: this.index, t: rec.t, pid: rec.pid, rank: rec.rank, argv0: row.kind === 'process' ? row.argv0 : '', what });
    switch (rec.event) {
      case 'start':
        return; // not reached: skipped above
      case 'hello':
        T.processes++;
        f.node.processes++;
        return;
      case 'register':
        T.registrations++;
        this.changeHeld(rec.pid, row, b, 1);
        return;
      case 'deregister':
        if (rec.outcome === 'ok' || rec.outcome === undefined) {
          T.deregistrations++;
          this.changeHeld(rec.pid, row, b, -1);
        }
        return;
      case 'call': {
        const call = str(rec.call, '?');
        const inv = Array.isArray(rec.invalidated) ? rec.invalidated.length : 0;
        const fol = Array.isArray(rec.followed) ? rec.followed.length : 0;
        T.calls++;
        inc(T.callsByType, call);
        row.calls[b]! += 1;
        f.node.calls[b]! += 1;
        if (inv) {
          T.invalidations += inv;
          inc(T.invalidationsByCause, call, inv);
          row.invalidated(b, call, inv);
          f.node.invalidated(b, call, inv);
          this.changeHeld(rec.pid, row, b, -inv);
        }
        T.followed += fol;
        if (rec.waited === true) T.waited++;
        const lat = typeof rec.latency_us === 'number' ? rec.latency_us : undefined;
        if (lat !== undefined) {
          let h = r.callLatency.get(call);
          if (!h) r.callLatency.set(call, (h = new Histogram()));
          h.add(lat);
        }
        const failed = typeof rec.outcome === 'string' && !rec.outcome.startsWith('0x');
        const describe = () => {
          const where = typeof rec.addr === 'string' ? ` ${rec.addr} +${num(rec.len)}` : '';
          const inval = inv ? `, ${inv} invalidated` : '';
          const follow = fol ? `, ${fol} followed` : '';
          return `${call}${where} → ${str(rec.outcome, '?')}${inval}${follow}${rec.waited === true ? ', waited' : ''}${rec.timed_out === true ? ', TIMED OUT' : ''}${lat !== undefined ? `, ${fmtUs(lat)} in pincoh` : ''}`;
        };
        if (lat !== undefined && r.slowestCalls.admits(lat)) r.slowestCalls.add(lat, moment(describe()));
        if (rec.timed_out === true) {
          T.timeouts++;
          row.timeouts[b]! += 1;
          f.node.timeouts[b]! += 1;
          r.timeouts.add(moment(describe()));
        }
        if (failed) {
          T.failedCalls++;
          inc(T.failedByErrno, rec.outcome as string);
          r.failedCalls.add(moment(describe()));
        }
        return;
      }
      case 'revoke': {
        const outcome = str(rec.outcome, '?');
        T.revokes++;
        inc(T.revokesByOutcome, outcome);
        row.revokes[b]! += 1;
        f.node.revokes[b]! += 1;
        const attacher = typeof rec.attacher === 'number' ? this.live.get(rec.attacher) : undefined;
        if (attacher) attacher.handlesRevoked[b]! += 1;
        if (typeof rec.latency_us === 'number') {
          r.revokeLatency.add(rec.latency_us);
          let h = r.revokeLatencyByOutcome.get(outcome);
          if (!h) r.revokeLatencyByOutcome.set(outcome, (h = new Histogram()));
          h.add(rec.latency_us);
          if (r.slowestRevokes.admits(rec.latency_us))
            r.slowestRevokes.add(rec.latency_us, moment(`revoke of attacher ${str(rec.attacher, '?')}'s handle ${str(rec.handle, '?')} (${str(rec.reason, '?')}) → ${outcome}, ${fmtUs(rec.latency_us)}`));
        }
        return;
      }
      case 'publish':
        T.publishes++;
        return;
      case 'attach':
        if (rec.outcome === 'ok') T.attachments++;
        else T.attachNoName++; // 'timed out': no such name when its wait ended
        return;
      case 'fork':
        T.forks++;
        return;
      case 'dropped': {
        const n = num(rec.events);
        T.dropped += n;
        row.dropped[b]! += n;
        f.node.dropped[b]! += n;
        r.dropped.add(moment(`${n} events lost: its ring was full`));
        return;
      }
      case 'audit':
        T.auditFindings += Array.isArray(rec.findings) ? rec.findings.length : 0;
        return;
      case 'cutoff':
        T.cutoffs++;
        r.cutoffs.add(moment(`cut off and killed: ${str(rec.reason, '?')}`));
        return;
      case 'gone': {
        const how = str(rec.how, '?');
        const signal = typeof rec.signal === 'string' ? rec.signal : undefined;
        inc(T.goneByHow, how);
        if (how === 'crash') {
          T.crashes++;
          r.crashes.add(moment(`died without exiting${signal ? ` (${signal})` : ''}, holding ${num(rec.registrations)} registrations`));
        }
        T.heldAtGone += num(rec.registrations);
        this.end(row, rec.pid, rec.t, b, how, signal);
        return;
      }
      default: {
        const unhandled: never = rec; // every event of the schema has a case
        return unhandled;
      }
    }
  }
}

export function fmtUs(us: number): string {
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  if (us >= 10) return `${us.toFixed(0)} µs`;
  return `${us.toFixed(2)} µs`;
}

/** Where and when a trace began: its `start` event. */
interface Start {
  host: string;
  wallMs: number;
  pid: number;
}

/** A trace's `start` event, if its first line is one (undefined for older traces, or anything unreadable:
 * the read proper says what is wrong with it). */
async function readStart(path: string): Promise<Start | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const nl = text.indexOf('\n');
    if (nl < 0) return undefined;
    const v = JSON.parse(text.slice(0, nl)) as Record<string, unknown>;
    if (v?.event !== 'start' || typeof v.wall_ms !== 'number' || !Number.isFinite(v.wall_ms)) return undefined;
    return { host: str(v.host, 'unknown host') || 'unknown host', wallMs: v.wall_ms, pid: typeof v.pid === 'number' ? v.pid : 0 };
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

/** Reads every trace, in order, one line at a time. Throws PincohError (PINCOH_ERR_TRACE) naming the file and line of anything it cannot read. */
export async function readTraces(paths: string[]): Promise<Report> {
  const r: Report = {
    files: [],
    totals: emptyTotals(),
    callLatency: new Map(),
    revokeLatency: new Histogram(),
    revokeLatencyByOutcome: new Map(),
    slowestCalls: new TopN(TOP_N),
    slowestRevokes: new TopN(TOP_N),
    timeouts: new FirstN(TOP_N),
    failedCalls: new FirstN(TOP_N),
    cutoffs: new FirstN(TOP_N),
    crashes: new FirstN(TOP_N),
    dropped: new FirstN(TOP_N),
  };
  // one time line: each trace placed by its coordinator's wall clock at its start, from the earliest
  const starts = await Promise.all(paths.map(readStart));
  const walls = starts.flatMap((s) => (s ? [s.wallMs] : []));
  if (walls.length) r.originMs = Math.min(...walls);
  const folders: FileFolder[] = [];
  for (const [index, path] of paths.entries()) {
    let fh;
    try {
      fh = await open(path, 'r');
      if ((await fh.stat()).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    } catch (e) {
      await fh?.close();
      throw new PincohError('PINCOH_ERR_TRACE', `cannot read trace ${path}: ${why(e)}`);
    }
    const folder = new FileFolder(index, path, r, starts[index]);
    const input = fh.createReadStream({ autoClose: false });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let n = 0;
    // a line that is not JSON is said once the next one is read: the last line of a trace whose
    // coordinator was killed while writing it gets a hint of its own
    let cut: PincohError | undefined;
    try {
      for await (const text of lines) {
        n++;
        if (text.trim() === '') continue;
        if (cut) throw cut;
        try {
          folder.fold(parseLine(path, n, text));
        } catch (e) {
          if (!(e instanceof PincohError) || !e.message.includes('(not JSON)')) throw e;
          cut = e;
        }
      }
      if (cut) throw new PincohError('PINCOH_ERR_TRACE', `${cut.message} (its last line: cut short as its coordinator was killed? remove that line and run report again)`);
    } catch (e) {
      if (e instanceof PincohError) throw e;
      throw new PincohError('PINCOH_ERR_TRACE', `cannot read trace ${path} (line ${n}): ${why(e)}`);
    } finally {
      lines.close();
      input.destroy();
      await fh.close();
    }
    folder.f.lines = n;
    if (folder.f.tFirst === Infinity) folder.f.tFirst = folder.f.offsetMs;
    r.files.push(folder.f);
    folders.push(folder);
  }
  // the same bins for every file, so that a bin is the same moment in each
  const binMs = Math.max(1, ...r.files.map((f) => f.binMs));
  for (const folder of folders) folder.widen(0, binMs);
  return r;
}
