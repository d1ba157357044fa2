// The control plane of sharing, in the engine, with in-memory areas and job
// tables: the engine links attachers to exports in the job table, keeps the
// books when an owner says it revoked them (REVOKED), and steps in only for a
// process that is dropped or a put stuck in flight. No sockets, exact ordering.

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Engine, type Peer, type ProcessState } from '../src/coherence/engine.js';
import { AREA, EV_EXPORT, JT, M, PROTO_VERSION, R, REASON, X } from '../src/protocol/constants.js';
import { EINVAL } from '../src/protocol/errno.js';
import { SharedArea } from '../src/transport/area.js';
import { JobTable } from '../src/transport/jobtable.js';
import { ringWriter, until, type Rec } from './helpers.js';

const hello = { version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job: 'j', areaFd: -1, areaSize: AREA.BYTES };
/** pids no process has (above the default pid_max): these processes count as gone */
const DEAD = 4_190_000;

class FakePeer implements Peer {
  cut: string[] = [];
  cutOff(reason: string): void {
    this.cut.push(reason);
  }
}

interface Proc {
  p: ProcessState;
  peer: FakePeer;
  events: (...rs: Rec[]) => void;
}

function join(e: Engine, pid: number, job = 'j'): Proc {
  const area = SharedArea.inMemory();
  const peer = new FakePeer();
  const p = e.connect(pid, 0, { ...hello, job }, peer, area);
  const write = ringWriter(area.words);
  return { p, peer, events: (...rs) => rs.forEach(write) };
}

const table = (p: ProcessState): JobTable => p.job.table as JobTable;
/** What the owner's shim does at publish: its export word made live, in its own segment. */
function makeLive(t: JobTable, owner: number, x: number, gen: number): void {
  t.words[t.segmentWord(owner) + (JT.SEG_EXPORTS_OFF + (x - 1) * 8) / 4] = ((gen << 4) | X.LIVE) >>> 0;
}
const exportWord = (t: JobTable, owner: number, x: number) => t.words[t.segmentWord(owner) + (JT.SEG_EXPORTS_OFF + (x - 1) * 8) / 4]!;
const setInflight = (t: JobTable, m: number, slot: number, n: number) => (t.words[t.segmentWord(m) + JT.SEG_INFLIGHT_OFF / 4 + slot] = n);
/** The links of an export, as an owner's walk reads them: [attacher member, handle slot] or 'none'. */
function links(t: JobTable, owner: number, x: number): Array<[number, number] | 'none'> {
  const w = t.words;
  const headOff = w[9]! / 4; // struct pc_jt_hdr.head_off
  const linkOff = w[10]! / 4;
  const out: Array<[number, number] | 'none'> = [];
  for (let i = w[headOff + owner * JT.EXPORTS + x - 1]!; i !== 0; i = w[linkOff + (i - 1) * 4 + 3]!) {
    const who = w[linkOff + (i - 1) * 4 + 2]!;
    out.push(who === JT.LINK_NONE ? 'none' : [who >>> 16, who & 0xffff]);
  }
  return out;
}

const GEN = 5;
const handle = (slot: number) => (BigInt(GEN) << 32n) | BigInt(slot + 1);

function setup(opts: Partial<ConstructorParameters<typeof Engine>[0]> = {}) {
  const e = new Engine({ mremapFollow: false, verifyMappings: false, revokeTimeoutMs: 100, makeTable: () => JobTable.inMemory(), ...opts });
  const owner = join(e, DEAD);
  owner.events({ type: R.REG, key: 1n, addr: 0x10000, len: 0x4000, flags: 3 });
  makeLive(table(owner.p), owner.p.member, 1, 7);
  expect(e.publish(owner.p, { key: 1n, name: 'buf', terminated: true, export: 1, xgen: 7 })).toBe(0);
  return { e, owner, t: table(owner.p) };
}

async function attach(e: Engine, pid: number, slot = 0, ownerPid = DEAD): Promise<Proc> {
  const a = join(e, pid);
  const r = await e.attach(a.p, { handle: handle(slot), timeoutMs: 0, name: 'buf' });
  expect(r).toMatchObject({ status: 0, attached: { pid: ownerPid, flags: 3, export: 1, xgen: 7 } });
  return a;
}

const revoked = (owner: Proc, opts: { inflight?: number; stuck?: number; key?: bigint; gen?: number; reason?: number } = {}): Rec => ({
  type: R.REVOKED,
  key: opts.key ?? 1n,
  reason: opts.reason ?? REASON.MUNMAP,
  call: 1,
  addr: 1,
  len: opts.gen ?? 7,
  ns: 4000,
  result: owner.p.exports.get(opts.key ?? 1n)?.size ?? 0,
  arg: opts.inflight ?? 0,
  arg2: opts.stuck ?? 0,
});

describe('attach: the control plane', () => {
  it('links the attacher to the export in the job table before it answers, and tells it the words to check', async () => {
    const { e, owner, t } = setup();
    const a = await attach(e, DEAD + 1, 3);
    const b = await attach(e, DEAD + 2, 0);
    expect(links(t, owner.p.member, 1)).toEqual([[b.p.member, 0], [a.p.member, 3]]); // newest at the head
    const r = await e.attach(join(e, DEAD + 3).p, { handle: handle(1), timeoutMs: 0, name: 'buf' });
    expect(r).toMatchObject({ attached: { owner: owner.p.member, export: 1, xgen: 7, ownerWord: owner.p.memberWord } });
    expect(t.memberState(owner.p.member)).toBe(M.ACTIVE);
  });

  it('publish: the export word must be live at the generation named, or it is -EINVAL', async () => {
    const { e, owner, t } = setup();
    owner.events({ type: R.REG, key: 2n, addr: 0x20000, len: 0x1000, flags: 3 });
    expect(e.publish(owner.p, { key: 2n, name: 'two', terminated: true, export: 2, xgen: 1 })).toBe(-EINVAL); // never made live
    makeLive(t, owner.p.member, 2, 1);
    expect(e.publish(owner.p, { key: 2n, name: 'two', terminated: true, export: 2, xgen: 2 })).toBe(-EINVAL); // another generation
    expect(e.publish(owner.p, { key: 2n, name: 'two', terminated: true, export: JT.EXPORTS + 1, xgen: 1 })).toBe(-EINVAL);
    expect(e.publish(owner.p, { key: 2n, name: 'two', terminated: true, export: 2, xgen: 1 })).toBe(0);
    expect(e.publish(owner.p, { key: 2n, name: 'deux', terminated: true, export: 2, xgen: 1 })).toBe(0); // a second name, the same export
    expect(e.publish(owner.p, { key: 2n, name: 'zwei', terminated: true, export: 3, xgen: 1 })).toBe(-EINVAL); // but not another
  });

  it('detach leaves an empty link in the list (an owner walking it never leaves its list)', async () => {
    const { e, owner, t } = setup();
    const a = await attach(e, DEAD + 1, 2);
    expect(e.detach(a.p, handle(2))).toBe(0);
    expect(links(t, owner.p.member, 1)).toEqual(['none']);
    expect(owner.p.exports.size).toBe(0);
  });
});

describe('revoking: the owner does it; the books follow', () => {
  it('INVAL of a published registration takes its name at once; REVOKED settles the attachments, frees the links, counts and traces', async () => {
    const { e, owner, t } = setup();
    const events: Array<Record<string, unknown>> = [];
    e.trace.on(({ t: _t, ...ev }) => void events.push(ev));
    const as = await Promise.all([DEAD + 1, DEAD + 2, DEAD + 3].map((pid) => attach(e, pid)));
    owner.events({ type: R.INVAL, key: 1n, reason: REASON.MUNMAP, call: 1, flags: EV_EXPORT });
    e.drain(owner.p);
    expect(e.jobs.get('j')!.names.has('buf')).toBe(false);
    expect(owner.p.exports.get(1n)?.size).toBe(3); // until the owner says it revoked them
    owner.events(revoked(owner, { inflight: 1 }));
    e.drain(owner.p);
    expect(owner.p.exports.size).toBe(0);
    for (const a of as) expect(a.p.attachments.size).toBe(0);
    expect(links(t, owner.p.member, 1)).toEqual([]);
    expect(t.linksUsed).toBe(0);
    expect(e.stats.revokes).toBe(3);
    expect(events.filter((x) => x.event === 'revoke')).toEqual(
      as.map((a) => ({ event: 'revoke', pid: DEAD, rank: 0, attacher: a.p.pid, handle: 1, reason: 'munmap', outcome: 'drained', latency_us: 4 })),
    );
    expect(owner.p.published.size).toBe(0);
  });

  it('a handle the attacher lets go of after finding it dead is still counted when the owner\'s REVOKED comes', async () => {
    const { e, owner, t } = setup();
    const a = await attach(e, DEAD + 1);
    owner.events({ type: R.INVAL, key: 1n, reason: REASON.MUNMAP, call: 1, flags: EV_EXPORT });
    t.words[t.segmentWord(owner.p.member) + JT.SEG_EXPORTS_OFF / 4] = ((7 << 4) | X.DEAD) >>> 0; // the owner's mark
    expect(e.detach(a.p, handle(0))).toBe(0); // its put said -ESTALE; it detached before we read the owner's ring
    owner.events(revoked(owner));
    e.drain(owner.p);
    expect(e.stats.revokes).toBe(1);
    expect(owner.p.exports.size).toBe(0);
  });

  it('a followed mremap: REVOKED lets the attachers go (they hold the old address), REARM makes the name attachable at a new generation', async () => {
    const { e, owner, t } = setup({ mremapFollow: true });
    await attach(e, DEAD + 1);
    owner.events({ type: R.MOVING, key: 1n, reason: REASON.MREMAP, call: 1, flags: EV_EXPORT }, revoked(owner, { reason: REASON.MREMAP }));
    owner.events({ type: R.MOVED, key: 1n, addr: 0x90000, call: 1 }, { type: R.REARM, key: 1n, addr: 1, len: 8, call: 1 }, { type: R.CALL, call: 1, reason: REASON.MREMAP, result: 0x90000 });
    makeLive(t, owner.p.member, 1, 8);
    e.drain(owner.p);
    expect(owner.p.exports.size).toBe(0);
    expect(e.jobs.get('j')!.names.get('buf')?.key).toBe(1n);
    const again = join(e, DEAD + 2);
    expect(await e.attach(again.p, { handle: handle(1), timeoutMs: 0, name: 'buf' })).toMatchObject({ attached: { addr: 0x90000, xgen: 8 } });
  });

  it('a REVOKED naming an export outside the table breaks the protocol', () => {
    const { e, owner } = setup();
    owner.events({ ...revoked(owner), addr: JT.EXPORTS + 1 });
    expect(() => e.drain(owner.p)).toThrow(/a revocation of export 1025 generation 7/);
  });

  it('--no-coherence: nothing is killed, and the books let go at INVAL (no REVOKED comes)', async () => {
    const { e, owner, t } = setup({ coherence: false });
    const a = await attach(e, DEAD + 1);
    owner.events({ type: R.INVAL, key: 1n, reason: REASON.MUNMAP, call: 1, flags: EV_EXPORT });
    e.drain(owner.p);
    expect(a.p.attachments.size).toBe(0);
    expect(t.linksUsed).toBe(0);
    expect(e.stats.revokes).toBe(0);
  });
});

describe('a dropped process: the coordinator steps in', () => {
  it('an owner that died: its exports die in its stead (pid reuse), nobody waits, its slot is free again', async () => {
    const { e, owner, t } = setup();
    const a = await attach(e, DEAD + 1);
    setInflight(t, a.p.member, 0, 1); // even a put in flight: the owner's memory is gone
    const m = owner.p.member;
    e.drop(owner.p, 'disconnected');
    expect(exportWord(t, m, 1) & 15).toBe(0); // killed, then the slot cleared
    expect(t.memberState(m)).toBe(M.FREE);
    expect(a.p.attachments.size).toBe(0);
    expect(a.peer.cut).toEqual([]);
    expect(e.stats.revokes).toBe(1);
  });

  it('an owner dropped while it runs: its exports are killed, a put in flight is waited for; its slot is kept until it is gone', async () => {
    const sleeper = spawn('sleep', ['30']);
    const e = new Engine({ mremapFollow: false, verifyMappings: false, revokeTimeoutMs: 2000, makeTable: () => JobTable.inMemory() });
    const owner = join(e, sleeper.pid!);
    const t = table(owner.p);
    owner.events({ type: R.REG, key: 1n, addr: 0x10000, len: 0x4000, flags: 3 });
    makeLive(t, owner.p.member, 1, 7);
    e.publish(owner.p, { key: 1n, name: 'buf', terminated: true, export: 1, xgen: 7 });
    const a = await attach(e, DEAD + 1, 0, sleeper.pid);
    setInflight(t, a.p.member, 0, 1);
    e.drop(owner.p, 'cut off: a test');
    expect(exportWord(t, owner.p.member, 1)).toBe(((7 << 4) | X.DEAD) >>> 0);
    expect(t.memberState(owner.p.member)).toBe(M.EXPELLED);
    expect(e.stats.revokes).toBe(0); // waiting for the put
    setInflight(t, a.p.member, 0, 0);
    expect(await until(() => e.stats.revokes === 1)).toBe(true);
    expect(a.peer.cut).toEqual([]);
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r));
    expect(await until(() => t.memberState(owner.p.member) === M.FREE, 3000)).toBe(true); // the quarantine saw it go
  });

  it('an attacher dropped while it runs: its puts are refused at once (EXPELLED); its link goes once its put in flight is over', async () => {
    const { e, owner, t } = setup();
    const a = await attach(e, process.pid); // alive: this very process, never killed
    setInflight(t, a.p.member, 0, 1);
    e.drop(a.p, 'cut off: a test');
    expect(t.memberState(a.p.member)).toBe(M.EXPELLED);
    expect(links(t, owner.p.member, 1)).toEqual([[a.p.member, 0]]); // the owner would still wait for it
    setInflight(t, a.p.member, 0, 0);
    expect(await until(() => links(t, owner.p.member, 1)[0] === 'none')).toBe(true);
    e.close();
  });

  it('an attacher dropped while it runs, its put in flight past the bound: it is killed, and its link stays until it has exited', async () => {
    const { e, owner, t } = setup();
    const sleeper = spawn('sleep', ['30']);
    const exited = new Promise<string | null>((r) => sleeper.once('exit', (_c, s) => r(s)));
    const a = await attach(e, sleeper.pid!);
    setInflight(t, a.p.member, 0, 1); // stopped inside pincoh_put, for good
    e.drop(a.p, 'cut off: a test');
    expect(await exited).toBe('SIGKILL');
    expect(e.stats.cutOff).toBe(1);
    expect(await until(() => links(t, owner.p.member, 1)[0] === 'none')).toBe(true);
    e.close();
  });
});

describe('with a fake lives port: no process spawned, no signal sent', () => {
  it('an attacher dropped while it runs, its put in flight past the bound: the port kills it, and its link goes once the port says it exited', async () => {
    let running = true;
    const killed: number[] = [];
    const lives = { kill: (pid: number) => (killed.push(pid), true), runningSince: () => (running ? '1' : undefined), exited: () => !running, deathSignal: () => undefined };
    const { e, owner, t } = setup({ lives });
    const a = await attach(e, DEAD + 7);
    setInflight(t, a.p.member, 0, 1); // stopped inside pincoh_put, for good
    e.drop(a.p, 'cut off: a test');
    expect(await until(() => killed.length === 1)).toBe(true);
    expect(killed).toEqual([DEAD + 7]);
    expect(e.stats.cutOff).toBe(1);
    expect(links(t, owner.p.member, 1)).toEqual([[a.p.member, 0]]); // killed, but the port says it still runs
    running = false;
    expect(await until(() => links(t, owner.p.member, 1)[0] === 'none')).toBe(true);
    e.close();
  });
});

describe('STUCK: a put in flight past the owner\'s bound', () => {
  it('one that is over by the time we look: answered at once', async () => {
    const { e, owner } = setup();
    const a = await attach(e, DEAD + 1);
    expect(e.stuck(owner.p, { member: a.p.member, slot: 0, export: 1, xgen: 7 })).toBe(0);
    expect(a.peer.cut).toEqual([]);
  });

  it('one still in flight: its process is killed, and the answer comes once it has exited', async () => {
    const { e, owner, t } = setup();
    const sleeper = spawn('sleep', ['30']);
    const exited = new Promise<string | null>((r) => sleeper.once('exit', (_c, s) => r(s)));
    const a = join(e, sleeper.pid!);
    await e.attach(a.p, { handle: handle(0), timeoutMs: 0, name: 'buf' });
    setInflight(t, a.p.member, 0, 1); // stopped inside pincoh_put, for good
    const answer = e.stuck(owner.p, { member: a.p.member, slot: 0, export: 1, xgen: 7 });
    expect(answer).toBeInstanceOf(Promise);
    expect(await answer).toBe(0);
    expect(await exited).toBe('SIGKILL');
    expect(a.peer.cut[0]).toMatch(/still in flight 100 ms after its handle was revoked .*; killed/);
    expect(e.stats.cutOff).toBe(1);
  });
});

describe('job tables', () => {
  it('each job has its own; a member of one has no slot in the other\'s', () => {
    const e = new Engine({ mremapFollow: false, verifyMappings: false, makeTable: () => JobTable.inMemory() });
    const a = join(e, DEAD + 1, 'one');
    const b = join(e, DEAD + 2, 'two');
    expect(a.p.job.table).not.toBe(b.p.job.table);
    expect(a.p.member).toBe(0);
    expect(b.p.member).toBe(0);
    expect(table(a.p).membersUsed).toBe(1);
    expect(table(b.p).membersUsed).toBe(1);
  });

  it('a job whose last member is gone closes its table: members see the liveness word change', () => {
    const e = new Engine({ mremapFollow: false, verifyMappings: false, makeTable: () => JobTable.inMemory(99) });
    const a = join(e, DEAD + 1, 'brief');
    const t = table(a.p);
    expect(t.liveness).toBe(99);
    e.drop(a.p, 'disconnected');
    expect(a.p.job.table).toBeUndefined();
    expect(t.mapped).toBe(false);
  });
});
