// What the coordinator learns from the processes' rings, read asynchronously:
// after a process ends (normally, by _exit, by exec, killed), its counts and
// trace equal what it did; fork's child inherits none of its parent's queued
// events; a coordinator killed with events queued loses nothing that matters,
// since the next one hears of everything held. The drain timer is off here
// (drainMs: a minute), so events are read only at a frame or the end.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Trace } from '../src/trace.js';
import { CLI, startCoordinator, startDriver, until, tempDir } from './helpers.js';

async function traced(script: string) {
  const file = join(tempDir('ev'), 't.jsonl');
  const c = await startCoordinator({ trace: new Trace(file), server: { drainMs: 60_000 } });
  const d = startDriver(c.path, script);
  const r = await d.done;
  expect(await until(() => c.engine.stats.live === 0)).toBe(true);
  const events = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  await c.close();
  return { r, stats: c.engine.stats, events: events.filter((e) => e.pid === d.pid) };
}

const did = 'map 0 1048576 reg 0 0 4096 rw reg 0 8192 4096 rw reg 0 16384 4096 rw unmap 0 0 4096 dereg 1';

describe('the coordinator\'s counts equal what the process did', () => {
  const ends: Array<[string, string, string | null]> = [
    ['a normal exit', '', 'exit'],
    ['_exit', '_exit 0', 'exit'],
    ['exec', 'exec true', 'exec'],
    ['SIGKILL', 'stop', null],
  ];
  for (const [how, end, last] of ends) {
    it(`ended by ${how}`, async () => {
      const file = join(tempDir('ev'), 't.jsonl');
      const c = await startCoordinator({ trace: new Trace(file), server: { drainMs: 60_000 } });
      const d = startDriver(c.path, `${did} ${end}`);
      if (how === 'SIGKILL') {
        await d.waitFor(/^stopping/);
        process.kill(d.pid, 'SIGKILL');
      }
      await d.done;
      expect(await until(() => c.engine.stats.live === 0)).toBe(true);
      const events = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.pid === d.pid);
      await c.close();
      const s = c.engine.stats;
      expect(s.registrations).toBe(3);
      expect(s.invalidations.munmap).toBe(1);
      expect(s.invalidations.exit).toBe(last ? 1 : 0); // key 3, left until the end
      expect(s.slowCalls).toBe(last ? 2 : 1);
      expect(events.map((e) => e.event)).toEqual(['hello', 'register', 'register', 'register', 'call', 'deregister', ...(last ? ['call'] : []), 'gone']);
      expect(events.filter((e) => e.event === 'call').map((e) => e.call)).toEqual(['munmap', ...(last ? [last] : [])]);
      expect(events.at(-1)).toMatchObject({ event: 'gone', registrations: last ? 0 : 1 });
    });
  }
});

describe('fork', () => {
  it('the child inherits none of the queued events; the parent\'s reach the coordinator', async () => {
    const { r, events, stats } = await traced('map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw forkreg 0 16384 4096 say');
    const child = Number(r.lines.find((l) => l.startsWith('forked'))!.split(' ')[1]);
    expect(r.lines).toContain('child reg 0');
    expect(events.filter((e) => e.event === 'register').map((e) => e.key)).toEqual([1, 2]);
    expect(events.find((e) => e.event === 'fork')).toMatchObject({ child, registrations: 2 });
    expect(stats.registrations).toBe(3); // the child's own, on its own connection
    expect(stats.processes).toBe(2);
  });
});

describe('a coordinator killed with events queued', () => {
  it('the next one hears of every registration held: re-announced on the first request', async () => {
    const sock = join(tempDir('q'), 'c.sock');
    const serve = () => {
      const child = spawn(process.execPath, [CLI, 'serve', '--socket', sock, '--trace', '-'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let out = '';
      child.stderr!.on('data', (x) => (out += x));
      return { child, out: () => out, ready: until(() => out.includes('serving on')) };
    };
    const first = serve();
    expect(await first.ready).toBe(true);
    const d = startDriver(sock, 'map 0 1048576 regmany 0 200 say wait bar 100 say wait');
    await d.waitFor(/^said/);
    first.child.kill('SIGKILL'); // whatever it had not drained yet dies with it
    await new Promise((r) => first.child.once('exit', r));
    const second = serve();
    expect(await second.ready).toBe(true);
    d.send();
    await d.waitFor(/^bar/);
    expect(d.lines).toContain('bar 0'); // a job of one: the request found the coordinator gone, reconnected, and went through
    await until(() => second.out().split('\n').filter((l) => l.includes('"event":"register"')).length === 100);
    const keys = second.out().split('\n').filter((l) => l.includes('"event":"register"')).map((l) => JSON.parse(l).key);
    expect(keys).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i + 2)); // the odd half was deregistered
    d.send();
    await d.done;
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});
