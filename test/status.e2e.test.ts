// pincoh status on a live pincoh run and a live pincoh serve: real processes
// under the shim, a real coordinator, the real CLI asking it over its socket.

import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CLI, prog, run, serve, startCli, startDriver, tempDir, until, type LiveDriver } from './helpers.js';

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => run(process.execPath, [CLI, ...args], env);

describe('pincoh status', () => {
  it('on a live pincoh run: run prints its socket; status shows the process, its registrations and bytes, as a screen and as JSON', async () => {
    const job = startCli(['run', '--', prog('driver'), 'map', '0', '16384', 'reg', '0', '0', '8192', 'rw', 'reg', '0', '8192', '4096', 'r', 'wait', 'unmap', '0', '0', '4096']);
    expect(await until(() => job.out().includes('reg 1 0'), 10_000)).toBe(true);
    const socket = /^pincoh: coordinator on (\S+) \(watch it: pincoh status --socket \1\)$/m.exec(job.err())?.[1];
    expect(socket, job.err()).toBeDefined();

    const json = await cli(['status', '--socket', socket!, '--json']);
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout);
    expect(s.version).toBe(1);
    expect(s.processes).toEqual([
      expect.objectContaining({ pid: expect.any(Number), rank: 0, command: 'driver', libc: 'code patch', degraded: false, registrations: 2, bytes: 12288, exports: 0, attachments: 0 }),
    ]);
    const pid = s.processes[0].pid as number;
    expect(s.totals).toMatchObject({ processes: 1, registrations: 2, invalidations: 0, revokes: 0, timeouts: 0, cut_off: 0, crashed: 0 });
    expect(s.coordinator).toMatchObject({ socket, policies: { mremap: 'invalidate', fork: 'keep', free: 'keep', coherence: true } });

    const screen = await cli(['status', '--socket', socket!]);
    expect(screen.code).toBe(0);
    expect(screen.stdout).toMatch(/^totals: 2 registrations, 0 invalidations, 0 calls on registered memory \(0 waited\)/m);
    expect(screen.stdout).toMatch(new RegExp(`^\\s*${pid}\\s+0\\s+run-\\S+\\s+driver\\s+code patch\\s+2\\s+12\\.0 KiB\\s+0\\s+0\\s+0\\s+ok$`, 'm'));

    // the job goes on to its end
    job.child.stdin.write('go\n');
    expect(await job.closed).toBe(0);
    expect(job.out()).toContain('munmap 0 777');
  });

  it('on a live pincoh serve: the owner\'s exports and the attacher\'s attachments, per process', async () => {
    const dir = tempDir('status-serve');
    const socket = join(dir, 's.sock');
    const serve = startCli(['serve', '--socket', socket]);
    expect(await until(() => serve.err().includes('serving on'), 10_000)).toBe(true);
    const env = { PINCOH_JOB: 'j', PINCOH_SIZE: '2' };
    const owner: LiveDriver = startDriver(socket, 'map 0 8192 reg 0 0 8192 rw pub buf 0 wait', { ...env, PINCOH_RANK: '0' });
    await owner.waitFor(/^pub 0$/);
    const attacher: LiveDriver = startDriver(socket, 'att buf 5000 wait', { ...env, PINCOH_RANK: '1' });
    await attacher.waitFor(/^att 0 0$/);

    const s = JSON.parse((await cli(['status', '--socket', socket, '--json'])).stdout);
    expect(s.processes).toEqual([
      expect.objectContaining({ pid: owner.pid, rank: 0, job: 'j', registrations: 1, bytes: 8192, exports: 1, attached_by: 1, attachments: 0 }),
      expect.objectContaining({ pid: attacher.pid, rank: 1, job: 'j', registrations: 0, bytes: 0, exports: 0, attached_by: 0, attachments: 1 }),
    ]);
    expect(s.jobs).toEqual([{ id: 'j', members: 2, names: 1, failed: null }]);
    expect(s.totals).toMatchObject({ attachments: 1, revokes: 0 });
    owner.send();
    attacher.send();
    await Promise.all([owner.done, attacher.done]);
  });

  it('without --socket finds the one coordinator of this user, and lists them when there are several', async () => {
    const tmp = tempDir('status-find');
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
    delete env.PINCOH_SOCKET;
    delete env.XDG_RUNTIME_DIR; // (where exec's coordinators may be: the next test)
    const none = await cli(['status'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`pincoh: no coordinator of yours listens under ${tmp}; pass --socket PATH (pincoh run prints it at start) [PINCOH_ERR_COORDINATOR]\n`);

    const registered = [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'wait'];
    const a = startCli(['run', '--', ...registered], env);
    expect(await until(() => a.out().includes('reg 0 0'), 10_000)).toBe(true);
    const one = await cli(['status'], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^pincoh \S+: coordinator pid \d+ on /);

    const b = startCli(['run', '--', ...registered], env);
    expect(await until(() => b.out().includes('reg 0 0'), 10_000)).toBe(true);
    const two = await cli(['status'], env);
    expect(two.code).toBe(0);
    expect(two.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^\/\S+\/coord\.sock {2}pid \d+, up \d+ s, 1 process, jobs run-\S+$/),
      expect.stringMatching(/^\/\S+\/coord\.sock {2}pid \d+, up \d+ s, 1 process, jobs run-\S+$/),
      '2 coordinators: choose one with --socket PATH',
    ]);
    // as JSON: a document too, listing them
    const listed = await cli(['status', '--json'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({ version: 1, coordinators: [expect.objectContaining({ socket: expect.stringMatching(/coord\.sock$/), processes: 1 }), expect.objectContaining({ processes: 1 })] });
    // nothing to watch until one is chosen
    const watch = await cli(['status', '--watch'], env);
    expect(watch.code).toBe(2);
    expect(watch.stderr).toBe(`pincoh: 2 coordinators of yours listen under ${tmp}: choose one to watch with --socket PATH (pincoh status lists them) [PINCOH_ERR_COORDINATOR]\n`);
    for (const l of [a, b]) l.child.stdin.write('go\n');
    expect(await a.closed).toBe(0);
    expect(await b.closed).toBe(0);
  });

  it('without --socket also finds pincoh exec\'s coordinators in XDG_RUNTIME_DIR, and names both places when there is none', async () => {
    const [tmp, xdg] = [tempDir('status-tmp'), tempDir('status-xdg')];
    chmodSync(xdg, 0o700);
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: xdg };
    delete env.PINCOH_SOCKET;
    const none = await cli(['status'], env);
    expect(none.stderr).toBe(`pincoh: no coordinator of yours listens under ${xdg} or ${tmp}; pass --socket PATH (pincoh run prints it at start) [PINCOH_ERR_COORDINATOR]\n`);
    const sock = join(xdg, `pincoh-${process.getuid?.() ?? 0}-j`, 'c.sock');
    const c = serve(sock);
    expect(await c.ready).toBe(true);
    const one = await cli(['status'], env);
    expect(one.stdout).toMatch(new RegExp(`^pincoh \\S+: coordinator pid ${c.child.pid} on ${sock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(one.code).toBe(0);
  });

  it('--watch redraws in place on a terminal, and says when the coordinator ends', async () => {
    const job = startCli(['run', '--', prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'wait']);
    expect(await until(() => job.out().includes('reg 0 0'), 10_000)).toBe(true);
    const socket = /coordinator on (\S+)/.exec(job.err())![1]!;
    // a real terminal: script(1) runs it on a pseudo-terminal
    const tty = spawn('script', ['-qfec', `${process.execPath} ${CLI} status --watch --interval-ms 100 --socket ${socket}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    tty.stdout.on('data', (d) => (screen += d));
    const ended = new Promise<number | null>((r) => tty.once('close', (code) => r(code)));
    onTestFinished(() => void tty.kill());
    expect(await until(() => screen.split('\x1b[H\x1b[J').length > 3, 10_000)).toBe(true); // three screens drawn, each over the last
    job.child.stdin.write('go\n');
    expect(await job.closed).toBe(0);
    expect(await ended).toBe(0);
    expect(screen).toContain(`pincoh: the coordinator at ${socket} has ended`);
  });

  it('a socket nobody listens on: exit 2 with the error code, for status and for audit', async () => {
    const status = await cli(['status', '--socket', '/nowhere/c.sock']);
    expect(status.code).toBe(2);
    expect(status.stderr).toBe('pincoh: cannot reach a coordinator at /nowhere/c.sock: no such socket; pincoh run prints its socket at start, pincoh status without --socket lists yours [PINCOH_ERR_COORDINATOR]\n');
    const audit = await cli(['audit', '--socket', '/nowhere/c.sock']);
    expect(audit.code).toBe(2);
    expect(audit.stderr).toBe(status.stderr);
  });
});
