// Cross-process sharing: publish, attach, one-sided put/get, revoke before the
// owner's call returns. Real processes, real coordinator.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driver, startCoordinator, startDriver, until, type Coordinator } from './helpers.js';
import { EACCES, EBADF, EEXIST, EINVAL, ENOENT, ERANGE, ESTALE, ETIMEDOUT } from '../src/protocol/errno.js';


let c: Coordinator;
beforeAll(async () => (c = await startCoordinator({ revokeTimeoutMs: 300 })));
afterAll(async () => c.close());

/** An owner that registers 64 KiB read-write, publishes it as `name`, then waits. */
const owner = (name: string, after = '', extra = {}) =>
  startDriver(c.path, `cb map 0 65536 reg 0 0 65536 rw pub ${name} 0 wait ${after}`, { PINCOH_JOB: name, ...extra });
const attacher = (name: string, script: string, extra = {}) => startDriver(c.path, `cb att ${name} 5000 ${script}`, { PINCOH_JOB: name, ...extra });

describe('put and get', () => {
  it('a put lands in the owner\'s memory and a get reads it back', async () => {
    const o = owner('pg', 'peek 0 100 peek 0 99 wait');
    await o.waitFor(/^waiting/);
    const a = await driver(c.path, 'att pg 5000 put 0 100 8 42 get 0 100 8 get 0 0 1', { PINCOH_JOB: 'pg' });
    expect(a.lines).toEqual(['att 0 0', 'put 0', 'get 0 42', 'get 0 0']);
    o.send();
    await o.waitFor(/^peek 0$/);
    expect(o.lines).toContain('peek 42');
    o.send();
    await o.done;
  });

  it('checks bounds, permissions and handles before anything moves', async () => {
    const o = startDriver(c.path, 'map 0 65536 reg 0 0 4096 r pub ro 0 reg 0 8192 4096 rw pub rw 1 wait', { PINCOH_JOB: 'bounds' });
    await o.waitFor(/^waiting/);
    const a = await driver(c.path, 'att ro 5000 att rw 5000 put 0 0 1 1 get 0 0 1 put 1 4095 2 1 put 1 4096 0 1 get 1 5000 1 put 250 0 1 1 det 1 put 1 0 1 1', { PINCOH_JOB: 'bounds' });
    expect(a.lines).toEqual([
      'att 0 0',
      'att 1 0',
      `put -${EACCES}`, // read-only registration
      'get 0 0',
      `put -${ERANGE}`, // one byte past the end
      'put 0', // zero bytes at the end: fine
      `get -${ERANGE} 0`,
      `put -${EBADF}`, // never issued
      'det 0',
      `put -${EBADF}`, // detached
    ]);
    o.send();
    await o.done;
  });

  it('publish: a name twice is -EEXIST, a dead key -ENOENT, an empty or too long name -EINVAL', async () => {
    const r = await driver(c.path, `map 0 65536 reg 0 0 4096 rw pub x 0 pub x 0 dereg 0 pub y 0 pub ${'n'.repeat(70)} 0`, { PINCOH_JOB: 'pub' });
    expect(r.lines.filter((l) => l.startsWith('pub'))).toEqual(['pub 0', `pub -${EEXIST}`, `pub -${ENOENT}`, `pub -${EINVAL}`]);
  });

  it('attach waits for a name to be published, and times out when it never is', async () => {
    const a = attacher('late', 'put 0 0 8 7');
    await new Promise((r) => setTimeout(r, 200));
    const o = owner('late');
    await o.waitFor(/^waiting/);
    expect((await a.done).lines).toEqual(['att 0 0', 'put 0']);
    o.send();
    await o.done;
    const never = await driver(c.path, 'att nothing 150', { PINCOH_JOB: 'late' });
    expect(never.lines).toEqual([`att -1 -${ETIMEDOUT}`]);
  });

  it('names are scoped to their job', async () => {
    const o = owner('scoped');
    await o.waitFor(/^waiting/);
    const other = await driver(c.path, 'att scoped 100', { PINCOH_JOB: 'another-job' });
    expect(other.lines).toEqual([`att -1 -${ETIMEDOUT}`]);
    o.send();
    await o.done;
  });
});

describe('revoke before the owner\'s call returns, in the attacher\'s memory', () => {
  const changes: Array<[string, string]> = [
    ['munmap', 'unmap 0 0 65536'],
    ['mremap', 'remap 0 65536 131072 maymove'],
    ['mprotect dropping write', 'prot 0 0 65536 r'],
    ['deregister', 'dereg 0'],
  ];
  for (const [what, change] of changes) {
    it(`${what}: the handle is dead when the owner's call returns; the next put is -ESTALE and runs the callback once`, async () => {
      const job = `rv-${what.split(' ')[0]}`;
      const o = startDriver(c.path, `map 0 65536 reg 0 0 65536 rw pub ${job} 0 wait ${change} say`, { PINCOH_JOB: job });
      await o.waitFor(/^waiting/);
      const a = startDriver(c.path, `cb att ${job} 5000 put 0 0 8 1 wait live 0 put 0 0 8 1 put 0 0 8 1 progress`, { PINCOH_JOB: job });
      await a.waitFor(/^waiting/);
      o.send();
      await o.done; // the owner's call has returned: the handle is dead, whether or not the attacher ran since
      a.send();
      const r = await a.done;
      expect(r.lines).toEqual(['att 0 0', 'put 0', 'waiting', 'live 0 0 0', 'cb h0 reason 4 len 65536', `put -${ESTALE}`, `put -${ESTALE}`, 'progress 0']);
    });
  }

  it('pincoh_progress runs the callback of a handle revoked since, without a put', async () => {
    const o = startDriver(c.path, 'map 0 65536 reg 0 0 65536 rw pub prog 0 wait unmap 0 0 65536', { PINCOH_JOB: 'prog' });
    await o.waitFor(/^waiting/);
    const a = startDriver(c.path, 'cb att prog 5000 progress wait progress progress live 0', { PINCOH_JOB: 'prog' });
    await a.waitFor(/^waiting/);
    o.send();
    await o.done;
    a.send();
    expect((await a.done).lines).toEqual(['att 0 0', 'progress 0', 'waiting', 'cb h0 reason 4 len 65536', 'progress 1', 'progress 0', 'live 0 0 0']);
  });

  it('the owner exiting revokes its exports; a killed attacher leaves nothing behind', async () => {
    const o = owner('exit');
    await o.waitFor(/^waiting/);
    const a = attacher('exit', 'wait put 0 0 8 1');
    await a.waitFor(/^waiting/);
    const victim = attacher('exit', 'wait');
    await victim.waitFor(/^waiting/);
    const ownerState = [...c.engine.processes.values()].find((p) => p.pid === o.pid)!;
    expect([...ownerState.exports.values()][0]!.size).toBe(2);
    process.kill(victim.pid, 'SIGKILL');
    expect(await until(() => [...ownerState.exports.values()][0]?.size === 1)).toBe(true);
    process.kill(o.pid, 'SIGKILL');
    await o.done;
    expect(await until(() => [...c.engine.processes.values()].every((p) => p.pid !== o.pid))).toBe(true);
    a.send();
    expect((await a.done).lines.slice(-2)).toEqual(['cb h0 reason 4 len 65536', `put -${ESTALE}`]);
  });
});

describe('fan-out', () => {
  for (const stopped of [false, true]) {
    it(`16 attachers${stopped ? ', all stopped,' : ''} are all revoked before the owner's munmap returns, none cut off`, async () => {
      const job = stopped ? 'fan-stopped' : 'fan';
      const revokes = c.engine.stats.revokes;
      const cut = c.engine.stats.cutOff;
      const o = owner(job, 'unmap 0 0 65536 stats');
      await o.waitFor(/^waiting/);
      const as = Array.from({ length: 16 }, () => attacher(job, `put 0 0 8 1 ${stopped ? 'stop' : 'wait'} put 0 0 8 1`));
      await Promise.all(as.map((a) => a.waitFor(stopped ? /^stopping/ : /^waiting/)));
      if (stopped) await until(() => false, 50); // let SIGSTOP take hold
      o.send();
      const r = await o.done;
      expect(r.lines.pop()).toBe('stats slow 1 inval 1 timeouts 0 degraded 0 connected 1');
      expect(c.engine.stats.revokes - revokes).toBe(16);
      expect(c.engine.stats.cutOff).toBe(cut);
      for (const a of as) stopped ? process.kill(a.pid, 'SIGCONT') : a.send();
      for (const a of as) {
        const ar = await a.done;
        expect(ar.signal).toBeNull();
        expect(ar.lines.slice(-2)).toEqual(['cb h0 reason 4 len 65536', `put -${ESTALE}`]);
      }
    });
  }
});

describe('barrier', () => {
  it('releases when every rank arrived, and times out otherwise', async () => {
    const env = { PINCOH_JOB: 'bar', PINCOH_SIZE: '2' };
    const [x, y] = await Promise.all([driver(c.path, 'bar 5000', env), driver(c.path, 'bar 5000', env)]);
    expect([x.lines, y.lines]).toEqual([['bar 0'], ['bar 0']]);
    const alone = await driver(c.path, 'bar 150', env);
    expect(alone.lines).toEqual([`bar -${ETIMEDOUT}`]);
  });
});

describe('an attacher stopped in the middle of a put', () => {
  it('the owner waits for that put (bounded), then the attacher is killed: nothing else keeps it from writing', async () => {
    const cut = c.engine.stats.cutOff;
    const o = owner('midput', 'unmap 0 0 65536 stats');
    await o.waitFor(/^waiting/);
    // a put of 1 MiB to a 64 KiB registration is refused before it starts; a loop
    // of 4 KiB puts is in pincoh_put nearly all the time
    const a = attacher('midput', 'putloop 0 100000000');
    await a.waitFor(/^looping/);
    // stop it until it is caught inside a put (its in-flight word is in the job table, handle slot 0)
    const p = [...c.engine.processes.values()].find((x) => x.pid === a.pid)!;
    let caught = false;
    for (let i = 0; i < 200 && !caught; i++) {
      process.kill(a.pid, 'SIGSTOP');
      await until(() => false, 5);
      caught = p.job.table!.inflight(p.member, 0) > 0;
      if (!caught) process.kill(a.pid, 'SIGCONT');
    }
    expect(caught).toBe(true);
    o.send();
    const r = await o.done;
    expect(r.lines.pop()).toBe('stats slow 1 inval 1 timeouts 0 degraded 0 connected 1');
    expect((await a.done).signal).toBe('SIGKILL');
    expect(c.engine.stats.cutOff).toBe(cut + 1);
    expect(c.logs.some((l) => /cut off pid \d+ .*a put of it was still in flight 300 ms after its handle was revoked/.test(l))).toBe(true);
  });
});

describe('a registration inside a heap chunk, published', () => {
  // free() of a small chunk changes no mapping: by default the registration
  // follows the mapping (as mmu_notifier does) and stays valid; under --free
  // invalidate it goes with the chunk, before free returns
  const freeThenPut = async (coordinator: Coordinator, job: string) => {
    const o = startDriver(coordinator.path, `malloc 0 4096 reg 0 0 4096 rw pub ${job} 0 wait free 0 say wait`, { PINCOH_JOB: job });
    await o.waitFor(/^waiting/);
    const a = startDriver(coordinator.path, `cb att ${job} 5000 put 0 0 8 1 wait put 0 0 8 1`, { PINCOH_JOB: job });
    await a.waitFor(/^waiting/);
    o.send();
    await o.waitFor(/^said/);
    a.send();
    const r = await a.done;
    o.send();
    await o.done;
    return r.lines.slice(3);
  };

  it('by default its free() leaves it valid: an attacher\'s put after it succeeds, into memory malloc may hand out again', async () => {
    expect(await freeThenPut(c, 'heap-keep')).toEqual(['put 0']);
  });

  it('under --free invalidate the free() revokes it first: the put is -ESTALE', async () => {
    const f = await startCoordinator({ freeInvalidate: true, revokeTimeoutMs: 300 });
    expect(await freeThenPut(f, 'heap-inval')).toEqual(['cb h0 reason 4 len 4096', `put -${ESTALE}`]);
    await f.close();
  });
});
