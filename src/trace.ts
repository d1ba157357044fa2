// What the coordinator sees, as events: one JSON line each with --trace, and
// the same objects to whoever listens (Coordinator's 'event', the metrics).
// Free when nobody looks: callers test `enabled` before building an event.

import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { PincohError, rethrowLater } from './errors.js';

interface Base {
  /** ms since the coordinator started */
  t: number;
  pid: number;
  rank: number;
}

/** Every event the coordinator emits (docs/reference.md, The CLI: --trace). */
export type PincohEvent = Base &
  (
    | { event: 'start'; host: string; wall_ms: number }
    | { event: 'hello'; ppid: number; argv0: string; job: string; libc: string }
    | { event: 'register'; key: number; addr: string; len: number; flags: number }
    | { event: 'deregister'; key: number; outcome: 'ok' | 'unknown key' }
    | {
        event: 'call';
        call: string;
        addr?: string;
        len?: number;
        hits: number;
        invalidated: number[];
        followed: number[];
        /** the return value, a new address in hex, or an errno name */
        outcome: number | string;
        /** time spent in pincoh before the real call (the shim's clock) */
        latency_us: number;
        waited: boolean;
        timed_out: boolean;
      }
    | { event: 'fork'; child: number; registrations: number }
    | { event: 'publish'; key: number; name: string }
    | { event: 'attach'; name: string; owner: number | undefined; outcome: 'ok' | 'timed out' }
    | { event: 'revoke'; attacher: number; handle: number; reason: string; outcome: string; latency_us: number }
    | { event: 'cutoff'; reason: string; killed: boolean }
    | { event: 'dropped'; events: number }
    | { event: 'audit'; findings: unknown[] }
    | { event: 'gone'; how: string; signal?: string; reason: string; registrations: number }
  );

/** What `pincoh help trace` says of the fields every event has. */
export const TRACE_BASE: { [K in keyof Base | 'event']-?: string } = {
  t: 'ms since the coordinator started',
  event: '',
  pid: '',
  rank: '',
};

type EventNamed<N> = Extract<PincohEvent, { event: N }>;
/** An event's own fields (past t, event, pid, rank), each with a note for the help ('' for none). */
type FieldNotes<E> = { [K in Exclude<keyof E, keyof Base | 'event'>]-?: string };
export type TraceSchema = { [N in PincohEvent['event']]: { what?: string; fields: FieldNotes<EventNamed<N>> } };
export type TraceEventName = PincohEvent['event'];

/**
 * Every event and its fields, as PincohEvent has them: an event or a field
 * missing here, or here and not there, does not compile. `pincoh help trace`
 * is made from it (traceHelp), and the report reads traces through the same
 * types (report/aggregate.ts).
 */
export const TRACE_SCHEMA: TraceSchema = {
  start: {
    what: "the trace's first line, the coordinator's own (pid: its pid; rank -1)",
    fields: { host: 'the node', wall_ms: "ms since 1970 UTC at t = 0, by the node's clock: pincoh report aligns nodes on it" },
  },
  hello: { fields: { ppid: '', argv0: '', job: '', libc: "how libc's own calls are covered" } },
  register: { fields: { key: '', addr: 'hex', len: '', flags: '1 read, 2 write' } },
  deregister: { fields: { key: '', outcome: 'ok, unknown key' } },
  call: {
    what: 'a hooked call on registered memory',
    fields: {
      call: 'munmap, mprotect, mremap, madvise, mmap, free, realloc, exit, exec',
      addr: 'not for exit and exec',
      len: 'not for exit and exec',
      hits: 'registrations invalidated or followed',
      invalidated: 'keys',
      followed: 'keys',
      outcome: 'the result; a new address in hex; an errno name such as EINVAL',
      latency_us: "pincoh's part of the call, measured by the shim",
      waited: 'for the coordinator: a put handed over by STUCK, a SYNC',
      timed_out: 'that wait was not answered within the timeout',
    },
  },
  fork: { fields: { child: '', registrations: '' } },
  publish: { fields: { key: '', name: '' } },
  attach: { fields: { name: '', owner: 'pid', outcome: 'ok, timed out: no such name when its wait ended' } },
  revoke: {
    fields: {
      attacher: '',
      handle: '',
      reason: 'munmap, mprotect, mremap, madvise, mmap, free, exit, deregister',
      outcome: 'dead, drained, stuck, gone',
      latency_us: '',
    },
  },
  cutoff: { fields: { reason: '', killed: '' } },
  dropped: { fields: { events: 'lost to a full ring' } },
  audit: { fields: { findings: '' } },
  gone: { fields: { how: 'exit, exec, crash, disconnected, coordinator closed, cut off', signal: '', reason: '', registrations: 'held as it went' } },
};

const field = (name: string, note: string): string => (note ? `${name} (${note})` : name);

/** `pincoh help trace`: made from TRACE_BASE and TRACE_SCHEMA, lines wrapped at `width`. */
export function traceHelp(width = 104): string {
  const base = Object.entries(TRACE_BASE).map(([k, n]) => field(k, n)).join(', ');
  const lines = [`--trace FILE: one JSON object a line, each with ${base}:`];
  const indent = ' '.repeat(14);
  for (const [name, e] of Object.entries(TRACE_SCHEMA) as Array<[string, { what?: string; fields: Record<string, string> }]>) {
    const text = (e.what ? `${e.what}: ` : '') + Object.entries(e.fields).map(([k, n]) => field(k, n)).join(', ');
    let line = `  ${name.padEnd(11)} `;
    for (const word of text.split(' ')) {
      if (line.length + word.length + 1 > width && line.trim().length > name.length) {
        lines.push(line.trimEnd());
        line = indent;
      }
      line += (line.endsWith(' ') ? '' : ' ') + word;
    }
    lines.push(line.trimEnd());
  }
  lines.push('pincoh report TRACE... -o FILE.html turns traces into a page.');
  return lines.join('\n');
}

/** An event as the engine builds it; the trace stamps `t`. */
export type TraceEvent = PincohEvent extends infer E ? (E extends PincohEvent ? Omit<E, 't'> : never) : never;

export class Trace {
  private fd: number;
  private failed = false;
  private readonly listeners = new Set<(e: PincohEvent) => void>();
  private readonly t0 = process.hrtime.bigint();
  /** The wall clock (ms since 1970 UTC) at t = 0, read with t0: the trace's `start` event says it. */
  readonly wallMs = Date.now();

  /** target: a file path, '-' for stderr, or undefined for none (listeners may still come) */
  constructor(target?: string) {
    try {
      this.fd = target === undefined ? -1 : target === '-' ? 2 : openSync(target, 'w');
    } catch (err) {
      throw new PincohError('PINCOH_ERR_TRACE', `cannot write the trace ${target}: ${(err as Error).message}; choose another --trace FILE`);
    }
    // where and when: what lets pincoh report put several nodes' traces on one time line
    if (this.fd >= 0) this.emit({ event: 'start', pid: process.pid, rank: -1, host: hostname(), wall_ms: this.wallMs });
  }

  /** Is anybody looking? Building an event costs; nobody pays it otherwise. */
  get enabled(): boolean {
    return this.fd >= 0 || this.listeners.size > 0;
  }

  /** Listens to every event from now on; returns what stops it. */
  on(fn: (e: PincohEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(e: TraceEvent): void {
    if (!this.enabled) return;
    const t = Number((Number(process.hrtime.bigint() - this.t0) / 1e6).toFixed(3));
    const ev = { t, ...e } as PincohEvent;
    for (const fn of this.listeners) {
      try {
        fn(ev);
      } catch (err) {
        rethrowLater(err); // a listener's bug is its program's, not the engine's
      }
    }
    if (this.failed || this.fd < 0) return;
    try {
      writeSync(this.fd, JSON.stringify(ev) + '\n');
    } catch (err) {
      // Coherence matters more than the trace: say it once and go on without it.
      this.failed = true;
      process.stderr.write(`pincoh: trace stopped, cannot write it: ${(err as Error).message}\n`);
    }
  }

  close(): void {
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

export const hex = (n: number): string => '0x' + n.toString(16);
