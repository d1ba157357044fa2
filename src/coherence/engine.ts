// The coherence engine: registrations per process, and what each hooked call
// does to them. Plain code over the registry; the socket layer calls in, so
// this is testable without processes.

import { MREMAP_FIXED, OP, OP_NAMES, PINCOH_READ, PINCOH_WRITE, DONE_TIMED_OUT } from '../protocol/constants.js';
import type { Begin, Done, Hello, Register } from '../protocol/messages.js';
import { IntervalIndex, type Registration } from '../registry/interval-index.js';
import { hex, Trace } from '../trace.js';
import { ACT_FOLLOW, ACT_INVALIDATE, decide, type MapEvent, pageEnd } from './policy.js';
import { Stats } from './stats.js';

const EINVAL = 22;
const EEXIST = 17;
const ENOENT = 2;
const ENOSPC = 28;
/** Registrations must end below 2^53, where JS numbers stop being exact (and where
 * the codec saturates). x86_64 user space ends at 2^47, or 2^56 with 5-level paging
 * and a high mmap hint: those few registrations are refused, see README limits. */
const ADDR_LIMIT = Number.MAX_SAFE_INTEGER;

export interface Limits {
  registrationsPerProcess: number;
  pendingPerProcess: number;
}

export const DEFAULT_LIMITS: Limits = { registrationsPerProcess: 1 << 20, pendingPerProcess: 4096 };

export interface EngineOptions {
  mremapFollow: boolean;
  trace?: Trace;
  stats?: Stats;
  limits?: Partial<Limits>;
}

interface InFlight {
  ev: MapEvent;
  t0: bigint;
  invalidated: bigint[];
  follows: Registration[];
}

export class ProcessState {
  readonly registry = new IntervalIndex();
  readonly inFlight = new Map<bigint, InFlight>();
  constructor(
    readonly id: number,
    readonly pid: number,
    readonly uid: number,
    readonly hello: Hello,
  ) {}
  get rank(): number {
    return this.hello.rank;
  }
}

export class Engine {
  readonly processes = new Map<number, ProcessState>();
  readonly stats: Stats;
  readonly trace: Trace;
  readonly limits: Limits;
  readonly mremapFollow: boolean;
  private nextId = 1;

  constructor(opts: EngineOptions) {
    this.mremapFollow = opts.mremapFollow;
    this.stats = opts.stats ?? new Stats();
    this.trace = opts.trace ?? new Trace();
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  /** A process said HELLO. pid and uid come from SO_PEERCRED, never from the message. */
  connect(pid: number, uid: number, hello: Hello): ProcessState {
    const p = new ProcessState(this.nextId++, pid, uid, hello);
    this.processes.set(p.id, p);
    this.stats.processes++;
    this.stats.live++;
    if (this.trace.enabled) this.trace.emit({ event: 'hello', pid, rank: hello.rank, ppid: hello.ppid, argv0: hello.argv0 });
    return p;
  }

  register(p: ProcessState, r: Register): number {
    const end = r.addr + r.len;
    if (r.key === 0n || r.len === 0 || end >= ADDR_LIMIT || r.flags === 0 || r.flags & ~(PINCOH_READ | PINCOH_WRITE)) return -EINVAL;
    if (p.registry.size >= this.limits.registrationsPerProcess) return -ENOSPC;
    if (!p.registry.add({ key: r.key, start: r.addr, end, flags: r.flags })) return -EEXIST;
    this.stats.registrations++;
    if (this.trace.enabled) this.trace.emit({ event: 'register', pid: p.pid, rank: p.rank, key: Number(r.key), addr: hex(r.addr), len: r.len, flags: r.flags });
    return 0;
  }

  deregister(p: ProcessState, key: bigint): number {
    const r = p.registry.remove(key);
    if (this.trace.enabled) this.trace.emit({ event: 'deregister', pid: p.pid, rank: p.rank, key: Number(key), outcome: r ? 'ok' : 'unknown key' });
    return r ? 0 : -ENOENT;
  }

  /** BEGIN: apply the policy now, so later frames see the new state; the ACK follows. */
  begin(p: ProcessState, seq: bigint, b: Begin): number | Promise<number> {
    const name = OP_NAMES[b.op];
    if (!name) return -EINVAL;
    const page = p.hello.pageSize;
    const ev: MapEvent = { op: b.op, arg: b.arg, start: b.addr, end: pageEnd(b.addr, b.len, page), len: b.len, newLen: b.newLen, dest: 0, destEnd: 0 };
    if (b.op === OP.MREMAP && b.arg & MREMAP_FIXED) {
      ev.dest = b.newAddr;
      ev.destEnd = pageEnd(b.newAddr, b.newLen, page);
    }
    const hits = p.registry.overlapping(ev.start, ev.end);
    if (ev.destEnd) for (const r of p.registry.overlapping(ev.dest, ev.destEnd)) if (!hits.includes(r)) hits.push(r);
    const call: InFlight = { ev, t0: process.hrtime.bigint(), invalidated: [], follows: [] };
    for (const r of hits) {
      const act = decide(ev, r.start, r.end, r.flags, this.mremapFollow);
      if (act === ACT_INVALIDATE) {
        p.registry.remove(r.key);
        call.invalidated.push(r.key);
      } else if (act === ACT_FOLLOW) call.follows.push(r);
    }
    this.stats.invalidations[name]! += call.invalidated.length;
    this.stats.slowCalls++;
    if (p.inFlight.size >= this.limits.pendingPerProcess) p.inFlight.delete(p.inFlight.keys().next().value!);
    p.inFlight.set(seq, call);
    return 0;
  }

  /** DONE: the real call returned `result` (or -errno). */
  done(p: ProcessState, d: Done): void {
    if (d.flags & DONE_TIMED_OUT) this.stats.timeouts++;
    const call = p.inFlight.get(d.beginSeq);
    if (!call) return;
    p.inFlight.delete(d.beginSeq);
    const us = Number(process.hrtime.bigint() - call.t0) / 1000;
    this.stats.slowPath.add(us);
    if (call.follows.length && d.result >= 0) {
      for (const r of call.follows) {
        if (!p.registry.remove(r.key)) continue; // deregistered meanwhile
        const delta = d.result - call.ev.start;
        p.registry.add({ key: r.key, start: r.start + delta, end: r.end + delta, flags: r.flags });
        this.stats.follows++;
      }
    }
    if (this.trace.enabled)
      this.trace.emit({
        event: 'call',
        pid: p.pid,
        rank: p.rank,
        call: OP_NAMES[call.ev.op] ?? String(call.ev.op),
        addr: hex(call.ev.start),
        len: call.ev.op === OP.MREMAP ? call.ev.len : call.ev.end - call.ev.start,
        hits: call.invalidated.length + call.follows.length,
        invalidated: call.invalidated.map(Number),
        followed: call.follows.map((r) => Number(r.key)),
        outcome: d.result < 0 ? `errno ${-d.result}` : call.ev.op === OP.MREMAP ? hex(d.result) : d.result,
        timed_out: (d.flags & DONE_TIMED_OUT) !== 0,
        latency_us: Math.round(us),
      });
  }

  fork(p: ProcessState, child: number): void {
    if (this.trace.enabled) this.trace.emit({ event: 'fork', pid: p.pid, rank: p.rank, child, registrations: p.registry.size });
  }

  /** The process is gone (exit, kill, or cut off): everything it held goes with it. */
  drop(p: ProcessState, reason: string): void {
    if (!this.processes.delete(p.id)) return;
    this.stats.live--;
    if (this.trace.enabled) this.trace.emit({ event: 'gone', pid: p.pid, rank: p.rank, reason, registrations: p.registry.size });
  }
}
