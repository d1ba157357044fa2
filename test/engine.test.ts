// The engine without sockets or processes: events in, state and counts out.

import { describe, expect, it } from 'vitest';
import { Engine, EventError } from '../src/coherence/engine.js';
import type { MemoryPort, ProcessPort } from '../src/coherence/ports.js';
import { AREA, PROTO_VERSION, R, REASON } from '../src/protocol/constants.js';
import { EFAULT } from '../src/protocol/errno.js';
import { Trace } from '../src/trace.js';
import { SharedArea } from '../src/transport/area.js';
import { FakeRing, fakeTable, ringWriter, type Rec } from './helpers.js';

const hello = { version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job: 'default', areaFd: -1, areaSize: AREA.BYTES };

/** An engine and one process whose ring the test writes. */
function setup(opts: Partial<ConstructorParameters<typeof Engine>[0]> = {}) {
  const e = new Engine({ mremapFollow: false, verifyMappings: false, makeTable: fakeTable, ...opts });
  const area = SharedArea.inMemory();
  const p = e.connect(10, 0, hello, undefined, area);
  const write = ringWriter(area.words);
  const events = (...rs: Rec[]) => {
    rs.forEach(write);
    return e.drain(p);
  };
  return { e, p, area, events };
}
const reg = (key: bigint, addr: number, len: number, flags = 3): Rec => ({ type: R.REG, key, addr, len, flags });

describe('events', () => {
  it('registrations and deregistrations reach the registry in order', () => {
    const { e, p, events } = setup();
    expect(events(reg(1n, 0x10000, 4096), reg(2n, 0x20000, 4096), { type: R.DEREG, key: 1n })).toBe(3);
    expect([...p.registry].map((r) => r.key)).toEqual([2n]);
    expect(e.stats.registrations).toBe(2);
    expect(e.stats.events).toBe(3);
    expect(events()).toBe(0); // nothing new
  });

  it('an invalidation removes the key and counts under its reason; key 0 at exit removes all', () => {
    const { e, p, events } = setup();
    events(reg(1n, 0x10000, 4096), reg(2n, 0x20000, 4096), reg(3n, 0x30000, 4096));
    events({ type: R.INVAL, key: 2n, reason: REASON.MPROTECT, call: 1 }, { type: R.CALL, call: 1, reason: REASON.MPROTECT });
    expect(p.registry.has(2n)).toBe(false);
    expect(e.stats.invalidations.mprotect).toBe(1);
    events({ type: R.INVAL, key: 0n, reason: REASON.EXIT, call: 2 }, { type: R.CALL, call: 2, reason: REASON.EXIT });
    expect(p.registry.size).toBe(0);
    expect(e.stats.invalidations.exit).toBe(2);
    expect(e.stats.slowCalls).toBe(2);
  });

  it('a followed mremap moves the registration by what MOVED says, keeping its key', () => {
    const { e, p, events } = setup();
    events(reg(1n, 0x11000, 4096), { type: R.MOVING, key: 1n, reason: REASON.MREMAP, call: 5 }, { type: R.MOVED, key: 1n, addr: 0x51000, call: 5 }, { type: R.CALL, call: 5, reason: REASON.MREMAP, result: 0x50000 });
    expect(p.registry.get(1n)).toMatchObject({ start: 0x51000, end: 0x52000 });
    expect(e.stats.follows).toBe(1);
  });

  it('the trace says what each call did: invalidated and followed keys, outcome, waited', () => {
    const lines: string[] = [];
    const trace = new Trace();
    trace.on((ev) => lines.push(JSON.stringify(ev)));
    const { events } = setup({ trace });
    events(reg(1n, 0x10000, 4096), reg(2n, 0x20000, 4096));
    events({ type: R.INVAL, key: 1n, reason: REASON.MUNMAP, call: 7 }, { type: R.INVAL, key: 2n, reason: REASON.MUNMAP, call: 7 }, { type: R.CALL, call: 7, reason: REASON.MUNMAP, addr: 0x10000, len: 0x20000, flags: 1, result: -22 });
    const call = JSON.parse(lines.find((l) => l.includes('"call"'))!);
    expect(call).toMatchObject({ call: 'munmap', addr: '0x10000', len: 0x20000, invalidated: [1, 2], followed: [], outcome: 'EINVAL', waited: true, timed_out: false });
  });

  it('events that cannot come from the shim are refused with what was wrong', () => {
    const bad: Array<[Rec, RegExp]> = [
      [{ type: 99 }, /unknown type 99/],
      [reg(0n, 0x1000, 4096), /key 0/],
      [reg(1n, 0x1000, 0), /\+0/],
      [reg(1n, 0x1000, 4096, 4), /flags 4/],
      [reg(1n, 2 ** 57, 4096), /registration event/],
      [{ type: R.INVAL, key: 1n, reason: 99 }, /reason 99/],
    ];
    for (const [rec, why] of bad) {
      const { events } = setup();
      expect(() => events(rec)).toThrow(EventError);
      expect(() => setup().events(rec)).toThrow(why);
    }
    const { events } = setup();
    events(reg(1n, 0x1000, 4096));
    expect(() => events(reg(1n, 0x2000, 4096))).toThrow(/key 1 registered twice/);
  });

  it('a head that runs past the tail by more than the ring holds is refused', () => {
    const { e, p, area } = setup();
    Atomics.store(area.words, 16, AREA.RING_SLOTS + 1);
    expect(() => e.drain(p)).toThrow(/head is 4097 records past the tail/);
  });

  it('the registration limit holds: one more than WELCOME allowed is refused', () => {
    const { events } = setup({ limits: { registrationsPerProcess: 2 } });
    events(reg(1n, 0x1000, 4096), reg(2n, 0x2000, 4096));
    expect(() => events(reg(3n, 0x3000, 4096))).toThrow(/more than 2 registrations/);
  });

  it('events the shim could not queue are counted', () => {
    const { e, p, area } = setup();
    Atomics.store(area.words, 17, 5); // dropped
    e.drain(p);
    expect(e.stats.dropped).toBe(5);
    expect(e.stats.summary()).toMatch(/5 events lost/);
  });

  it('dropping a process twice counts it once, and its area is unmapped', () => {
    const { e, p, area } = setup();
    e.drop(p, 'x');
    e.drop(p, 'x');
    expect(e.stats.live).toBe(0);
    expect(area.mapped).toBe(false);
  });
});

describe('the engine with fake ports: no shared memory, no /proc, no signals', () => {
  /** pid 10 and its life as the test says: it runs until `dies` is called */
  function lives(): ProcessPort & { killed: number[]; dies: () => void } {
    let running = true;
    const killed: number[] = [];
    return {
      killed,
      dies: () => (running = false),
      kill: (pid) => (killed.push(pid), (running = false), true),
      runningSince: () => (running ? '100' : undefined),
      exited: () => !running,
      deathSignal: () => (running ? undefined : 'SIGSEGV'),
    };
  }

  it('events come from any ring; publish asks the memory port whether the registration is mapped; the audit reports what it finds', () => {
    const asked: Array<[number, number, number]> = [];
    let mapped = false;
    const memory: MemoryPort = {
      isMapped: (pid, start, end) => (asked.push([pid, start, end]), mapped),
      audit: (_pid, regs) => [...regs].map((reg) => ({ reg, finding: 'lost write' as const })),
    };
    const table = fakeTable();
    const e = new Engine({ mremapFollow: false, memory, makeTable: () => table, lives: lives() });
    const ring = new FakeRing();
    const p = e.connect(10, 0, hello, undefined, ring);
    expect(table.joined).toEqual([10]);
    ring.write(reg(1n, 0x10000, 4096));
    const req = { key: 1n, name: 'buf', terminated: true, export: 1, xgen: 1 };
    expect(e.publish(p, req)).toBe(-EFAULT); // drained the ring first, then asked
    expect(asked).toEqual([[10, 0x10000, 0x11000]]);
    mapped = true;
    expect(e.publish(p, req)).toBe(0);
    expect(e.auditAll()).toEqual([{ pid: 10, rank: 0, argv0: 'unit', registrations: 1, findings: [{ key: 1, addr: '0x10000', len: 4096, finding: 'lost write' }] }]);
    e.drop(p, 'x');
    expect(ring.unmapped).toBe(true);
    expect(table.closed).toBe(false); // its slot was not released: it did not die (the ports say it runs)
    e.close();
  });

  it('a process whose connection closes without BYE while the lives port says it is dying is a crash, named by the port', () => {
    const life = lives();
    const crashes: Array<string | undefined> = [];
    const table = fakeTable();
    const e = new Engine({ mremapFollow: false, verifyMappings: false, makeTable: () => table, lives: life, onCrash: (_p, sig) => crashes.push(sig) });
    const p = e.connect(10, 0, hello, undefined, new FakeRing());
    life.dies();
    e.drop(p, 'disconnected');
    expect(crashes).toEqual(['SIGSEGV']);
    expect(e.stats.crashed).toBe(1);
    expect(table.closed).toBe(true); // dead: its slot released, the job's last member gone
    expect(life.killed).toEqual([]);
  });

  it('cut off: the process is killed through the port, never by a real signal', () => {
    const life = lives();
    const cut: string[] = [];
    const e = new Engine({ mremapFollow: false, verifyMappings: false, makeTable: fakeTable, lives: life });
    const p = e.connect(10, 0, hello, { cutOff: (r) => cut.push(r) }, new FakeRing());
    e.cutOff(p, 'a test');
    expect(life.killed).toEqual([10]);
    expect(cut).toEqual(['a test; killed']);
    expect(e.stats.cutOff).toBe(1);
  });
});
