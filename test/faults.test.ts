// Bad input, missing or misbehaving coordinators, dying processes: nothing
// hangs, nothing crashes, the bad party is cut off alone.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type ProcessState } from '../src/coherence/engine.js';
import { encodeFrame } from '../src/protocol/codec.js';
import { PROTO_VERSION, T } from '../src/protocol/constants.js';
import { encodeHello, encodeRegister, encodeReply, encodeWelcome } from '../src/protocol/messages.js';
import type { Begin } from '../src/protocol/messages.js';
import { driver, prog, shimEnv, startCoordinator, startDriver, until, type Coordinator } from './helpers.js';
import { ENOTCONN } from '../src/protocol/errno.js';


describe('no coordinator', () => {
  it('PINCOH_SOCKET unset: the calls work, pincoh_register says -ENOTCONN', async () => {
    const r = await driver(undefined, 'map 0 65536 reg 0 0 4096 rw unmap 0 0 65536 stats');
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`, 'munmap 0 777', 'stats slow 0 inval 0 timeouts 0 degraded 0 connected 0']);
    expect(r.stderr).toBe('');
  });

  it('PINCOH_SOCKET names nothing, a regular file, or a path too long: same, with no crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincoh-f-'));
    writeFileSync(join(dir, 'file'), 'x');
    for (const path of [join(dir, 'nothing'), join(dir, 'file'), '/tmp/' + 'x'.repeat(200)]) {
      const r = await driver(path, 'map 0 65536 reg 0 0 4096 rw unmap 0 0 65536');
      expect(r.code).toBe(0);
      expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`, 'munmap 0 777']);
    }
  });

  it('a garbage PINCOH_TIMEOUT_MS is named once and replaced by the default', async () => {
    const r = await driver(undefined, 'map 0 4096', { PINCOH_TIMEOUT_MS: 'soon' });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ignoring a bad value of PINCOH_TIMEOUT_MS/);
  });
});

/** A coordinator that says WELCOME and answers REGISTER, then never answers BEGIN. */
async function mute(): Promise<{ path: string; server: Server; begins: () => number }> {
  const path = join(mkdtempSync(join(tmpdir(), 'pincoh-mute-')), 's');
  let begins = 0;
  const server = createServer((s: Socket) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 16 && buf.length >= buf.readUInt32LE(0)) {
        const len = buf.readUInt32LE(0);
        const type = buf.readUInt16LE(4);
        const seq = buf.readBigUInt64LE(8);
        buf = buf.subarray(len);
        if (type === T.HELLO) s.write(encodeWelcome(0));
        else if (type === T.BEGIN) begins++;
        else if (type === T.REGISTER) s.write(encodeReply(seq, 0));
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, begins: () => begins };
}

describe('a coordinator that never answers', () => {
  it('the call proceeds within PINCOH_TIMEOUT_MS, invalidates locally, marks the process degraded', async () => {
    const m = await mute();
    const r = await driver(m.path, 'cb map 0 65536 reg 0 0 4096 rw unmap 0 0 65536 valid 0 stats', { PINCOH_TIMEOUT_MS: '200' });
    m.server.close();
    expect(m.begins()).toBe(1);
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0', 'stats slow 1 inval 1 timeouts 1 degraded 1 connected 1']);
    expect(r.stderr).toMatch(/did not answer within PINCOH_TIMEOUT_MS; proceeding, this process is degraded/);
  });

  it('PINCOH_ON_TIMEOUT=abort aborts instead', async () => {
    const m = await mute();
    const r = await driver(m.path, 'map 0 65536 reg 0 0 4096 rw unmap 0 0 65536', { PINCOH_TIMEOUT_MS: '100', PINCOH_ON_TIMEOUT: 'abort' });
    m.server.close();
    expect(r.signal).toBe('SIGABRT');
    expect(r.stderr).toMatch(/aborting/);
  });
});

describe('a process killed in the middle of a call', () => {
  class HangingEngine extends Engine {
    waiting: ProcessState | undefined;
    override begin(p: ProcessState, seq: bigint, b: Begin): Promise<number> {
      super.begin(p, seq, b);
      this.waiting = p;
      return new Promise(() => {}); // never acks: the process sits in its slow path
    }
  }
  it('loses all its state in the coordinator', async () => {
    const engine = new HangingEngine({ mremapFollow: false });
    const c = await startCoordinator({ engine });
    const run = driver(c.path, 'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw unmap 0 0 4096', { PINCOH_TIMEOUT_MS: '60000' });
    expect(await until(() => engine.waiting !== undefined)).toBe(true);
    const victim = engine.waiting!;
    expect(victim.registry.size).toBe(1); // the other one is still registered
    process.kill(victim.pid, 'SIGKILL');
    const r = await run;
    expect(r.signal).toBe('SIGKILL');
    expect(await until(() => !engine.processes.has(victim.id), 1000)).toBe(true);
    await c.close();
  });
});

describe('bad peers are cut off alone', () => {
  let c: Coordinator;
  beforeAll(async () => (c = await startCoordinator()));
  afterAll(async () => c.close());

  /** Sends raw bytes; resolves with what came back once the coordinator closed on us. */
  function rawSession(chunks: Buffer[]): Promise<Buffer> {
    return new Promise((resolve) => {
      const s = createConnection(c.path);
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d));
      s.on('error', () => {});
      s.on('close', () => resolve(Buffer.concat(got)));
      s.on('connect', () => chunks.forEach((b) => s.write(b)));
    });
  }
  const hello = encodeHello({ version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'fuzz', job: 'default' });
  const errorText = (b: Buffer) => {
    const at = b.indexOf(Buffer.from([T.ERROR, 0]), 4) - 4; // the ERROR frame's header
    return at >= 0 ? b.subarray(at + 24, at + b.readUInt32LE(at)).toString() : '';
  };

  const bad: Record<string, Buffer[]> = {
    'a frame before HELLO': [encodeRegister(1n, { key: 1n, addr: 4096, len: 4096, flags: 3 })],
    'a length below the header size': [hello, Buffer.from([4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    'a length above the frame limit': [hello, Buffer.from([0, 0, 0, 0x10, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    'an unknown type': [hello, encodeFrame(200, 0, 1n, Buffer.alloc(8))],
    'a truncated REGISTER': [hello, encodeFrame(T.REGISTER, 0, 1n, Buffer.alloc(4))],
    'a second HELLO': [hello, hello],
    'another protocol version': [encodeHello({ version: 99, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'old', job: 'default' })],
  };
  for (const [what, chunks] of Object.entries(bad)) {
    it(`${what}: an ERROR frame saying why, then the connection closes`, async () => {
      const reply = await rawSession(chunks);
      expect(errorText(reply).length).toBeGreaterThan(5);
      if (what.includes('version')) expect(errorText(reply)).toMatch(/version 99 is not supported/);
    });
  }

  it('a well-behaved process working meanwhile sees no change', async () => {
    const good = driver(c.path, 'cb map 0 65536 reg 0 0 4096 rw sleep 200 unmap 0 0 65536 valid 0');
    await Promise.all(Object.values(bad).map(rawSession));
    const r = await good;
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0']);
    expect(c.logs.some((l) => /cut off pid \d+ \(fuzz, rank 0\): unknown frame type 200/.test(l))).toBe(true);
  });

  it('a registration outside user space is refused with -EINVAL', async () => {
    const s = createConnection(c.path);
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.write(hello);
    s.write(encodeRegister(7n, { key: 1n, addr: 2 ** 57, len: 4096, flags: 3 }));
    expect(await until(() => Buffer.concat(got).length >= 24 + 24)).toBe(true);
    const b = Buffer.concat(got); // WELCOME (24 bytes), then the REPLY
    expect(b.readUInt16LE(24 + 4)).toBe(T.REPLY);
    expect(b.readInt32LE(24 + 16)).toBe(-22);
    s.destroy();
  });
});

describe('killed in every phase', () => {
  it('an attacher killed in the middle of a put loop leaves nothing behind', async () => {
    const c = await startCoordinator();
    const o = startDriver(c.path, 'map 0 65536 reg 0 0 65536 rw pub loop 0 wait', { PINCOH_JOB: 'loop' });
    await o.waitFor(/^waiting/);
    const a = startDriver(c.path, 'att loop 5000 putloop 0 100000000', { PINCOH_JOB: 'loop' });
    await a.waitFor(/^looping/);
    const owner = [...c.engine.processes.values()].find((p) => p.pid === o.pid)!;
    expect([...owner.exports.values()][0]!.size).toBe(1);
    process.kill(a.pid, 'SIGKILL');
    expect(await until(() => owner.exports.size === 0)).toBe(true);
    expect([...c.engine.processes.values()].some((p) => p.pid === a.pid)).toBe(false);
    o.send();
    await o.done;
    await c.close();
  });

  it('a process killed while forking under load: it and its children leave nothing behind', async () => {
    const c = await startCoordinator();
    const f = startDriver(c.path, 'map 0 4096 reg 0 0 4096 r say', {}); // keeps a connection of its own
    await f.waitFor(/^said/);
    const { spawn } = await import('node:child_process');
    const stress = spawn(prog('forkstress'), ['100000'], { env: shimEnv(c.path), stdio: 'ignore' });
    expect(await until(() => c.engine.stats.processes >= 5)).toBe(true); // forking away
    stress.kill('SIGKILL');
    await new Promise((r) => stress.once('exit', r));
    expect(await until(() => [...c.engine.processes.values()].every((p) => p.pid !== stress.pid && p.hello.ppid !== stress.pid))).toBe(true);
    await f.done;
    await c.close();
  });
});

describe('identity', () => {
  it('the pid a HELLO claims is not believed: SO_PEERCRED is', async () => {
    const c = await startCoordinator();
    const s = createConnection(c.path);
    s.on('data', () => {});
    s.write(encodeHello({ version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'liar', job: 'default' }));
    expect(await until(() => c.engine.processes.size === 1)).toBe(true);
    const p = [...c.engine.processes.values()][0]!;
    expect(p.hello.pid).toBe(1);
    expect(p.pid).toBe(process.pid);
    s.destroy();
    await c.close();
  });
});
