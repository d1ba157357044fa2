// The coherence engine: registrations per process, what each hooked call does
// to them, and the processes attached to them. Plain code over the registry
// and the job service; the socket layer calls in and provides a Peer per
// process, so this is testable without processes.

import { DONE_TIMED_OUT, MREMAP_FIXED, OP, OP_NAMES, PINCOH_READ, PINCOH_WRITE } from '../protocol/constants.js';
import { LIBC_MODES, type AttachRequest, type Attached, type Begin, type Done, type Hello, type Register } from '../protocol/messages.js';
import { Job } from '../job/jobs.js';
import { audit as auditMaps, readMaps, type Finding } from '../memory/maps.js';
import { isMapped, readRemote, writeRemote } from '../memory/remote.js';
import { IntervalIndex, type Registration } from '../registry/interval-index.js';
import { hex, Trace } from '../trace.js';
import { ACT_FOLLOW, ACT_INVALIDATE, decide, type MapEvent, pageEnd } from './policy.js';
import { Stats } from './stats.js';
import { EBADF, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ETIMEDOUT } from '../protocol/errno.js';

/** Registrations must end below 2^53, where JS numbers stop being exact (and where
 * the codec saturates). x86_64 user space ends at 2^47, or 2^56 with 5-level paging
 * and a high mmap hint: those few registrations are refused, see README limits. */
const ADDR_LIMIT = Number.MAX_SAFE_INTEGER;

/** Why a handle was revoked (the REVOKE frame's reason): the op codes 1-5 for a
 * hooked call (OP in constants.ts), or one of these. */
export const REVOKE_REASON = { deregister: 16, exit: 17 } as const;

export interface Limits {
  registrationsPerProcess: number;
  attachmentsPerProcess: number;
  /** BEGINs remembered while waiting for their DONE */
  pendingPerProcess: number;
  namesPerJob: number;
}

export const DEFAULT_LIMITS: Limits = { registrationsPerProcess: 1 << 20, attachmentsPerProcess: 4096, pendingPerProcess: 4096, namesPerJob: 65536 };

/** The longest an attach or a barrier may wait, whatever it asks for. */
export const MAX_WAIT_MS = 3_600_000;

export type RevokeOutcome = 'acked' | 'gone' | 'timeout';

/** What the engine needs from a connected process. */
export interface Peer {
  /** Sends REVOKE and resolves when it is acknowledged, the peer is gone, or timeoutMs passed. */
  revoke(handle: bigint, reason: number, timeoutMs: number): Promise<RevokeOutcome>;
  /** Closes the connection, saying why. */
  cutOff(reason: string): void;
}

export type Reply = number | { status: 0; attached: Attached };

export interface EngineOptions {
  mremapFollow: boolean;
  /** keep registered pages out of fork's children (MADV_DONTFORK around fork) */
  forkDontfork?: boolean;
  /** false: never revoke attachments (`--no-coherence`, to show the hazard) */
  coherence?: boolean;
  /** how long an attacher has to acknowledge a REVOKE before it is cut off */
  revokeTimeoutMs?: number;
  trace?: Trace;
  stats?: Stats;
  limits?: Partial<Limits>;
  /** check that a published registration lies in the caller's memory (default true; unit tests with fake pids turn it off) */
  verifyMappings?: boolean;
  /** audit each process against /proc/PID/maps as it exits or execs (`pincoh run --audit`) */
  auditOnExit?: boolean;
}

export interface AuditEntry {
  pid: number;
  rank: number;
  argv0: string;
  registrations: number;
  findings: Array<{ key: number; addr: string; len: number; finding: Finding }>;
}

interface InFlight {
  ev: MapEvent;
  t0: bigint;
  invalidated: bigint[];
  follows: Registration[];
}

export interface Attachment {
  attacher: ProcessState;
  owner: ProcessState;
  key: bigint;
  handle: bigint;
  stateAddr: number;
}

export class ProcessState {
  readonly registry = new IntervalIndex();
  readonly inFlight = new Map<bigint, InFlight>();
  /** as attacher: handle -> attachment */
  readonly attachments = new Map<bigint, Attachment>();
  /** as owner: key -> the attachments to it */
  readonly exports = new Map<bigint, Set<Attachment>>();
  gone = false;
  constructor(
    readonly id: number,
    readonly pid: number,
    readonly uid: number,
    readonly hello: Hello,
    readonly job: Job,
    readonly peer: Peer,
  ) {}
  get rank(): number {
    return this.hello.rank;
  }
}

const nullPeer: Peer = { revoke: async () => 'gone', cutOff: () => {} };

export class Engine {
  readonly processes = new Map<number, ProcessState>();
  readonly jobs = new Map<string, Job>();
  readonly stats: Stats;
  readonly trace: Trace;
  readonly limits: Limits;
  readonly mremapFollow: boolean;
  readonly forkDontfork: boolean;
  readonly coherence: boolean;
  readonly revokeTimeoutMs: number;
  readonly verifyMappings: boolean;
  readonly auditOnExit: boolean;
  /** findings of the audits made at exit (auditOnExit) */
  readonly exitAudits: AuditEntry[] = [];
  private nextId = 1;

  constructor(opts: EngineOptions) {
    this.mremapFollow = opts.mremapFollow;
    this.forkDontfork = opts.forkDontfork ?? false;
    this.coherence = opts.coherence ?? true;
    this.revokeTimeoutMs = opts.revokeTimeoutMs ?? 1000;
    this.verifyMappings = opts.verifyMappings ?? true;
    this.auditOnExit = opts.auditOnExit ?? false;
    this.stats = opts.stats ?? new Stats();
    this.trace = opts.trace ?? new Trace();
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  /** A process said HELLO. pid and uid come from SO_PEERCRED, never from the message. */
  connect(pid: number, uid: number, hello: Hello, peer: Peer = nullPeer): ProcessState {
    let job = this.jobs.get(hello.job);
    if (!job) this.jobs.set(hello.job, (job = new Job(hello.job)));
    const p = new ProcessState(this.nextId++, pid, uid, hello, job, peer);
    this.processes.set(p.id, p);
    this.stats.processes++;
    this.stats.live++;
    const mode = LIBC_MODES[hello.libc ?? 0] ?? `mode ${hello.libc}`;
    // chained at start-up, or before the first registration: the HELLO knows
    const libc = hello.chained ? `${mode} (chained with another interposer)` : mode;
    this.stats.libc[libc] = (this.stats.libc[libc] ?? 0) + 1;
    if (this.trace.enabled) this.trace.emit({ event: 'hello', pid, rank: hello.rank, ppid: hello.ppid, argv0: hello.argv0, job: hello.job, libc });
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

  deregister(p: ProcessState, key: bigint): number | Promise<number> {
    const r = p.registry.remove(key);
    if (this.trace.enabled) this.trace.emit({ event: 'deregister', pid: p.pid, rank: p.rank, key: Number(key), outcome: r ? 'ok' : 'unknown key' });
    if (!r) return -ENOENT;
    const revoking = this.revokeExports(p, [key], REVOKE_REASON.deregister);
    return revoking ? revoking.then(() => 0) : 0;
  }

  /** BEGIN: apply the policy now, so later frames see the new state; the ACK
   * follows once every process attached to what changes has let go. */
  begin(p: ProcessState, seq: bigint, b: Begin): number | Promise<number> {
    const name = OP_NAMES[b.op];
    if (!name) return -EINVAL;
    // The process is still here, blocked in its exit: the last moment to audit it.
    if (b.op === OP.EXIT && this.auditOnExit) {
      const a = this.audit(p);
      if (a?.findings.length) this.exitAudits.push(a);
    }
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
    // A followed registration keeps its key, but attachers hold its old address: revoke them too.
    const revoking = this.revokeExports(p, [...call.invalidated, ...call.follows.map((r) => r.key)], b.op);
    return revoking ? revoking.then(() => 0) : 0;
  }

  /** DONE: the real call returned `result` (or -errno). */
  done(p: ProcessState, d: Done): void {
    if (d.flags & DONE_TIMED_OUT) this.stats.timeouts++;
    const call = p.inFlight.get(d.beginSeq);
    if (!call) return;
    p.inFlight.delete(d.beginSeq);
    const us = Number(process.hrtime.bigint() - call.t0) / 1000;
    this.stats.slowPath.add(us);
    this.stats.slowPathWindow.add(us);
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

  /** What the registry holds for p that p's memory no longer backs; undefined if p is gone. */
  audit(p: ProcessState): AuditEntry | undefined {
    const maps = readMaps(p.pid);
    if (!maps) return undefined;
    const findings = auditMaps(p.registry, maps).map(({ reg, finding }) => ({ key: Number(reg.key), addr: hex(reg.start), len: reg.end - reg.start, finding }));
    if (this.trace.enabled && findings.length) this.trace.emit({ event: 'audit', pid: p.pid, rank: p.rank, findings });
    return { pid: p.pid, rank: p.rank, argv0: p.hello.argv0, registrations: p.registry.size, findings };
  }

  /** Audits every live process, or the one with this pid (0: all). */
  auditAll(pid = 0): AuditEntry[] {
    const out: AuditEntry[] = [];
    for (const p of this.processes.values()) {
      if (pid && p.pid !== pid) continue;
      const a = this.audit(p);
      if (a) out.push(a);
    }
    return out;
  }

  fork(p: ProcessState, child: number): void {
    if (this.trace.enabled) this.trace.emit({ event: 'fork', pid: p.pid, rank: p.rank, child, registrations: p.registry.size });
  }

  // ---- sharing ----

  publish(p: ProcessState, key: bigint, name: string): number {
    if (!name || name.length >= 64) return -EINVAL;
    const r = p.registry.get(key);
    if (!r) return -ENOENT;
    if (p.job.names.size >= this.limits.namesPerJob && !p.job.names.has(name)) return -ENOSPC;
    // Others will write through it: it must be memory the caller has (the kernel says,
    // through process_vm_readv). Checked here, not at REGISTER, which stays cheap.
    if (this.verifyMappings && !isMapped(p.pid, r.start, r.end, p.hello.pageSize)) return -EFAULT;
    if (!p.job.publish(name, { owner: p, key })) return -EEXIST;
    if (this.trace.enabled) this.trace.emit({ event: 'publish', pid: p.pid, rank: p.rank, key: Number(key), name });
    return 0;
  }

  attach(p: ProcessState, req: AttachRequest): Reply | Promise<Reply> {
    if (p.attachments.has(req.handle) || req.handle === 0n) return -EINVAL;
    if (p.attachments.size >= this.limits.attachmentsPerProcess) return -ENOSPC;
    const found = p.job.lookup(p, req.name, Math.min(Math.max(req.timeoutMs, 0), MAX_WAIT_MS));
    const finish = (e: { owner: ProcessState; key: bigint } | undefined): Reply => {
      if (p.gone) return -ETIMEDOUT;
      const r = e && !e.owner.gone ? e.owner.registry.get(e.key) : undefined;
      if (this.trace.enabled) this.trace.emit({ event: 'attach', pid: p.pid, rank: p.rank, name: req.name, owner: e?.owner.pid, outcome: r ? 'ok' : 'timed out' });
      if (!e || !r) return -ETIMEDOUT;
      const a: Attachment = { attacher: p, owner: e.owner, key: e.key, handle: req.handle, stateAddr: req.stateAddr };
      p.attachments.set(req.handle, a);
      let set = e.owner.exports.get(e.key);
      if (!set) e.owner.exports.set(e.key, (set = new Set()));
      set.add(a);
      this.stats.attachments++;
      return { status: 0, attached: { addr: r.start, len: r.end - r.start, pid: e.owner.pid, flags: r.flags } };
    };
    return found instanceof Promise ? found.then(finish) : finish(found);
  }

  detach(p: ProcessState, handle: bigint): number {
    const a = p.attachments.get(handle);
    if (!a) return -EBADF;
    this.unlink(a);
    return 0;
  }

  barrier(p: ProcessState, timeoutMs: number): Promise<number> | number {
    if (timeoutMs < 0) return -EINVAL;
    return p.job.arrive(p, Math.max(1, p.hello.size), Math.min(timeoutMs, MAX_WAIT_MS));
  }

  // ---- revoking ----

  /** Revokes every attachment to the owner's `keys` and unpublishes invalidated names.
   * undefined when nothing needs waiting for. */
  private revokeExports(owner: ProcessState, keys: bigint[], reason: number): Promise<void> | undefined {
    const victims: Attachment[] = [];
    for (const key of keys) {
      if (!owner.registry.has(key)) owner.job.unpublish(owner, key);
      const set = owner.exports.get(key);
      if (!set || !this.coherence) continue;
      victims.push(...set);
    }
    if (victims.length === 0) return undefined;
    return Promise.all(victims.map((a) => this.revokeOne(a, reason))).then(() => undefined);
  }

  private async revokeOne(a: Attachment, reason: number): Promise<void> {
    const t0 = process.hrtime.bigint();
    // Linked until the outcome is known: a cut-off must still find (and kill) this handle.
    const outcome = a.attacher.gone ? 'gone' : await a.attacher.peer.revoke(a.handle, reason, this.revokeTimeoutMs);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    this.stats.revokes++;
    this.stats.revokeLatency.add(us);
    if (this.trace.enabled) this.trace.emit({ event: 'revoke', pid: a.owner.pid, rank: a.owner.rank, attacher: a.attacher.pid, handle: Number(a.handle & 0xffffffffn), reason, outcome, latency_us: Math.round(us) });
    if (outcome === 'timeout') this.cutOff(a.attacher, `it did not acknowledge a revoke within ${this.revokeTimeoutMs} ms`);
    this.unlink(a);
  }

  private unlink(a: Attachment): void {
    a.attacher.attachments.delete(a.handle);
    const set = a.owner.exports.get(a.key);
    set?.delete(a);
    if (set?.size === 0) a.owner.exports.delete(a.key);
  }

  /**
   * An attacher that does not answer cannot be trusted to stop writing: a
   * stopped process resumes and puts. Mark every handle of it dead in its own
   * memory and look for puts in flight; if a put may be in flight, or its
   * memory cannot be written, kill it. Nothing else keeps invariant 1.
   */
  cutOff(p: ProcessState, reason: string): void {
    if (p.gone) return;
    let killed = false;
    const dead = Buffer.from([2, 0, 0, 0]);
    // The addresses are the attacher's word about its own memory: harmless to anyone
    // else, except to ourselves should a peer be this very process.
    const self = p.pid === process.pid;
    for (const a of self ? [] : p.attachments.values()) {
      const ok = writeRemote(p.pid, a.stateAddr, dead);
      const inflight = ok ? readRemote(p.pid, a.stateAddr + 4, 4)?.readUInt32LE(0) : undefined;
      if (!ok || inflight === undefined || inflight > 0) killed = true;
    }
    if (killed) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.stats.cutOff++;
    if (this.trace.enabled) this.trace.emit({ event: 'cutoff', pid: p.pid, rank: p.rank, reason, killed });
    this.drop(p, `cut off: ${reason}`);
    p.peer.cutOff(killed ? `${reason}; killed: a put may have been in flight` : reason);
  }

  /** The process is gone (exit, kill, or cut off): everything it held goes with it. */
  drop(p: ProcessState, reason: string): void {
    if (!this.processes.delete(p.id)) return;
    p.gone = true;
    this.stats.live--;
    for (const a of [...p.attachments.values()]) this.unlink(a);
    p.job.leave(p);
    // Its memory is gone, and its pid may be reused: nobody may write there any more.
    if (this.coherence) for (const set of p.exports.values()) for (const a of [...set]) void this.revokeOne(a, REVOKE_REASON.exit);
    p.exports.clear();
    if (this.trace.enabled) this.trace.emit({ event: 'gone', pid: p.pid, rank: p.rank, reason, registrations: p.registry.size });
  }
}
