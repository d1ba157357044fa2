// Revoking in the engine, with in-memory areas: the coordinator marks each
// attacher's handle dead in the attacher's own memory and waits only for a
// put already in flight. No sockets, exact ordering.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Engine, type Peer, type ProcessState } from '../src/coherence/engine.js';
import { AREA, H, PROTO_VERSION, R, REASON } from '../src/protocol/constants.js';
import { SharedArea } from '../src/transport/area.js';
import { ringWriter, type Rec } from './helpers.js';

const hello = { version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job: 'j', areaFd: -1, areaSize: AREA.BYTES };

class FakePeer implements Peer {
  cut: string[] = [];
  cutOff(reason: string): void {
    this.cut.push(reason);
  }
}

interface Proc {
  p: ProcessState;
  area: SharedArea;
  peer: FakePeer;
  events: (...rs: Rec[]) => void;
}

function join(e: Engine, pid: number): Proc {
  const area = SharedArea.inMemory();
  const peer = new FakePeer();
  const p = e.connect(pid, 0, hello, peer, area);
  const write = ringWriter(area.words);
  return { p, area, peer, events: (...rs) => rs.forEach(write) };
}

/** The attacher's side of a handle, as attach.c keeps it in the area. */
const GEN = 5;
const handle = (slot: number) => (BigInt(GEN) << 32n) | BigInt(slot + 1);
const stateAt = (slot: number) => (AREA.HANDLE_OFF + slot * 16) / 4;
function pending(a: Proc, slot: number): void {
  a.area.words[stateAt(slot)] = (GEN << 4) | H.PENDING;
}
const state = (a: Proc, slot: number) => a.area.words[stateAt(slot)]! & 15;

function setup(opts: Partial<ConstructorParameters<typeof Engine>[0]> = {}) {
  const e = new Engine({ mremapFollow: false, verifyMappings: false, revokeTimeoutMs: 100, ...opts });
  const owner = join(e, 100);
  owner.events({ type: R.REG, key: 1n, addr: 0x10000, len: 0x4000, flags: 3 });
  expect(e.publish(owner.p, 1n, 'buf')).toBe(0);
  return { e, owner };
}

async function attach(e: Engine, pid: number, slot = 0): Promise<Proc> {
  const a = join(e, pid);
  pending(a, slot);
  const r = await e.attach(a.p, { handle: handle(slot), timeoutMs: 0, name: 'buf' });
  expect(r).toMatchObject({ status: 0, attached: { pid: 100, flags: 3 } });
  a.area.words[stateAt(slot)] = (GEN << 4) | H.LIVE; // what pc_attach_set does
  return a;
}

const munmapAll = (call = 1): Rec[] => [{ type: R.INVAL, key: 1n, reason: REASON.MUNMAP, call }];

describe('revoking', () => {
  it('every attacher\'s handle is dead in its own memory when SYNC answers, with nobody having to run', async () => {
    const { e, owner } = setup();
    const as = await Promise.all([201, 202, 203].map((pid) => attach(e, pid)));
    owner.events(...munmapAll());
    expect(e.sync(owner.p)).toBe(0); // no put in flight: an answer at once
    for (const a of as) {
      expect(state(a, 0)).toBe(H.DEAD);
      expect(a.area.words[stateAt(0) + 2]).toBe(REASON.MUNMAP); // why, for the attacher
      expect(a.p.attachments.size).toBe(0);
    }
    expect(e.stats.revokes).toBe(3);
    expect(e.jobs.get('j')!.names.has('buf')).toBe(false); // the name went with the registration
    expect(owner.p.exports.size).toBe(0);
  });

  it('a put in flight holds SYNC until it drains', async () => {
    const { e, owner } = setup();
    const a = await attach(e, 201);
    a.area.words[stateAt(0) + 1] = 1; // inflight
    owner.events(...munmapAll());
    const ack = e.sync(owner.p);
    expect(ack).toBeInstanceOf(Promise);
    let answered = false;
    void (ack as Promise<number>).then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    expect(state(a, 0)).toBe(H.DEAD); // dead already: the next put will not start
    a.area.words[stateAt(0) + 1] = 0;
    expect(await ack).toBe(0);
    expect(a.peer.cut).toEqual([]);
  });

  it('a put in flight past the bound (stopped inside pincoh_put) gets its process killed', async () => {
    const { e, owner } = setup();
    const sleeper = spawn('sleep', ['30']);
    const a = join(e, sleeper.pid!);
    pending(a, 0);
    await e.attach(a.p, { handle: handle(0), timeoutMs: 0, name: 'buf' });
    a.area.words[stateAt(0)] = (GEN << 4) | H.LIVE;
    a.area.words[stateAt(0) + 1] = 1;
    owner.events(...munmapAll());
    expect(await e.sync(owner.p)).toBe(0);
    const [, signal] = await new Promise<[number | null, string | null]>((r) => sleeper.once('exit', (c, s) => r([c, s])));
    expect(signal).toBe('SIGKILL');
    expect(a.peer.cut[0]).toMatch(/still in flight 100 ms after its handle was revoked .*; killed/);
    expect(e.processes.has(a.p.id)).toBe(false);
    expect(e.stats.cutOff).toBe(1);
  });

  it('a handle slot reused for a newer handle is left alone', async () => {
    const { e, owner } = setup();
    const a = await attach(e, 201);
    a.area.words[stateAt(0)] = ((GEN + 1) << 4) | H.LIVE; // detached, and the slot taken again
    owner.events(...munmapAll());
    expect(e.sync(owner.p)).toBe(0);
    expect(a.area.words[stateAt(0)]).toBe(((GEN + 1) << 4) | H.LIVE);
  });

  it('a revoke that overtakes the attach reply leaves the handle born dead', async () => {
    const { e, owner } = setup();
    const a = join(e, 201);
    pending(a, 3);
    await e.attach(a.p, { handle: handle(3), timeoutMs: 0, name: 'buf' });
    owner.events(...munmapAll()); // before the attacher set it LIVE
    e.sync(owner.p);
    expect(state(a, 3)).toBe(H.DEAD);
  });

  it('--no-coherence: nothing is revoked', async () => {
    const { e, owner } = setup({ coherence: false });
    const a = await attach(e, 201);
    owner.events(...munmapAll());
    expect(e.sync(owner.p)).toBe(0);
    expect(state(a, 0)).toBe(H.LIVE);
  });

  it('a followed mremap keeps the name but revokes attachers: they hold the old address', async () => {
    const { e, owner } = setup({ mremapFollow: true });
    const a = await attach(e, 201);
    owner.events({ type: R.MOVING, key: 1n, reason: REASON.MREMAP, call: 1 });
    e.sync(owner.p);
    expect(state(a, 0)).toBe(H.DEAD);
    owner.events({ type: R.MOVED, key: 1n, addr: 0x90000, call: 1 }, { type: R.CALL, call: 1, reason: REASON.MREMAP, result: 0x90000 });
    e.drain(owner.p);
    expect(e.jobs.get('j')!.names.get('buf')?.key).toBe(1n);
    const again = await attach(e, 202, 1);
    expect(again.p.attachments.get(handle(1))).toBeDefined();
    expect(owner.p.registry.get(1n)).toMatchObject({ start: 0x90000, end: 0x94000 });
  });

  it('deregister revokes; the owner dropping revokes without waiting for anyone', async () => {
    const { e, owner } = setup();
    const a = await attach(e, 201);
    owner.events({ type: R.DEREG, key: 1n });
    e.sync(owner.p);
    expect(state(a, 0)).toBe(H.DEAD);
    expect(a.area.words[stateAt(0) + 2]).toBe(REASON.DEREGISTER);
    owner.events({ type: R.REG, key: 2n, addr: 0x20000, len: 4096, flags: 3 });
    e.drain(owner.p);
    e.publish(owner.p, 2n, 'buf');
    const b = await attach(e, 202, 1);
    b.area.words[stateAt(1) + 1] = 1; // even a put in flight: the owner is gone, nobody waits
    e.drop(owner.p, 'exit');
    expect(state(b, 1)).toBe(H.DEAD);
    expect(b.peer.cut).toEqual([]);
  });
});
