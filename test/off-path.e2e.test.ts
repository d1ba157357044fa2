// The coordinator off the data path: owners revoke their attachers in place,
// through the job table, whatever the coordinator is doing: stopped, killed,
// or busy. Real processes against `pincoh serve` in a process of its own, so
// it can be stopped (SIGSTOP) and killed.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ESTALE } from '../src/protocol/errno.js';
import { driver, prog, serve, shimEnv, startCoordinator, startDriver, startProgram, tempDir, until, type LiveDriver } from './helpers.js';

/** Caught stopped inside a put: SIGSTOP until inflight() says so. */
async function stopInsidePut(a: LiveDriver, inflight: () => number): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    process.kill(a.pid, 'SIGSTOP');
    await until(() => false, 5);
    if (inflight() > 0) return true;
    process.kill(a.pid, 'SIGCONT');
  }
  return false;
}

/** The in-flight word of handle slot 0, read from the attacher's own segment of the job table (/proc/PID/mem). */
function inflightOf(pid: number): () => number {
  const seg = tableMappings(pid).find((l) => / rw-s /.test(l))!;
  const at = Number.parseInt(seg.split('-')[0]!, 16) + 1024 * 8; // after its 1,024 export words (proto.h)
  return () => {
    const buf = Buffer.alloc(4);
    const fd = openSync(`/proc/${pid}/mem`, 'r');
    try {
      readSync(fd, buf, 0, 4, at);
    } finally {
      closeSync(fd);
    }
    return buf.readUInt32LE(0);
  };
}

/** The job table as a member maps it: the read-write part is its own segment (proc maps). */
function tableMappings(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('pincoh-job'));
}

const owner = (sock: string, job: string, after: string, env = {}) =>
  startDriver(sock, `cb map 0 65536 reg 0 0 65536 rw pub ${job} 0 wait ${after}`, { PINCOH_JOB: job, PINCOH_TIMEOUT_MS: '60000', ...env });
const attacher = (sock: string, job: string, script: string, env = {}) => startDriver(sock, `cb att ${job} 5000 put 0 0 8 1 ${script}`, { PINCOH_JOB: job, ...env });

describe('the coordinator stopped or dead, owners still revoke', () => {
  it('SIGSTOPped: the owner\'s munmap of published memory returns without it, and the attacher\'s next put is -ESTALE, before it runs again', async () => {
    const sock = join(tempDir('stopped'), 'c.sock');
    const c = serve(sock);
    expect(await c.ready).toBe(true);
    const o = owner(sock, 'st', 'unmap 0 0 65536 stats threads say');
    await o.waitFor(/^waiting/);
    const a = attacher(sock, 'st', 'wait put 0 0 8 1 threads');
    await a.waitFor(/^waiting/);
    process.kill(c.child.pid!, 'SIGSTOP');
    // PINCOH_TIMEOUT_MS is a minute: an owner that needed the coordinator could not say this while it is stopped
    o.send();
    await o.waitFor(/^said/, 30_000);
    // threads 1: no process carries a thread of pincoh's, owner or attacher
    expect(o.lines.slice(-5)).toEqual(['cb 0 reason 1 len 65536', 'munmap 0 777', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1', 'threads 1', 'said']);
    a.send();
    const r = await a.done;
    expect(r.lines.slice(-3)).toEqual(['cb h0 reason 4 len 65536', `put -${ESTALE}`, 'threads 1']);
    // once it runs again it reads what happened, in order
    process.kill(c.child.pid!, 'SIGCONT');
    // the owner's CALL event follows its REVOKED once the real munmap returned: it may come in a later drain
    expect(await until(() => /"event":"revoke".*"outcome":"dead"/.test(c.out()) && /"event":"call".*"call":"munmap"/.test(c.out()))).toBe(true);
    expect(c.out()).toMatch(/"event":"call".*"call":"munmap".*"waited":false/);
    await o.done;
  });

  it('SIGKILLed: an attacher\'s put is -ESTALE at once (the kernel marked the robust futex word; no thread watches), and the owner\'s munmap goes on', async () => {
    const sock = join(tempDir('killed'), 'c.sock');
    const c = serve(sock);
    expect(await c.ready).toBe(true);
    const o = owner(sock, 'kd', 'unmap 0 0 65536 stats');
    await o.waitFor(/^waiting/);
    const a = attacher(sock, 'kd', 'wait put 0 0 8 1 live 0');
    await a.waitFor(/^waiting/);
    expect(a.lines).toEqual(['att 0 0', 'put 0', 'waiting']);
    c.child.kill('SIGKILL');
    await new Promise((r) => c.child.once('exit', r));
    a.send();
    const r = await a.done;
    expect(r.lines.slice(-3)).toEqual(['cb h0 reason 4 len 65536', `put -${ESTALE}`, 'live 0 0 0']);
    o.send();
    const ro = await o.done;
    expect(ro.lines.slice(-3)).toEqual(['cb 0 reason 1 len 65536', 'munmap 0 777', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
  });

  it('an attacher killed inside a put does not wedge the owner: its in-flight mark is known dead (the coordinator running, then stopped)', async () => {
    for (const stopped of [false, true]) {
      const sock = join(tempDir('killedput'), 'c.sock');
      const c = serve(sock, ['--revoke-timeout-ms', '60000']); // past the bound nobody would be asked: only its death may free the owner
      expect(await c.ready).toBe(true);
      const job = stopped ? 'kp-stopped' : 'kp';
      const o = owner(sock, job, 'unmap 0 0 65536 stats');
      await o.waitFor(/^waiting/);
      const a = attacher(sock, job, 'putloop 0 100000000');
      await a.waitFor(/^looping/);
      expect(tableMappings(a.pid)).toHaveLength(2); // the whole, read-only, and its own segment, read-write
      expect(await stopInsidePut(a, inflightOf(a.pid))).toBe(true);
      if (stopped) process.kill(c.child.pid!, 'SIGSTOP');
      process.kill(a.pid, 'SIGKILL');
      expect((await a.done).signal).toBe('SIGKILL');
      o.send();
      const r = await o.done;
      expect(r.lines.slice(-2)).toEqual(['munmap 0 777', 'stats slow 1 inval 1 timeouts 0 degraded 0 connected 1']);
      if (stopped) process.kill(c.child.pid!, 'SIGCONT');
      c.child.kill('SIGTERM');
      await new Promise((res) => c.child.once('exit', res));
    }
  });
});

describe('a job\'s table is its own', () => {
  it('two jobs on one coordinator: each member maps its own job\'s table and no other', async () => {
    const sock = join(tempDir('twojobs'), 'c.sock');
    const c = serve(sock);
    expect(await c.ready).toBe(true);
    const x = owner(sock, 'job-x', '');
    const y = owner(sock, 'job-y', '');
    await Promise.all([x.waitFor(/^waiting/), y.waitFor(/^waiting/)]);
    const mx = tableMappings(x.pid);
    const my = tableMappings(y.pid);
    expect(mx.map((l) => l.match(/ r--s | rw-s /)?.[0].trim()).sort()).toEqual(['r--s', 'rw-s']);
    expect(mx.every((l) => l.includes('/memfd:pincoh-job-job-x '))).toBe(true);
    expect(my.every((l) => l.includes('/memfd:pincoh-job-job-y '))).toBe(true);
    // and a name of one is not found from the other
    const other = startDriver(sock, 'att job-x 100', { PINCOH_JOB: 'job-y' });
    expect((await other.done).lines).toEqual(['att -1 -110']);
    x.send();
    y.send();
    await Promise.all([x.done, y.done]);
  });
});

describe('trust stays where it is', () => {
  it('a member writing garbage into the job table (fuzzed, 12 seeds): only its own segment can take it, the read-only rest faults; no other member or the coordinator is hurt, no put lands in revoked memory', async () => {
    const c = await startCoordinator({ revokeTimeoutMs: 300 });
    try {
      for (let seed = 1; seed <= 12; seed++) {
        const job = `garbage-${seed}`;
        const env = { PINCOH_JOB: job };
        const o = startDriver(c.path, 'map 0 65536 reg 0 0 65536 rw pub victim 0 wait unmap 0 0 65536 stats', env);
        await o.waitFor(/^waiting/);
        const g = startProgram(prog('jtgarbage'), [String(seed), '2000'], shimEnv(c.path, env));
        await g.waitFor(/^waiting/);
        expect(g.lines).toEqual(['att 0', 'put 0', 'pub 0', 'garbage 2000', 'put done', 'ro fault', 'waiting']);
        const a = startDriver(c.path, 'att victim 5000 att g 5000 put 0 0 8 1 wait put 0 0 8 1 put 1 0 8 1', env);
        await a.waitFor(/^waiting/);
        o.send();
        // its munmap returns, having waited (bounded) for whatever the garbage says is in flight
        expect((await o.done).lines.pop()).toBe('stats slow 1 inval 1 timeouts 0 degraded 0 connected 1');
        a.send();
        const ra = await a.done;
        expect(ra.lines[4], `seed ${seed}`).toBe(`put -${ESTALE}`); // the victim's memory was revoked: never written after
        expect(ra.lines).toHaveLength(6); // its put into the garbage writer's own memory may go either way
        g.send();
        const rg = await g.done;
        // it exits, or was ended for a put its garbage kept "in flight" past the bound: never a crash
        expect(rg.code === 0 || rg.signal === 'SIGKILL', `seed ${seed}: ${rg.code} ${rg.signal} ${rg.stderr}`).toBe(true);
      }
      // and the coordinator serves on
      expect((await driver(c.path, 'map 0 4096 reg 0 0 4096 rw pub after 0', { PINCOH_JOB: 'after' })).lines).toEqual(['map 0 ok', 'reg 0 0', 'pub 0']);
      expect(c.logs.filter((l) => !/still in flight 300 ms/.test(l))).toEqual([]);
    } finally {
      await c.close();
    }
  });
});
