// The coherence engine: every process's registrations, as its shim reports
// them in its ring, and the processes attached to them. The shim decides
// what a call does to its own registrations (policy.c), and an owner revokes
// its attachers itself, in the job table (the data plane); the engine keeps
// the record, links attachers to exports in the job table at attach (the
// control plane), and steps in only for a process that is dropped or a put
// stuck in flight. Plain code over the registry and the job service; the
// socket layer calls in, and the world comes in through ports (./ports.ts:
// each process's event ring, the job tables, other processes' memory and
// lives), so this is testable without processes. Its parts: revocation.ts
// keeps the books of who is attached to what and lets attachments go as they
// are revoked; lifecycle.ts takes a process from HELLO to gone. They share
// process.ts's data and never import this module.

import { CALL_TIMED_OUT, CALL_WAITED, JT, PINCOH_READ, PINCOH_WRITE, R, REASON, REASON_NAMES } from '../protocol/constants.js';
import { recAddr, recAddrExact, recArg, recArg2, recCall, recFlags, recKey, recLen, recLenExact, recNs, recReason, recResult, recType } from '../protocol/records.js';
import type { AttachRequest, Attached, Hello, Publish, Stuck, TableGrant } from '../protocol/messages.js';
import { systemProcesses } from '../job/ended.js';
import { hex, Trace } from '../trace.js';
import type { EnginePorts, EventRing, Finding, MemoryPort, ProcessPort } from './ports.js';
import { Stats } from './stats.js';
import { handleGen, handleSlot, nullPeer, type Attachment, type CallEvents, type EngineJob, type Peer, type ProcessState } from './process.js';
import { Revocation } from './revocation.js';
import { Lifecycle } from './lifecycle.js';
import { DEFAULTS } from '../defaults.js';
import { EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOTCONN, EOWNERDEAD, ETIMEDOUT, errnoName } from '../protocol/errno.js';

/** Registrations end below 2^53, where JS numbers stop being exact; the shim refuses the rest. */
const ADDR_LIMIT = Number.MAX_SAFE_INTEGER;

export interface Limits {
  registrationsPerProcess: number;
  attachmentsPerProcess: number;
  /** hooked calls remembered while their events arrive */
  pendingPerProcess: number;
  namesPerJob: number;
}

export const DEFAULT_LIMITS: Limits = { ...DEFAULTS.limits };

/** The longest an attach or a barrier may wait, whatever it asks for. */
export const MAX_WAIT_MS = DEFAULTS.maxWaitMs;

export { ProcessState, type Attachment, type EngineJob, type ExportSlot, type Peer } from './process.js';

export type Reply = number | { status: 0; attached: Attached };

export interface EngineOptions {
  mremapFollow: boolean;
  /** keep registered pages out of fork's children (MADV_DONTFORK around fork) */
  forkDontfork?: boolean;
  /** free() and realloc() invalidate the registrations inside the chunk they give back (`--free invalidate`) */
  freeInvalidate?: boolean;
  /** false: never revoke attachments (`--no-coherence`, to show the hazard) */
  coherence?: boolean;
  /** how long a put already in flight on a revoked handle may take before its process is killed */
  revokeTimeoutMs?: number;
  trace?: Trace;
  stats?: Stats;
  limits?: Partial<Limits>;
  /** check that a published registration lies in the caller's memory (default true; unit tests with fake pids turn it off) */
  verifyMappings?: boolean;
  /** audit each process against /proc/PID/maps as it exits or execs (`pincoh run --audit`) */
  auditOnExit?: boolean;
  /** told at once when a process dies without exiting (killed or crashed) */
  onCrash?: (p: ProcessState, signal: string | undefined) => void;
  /** told after a process has connected or gone */
  onMembers?: () => void;
  /** the signal that ended a process already reaped, where the caller knows it (pincoh run: its own ranks) */
  signalOf?: (pid: number) => string | undefined;
  /** makes a job's table, or throws TableError (the ports, ./ports.ts: given by the composition root,
   * src/system-ports.ts, or by CoordinatorServer to an engine made without them; unit tests: JobTable.inMemory or a fake) */
  makeTable?: EnginePorts['tables'];
  /** other processes' memory: the registration check at publish, the audit */
  memory?: MemoryPort;
  /** other processes' lives (default: /proc and kill(2), job/ended.ts) */
  lives?: ProcessPort;
  /** told when something the engine cannot act on happens (a job table that cannot be made) */
  log?: (line: string) => void;
  /** a member's crash fails its job for the coordinator's lifetime, not only while members remain
   * (pincoh run, pincoh exec's node coordinator: one job each; see Job) */
  failuresStick?: boolean;
}

export interface AuditEntry {
  pid: number;
  rank: number;
  argv0: string;
  registrations: number;
  findings: Array<{ key: number; addr: string; len: number; finding: Finding }>;
}

/** A process's events that break the protocol: the process is cut off. */
export class EventError extends Error {}

/** exit or exec, free or realloc: the CALL event's arg says which (0 or 1) */
const callOf = (reason: number, arg: number): string => (reason === REASON.EXIT ? (arg ? 'exec' : 'exit') : arg ? 'realloc' : 'free');

export class Engine {
  readonly processes = new Map<number, ProcessState>();
  readonly jobs = new Map<string, EngineJob>();
  readonly stats: Stats;
  readonly trace: Trace;
  readonly limits: Limits;
  readonly mremapFollow: boolean;
  readonly forkDontfork: boolean;
  readonly freeInvalidate: boolean;
  readonly coherence: boolean;
  readonly revokeTimeoutMs: number;
  readonly verifyMappings: boolean;
  readonly auditOnExit: boolean;
  readonly failuresStick: boolean;
  private makeTable: EnginePorts['tables'] | undefined;
  private memory: MemoryPort | undefined;
  private readonly lives: ProcessPort;
  /** the books of who is attached to what, and their revoking (revocation.ts) */
  private readonly revocation: Revocation;
  /** each process from HELLO to gone, and its slot in its job's table (lifecycle.ts) */
  private readonly lifecycle: Lifecycle;
  /** findings of the audits made at exit (auditOnExit) */
  readonly exitAudits: AuditEntry[] = [];

  constructor(opts: EngineOptions) {
    this.mremapFollow = opts.mremapFollow;
    this.forkDontfork = opts.forkDontfork ?? false;
    this.freeInvalidate = opts.freeInvalidate ?? false;
    this.coherence = opts.coherence ?? true;
    this.revokeTimeoutMs = opts.revokeTimeoutMs ?? DEFAULTS.revokeTimeoutMs;
    this.verifyMappings = opts.verifyMappings ?? true;
    this.auditOnExit = opts.auditOnExit ?? false;
    this.failuresStick = opts.failuresStick ?? false;
    this.makeTable = opts.makeTable;
    this.memory = opts.memory;
    this.lives = opts.lives ?? systemProcesses;
    const log = opts.log ?? ((line) => process.stderr.write(`pincoh: ${line}\n`));
    this.stats = opts.stats ?? new Stats();
    this.trace = opts.trace ?? new Trace();
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.revocation = new Revocation({ stats: this.stats, trace: this.trace, coherence: this.coherence, revokeTimeoutMs: this.revokeTimeoutMs, lives: this.lives, end: (p, reason) => this.lifecycle.end(p, reason) });
    this.lifecycle = new Lifecycle({
      processes: this.processes,
      jobs: this.jobs,
      stats: this.stats,
      trace: this.trace,
      lives: this.lives,
      log,
      failuresStick: this.failuresStick,
      onCrash: opts.onCrash,
      onMembers: opts.onMembers,
      signalOf: opts.signalOf,
      tables: () => this.makeTable,
      revocation: this.revocation,
      drain: (p) => this.drain(p),
    });
  }

  /** The ports this engine was made without (a server gives the real ones): those it has stay. */
  provide(ports: Partial<Pick<EnginePorts, 'tables' | 'memory'>>): void {
    this.makeTable ??= ports.tables;
    this.memory ??= ports.memory;
  }

  /** A process said HELLO. pid and uid come from SO_PEERCRED, never from the message. */
  connect(pid: number, uid: number, hello: Hello, peer: Peer = nullPeer, area?: EventRing): ProcessState {
    return this.lifecycle.connect(pid, uid, hello, peer, area);
  }

  // ---- events ----

  /** Applies every event p's shim has written since the last drain. Throws EventError on one that breaks the protocol. */
  drain(p: ProcessState): number {
    if (!p.area) return 0;
    const n = p.area.drain((v, off) => this.event(p, v, off));
    const dropped = p.area.dropped;
    if (dropped !== p.dropped) {
      this.stats.dropped += dropped - p.dropped;
      if (this.trace.enabled) this.trace.emit({ event: 'dropped', pid: p.pid, rank: p.rank, events: dropped - p.dropped });
      p.dropped = dropped;
    }
    this.stats.events += n;
    return n;
  }

  /** One event at off of v (proto.h struct pc_rec, read through protocol/records.ts). */
  event(p: ProcessState, v: DataView, off: number): void {
    const type = recType(v, off);
    const key = recKey(v, off);
    const reason = recReason(v, off);
    const call = recCall(v, off);
    switch (type) {
      case R.REG: {
        const addr = recAddr(v, off);
        const len = recLen(v, off);
        const flags = recFlags(v, off);
        if (key === 0n || len === 0 || addr + len >= ADDR_LIMIT || flags === 0 || flags & ~(PINCOH_READ | PINCOH_WRITE)) throw new EventError(`a registration event with key ${key}, 0x${recAddrExact(v, off).toString(16)} +${recLenExact(v, off)}, flags ${flags}`);
        if (p.registry.size >= this.limits.registrationsPerProcess) throw new EventError(`more than ${this.limits.registrationsPerProcess} registrations (the limit WELCOME gave)`);
        if (!p.registry.add({ key, start: addr, end: addr + len, flags })) throw new EventError(`key ${key} registered twice`);
        this.stats.registrations++;
        if (this.trace.enabled) this.trace.emit({ event: 'register', pid: p.pid, rank: p.rank, key: Number(key), addr: hex(addr), len, flags });
        return;
      }
      case R.DEREG: {
        const r = p.registry.remove(key);
        if (this.trace.enabled) this.trace.emit({ event: 'deregister', pid: p.pid, rank: p.rank, key: Number(key), outcome: r ? 'ok' : 'unknown key' });
        if (r) this.revocation.invalidated(p, [key], REASON.DEREGISTER);
        return;
      }
      case R.INVAL: {
        const name = REASON_NAMES[reason];
        if (!name || reason === REASON.REVOKED || reason === REASON.DEREGISTER) throw new EventError(`an invalidation for reason ${reason}`);
        const keys = key === 0n ? this.everything(p, reason) : p.registry.remove(key) ? [key] : [];
        this.stats.invalidations[name] = (this.stats.invalidations[name] ?? 0) + keys.length;
        this.callEvents(p, call)?.invalidated.push(...keys.map(Number));
        this.revocation.invalidated(p, keys, reason);
        return;
      }
      case R.MOVING:
        // it follows the mremap, keeping its key (and its names); its owner revokes its
        // attachers (they hold its old address), and REVOKED then REARM follow
        this.callEvents(p, call)?.followed.push(Number(key));
        if (!this.coherence) this.revocation.settle(p, key, undefined, REASON.MREMAP);
        return;
      case R.REVOKED: {
        const x = recAddr(v, off);
        const gen = recLen(v, off);
        if (x < 1 || x > JT.EXPORTS || gen === 0 || gen > 0x0fffffff || !REASON_NAMES[reason]) throw new EventError(`a revocation of export ${x} generation ${gen} for reason ${reason}`);
        const waited = recArg(v, off) > 0n;
        const outcome = recArg2(v, off) > 0n ? 'stuck' : waited ? 'drained' : 'dead';
        const us = recNs(v, off) / 1000;
        if (waited) {
          // the owner's own wait for puts in flight
          this.stats.revokeWait.add(us);
          this.stats.onLatency?.('sync_wait', '', us / 1e6);
        }
        this.revocation.settle(p, key, { export: x, xgen: gen }, reason, outcome, us);
        return;
      }
      case R.REARM: {
        const x = recAddr(v, off);
        const gen = recLen(v, off);
        const pub = p.published.get(key);
        if (x < 1 || x > JT.EXPORTS || gen === 0 || gen > 0x0fffffff) throw new EventError(`a re-armed export ${x} generation ${gen}`);
        if (pub && pub.export === x) pub.xgen = gen;
        return;
      }
      case R.MOVED: {
        const r = p.registry.remove(key);
        const start = recAddr(v, off);
        if (!r) return;
        p.registry.add({ key, start, end: start + (r.end - r.start), flags: r.flags });
        this.stats.follows++;
        return;
      }
      case R.CALL:
        this.closeCall(p, call, reason, v, off);
        return;
      case R.BYE:
        p.bye = recArg(v, off) ? 'exec' : 'exit';
        return;
      case R.FORK:
        if (this.trace.enabled) this.trace.emit({ event: 'fork', pid: p.pid, rank: p.rank, child: recResult(v, off), registrations: p.registry.size });
        return;
      default:
        throw new EventError(`an event of unknown type ${type}`);
    }
  }

  /** Exit or exec: every registration goes. The process is still here (blocked in its exit): the last moment to audit it. */
  private everything(p: ProcessState, reason: number): bigint[] {
    if (reason === REASON.EXIT && this.auditOnExit) {
      const a = this.audit(p);
      if (a?.findings.length) this.exitAudits.push(a);
    }
    const keys = [...p.registry].map((r) => r.key);
    for (const k of keys) p.registry.remove(k);
    return keys;
  }

  private callEvents(p: ProcessState, call: number): CallEvents | undefined {
    if (!this.trace.enabled) return undefined;
    let c = p.calls.get(call);
    if (!c) {
      if (p.calls.size >= this.limits.pendingPerProcess) p.calls.delete(p.calls.keys().next().value!);
      p.calls.set(call, (c = { invalidated: [], followed: [] }));
    }
    return c;
  }

  private closeCall(p: ProcessState, call: number, reason: number, v: DataView, off: number): void {
    const flags = recFlags(v, off);
    const latencyUs = recNs(v, off) / 1000;
    this.stats.slowCalls++;
    this.stats.callLatency(REASON_NAMES[reason] ?? 'other', latencyUs);
    if (flags & CALL_WAITED) this.stats.waitedCalls++;
    if (flags & CALL_TIMED_OUT) {
      this.stats.timeouts++;
      p.timeouts++;
    }
    if (!this.trace.enabled) return;
    const c = p.calls.get(call) ?? { invalidated: [], followed: [] };
    p.calls.delete(call);
    const result = recResult(v, off);
    const len = recLen(v, off);
    const exit = reason === REASON.EXIT;
    this.trace.emit({
      event: 'call',
      pid: p.pid,
      rank: p.rank,
      call: exit || reason === REASON.FREE ? callOf(reason, Number(recArg(v, off))) : (REASON_NAMES[reason] ?? String(reason)),
      ...(exit ? {} : { addr: hex(recAddr(v, off)), len }),
      hits: c.invalidated.length + c.followed.length,
      invalidated: c.invalidated,
      followed: c.followed,
      outcome: result < 0 ? errnoName(result) : reason === REASON.MREMAP || reason === REASON.FREE ? hex(result) : result, // new addresses in hex
      latency_us: Number(latencyUs.toFixed(3)),
      waited: (flags & CALL_WAITED) !== 0,
      timed_out: (flags & CALL_TIMED_OUT) !== 0,
    });
  }

  /** SYNC: the events so far are applied (a full ring, or an exit under --audit); nothing else is waited for. */
  sync(p: ProcessState): number | Promise<number> {
    const t0 = process.hrtime.bigint();
    this.drain(p);
    this.stats.syncWindow.add(Number(process.hrtime.bigint() - t0) / 1000);
    return 0;
  }

  /** What the registry holds for p that p's memory no longer backs; undefined if p is gone. */
  audit(p: ProcessState): AuditEntry | undefined {
    const stale = this.memory?.audit(p.pid, p.registry);
    if (!stale) return undefined;
    const findings = stale.map(({ reg, finding }) => ({ key: Number(reg.key), addr: hex(reg.start), len: reg.end - reg.start, finding }));
    if (this.trace.enabled && findings.length) this.trace.emit({ event: 'audit', pid: p.pid, rank: p.rank, findings });
    return { pid: p.pid, rank: p.rank, argv0: p.hello.argv0, registrations: p.registry.size, findings };
  }

  /** Audits every live process, or the one with this pid (0: all). The caller has drained their rings
   * (CoordinatorServer.drainAll: a process whose ring breaks the protocol is cut off there, not here). */
  auditAll(pid = 0): AuditEntry[] {
    const out: AuditEntry[] = [];
    for (const p of this.processes.values()) {
      if (pid && p.pid !== pid) continue;
      const a = this.audit(p);
      if (a) out.push(a);
    }
    return out;
  }

  // ---- the job table ----

  /** What WELCOME tells p of its job's table, or undefined (it cannot share). */
  grant(p: ProcessState): TableGrant | undefined {
    const t = p.job.table;
    if (!t || p.member < 0 || t.fd < 0) return undefined;
    return { revokeMs: this.revokeTimeoutMs, fd: t.fd, size: t.size, member: p.member, memberWord: p.memberWord, coordTid: t.coordTid };
  }

  // ---- sharing ----

  publish(p: ProcessState, req: Publish): number {
    const { key, name } = req;
    if (!name || name.length >= 64) return -EINVAL;
    this.drain(p);
    const r = p.registry.get(key);
    if (!r) return -ENOENT;
    const t = p.job.table;
    if (!t || p.member < 0) return -ENOTCONN;
    // The shim made the export word live before asking; a second name for the same registration shares it.
    const had = p.published.get(key);
    if (req.export < 1 || req.export > JT.EXPORTS || (had && (had.export !== req.export || had.xgen !== req.xgen)) || !t.isLive(p.member, req.export, req.xgen)) return -EINVAL;
    if (p.job.names.size >= this.limits.namesPerJob && !p.job.names.has(name)) return -ENOSPC;
    // Others will write through it: it must be memory the caller has (the kernel says,
    // through process_vm_readv). Checked here, not at registration, which stays free.
    if (this.verifyMappings && !this.mapped(p, r.start, r.end)) return -EFAULT;
    if (!p.job.publish(name, { owner: p, key })) return -EEXIST;
    p.published.set(key, { export: req.export, xgen: req.xgen });
    if (this.trace.enabled) this.trace.emit({ event: 'publish', pid: p.pid, rank: p.rank, key: Number(key), name });
    return 0;
  }

  private mapped(p: ProcessState, start: number, end: number): boolean {
    if (!this.memory) throw new Error('this engine checks registrations (verifyMappings) but was given no memory port');
    return this.memory.isMapped(p.pid, start, end, p.hello.pageSize);
  }

  attach(p: ProcessState, req: AttachRequest): Reply | Promise<Reply> {
    const slot = handleSlot(req.handle);
    if (p.attachments.has(req.handle) || slot < 0 || slot >= JT.HANDLES || handleGen(req.handle) === 0) return -EINVAL;
    if (p.attachments.size >= this.limits.attachmentsPerProcess) return -ENOSPC;
    if (!p.job.table || p.member < 0) return -ENOTCONN;
    const found = p.job.lookup(p, req.name, Math.min(Math.max(req.timeoutMs, 0), MAX_WAIT_MS));
    const finish = (e: { owner: ProcessState; key: bigint } | undefined): Reply => {
      if (p.gone) return -ETIMEDOUT;
      if (!e && p.job.failed) return -EOWNERDEAD; // a member died: nothing more will be published
      if (e && !e.owner.gone) this.drain(e.owner); // what it invalidated meanwhile is not attached to
      const r = e && !e.owner.gone ? e.owner.registry.get(e.key) : undefined;
      const pub = r && e ? e.owner.published.get(e.key) : undefined;
      const t = p.job.table;
      if (this.trace.enabled) this.trace.emit({ event: 'attach', pid: p.pid, rank: p.rank, name: req.name, owner: e?.owner.pid, outcome: pub ? 'ok' : 'timed out' });
      if (!e || !r || !pub || !t) return -ETIMEDOUT;
      // Linked before the answer: from here on, the owner's revoke waits for this attacher's puts.
      // If the owner marked the export dead already, the handle is born dead (its REVOKED frees the link).
      const link = t.link(e.owner.member, pub.export, pub.xgen, p.member, slot);
      if (link === undefined) return -ENOSPC;
      const a: Attachment = { attacher: p, owner: e.owner, key: e.key, handle: req.handle, link, export: pub.export, xgen: pub.xgen };
      this.revocation.attached(a);
      return { status: 0, attached: { addr: r.start, len: r.end - r.start, pid: e.owner.pid, flags: r.flags, owner: e.owner.member, export: pub.export, xgen: pub.xgen, ownerWord: e.owner.memberWord } };
    };
    return found instanceof Promise ? found.then(finish) : finish(found);
  }

  detach(p: ProcessState, handle: bigint): number {
    return this.revocation.detach(p, handle);
  }

  barrier(p: ProcessState, timeoutMs: number): Promise<number> | number {
    if (timeoutMs < 0) return -EINVAL;
    return p.job.arrive(p, Math.max(1, p.hello.size), Math.min(timeoutMs, MAX_WAIT_MS));
  }

  /** STUCK: a put of an attacher stays in flight on a revoked handle past the bound: its process is ended (revocation.ts). */
  stuck(p: ProcessState, s: Stuck): number | Promise<number> {
    return this.revocation.stuck(p, s);
  }

  /**
   * An attacher whose put stays in flight past the bound on a revoked handle
   * (stopped or hung inside pincoh_put) may still write into memory that is
   * being changed: nothing but killing it keeps invariant 1.
   */
  cutOff(p: ProcessState, reason: string): void {
    this.lifecycle.cutOff(p, reason);
  }

  /** The process is gone (exit, kill, or cut off): its last events are read, then everything it held goes. */
  drop(p: ProcessState, reason: string): void {
    this.lifecycle.drop(p, reason);
  }

  /** The coordinator is closing (every process dropped first): each job's table says so to its members, and goes. */
  close(): void {
    this.lifecycle.close();
  }
}
