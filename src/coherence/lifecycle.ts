// A process's life as the engine keeps it, from HELLO to gone: its slot in
// its job's table (made at the job's first member, quarantined while a
// dropped process may still run, released once it has exited), its end
// (cut off while connected, killed once dropped), and its drop, where a
// death without BYE is told apart as a crash and fails its job. The engine
// calls in; revocation's books are handed to it, and the engine's drain reads
// a process's last events.

import { JT } from '../protocol/constants.js';
import { libcCoverage, type Hello } from '../protocol/messages.js';
import { Job } from '../job/jobs.js';
import type { Trace } from '../trace.js';
import { TableError, type EnginePorts, type EventRing, type ProcessPort, type Table } from './ports.js';
import type { Stats } from './stats.js';
import type { Revocation } from './revocation.js';
import { nullPeer, ProcessState, type EngineJob, type Peer } from './process.js';

export interface LifecycleDeps {
  /** the engine's: connected processes by id, jobs by name */
  readonly processes: Map<number, ProcessState>;
  readonly jobs: Map<string, EngineJob>;
  readonly stats: Stats;
  readonly trace: Trace;
  readonly lives: ProcessPort;
  readonly log: (line: string) => void;
  /** a member's crash fails its job for the coordinator's lifetime (see Job) */
  readonly failuresStick: boolean;
  /** told at once when a process dies without exiting (killed or crashed) */
  readonly onCrash: ((p: ProcessState, signal: string | undefined) => void) | undefined;
  /** told after a process has connected or gone (the summary so far changed) */
  readonly onMembers: (() => void) | undefined;
  /** the signal that ended a process already reaped, where the caller knows it */
  readonly signalOf: ((pid: number) => string | undefined) | undefined;
  /** the engine's way to make a job's table, as it has it now (a server may provide it after the engine is made) */
  tables(): EnginePorts['tables'] | undefined;
  /** a dropped process's attachments and exports */
  readonly revocation: Pick<Revocation, 'attacherGone' | 'ownerGone'>;
  /** applies p's events so far (the engine's); throws on one that breaks the protocol */
  drain(p: ProcessState): void;
}

export class Lifecycle {
  /** processes dropped while they may still run: their table slots are kept until they are gone */
  private readonly quarantined = new Set<ProcessState>();
  private quarantineTimer: NodeJS.Timeout | undefined;
  private nextId = 1;

  constructor(private readonly d: LifecycleDeps) {}

  /** A process said HELLO. pid and uid come from SO_PEERCRED, never from the message. */
  connect(pid: number, uid: number, hello: Hello, peer: Peer = nullPeer, area?: EventRing): ProcessState {
    let job = this.d.jobs.get(hello.job);
    if (!job) this.d.jobs.set(hello.job, (job = new Job<ProcessState, Table>(hello.job, this.d.failuresStick)));
    const p = new ProcessState(this.nextId++, pid, uid, hello, job, peer, area);
    job.members++;
    this.join(p);
    this.d.processes.set(p.id, p);
    this.d.stats.processes++;
    this.d.stats.live++;
    // chained at start-up, or before the first registration: the HELLO knows
    const libc = libcCoverage(hello.libc, hello.chained);
    p.libc = libcCoverage(hello.libc, 0);
    this.d.stats.libc[libc] = (this.d.stats.libc[libc] ?? 0) + 1;
    if (this.d.trace.enabled) this.d.trace.emit({ event: 'hello', pid, rank: hello.rank, ppid: hello.ppid, argv0: hello.argv0, job: hello.job, libc });
    this.d.onMembers?.();
    return p;
  }

  /** A slot in its job's table, made at the job's first member; without one the process cannot share. */
  private join(p: ProcessState): void {
    const job = p.job;
    if (!job.table) {
      try {
        const make = this.d.tables();
        if (!make) throw new TableError('this engine was given no way to make job tables');
        job.table = make(job.id);
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
        if (!job.tableFailed) this.d.log(`job ${job.id}: ${err.message}; its processes cannot share memory`);
        job.tableFailed = true;
        return;
      }
    }
    const m = job.table.join(p.pid);
    if (!m) {
      this.d.log(`job ${job.id}: its table has no room for pid ${p.pid} (${JT.MEMBERS} processes at once); it cannot share memory`);
      return;
    }
    p.member = m.member;
    p.memberWord = m.word;
    p.startedAt = this.d.lives.runningSince(p.pid);
    job.byMember.set(m.member, p);
  }

  /** Ends p for a put stuck in flight: cut off while connected; killed all the same once dropped (it may still run). */
  end(p: ProcessState, reason: string): void {
    if (!p.gone) return this.cutOff(p, reason);
    if (p.pid === process.pid || this.d.lives.exited(p.pid, p.startedAt)) return;
    if (!this.d.lives.kill(p.pid)) return; // already gone
    this.d.stats.cutOff++;
    this.d.log(`killed pid ${p.pid} (${p.hello.argv0}, rank ${p.rank}), dropped earlier: ${reason}`);
    if (this.d.trace.enabled) this.d.trace.emit({ event: 'cutoff', pid: p.pid, rank: p.rank, reason, killed: true });
  }

  /**
   * An attacher whose put stays in flight past the bound on a revoked handle
   * (stopped or hung inside pincoh_put) may still write into memory that is
   * being changed: nothing but killing it keeps invariant 1.
   */
  cutOff(p: ProcessState, reason: string): void {
    if (p.gone) return;
    // A peer could be this very process (a test client): never kill ourselves.
    if (p.pid !== process.pid) this.d.lives.kill(p.pid);
    this.d.stats.cutOff++;
    if (this.d.trace.enabled) this.d.trace.emit({ event: 'cutoff', pid: p.pid, rank: p.rank, reason, killed: true });
    this.drop(p, `killed: ${reason}`);
    p.peer.cutOff(`${reason}; killed`);
  }

  /** The process is gone (exit, kill, or cut off): its last events are read, then everything it held goes. */
  drop(p: ProcessState, reason: string): void {
    if (!this.d.processes.has(p.id)) return;
    try {
      this.d.drain(p); // still readable after a SIGKILL: the area is ours too
    } catch {
      /* a process that broke the protocol is dropped all the same */
    }
    this.d.processes.delete(p.id);
    p.gone = true;
    this.d.stats.live--;
    // Its connection closed without BYE, and it is exiting or gone: killed or
    // crashed, and its job fails at once. One that still runs only dropped its
    // connection (closed the shim's descriptor, gave up on us): it reconnects.
    // (exec'd: the same pid runs on, but nothing of the old image can write)
    const disconnected = reason === 'disconnected';
    const dead = disconnected && (p.bye === 'exec' || this.d.lives.runningSince(p.pid) === undefined);
    const crashed = dead && !p.bye;
    // /proc shows it while the process is a zombie; once reaped, only its parent knew
    const signal = crashed ? (this.d.lives.deathSignal(p.pid) ?? this.d.signalOf?.(p.pid)) : undefined;
    if (crashed) {
      this.d.stats.crashed++;
      p.job.fail({ pid: p.pid, rank: p.rank, signal });
      this.d.onCrash?.(p, signal);
    }
    const t = p.job.table;
    // It may still run (cut off, or it dropped us): its puts are refused from now on.
    if (t && p.member >= 0 && !dead) t.expel(p.member);
    this.d.revocation.attacherGone(p, dead);
    p.job.leave(p);
    this.d.revocation.ownerGone(p, t, dead); // as an owner: its exports die in its stead
    p.area?.unmap();
    if (t && p.member >= 0) {
      if (dead) this.release(p);
      else this.quarantine(p);
    }
    const how = crashed ? 'crash' : (p.bye ?? (/^(cut off|killed)/.test(reason) ? 'cut off' : reason)); // or disconnected, coordinator closed
    if (this.d.trace.enabled) this.d.trace.emit({ event: 'gone', pid: p.pid, rank: p.rank, how, ...(signal && { signal }), reason, registrations: p.registry.size });
    this.d.onMembers?.();
  }

  /** Its table slot is free again, and the table itself once its job has nobody left. */
  private release(p: ProcessState): void {
    const t = p.job.table;
    this.quarantined.delete(p);
    if (!t || p.member < 0) return;
    if (p.job.byMember.get(p.member) === p) p.job.byMember.delete(p.member);
    t.release(p.member);
    p.member = -1;
    if (p.job.members === 0 && p.job.byMember.size === 0) {
      t.close();
      p.job.table = undefined;
    }
  }

  /** Dropped while it may still run: its slot is its own until it has exited (checked every second). */
  private quarantine(p: ProcessState): void {
    this.quarantined.add(p);
    if (this.quarantineTimer) return;
    this.quarantineTimer = setInterval(() => {
      for (const q of this.quarantined) if (this.d.lives.exited(q.pid, q.startedAt)) this.release(q);
      if (this.quarantined.size === 0) {
        clearInterval(this.quarantineTimer);
        this.quarantineTimer = undefined;
      }
    }, 1000);
    this.quarantineTimer.unref();
  }

  /** The coordinator is closing (every process dropped first): each job's table says so to its members, and goes. */
  close(): void {
    clearInterval(this.quarantineTimer);
    this.quarantineTimer = undefined;
    this.quarantined.clear();
    for (const job of this.d.jobs.values()) {
      job.table?.close();
      job.table = undefined;
      job.byMember.clear();
    }
  }
}
