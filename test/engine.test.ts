// The engine without sockets or processes: events in, state and counts out.

import { describe, expect, it } from 'vitest';
import { Engine, EventError } from '../src/coherence/engine.js';
import { AREA, PROTO_VERSION, R, REASON } from '../src/protocol/constants.js';
import { Trace } from '../src/trace.js';
import { SharedArea } from '../src/transport/area.js';
import { ringWriter, type Rec } from './helpers.js';

const hello = { version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job: 'default', areaFd: -1, areaSize: AREA.BYTES };

/** An engine and one process whose ring the test writes. */
function setup(opts: Partial<ConstructorParameters<typeof Engine>[0]> = {}) {
  const e = new Engine({ mremapFollow: false, verifyMappings: false, ...opts });
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
