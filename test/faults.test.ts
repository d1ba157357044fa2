// Bad input, missing or misbehaving coordinators, dying processes: nothing
// hangs, nothing crashes, the bad party is cut off alone.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type ProcessState } from '../src/coherence/engine.js';
import { encodeFrame } from '../src/protocol/codec.js';
import { AREA, CALL_TIMED_OUT, CALL_WAITED, JT, OFF, PROTO_VERSION, R, T } from '../src/protocol/constants.js';
import { encodeReply, encodeSync, encodeWelcome, readHello, readPublish } from '../src/protocol/messages.js';
import { SharedArea } from '../src/transport/area.js';
import { JobTable } from '../src/transport/jobtable.js';
import { CLI, driver, fakeArea, prog, run, shimEnv, startCoordinator, startDriver, until, type Coordinator, tempDir } from './helpers.js';
import { ENOTCONN } from '../src/protocol/errno.js';


describe('no coordinator', () => {
  it('PINCOH_SOCKET unset: the calls work, pincoh_register says -ENOTCONN', async () => {
    const r = await driver(undefined, 'map 0 65536 reg 0 0 4096 rw unmap 0 0 65536 stats');
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`, 'munmap 0 777', 'stats slow 0 inval 0 timeouts 0 degraded 0 connected 0']);
    expect(r.stderr).toBe('');
  });

  it('PINCOH_SOCKET names nothing, a regular file, or a path too long: same, with no crash', async () => {
    const dir = tempDir('f');
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
    expect(r.stderr).toBe(`pincoh[${r.pid}]: PINCOH_TIMEOUT_MS is not a whole number from 1 to 3600000; using 2000\n`);
    const far = await driver(undefined, 'map 0 4096', { PINCOH_TIMEOUT_MS: '0', PINCOH_RANK: 'x' });
    expect(far.stderr).toBe(`pincoh[${far.pid}]: PINCOH_TIMEOUT_MS is not a whole number from 1 to 3600000; using 2000\npincoh[${far.pid}]: PINCOH_RANK is not a whole number from 0 to 1073741824; using -1\n`);
  });
});

/**
 * A coordinator that says WELCOME (with a real job table) and answers PUBLISH,
 * then never answers anything else (SYNC, STUCK). stuck: every export gets a
 * fake attacher, linked in the table, whose put is in flight for good.
 * callFlags: the flags of the CALL events in the (last) peer's ring.
 */
async function mute(stuck = false): Promise<{ path: string; server: Server; asked: () => number[]; hellos: () => number; callFlags: () => number[]; close: () => void }> {
  const path = join(tempDir('mute'), 's');
  const table = JobTable.create('mute');
  const asked: number[] = [];
  let hellos = 0;
  let area: SharedArea | undefined;
  const server = createServer((s: Socket) => {
    let buf = Buffer.alloc(0);
    let member = -1;
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 16 && buf.length >= buf.readUInt32LE(0)) {
        const len = buf.readUInt32LE(0);
        const type = buf.readUInt16LE(4);
        const seq = buf.readBigUInt64LE(8);
        const v = new DataView(buf.buffer, buf.byteOffset + 16, len - 16);
        buf = buf.subarray(len);
        if (type === T.HELLO) {
          hellos++;
          const h = readHello(v, 0);
          area = SharedArea.map(h.pid, h.areaFd, h.areaSize);
          const m = table.join(process.pid)!;
          member = m.member;
          s.write(encodeWelcome(0, 0, { revokeMs: 100, fd: table.fd, size: table.size, member, memberWord: m.word, coordTid: table.coordTid }));
        } else if (type === T.PUBLISH) {
          const p = readPublish(v, 0);
          if (stuck) {
            const att = table.join(process.pid)!; // alive (it is us), and never done with its put
            table.link(member, p.export, p.xgen, att.member, 0);
            table.words[table.segmentWord(att.member) + JT.SEG_INFLIGHT_OFF / 4] = 1;
          }
          s.write(encodeReply(seq, 0));
        } else asked.push(type);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  const callFlags = (): number[] => {
    const flags: number[] = [];
    area?.drain((rv, off) => {
      if (rv.getUint16(off + OFF.REC.type, true) === R.CALL) flags.push(rv.getUint32(off + OFF.REC.flags, true));
    });
    return flags;
  };
  return { path, server, asked: () => asked, hellos: () => hellos, callFlags, close: () => (server.close(), table.close(), area?.unmap()) };
}

describe('a coordinator that never answers', () => {
  it('an owner\'s call on published memory never asks it: it revokes in place, and nothing is degraded', async () => {
    const m = await mute();
    const r = await driver(m.path, 'cb map 0 65536 reg 0 0 4096 rw pub p 0 unmap 0 0 65536 valid 0 stats', { PINCOH_TIMEOUT_MS: '200' });
    expect(m.callFlags()).toEqual([0]); // revoked in place: it waited for nobody
    m.close();
    expect(m.asked()).toEqual([]);
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'pub 0', 'cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
    expect(r.stderr).toBe('');
  });

  it('a put stuck in flight past the revoke bound is handed to it (STUCK); unanswered, the call proceeds within PINCOH_TIMEOUT_MS and the process is degraded', async () => {
    const m = await mute(true);
    const r = await driver(m.path, 'cb map 0 65536 reg 0 0 4096 rw pub p 0 unmap 0 0 65536 valid 0 stats', { PINCOH_TIMEOUT_MS: '200' });
    expect(m.callFlags()).toEqual([CALL_WAITED | CALL_TIMED_OUT]); // the coordinator counts it in status, metrics and trace
    m.close();
    expect(m.asked()).toEqual([T.STUCK]);
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'pub 0', 'cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0', 'stats slow 1 inval 1 timeouts 1 degraded 1 connected 1']);
    expect(r.stderr).toMatch(/did not answer within PINCOH_TIMEOUT_MS; proceeding, this process is degraded: a put in flight on a revoked export \(the coordinator did not end it\) 200/);
  });

  it('unpublished memory never waits for it: no SYNC at all, nothing degraded', async () => {
    const m = await mute();
    const r = await driver(m.path, 'cb map 0 65536 reg 0 0 4096 rw unmap 0 0 65536 valid 0 stats', { PINCOH_TIMEOUT_MS: '200' });
    m.close();
    expect(m.asked()).toEqual([]);
    expect(r.lines.slice(-1)).toEqual(['stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
    expect(r.stderr).toBe('');
  });

  it('one that never drains the event ring is given up on when the ring is full, once per PINCOH_TIMEOUT_MS; the process keeps what it holds', async () => {
    const m = await mute();
    // 5,000 registrations, then 2,500 deregistrations: the ring holds 4,096 events
    const t0 = Date.now();
    // a 1 s bound: the 903 registrations after the give-up all fall inside the backoff, however slow the machine
    const r = await driver(m.path, 'map 0 20480000 regmany 0 5000 stats sleep 1300 map 1 4096 reg 1 0 4096 r', { PINCOH_TIMEOUT_MS: '1000' });
    m.close();
    expect(r.code).toBe(0);
    // the 4,097th registration's event found the ring full: one SYNC, not answered
    // within 1 s; then no coordinator for 1 s (903 registrations refused)
    expect(r.lines.slice(1, 3)).toEqual(['regmany valid 2048 refused 2049 failed 903', 'stats slow 0 inval 0 timeouts 1 degraded 1 connected 0']);
    expect(m.asked()).toEqual([T.SYNC]);
    expect(m.hellos()).toBe(2); // after the backoff the next registration connected again...
    expect(r.stderr).toMatch(/re-announced registrations: 2048/); // ...telling it everything held
    expect(r.stderr.match(/does not drain this process's events; disconnecting/g)).toHaveLength(1);
    expect(Date.now() - t0).toBeLessThan(20_000); // bounded; not a timing threshold on pincoh's speed
  });

  it('PINCOH_ON_TIMEOUT=abort aborts instead', async () => {
    const m = await mute(true);
    const r = await driver(m.path, 'map 0 65536 reg 0 0 4096 rw pub p 0 unmap 0 0 65536', { PINCOH_TIMEOUT_MS: '100', PINCOH_ON_TIMEOUT: 'abort' });
    m.close();
    expect(r.signal).toBe('SIGABRT');
    expect(r.stderr).toMatch(/aborting/);
  });
});

describe('a process killed in the middle of a call', () => {
  class HangingEngine extends Engine {
    waiting: ProcessState | undefined;
    override sync(p: ProcessState): Promise<number> {
      super.sync(p);
      this.waiting = p;
      return new Promise(() => {}); // never answers: the process sits in its slow path
    }
  }
  it('loses all its state in the coordinator, after its last events are read', async () => {
    // waiting in the only call that waits for us: a SYNC for a full ring (no drain timer)
    const engine = new HangingEngine({ mremapFollow: false });
    const c = await startCoordinator({ engine, server: { drainMs: 60_000 } });
    const run = driver(c.path, 'map 0 20480000 regmany 0 5000', { PINCOH_TIMEOUT_MS: '60000' });
    expect(await until(() => engine.waiting !== undefined)).toBe(true);
    const victim = engine.waiting!;
    expect(victim.registry.size).toBe(4096); // the ring's worth, read by the SYNC
    process.kill(victim.pid, 'SIGKILL');
    const r = await run;
    expect(r.signal).toBe('SIGKILL');
    expect(await until(() => !engine.processes.has(victim.id), 1000)).toBe(true);
    await c.close();
  });

  it('events written just before a SIGKILL are still read: the counts equal what the process did', async () => {
    const c = await startCoordinator({ server: { drainMs: 60_000 } }); // no timer: only the area, read at the end
    const d = startDriver(c.path, 'map 0 1048576 reg 0 0 4096 rw reg 0 8192 4096 rw reg 0 16384 4096 rw unmap 0 0 4096 dereg 1 say wait');
    await d.waitFor(/^said/);
    const p = [...c.engine.processes.values()].find((x) => x.pid === d.pid)!;
    expect(p.registry.size).toBe(0); // nothing read yet: no frame, no timer
    process.kill(d.pid, 'SIGKILL');
    await d.done;
    expect(await until(() => !c.engine.processes.has(p.id))).toBe(true);
    expect(c.engine.stats.registrations).toBe(3);
    expect(c.engine.stats.invalidations.munmap).toBe(1);
    expect(c.engine.stats.slowCalls).toBe(1);
    expect(p.registry.size).toBe(1); // key 2, left when it died
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
  const area = fakeArea();
  const hello = area.hello({ pid: 1, ppid: 1, argv0: 'fuzz', job: 'default' });
  /** The message of the ERROR frame among the frames that came back ('' if none). */
  const errorText = (b: Buffer) => {
    for (let at = 0; at + 16 <= b.length && b.readUInt32LE(at) >= 16; at += b.readUInt32LE(at))
      if (b.readUInt16LE(at + 4) === T.ERROR) return b.subarray(at + 24, at + b.readUInt32LE(at)).toString();
    return '';
  };

  // made when a test asks (a directory made while the file is collected outlives a filtered run)
  // each with the exact message it must get
  const bad: Record<string, [() => Buffer[], RegExp]> = {
    'a frame before HELLO': [() => [encodeSync(1n)], new RegExp(`^frame type ${T.SYNC} before HELLO$`)],
    'a length below the header size': [() => [hello, Buffer.from([4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], /^frame length 4 outside 16\.\.65536$/],
    'a length above the frame limit': [() => [hello, Buffer.from([0, 0, 0, 0x10, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], /^frame length 268435456 outside 16\.\.65536$/],
    'an unknown type': [() => [hello, encodeFrame(200, 0, 1n, Buffer.alloc(8))], /^unknown frame type 200$/],
    'a truncated PUBLISH': [() => [hello, encodeFrame(T.PUBLISH, 0, 1n, Buffer.alloc(4))], /^PUBLISH payload of 4 bytes, expected 80$/],
    'a truncated FAREWELL': [() => [encodeFrame(T.FAREWELL, 0, 1n, Buffer.alloc(4))], /^FAREWELL payload of 4 bytes, expected 24$/],
    'a second HELLO': [() => [hello, hello], /^a second HELLO$/],
    'another protocol version': [() => [area.hello({ version: 99, argv0: 'old' })], new RegExp(`^protocol version 99 is not supported; this coordinator speaks version ${PROTO_VERSION}$`)],
    'a HELLO whose area is not a shared area': [
      () => [fakeArea().hello({ areaFd: openSync(join(tempDir('f'), 'plain'), 'w+') })],
      /^descriptor \d+ is \/tmp\/pincoh-f-.*\/plain, not a shared area$/,
    ],
    'a HELLO whose area is not sealed': [() => [fakeArea({ seal: false }).hello()], /^its shared area is not sealed against shrinking$/],
    'a HELLO whose area is another size': [() => [fakeArea().hello({ areaSize: 4096 })], new RegExp(`^its shared area is 4096 bytes, not ${AREA.BYTES}: another build of the shim$`)],
    'a HELLO whose area is smaller than it says': [() => [fakeArea({ bytes: 4096 }).hello()], new RegExp(`^its shared area's file is 4096 bytes, not ${AREA.BYTES}$`)],
  };
  for (const [what, [chunks, message]] of Object.entries(bad)) {
    it(`${what}: an ERROR frame saying why, then the connection closes`, async () => {
      const reply = await rawSession(chunks());
      expect(errorText(reply)).toMatch(message);
    });
  }

  it('a well-behaved process working meanwhile sees no change', async () => {
    const good = driver(c.path, 'cb map 0 65536 reg 0 0 4096 rw sleep 200 unmap 0 0 65536 valid 0');
    await Promise.all(Object.values(bad).map(([chunks]) => rawSession(chunks())));
    const r = await good;
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'cb 0 reason 1 len 4096', 'munmap 0 777', 'valid 0 0']);
    expect(c.logs.some((l) => /cut off pid \d+ \(fuzz, rank 0\): unknown frame type 200/.test(l))).toBe(true);
  });

  it('an event the shim would never write (a registration outside user space) cuts its writer off, saying so', async () => {
    const a = fakeArea();
    const s = createConnection(c.path);
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    const closed = new Promise((r) => s.once('close', r));
    s.write(a.hello({ argv0: 'liar' }));
    a.write({ type: R.REG, key: 1n, addr: 2 ** 57, len: 4096, flags: 3 });
    s.write(encodeSync(7n));
    await closed;
    expect(errorText(Buffer.concat(got))).toMatch(/a registration event with key 1, 0x200000000000000 \+4096/);
    expect(c.logs.some((l) => /cut off pid \d+ \(liar, rank 0\): a registration event/.test(l))).toBe(true);
  });
});

describe('a rank\'s farewell (what pincoh exec\'s ranks say at exit)', () => {
  it('is answered at once with REPLY 0 by a coordinator with no job to end, and counted: the summary says the shim ran in a rank that never connected', async () => {
    const c = await startCoordinator();
    try {
      const f = Buffer.alloc(24);
      f.writeUInt32LE(1, 0); // libc: code patch
      f.writeBigUInt64LE(0n, OFF.FAREWELL.slow_calls);
      const s = createConnection(c.path);
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d));
      s.on('connect', () => s.write(encodeFrame(T.FAREWELL, 0, 9n, f)));
      await new Promise((r) => s.once('end', r));
      s.destroy();
      const b = Buffer.concat(got);
      expect([b.length, b.readUInt16LE(4), b.readBigUInt64LE(8), b.readInt32LE(16)]).toEqual([24, T.REPLY, 9n, 0]);
      expect(c.engine.stats.summary()).toBe("pincoh: no process connected (1 rank ended without a pincoh call, the shim running in it); libc's own calls: code patch in 1 process");
    } finally {
      await c.close();
    }
  });
});

describe('a bad event found when someone asks', () => {
  it('pincoh audit reads every ring first: the process whose ring breaks the protocol is cut off, the asker gets its answer', async () => {
    const c = await startCoordinator({ server: { drainMs: 60_000 } }); // no timer: the audit's own drain finds it
    try {
      const a = fakeArea();
      const s = createConnection(c.path);
      s.on('error', () => {});
      s.resume(); // read, so the coordinator's end of it is seen
      const closed = new Promise((r) => s.once('close', r));
      s.write(a.hello({ argv0: 'liar' }));
      expect(await until(() => c.engine.processes.size === 1)).toBe(true);
      a.write({ type: R.REG, key: 1n, addr: 2 ** 57, len: 4096, flags: 3 });
      const r = await run(process.execPath, [CLI, 'audit', '--socket', c.path]);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: 'no processes connected\n', stderr: '' });
      await closed;
      expect(c.logs).toEqual([expect.stringMatching(/^cut off pid \d+ \(liar, rank 0\): a registration event with key 1, 0x200000000000000 \+4096/)]);
    } finally {
      await c.close();
    }
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
    s.write(fakeArea().hello({ pid: 1, ppid: 1, argv0: 'liar', job: 'default' }));
    expect(await until(() => c.engine.processes.size === 1)).toBe(true);
    const p = [...c.engine.processes.values()][0]!;
    expect(p.hello.pid).toBe(1);
    expect(p.pid).toBe(process.pid);
    s.destroy();
    await c.close();
  });
});
