// What no hook can see (a raw syscall) shows up in the audit; exit and exec
// take every registration with them, and revoke exports first.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, driver, prog, run, startCoordinator, startDriver, until, type Coordinator, tempDir } from './helpers.js';
import { ESTALE } from '../src/protocol/errno.js';


describe('audit', () => {
  it('pincoh run --audit finds the registration a raw syscall made stale, and only that one', async () => {
    const r = await run(process.execPath, [CLI, 'run', '--audit', '--', prog('driver'), ...'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw reg 0 16384 4096 rw sysunmap 0 0 4096 sysprot 0 8192 4096 r'.split(' ')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/audit found registrations no longer mapped as registered:\npid \d+ \(driver, rank 0\): 3 registrations, 2 stale\n  key 1 at 0x[0-9a-f]+ \+4096: unmapped\n  key 2 at 0x[0-9a-f]+ \+4096: lost write\n/);
  });

  it('a clean job says so and keeps its status', async () => {
    const r = await run(process.execPath, [CLI, 'run', '--audit', '--', prog('driver'), ...'map 0 65536 reg 0 0 4096 rw unmap 0 0 4096'.split(' ')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/audit: every registration held at exit was still mapped as registered/);
  });

  it('pincoh audit asks a running coordinator', async () => {
    const sock = join(tempDir('audit'), 'c.sock');
    const serve = spawn(process.execPath, [CLI, 'serve', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    serve.stderr.on('data', (d) => (err += d));
    expect(await until(() => err.includes('serving on'))).toBe(true);
    const d = startDriver(sock, 'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw sysunmap 0 8192 4096 wait');
    await d.waitFor(/^waiting/);
    const a = await run(process.execPath, [CLI, 'audit', '--socket', sock, String(d.pid)]);
    expect(a.code).toBe(1);
    expect(a.stdout).toMatch(new RegExp(`pid ${d.pid} \\(driver, rank -1\\): 2 registrations, 1 stale\\n  key 2 at 0x[0-9a-f]+ \\+4096: unmapped`));
    const none = await run(process.execPath, [CLI, 'audit', '--socket', sock, '999999']);
    expect(none.code).toBe(2);
    d.send();
    await d.done;
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
    const gone = await run(process.execPath, [CLI, 'audit', '--socket', sock]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/cannot reach a coordinator/);
  });
});

describe('exit and exec', () => {
  let c: Coordinator;
  beforeAll(async () => (c = await startCoordinator()));
  afterAll(async () => c.close());

  for (const [how, tail] of [
    ['exit', ''],
    ['_exit', '_exit 0'],
    ['exec', 'exec true'],
  ] as Array<[string, string]>) {
    it(`${how}: registrations go and exports are revoked while the process is still there`, async () => {
      const before = c.engine.stats.invalidations.exit!;
      const revokes = c.engine.stats.revokes;
      const job = `x-${how}`;
      const owner = startDriver(c.path, `map 0 65536 reg 0 0 65536 rw reg 0 0 4096 r pub ${job} 0 wait ${tail}`, { PINCOH_JOB: job });
      await owner.waitFor(/^waiting/);
      const a = startDriver(c.path, `att ${job} 5000 wait put 0 0 8 1`, { PINCOH_JOB: job });
      await a.waitFor(/^waiting/);
      owner.send();
      expect((await owner.done).code).toBe(0);
      expect(c.engine.stats.invalidations.exit! - before).toBe(2); // both, through the exit path, not the socket's close
      expect(c.engine.stats.revokes - revokes).toBe(1);
      a.send();
      expect((await a.done).lines.pop()).toBe(`put -${ESTALE}`);
    });
  }

  it('a failed exec has still dropped the registrations (conservative), and the program goes on', async () => {
    const r = await driver(c.path, 'map 0 4096 reg 0 0 4096 rw exec /nonexistent/program');
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/exec: No such file or directory/);
  });
});
