// What the engine and its parts (revocation.ts, lifecycle.ts) share: a
// connected process as the engine keeps it, its attachments and exports, and
// its job. Data only: no part of the engine is imported here.

import type { Hello } from '../protocol/messages.js';
import type { Job } from '../job/jobs.js';
import { IntervalIndex } from '../registry/interval-index.js';
import type { EventRing, Table } from './ports.js';

/** What the engine needs from a connected process. */
export interface Peer {
  /** Closes the connection, saying why. */
  cutOff(reason: string): void;
}

export const nullPeer: Peer = { cutOff: () => {} };

/** One hooked call's events, gathered until the CALL event closes it. */
export interface CallEvents {
  invalidated: number[];
  followed: number[];
}

export interface Attachment {
  attacher: ProcessState;
  owner: ProcessState;
  key: bigint;
  handle: bigint;
  /** its link in the job table, and the export generation it attached to */
  link: number;
  export: number;
  xgen: number;
}

/** A published registration's export in the job table (slot + 1, generation), as the owner made it. */
export interface ExportSlot {
  export: number;
  xgen: number;
}

export class ProcessState {
  readonly registry = new IntervalIndex();
  readonly calls = new Map<number, CallEvents>();
  /** as attacher: handle -> attachment */
  readonly attachments = new Map<bigint, Attachment>();
  /** as owner: key -> the attachments to it */
  readonly exports = new Map<bigint, Set<Attachment>>();
  /** as owner: key -> its export in the job table, while published */
  readonly published = new Map<bigint, ExportSlot>();
  /** its slot in its job's table (-1: none: it cannot share), and that slot's record while it is ours */
  member = -1;
  memberWord = 0;
  /** its start time (/proc), so a pid the kernel gave to another process is not taken for it */
  startedAt: string | undefined;
  gone = false;
  /** it said BYE: it ends on purpose (exit or exec) */
  bye: 'exit' | 'exec' | undefined;
  /** events the shim reported lost so far */
  dropped = 0;
  /** its calls that timed out waiting for us (it went on alone: degraded) */
  timeouts = 0;
  /** how libc's own calls are covered in it (the HELLO says) */
  libc = '';
  readonly since = Date.now();
  constructor(
    readonly id: number,
    readonly pid: number,
    readonly uid: number,
    readonly hello: Hello,
    readonly job: EngineJob,
    readonly peer: Peer,
    readonly area: EventRing | undefined,
  ) {}
  get rank(): number {
    return this.hello.rank;
  }
}

/** A job as the engine keeps it: its members are ProcessStates, its table a Table port. */
export type EngineJob = Job<ProcessState, Table>;

/** An attacher's handle (proto.h): its slot in the attacher's handle table (+1) and generation. */
export const handleSlot = (h: bigint): number => Number(h & 0xffffffffn) - 1;
export const handleGen = (h: bigint): number => Number(h >> 32n);
