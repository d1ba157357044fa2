// The socket server: accepts processes, learns who they are from the kernel,
// turns bytes into frames and frames into engine calls. A peer that breaks the
// protocol gets an ERROR frame naming what it did and is cut off alone.

import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, FrameError, FrameReader, type FrameSink } from '../protocol/codec.js';
import { F_NOREPLY, PROTO_VERSION, SIZE, T, W_FORK_DONTFORK, W_FREE_INVALIDATE, W_MREMAP_FOLLOW, W_NO_COHERENCE, W_SYNC_EXIT } from '../protocol/constants.js';
import { EACCES, EAGAIN, EPROTO } from '../protocol/errno.js';
import { encodeAttached, encodeError, encodeReply, encodeWelcome, readAttach, readBarrierTimeout, readFarewell, readHello, readKey, readPublish, readStuck, type Farewell } from '../protocol/messages.js';
import { Engine, EventError, ProcessState, type Peer, type Reply } from '../coherence/engine.js';
import { BOUNDS, DEFAULTS } from '../defaults.js';
import { systemPorts } from '../system-ports.js';
import { AreaError, SharedArea } from './area.js';
import { peerCred, socketFd } from './peercred.js';
import { prepareSocketPath } from './socket-path.js';

/** How often every process's ring is drained when nothing else drains it:
 * the bound on how late the coordinator learns of an unshared event. */
export const DRAIN_MS = DEFAULTS.drainMs;


export interface ServerOptions {
  socketPath: string;
  engine: Engine;
  /** uids other than our own that may connect */
  allowUids?: number[];
  /** bytes queued to a peer that does not read before it is cut off */
  maxQueuedBytes?: number;
  /** the largest frame accepted (at least 256) */
  maxFrame?: number;
  /** requests of one connection waiting for an answer (attach, barrier) before -EAGAIN */
  maxPending?: number;
  /** ms between drains of every ring (default DRAIN_MS) */
  drainMs?: number;
  /** what a STATUS frame (pincoh status) is answered with */
  status?: () => unknown;
  /** pincoh exec's rank pid, at its exit, says what the shim did in it: answered, if it waits, once this settles (at once without it) */
  farewell?: (pid: number, f: Farewell) => void | Promise<void>;
  log?: (line: string) => void;
}

export class CoordinatorServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly connections = new Set<Connection>();
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ServerOptions) {
    this.log = opts.log ?? ((line) => process.stderr.write(`pincoh: ${line}\n`));
    // real processes: an engine made without its ports gets the real ones (its ring ports come at connect)
    opts.engine.provide(systemPorts());
  }

  async listen(): Promise<void> {
    await prepareSocketPath(this.opts.socketPath);
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server; // ours from here: close() removes the path
    chmodSync(this.opts.socketPath, 0o600);
    this.timer = setInterval(() => this.drainAll(), this.opts.drainMs ?? DRAIN_MS);
    this.timer.unref();
  }

  /** Reads every process's new events now; one that broke the protocol is cut off, as at any drain. */
  drainAll(): void {
    for (const c of this.connections) c.drain();
  }

  /** Resolves once every peer has disconnected, or after timeoutMs. */
  async drain(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.connections) c.closeOurs(); // their last events read now, not taken for crashes
    for (const s of this.sockets) s.destroy();
    this.opts.engine.close(); // every job's table: its members see we are gone
    const server = this.server;
    this.server = undefined;
    if (!server) return; // never listened: the path is not ours to remove
    server.close(); // listens no more from here; not waited for: that waits for held farewells too
    try {
      unlinkSync(this.opts.socketPath);
    } catch {
      /* already gone */
    }
  }

  private accept(socket: Socket): void {
    // Tracked from the first moment, so close() can always end it.
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const fd = socketFd(socket);
    const cred = fd === undefined ? undefined : peerCred(fd);
    if (!cred) {
      this.log('refused a connection whose peer credentials could not be read');
      socket.destroy();
      return;
    }
    const ourUid = process.getuid?.() ?? 0;
    if (cred.uid !== ourUid && !this.opts.allowUids?.includes(cred.uid)) {
      this.log(`refused pid ${cred.pid}: uid ${cred.uid} is not ours (${ourUid}); pass --allow-uid ${cred.uid} to admit it`);
      socket.on('error', () => {});
      socket.resume(); // drop what it sends, so its end is seen and the socket closes
      socket.end(encodeError(0n, -13, `uid ${cred.uid} is not allowed by this coordinator`));
      return;
    }
    // a rank's farewell is answered when the caller says, even after close(): not ours to end
    const c = new Connection(socket, cred.pid, cred.uid, this.opts, this.log, () => this.connections.delete(c), () => this.drainAll(), () => this.sockets.delete(socket));
    this.connections.add(c);
  }
}

/** One peer process. */
class Connection implements FrameSink, Peer {
  private readonly reader: FrameReader;
  private outstanding = 0;
  private readonly maxPending: number;
  private proc: ProcessState | undefined;
  private closed = false;
  private readonly engine: Engine;
  private readonly status: (() => unknown) | undefined;
  private readonly farewell: ServerOptions['farewell'];
  private readonly maxQueued: number;

  constructor(
    private readonly socket: Socket,
    private readonly pid: number,
    private readonly uid: number,
    opts: ServerOptions,
    private readonly log: (line: string) => void,
    onClose: () => void,
    private readonly drainAll: () => void,
    private readonly held: () => void,
  ) {
    this.engine = opts.engine;
    this.status = opts.status;
    this.farewell = opts.farewell;
    this.maxQueued = opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes;
    this.reader = new FrameReader(Math.max(BOUNDS.maxFrame[0], opts.maxFrame ?? DEFAULTS.maxFrame));
    this.maxPending = opts.maxPending ?? DEFAULTS.maxPending;
    socket.on('data', (chunk) => {
      try {
        this.reader.push(chunk, this);
      } catch (err) {
        if (err instanceof FrameError || err instanceof ProtocolError || err instanceof EventError || err instanceof AreaError) this.cutOff(err.message);
        else throw err;
      }
    });
    socket.on('error', () => {}); // a peer that dies mid-write: 'close' follows and says it
    socket.on('close', () => {
      this.closed = true;
      if (this.proc) this.engine.drop(this.proc, 'disconnected');
      onClose();
    });
  }

  /** Reads the process's new events (the timer, and before each of its frames). */
  drain(): void {
    if (!this.proc || this.closed) return;
    try {
      this.engine.drain(this.proc);
    } catch (err) {
      if (err instanceof EventError || err instanceof AreaError) this.cutOff(err.message);
      else throw err;
    }
  }

  frame(type: number, flags: number, seq: bigint, v: DataView, off: number, len: number): void {
    if (this.closed) return;
    const p = this.proc;
    if (!p && (type === T.AUDIT || type === T.STATUS)) {
      // a control client (`pincoh audit`, `pincoh status`): one question, one answer of any length
      need(len, type === T.AUDIT ? SIZE.AUDIT : SIZE.STATUS, type === T.AUDIT ? 'AUDIT' : 'STATUS');
      if (type === T.AUDIT) this.drainAll(); // what they did up to now (status drains on its own)
      const answer = type === T.AUDIT ? this.engine.auditAll(v.getInt32(off, true)) : (this.status?.() ?? null);
      this.closed = true;
      this.socket.end(encodeFrame(T.REPORT, 0, seq, Buffer.from(JSON.stringify(answer))));
      return;
    }
    if (!p && type === T.FAREWELL) {
      // one of pincoh exec's ranks, exiting: what the shim did in it; the job's last rank waits (bounded) for the answer
      need(len, SIZE.FAREWELL, 'FAREWELL');
      const f = readFarewell(v, off);
      this.closed = true;
      this.engine.stats.farewell(f);
      this.held();
      void Promise.resolve(this.farewell?.(this.pid, f)).then(() => (flags & F_NOREPLY ? this.socket.end() : this.socket.end(encodeReply(seq, 0))));
      return;
    }
    if (!p) {
      if (type !== T.HELLO) throw new ProtocolError(`frame type ${type} before HELLO`);
      this.hello(v, off, len);
      return;
    }
    // Whatever it wrote in its ring before this frame happened before it.
    this.engine.drain(p);
    let status: Reply | Promise<Reply>;
    if (this.outstanding >= this.maxPending && (type === T.ATTACH || type === T.BARRIER)) {
      if (!(flags & F_NOREPLY)) this.send(encodeReply(seq, -EAGAIN));
      return;
    }
    switch (type) {
      case T.SYNC:
        need(len, SIZE.SYNC, 'SYNC');
        status = this.engine.sync(p);
        break;
      case T.PUBLISH: {
        need(len, SIZE.PUBLISH, 'PUBLISH');
        const m = readPublish(v, off);
        if (!m.terminated) throw new ProtocolError('PUBLISH name is not NUL-terminated');
        status = this.engine.publish(p, m);
        break;
      }
      case T.ATTACH: {
        need(len, SIZE.ATTACH, 'ATTACH');
        const m = readAttach(v, off);
        if (!m.terminated) throw new ProtocolError('ATTACH name is not NUL-terminated');
        status = this.engine.attach(p, m);
        break;
      }
      case T.DETACH:
        need(len, SIZE.DETACH, 'DETACH');
        this.engine.detach(p, readKey(v, off));
        return;
      case T.BARRIER:
        need(len, SIZE.BARRIER, 'BARRIER');
        status = this.engine.barrier(p, readBarrierTimeout(v, off));
        break;
      case T.STUCK:
        need(len, SIZE.STUCK, 'STUCK');
        status = this.engine.stuck(p, readStuck(v, off));
        break;
      case T.HELLO:
        throw new ProtocolError('a second HELLO');
      default:
        throw new ProtocolError(`unknown frame type ${type}`);
    }
    if (status instanceof Promise) {
      this.outstanding++;
      status.then((s) => {
        this.outstanding--;
        if (!(flags & F_NOREPLY)) this.reply(seq, s);
      });
    } else if (!(flags & F_NOREPLY)) this.reply(seq, status);
  }

  /** HELLO: who it is (pid and uid from the kernel), and its shared area, mapped before WELCOME. */
  private hello(v: DataView, off: number, len: number): void {
    need(len, SIZE.HELLO, 'HELLO');
    const hello = readHello(v, off);
    if (hello.version !== PROTO_VERSION) {
      this.refuse(-EPROTO, `protocol version ${hello.version} is not supported; this coordinator speaks version ${PROTO_VERSION}`);
      return;
    }
    if (hello.pageSize < 4096 || hello.pageSize & (hello.pageSize - 1)) throw new ProtocolError(`page size ${hello.pageSize} is not a power of two >= 4096`);
    let area: SharedArea;
    try {
      area = SharedArea.map(this.pid, hello.areaFd, hello.areaSize);
    } catch (err) {
      if (!(err instanceof AreaError)) throw err;
      this.refuse(-EACCES, err.message);
      return;
    }
    this.proc = this.engine.connect(this.pid, this.uid, hello, this, area);
    const e = this.engine;
    const flags =
      (e.mremapFollow ? W_MREMAP_FOLLOW : 0) | (e.forkDontfork ? W_FORK_DONTFORK : 0) | (e.auditOnExit ? W_SYNC_EXIT : 0) | (e.freeInvalidate ? W_FREE_INVALIDATE : 0) | (e.coherence ? 0 : W_NO_COHERENCE);
    this.send(encodeWelcome(flags, e.limits.registrationsPerProcess, e.grant(this.proc)));
  }

  private reply(seq: bigint, r: Reply): void {
    if (this.closed) return;
    this.send(typeof r === 'number' ? encodeReply(seq, r) : encodeAttached(seq, r.attached));
  }

  private send(buf: Buffer): void {
    this.socket.write(buf);
    // A peer that stops reading cannot make us hold its replies forever.
    if (this.socket.writableLength > this.maxQueued) this.cutOff(`it stopped reading its socket (${this.socket.writableLength} bytes queued)`);
  }

  private refuse(code: number, reason: string): void {
    this.log(`refused pid ${this.pid}: ${reason}`);
    this.closed = true;
    this.socket.end(encodeError(0n, code, reason));
  }

  /** The coordinator is closing: the process's last events are read and it is dropped as such. */
  closeOurs(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.proc) this.engine.drop(this.proc, 'coordinator closed');
    this.socket.destroy();
  }

  cutOff(reason: string): void {
    if (this.closed) return;
    const who = this.proc ? `pid ${this.pid} (${this.proc.hello.argv0}, rank ${this.proc.rank})` : `pid ${this.pid}`;
    this.log(`cut off ${who}: ${reason}`);
    this.closed = true;
    if (this.proc && !this.proc.gone) {
      this.engine.stats.cutOff++;
      this.engine.drop(this.proc, `cut off: ${reason}`);
    }
    this.socket.end(encodeError(0n, -EPROTO, reason));
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 100).unref();
  }
}

class ProtocolError extends Error {}

function need(len: number, size: number, what: string): void {
  if (len < size) throw new ProtocolError(`${what} payload of ${len} bytes, expected ${size}`);
}
