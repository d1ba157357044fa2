// What the engine is handed, never imports: its ports to the world. The
// composition root (Coordinator, or CoordinatorServer for an engine made
// without them) passes the real ones (src/system-ports.ts: sealed memfds,
// /proc, process_vm_readv, kill); unit tests pass fakes.

import type { Registration } from '../registry/interval-index.js';

/** A process's event ring (its shared area): read without system calls, still readable once it is gone. */
export interface EventRing {
  /** Hands every record written since the last drain to fn (a view and the record's offset, valid
   * during the call), oldest first; returns how many. Throws if the ring cannot be the shim's. */
  drain(fn: (v: DataView, off: number) => void): number;
  /** events the shim could not queue so far */
  readonly dropped: number;
  /** the process is gone and drained: nothing may touch the ring after this */
  unmap(): void;
}

/** A member's slot in its job's table, and what its record holds while it is that member. */
export interface Membership {
  member: number;
  word: number;
}

/** A job's table cannot be made (the job's processes cannot share memory): said once, not fatal. */
export class TableError extends Error {}

/** A job's table (proto.h, "the job table"): the control plane of sharing. */
export interface Table {
  /** the descriptor its members open (-1: none, in memory) */
  readonly fd: number;
  readonly size: number;
  /** what the liveness word holds while we serve the job */
  readonly coordTid: number;
  join(pid: number): Membership | undefined;
  memberPid(m: number): number;
  /** refuses m's puts from now on (it may still run) */
  expel(m: number): void;
  release(m: number): void;
  isLive(owner: number, x: number, gen: number): boolean;
  /** marks the export dead in its owner's stead; false if it was not live */
  killExport(owner: number, x: number, gen: number, reason: number): boolean;
  /** puts of member m in flight on its handle slot */
  inflight(m: number, slot: number): number;
  link(owner: number, x: number, gen: number, attacher: number, slot: number): number | undefined;
  unlink(i: number): void;
  freeList(owner: number, x: number, gen: number | undefined): void;
  close(): void;
}

/** Why a registration is stale: what its memory no longer is. */
export type Finding = 'unmapped' | 'lost read' | 'lost write';

/** Other processes' memory, as the kernel says. */
export interface MemoryPort {
  /** whether pid has [start, end) mapped and readable */
  isMapped(pid: number, start: number, end: number, page: number): boolean;
  /** which of regs pid's memory no longer backs; undefined if pid is gone */
  audit(pid: number, regs: Iterable<Registration>): Array<{ reg: Registration; finding: Finding }> | undefined;
}

/** Other processes' lives. */
export interface ProcessPort {
  /** SIGKILL; false if there was no such process */
  kill(pid: number): boolean;
  /** pid's start time while it runs; undefined once it is exiting, a zombie or gone */
  runningSince(pid: number): string | undefined;
  /** has the process that started at `since` exited, every thread of it? */
  exited(pid: number, since?: string): boolean;
  /** the signal that ends pid, if it can still be told */
  deathSignal(pid: number): string | undefined;
}

export interface EnginePorts {
  /** makes a job's table; throws TableError if it cannot */
  tables: (job: string) => Table;
  memory: MemoryPort;
  lives: ProcessPort;
}
