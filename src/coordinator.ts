// A coordinator in one's own Node program: the engine, its socket, the
// trace, the status and the metrics, started and stopped as one. pincoh run,
// serve and exec's node coordinators are built on it.

import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { Engine, type AuditEntry, type ProcessState } from './coherence/engine.js';
import { RateWindow, statusOf, type StatusSnapshot } from './coherence/status.js';
import { DEFAULTS } from './defaults.js';
import { PincohError, rethrowLater } from './errors.js';
import { pincohEnv } from './job/launch.js';
import { pincohRegistry, serveMetrics } from './metrics.js';
import { shimPath } from './paths.js';
import { systemPorts } from './system-ports.js';
import type { Farewell } from './protocol/messages.js';
import { Trace, type PincohEvent } from './trace.js';
import { CoordinatorServer } from './transport/server.js';
import { privateSocketPath } from './transport/socket-path.js';

export interface CoordinatorOptions {
  /** where to listen; default: a fresh private directory (0700), removed at close */
  socket?: string;
  mremap?: 'invalidate' | 'follow';
  fork?: 'keep' | 'dontfork';
  free?: 'keep' | 'invalidate';
  /** false: never revoke attachments (shows the corruption pincoh prevents) */
  coherence?: boolean;
  /** how long a put in flight may hold a revoke before its process is killed (1000 ms) */
  revokeTimeoutMs?: number;
  /** uids besides our own that may connect */
  allowUids?: number[];
  maxFrame?: number;
  maxRegistrations?: number;
  maxAttachments?: number;
  maxNames?: number;
  maxPending?: number;
  /** a JSONL trace: a file path, or '-' for stderr */
  trace?: string;
  /** serve GET /metrics (Prometheus text) here */
  metrics?: { host: string; port: number };
  /** audit each process against /proc/PID/maps as it exits (pincoh run --audit) */
  auditOnExit?: boolean;
  /** the signal that ended a process this program started and has reaped: a crash is then named with it
   * even when /proc no longer shows the process (pincoh run passes its ranks') */
  signalOf?: (pid: number) => string | undefined;
  /** where the coordinator's own messages go (default: stderr, prefixed 'pincoh: ') */
  log?: (line: string) => void;
  /** its jobs live as long as it does: a member's crash fails the job for good, also for ranks
   * that connect later (pincoh run; pincoh exec's node coordinator). Default: until the job's
   * last member has gone, so a later run may reuse the job's name (pincoh serve) */
  failuresStick?: boolean;
  /** told after a process has connected or gone (pincoh exec's node log keeps its summary so far with it) */
  onMembers?: () => void;
  /** one of pincoh exec's ranks is exiting (its pid; last: the job's last rank on the node to leave, by
   * its count). The last waits for the answer until this settles, bounded by its PINCOH_TIMEOUT_MS
   * (the node coordinator holds it until its log is whole) */
  onFarewell?: (pid: number, f: Farewell) => void | Promise<void>;
}

/** A process that died without exiting (killed or crashed). */
export interface Crash {
  pid: number;
  rank: number;
  command: string;
  job: string;
  signal: string | undefined;
}

interface CoordinatorEvents {
  /** every event of the trace, as it happens (docs/reference.md, The CLI: --trace) */
  event: [PincohEvent];
  crash: [Crash];
  /** close() is done */
  closed: [];
}

/** Unread events an events() iterator keeps before it fails rather than lose one. */
const ITERATOR_BACKLOG = 65536;

export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly engine: Engine;
  /** the socket processes connect to (their PINCOH_SOCKET) */
  readonly socket: string;
  private metricsUrlValue: string | undefined;
  private readonly server: CoordinatorServer;
  private readonly trace: Trace;
  private readonly rates: RateWindow;
  private readonly started = Date.now();
  private metricsServer: Server | undefined;
  private stopForwarding: (() => void) | undefined;
  private cleanup: (() => void) | undefined;
  private closed = false;

  private constructor(o: CoordinatorOptions, socket: string, cleanup: (() => void) | undefined) {
    super();
    this.socket = socket;
    this.cleanup = cleanup;
    this.trace = new Trace(o.trace);
    const ports = systemPorts();
    this.engine = new Engine({
      makeTable: ports.tables,
      memory: ports.memory,
      lives: ports.lives,
      mremapFollow: o.mremap === 'follow',
      forkDontfork: o.fork === 'dontfork',
      freeInvalidate: o.free === 'invalidate',
      coherence: o.coherence ?? true,
      revokeTimeoutMs: o.revokeTimeoutMs ?? DEFAULTS.revokeTimeoutMs,
      trace: this.trace,
      auditOnExit: o.auditOnExit ?? false,
      failuresStick: o.failuresStick ?? false,
      ...(o.onMembers && { onMembers: o.onMembers }),
      ...(o.signalOf && { signalOf: o.signalOf }),
      limits: {
        ...(o.maxRegistrations !== undefined && { registrationsPerProcess: o.maxRegistrations }),
        ...(o.maxAttachments !== undefined && { attachmentsPerProcess: o.maxAttachments }),
        ...(o.maxNames !== undefined && { namesPerJob: o.maxNames }),
      },
      onCrash: (p: ProcessState, signal) => {
        try {
          this.emit('crash', { pid: p.pid, rank: p.rank, command: p.hello.argv0, job: p.hello.job, signal });
        } catch (err) {
          rethrowLater(err);
        }
      },
    });
    this.rates = new RateWindow(this.engine.stats);
    this.server = new CoordinatorServer({
      socketPath: socket,
      engine: this.engine,
      allowUids: o.allowUids,
      maxFrame: o.maxFrame,
      maxPending: o.maxPending,
      status: () => this.status(),
      ...(o.log && { log: o.log }),
      ...(o.onFarewell && { farewell: o.onFarewell }),
    });
    // the trace's events reach listeners only while there are some: building them costs
    const untyped = this as EventEmitter;
    untyped.on('newListener', (name: string) => {
      if (name === 'event' && !this.stopForwarding) this.stopForwarding = this.trace.on((e) => this.forward(e));
    });
    untyped.on('removeListener', (name: string) => {
      if (name === 'event' && this.listenerCount('event') === 0) {
        this.stopForwarding?.();
        this.stopForwarding = undefined;
      }
    });
  }

  /** Each listener on its own: one that throws neither stops the others nor the engine's drain. */
  private forward(e: PincohEvent): void {
    for (const fn of this.rawListeners('event') as Array<(e: PincohEvent) => void>) {
      try {
        fn(e);
      } catch (err) {
        rethrowLater(err);
      }
    }
  }

  /** Starts listening (and serving metrics, if asked); rejects with a PincohError that names the fix. */
  static async start(o: CoordinatorOptions = {}): Promise<Coordinator> {
    const own = o.socket === undefined ? privateSocketPath() : undefined;
    let c: Coordinator | undefined;
    try {
      c = new Coordinator(o, o.socket ?? own!.path, own?.cleanup);
      // metrics first: once the socket listens, processes take the coordinator for started
      if (o.metrics) {
        const { server, url } = await serveMetrics(pincohRegistry(c.engine), o.metrics.host, o.metrics.port, () => c!.server.drainAll());
        c.metricsServer = server;
        c.metricsUrlValue = url;
      }
      await c.server.listen();
      return c;
    } catch (err) {
      if (c) await c.close();
      else own?.cleanup();
      throw err;
    }
  }

  /** http://HOST:PORT/metrics, when serving metrics (the port the system chose for port 0) */
  get metricsUrl(): string | undefined {
    return this.metricsUrlValue;
  }

  /** What pincoh status shows: every process and the job-wide counts and rates. */
  status(): StatusSnapshot {
    this.server.drainAll(); // what the processes did up to now
    return statusOf(this.engine, this.socket, this.started, this.rates);
  }

  /** The one-line summary pincoh run prints at the end. */
  summary(): string {
    return this.engine.stats.summary();
  }

  /** Registrations of live processes no longer mapped as registered (pid 0: all). */
  audit(pid = 0): AuditEntry[] {
    this.server.drainAll();
    return this.engine.auditAll(pid);
  }

  /** The environment a process needs to run under this coordinator: the shim preloaded, the socket, its place in the job. */
  env(o: { rank?: number; size?: number; job?: string; timeoutMs?: number } = {}): Record<string, string> {
    return pincohEnv(shimPath(), this.socket, { rank: o.rank, size: o.size, job: o.job, timeoutMs: o.timeoutMs });
  }

  /** Every event from this call until close(), in order. Past 65,536 unread it stops listening, yields
   * what it holds, then throws (PINCOH_ERR_TRACE): events are lost only after it has said so. */
  events(): AsyncIterableIterator<PincohEvent> {
    const queue: PincohEvent[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    const onEvent = (e: PincohEvent) => {
      if (queue.length < ITERATOR_BACKLOG) queue.push(e);
      else if (!overflow) {
        overflow = true;
        stop();
      }
      wake?.();
    };
    const onClose = () => wake?.();
    const stop = () => {
      this.off('event', onEvent);
      this.off('closed', onClose);
    };
    // listening from now, not from the first next()
    this.on('event', onEvent);
    this.once('closed', onClose);
    const next = async (): Promise<IteratorResult<PincohEvent>> => {
      for (;;) {
        if (queue.length) return { value: queue.shift()!, done: false };
        if (overflow) throw new PincohError('PINCOH_ERR_TRACE', `events(): more than ${ITERATOR_BACKLOG} events were left unread, and those after them were not kept; read faster, or listen with on('event')`);
        if (this.closed) {
          stop();
          return { value: undefined, done: true };
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    };
    return {
      next,
      return: async () => {
        stop();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Resolves once every process has disconnected, or after timeoutMs. */
  drain(timeoutMs: number): Promise<void> {
    return this.server.drain(timeoutMs);
  }

  /** Reads the last events of the processes still connected, then stops listening and removes what it made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rates.stop();
    await this.server.close();
    if (this.metricsServer) {
      this.metricsServer.closeAllConnections();
      await new Promise<void>((r) => this.metricsServer!.close(() => r()));
    }
    this.trace.close();
    this.cleanup?.();
    this.cleanup = undefined;
    this.emit('closed');
  }
}
