// Revoke semantics in the engine, with fake peers: no sockets, exact ordering.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Engine, type Peer, type ProcessState, type RevokeOutcome } from '../src/coherence/engine.js';
import { MREMAP_MAYMOVE, OP, PROTO_VERSION } from '../src/protocol/constants.js';

const hello = (job = 'j') => ({ version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job });

/** A peer whose revokes resolve when the test says. */
class FakePeer implements Peer {
  pending: Array<(o: RevokeOutcome) => void> = [];
  cut: string[] = [];
  revoke(): Promise<RevokeOutcome> {
    return new Promise((r) => this.pending.push(r));
  }
  cutOff(reason: string): void {
    this.cut.push(reason);
  }
}

function setup(opts: ConstructorParameters<typeof Engine>[0] = { mremapFollow: false }) {
  const e = new Engine({ verifyMappings: false, ...opts });
  const ownerPeer = new FakePeer();
  const owner = e.connect(100, 0, hello(), ownerPeer);
  e.register(owner, { key: 1n, addr: 0x10000, len: 0x4000, flags: 3 });
  expect(e.publish(owner, 1n, 'buf')).toBe(0);
  return { e, owner };
}

async function attach(e: Engine, pid: number, handle = 7n): Promise<{ p: ProcessState; peer: FakePeer }> {
  const peer = new FakePeer();
  const p = e.connect(pid, 0, hello(), peer);
  const r = await e.attach(p, { handle, stateAddr: 0x1000, timeoutMs: 0, name: 'buf' });
  expect(r).toMatchObject({ status: 0, attached: { pid: 100, flags: 3 } });
  return { p, peer };
}

const munmapAll = { op: OP.MUNMAP, arg: 0, addr: 0x10000, len: 0x4000, newLen: 0, newAddr: 0 };

describe('revoking', () => {
  it('the ACK waits for every attacher, not just most of them', async () => {
    const { e, owner } = setup();
    const as = await Promise.all([201, 202, 203].map((pid) => attach(e, pid)));
    expect(await e.attach(as[0]!.p, { handle: 99n, stateAddr: 0, timeoutMs: 0, name: 'buf' })).toMatchObject({ attached: { addr: 0x10000, len: 0x4000 } });
    let acked = false;
    const ack = Promise.resolve(e.begin(owner, 1n, munmapAll)).then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(as.map((a) => a.peer.pending.length)).toEqual([2, 1, 1]); // sent to all at once
    as[0]!.peer.pending[0]!('acked');
    as[0]!.peer.pending[1]!('acked');
    as[2]!.peer.pending[0]!('gone');
    await new Promise((r) => setTimeout(r, 10));
    expect(acked).toBe(false);
    as[1]!.peer.pending[0]!('acked');
    await ack;
    expect(e.stats.revokes).toBe(4);
    expect(e.jobs.get('j')!.names.has('buf')).toBe(false); // the name went with the registration
    expect(owner.exports.size).toBe(0);
    for (const a of as) expect(a.p.attachments.size).toBe(0);
  });

  it('an attacher that does not answer, and whose handles cannot be marked dead, is killed and dropped', async () => {
    const { e, owner } = setup({ mremapFollow: false });
    const sleeper = spawn('sleep', ['30']);
    const a = await attach(e, sleeper.pid!);
    const ack = e.begin(owner, 1n, munmapAll);
    a.peer.pending[0]!('timeout');
    await ack;
    // stateAddr 0x1000 is not mapped in `sleep`: the mark fails, so it must die
    const [, signal] = await new Promise<[number | null, string | null]>((r) => sleeper.once('exit', (c, s) => r([c, s])));
    expect(signal).toBe('SIGKILL');
    expect(a.peer.cut[0]).toMatch(/did not acknowledge a revoke within 1000 ms; killed/);
    expect(e.processes.has(a.p.id)).toBe(false);
    expect(e.stats.cutOff).toBe(1);
  });

  it('--no-coherence: nothing is revoked and the ACK is immediate', async () => {
    const { e, owner } = setup({ mremapFollow: false, coherence: false });
    const a = await attach(e, 201);
    expect(e.begin(owner, 1n, munmapAll)).toBe(0);
    expect(a.peer.pending.length).toBe(0);
  });

  it('a followed mremap keeps the name but revokes attachers: they hold the old address', async () => {
    const { e, owner } = setup({ mremapFollow: true });
    const a = await attach(e, 201);
    const ack = e.begin(owner, 1n, { op: OP.MREMAP, arg: MREMAP_MAYMOVE, addr: 0x10000, len: 0x4000, newLen: 0x8000, newAddr: 0 });
    a.peer.pending[0]!('acked');
    await ack;
    e.done(owner, { op: OP.MREMAP, flags: 0, result: 0x90000, beginSeq: 1n });
    expect(e.jobs.get('j')!.names.get('buf')?.key).toBe(1n);
    const again = await attach(e, 202, 8n);
    expect(again.p.attachments.get(8n)).toBeDefined();
    expect(owner.registry.get(1n)).toMatchObject({ start: 0x90000, end: 0x94000 });
  });

  it('deregister revokes before it answers; the owner dropping revokes without waiting', async () => {
    const { e, owner } = setup();
    const a = await attach(e, 201);
    const ack = e.deregister(owner, 1n);
    expect(ack).toBeInstanceOf(Promise);
    a.peer.pending[0]!('acked');
    expect(await ack).toBe(0);
    e.register(owner, { key: 2n, addr: 0x20000, len: 4096, flags: 3 });
    e.publish(owner, 2n, 'buf');
    const b = await attach(e, 202, 9n);
    e.drop(owner, 'exit');
    expect(b.peer.pending.length).toBe(1);
  });
});
