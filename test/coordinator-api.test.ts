// import { Coordinator } from 'pincoh': an embedded coordinator in the test's
// own Node process, real processes under the shim connecting to it, its typed
// events and its status. Imported through the package's exports map, as a
// user's program would.

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Coordinator, fetchStatus, type PincohEvent } from 'pincoh';
import { prog, startDriver, tempDir } from './helpers.js';

/** Runs the driver with the coordinator's environment to its end. */
function driverUnder(c: Coordinator, args: string[], o: { rank?: number; size?: number; job?: string } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(prog('driver'), args, { env: { ...process.env, ...c.env(o) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((r) => child.once('close', (code, signal) => r({ code, signal, out })));
}

describe('Coordinator (the package\'s API)', () => {
  it('starts on a private socket, gives a process what it needs to connect, and tells every event, typed, to on() and to events()', async () => {
    const c = await Coordinator.start();
    const seen: PincohEvent[] = [];
    c.on('event', (e) => seen.push(e));
    const iterated: string[] = [];
    const reading = (async () => {
      for await (const e of c.events()) iterated.push(e.event);
    })();
    const r = await driverUnder(c, ['map', '0', '8192', 'reg', '0', '0', '8192', 'rw', 'unmap', '0', '0', '4096'], { rank: 0, size: 1, job: 'api' });
    expect(r).toEqual({ code: 0, signal: null, out: 'map 0 ok\nreg 0 0\nmunmap 0 777\n' });
    await c.drain(2000);
    await c.close();
    await reading; // the iterator ends with the coordinator
    const kinds = seen.map((e) => e.event);
    expect(kinds).toEqual(['hello', 'register', 'call', 'gone']);
    expect(iterated).toEqual(kinds);
    const call = seen.find((e) => e.event === 'call');
    expect(call).toMatchObject({ event: 'call', rank: 0, call: 'munmap', len: 4096, hits: 1, invalidated: [1], outcome: 0, waited: false, timed_out: false });
    if (call?.event === 'call') expect(call.latency_us).toBeGreaterThan(0);
    expect(seen.find((e) => e.event === 'gone')).toMatchObject({ how: 'exit' });
    expect(c.summary()).toMatch(/^pincoh: 1 process connected, 1 registration, 1 invalidation \(munmap 1\), 1 call on registered memory/);
  });

  it('status() is what pincoh status shows, and a crash is told as it happens', async () => {
    const c = await Coordinator.start({ mremap: 'follow' });
    try {
      const crashes: unknown[] = [];
      c.on('crash', (x) => crashes.push(x));
      const d = startDriver(c.socket, 'map 0 4096 reg 0 0 4096 r wait segv', { PINCOH_RANK: '3', PINCOH_JOB: 'api' });
      await d.waitFor(/^reg 0 0$/);
      const s = c.status();
      expect(s.coordinator.policies.mremap).toBe('follow');
      // the same document over the socket, as pincoh status --json reads it
      expect((await fetchStatus(c.socket)).processes).toEqual(s.processes.map((p) => ({ ...p, connected_s: expect.any(Number) })));
      expect(s.processes).toEqual([expect.objectContaining({ pid: d.pid, rank: 3, job: 'api', command: 'driver', registrations: 1, bytes: 4096 })]);
      d.send();
      const r = await d.done;
      expect(r.signal).toBe('SIGSEGV');
      await c.drain(2000);
      // the signal where /proc still showed the dying process: this test's own child_process may reap it first
      expect(crashes).toEqual([{ pid: d.pid, rank: 3, command: 'driver', job: 'api', signal: (crashes[0] as { signal?: string }).signal }]);
      expect([undefined, 'SIGSEGV']).toContain((crashes[0] as { signal?: string }).signal);
      expect(c.status().totals.crashed).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('a trace it cannot write is a clear error, and leaves nothing behind (its private socket directory removed)', async () => {
    const tmp = tempDir('api-trace');
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // where its private socket directory goes
    try {
      await expect(Coordinator.start({ trace: '/nonexistent/dir/t.jsonl' })).rejects.toThrow(
        "cannot write the trace /nonexistent/dir/t.jsonl: ENOENT: no such file or directory, open '/nonexistent/dir/t.jsonl'; choose another --trace FILE",
      );
      expect(readdirSync(tmp)).toEqual([]);
      const c = await Coordinator.start(); // the positive control: it does make one there
      expect(readdirSync(tmp)).toHaveLength(1);
      await c.close();
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('a listener that throws does not break the coordinator: its error comes out on its own, the events go on', async () => {
    const c = await Coordinator.start();
    // the error is thrown again from a microtask (uncaught, as any listener's would be); caught here to be counted
    const thrown: unknown[] = [];
    const real = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) =>
      real(() => {
        try {
          fn();
        } catch (e) {
          thrown.push(e);
        }
      });
    try {
      c.on('event', () => {
        throw new Error('a listener bug');
      });
      const kinds: string[] = [];
      c.on('event', (e) => kinds.push(e.event));
      const r = await driverUnder(c, ['map', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'unmap', '0', '0', '4096'], { rank: 0, size: 1 });
      expect(r.code).toBe(0);
      await c.drain(2000);
      expect(kinds).toEqual(['hello', 'register', 'call', 'gone']);
      expect(thrown.map((e) => (e as Error).message)).toEqual(Array(4).fill('a listener bug'));
    } finally {
      globalThis.queueMicrotask = real;
      await c.close();
    }
  });
});
