// The CLI as users run it: `pincoh run` and `pincoh serve`, real processes.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, driver, example, pincoh, prog, ROOT, run, tempDir, until } from './helpers.js';


describe('pincoh run', () => {
  it('runs N ranks with PINCOH_RANK/PINCOH_SIZE and exits with the worst status', async () => {
    const r = await pincoh(['run', '-n', '3', '--', 'sh', '-c', 'echo "rank $PINCOH_RANK of $PINCOH_SIZE"; exit $PINCOH_RANK']);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['rank 0 of 3', 'rank 1 of 3', 'rank 2 of 3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rank 2 \(pid \d+\) exited with status 2/);
  });

  it('a rank killed by a signal makes the job exit 128 + signo', async () => {
    const r = await pincoh(['run', '-n', '2', '--', 'sh', '-c', '[ $PINCOH_RANK = 1 ] && kill -9 $$; exit 0']);
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/rank 1 \(pid \d+\) killed by SIGKILL/);
  });

  it('a command that does not exist, or cannot be run, is named as pincoh exec names it: exit 127, or 126, as a shell', async () => {
    const r = await pincoh(['run', '--', '/nonexistent/prog']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/^pincoh: rank 0 cannot run \/nonexistent\/prog: not found \[PINCOH_ERR_EXEC\]$/m);
    const plain = join(tempDir('cli'), 'plain');
    writeFileSync(plain, 'not a program\n', { mode: 0o644 });
    const p = await pincoh(['run', '--', plain]);
    expect(p.code).toBe(126);
    expect(p.stderr).toMatch(new RegExp(`^pincoh: rank 0 cannot run ${plain}: permission denied \\[PINCOH_ERR_EXEC\\]$`, 'm'));
  });

  it('regcache: two ranks, every reuse of an address caught, nothing stale handed out; the summary counts it', async () => {
    const r = await pincoh(['run', '-n', '2', '--', example('regcache'), '300']);
    expect(r.code).toBe(0);
    for (const rank of [0, 1]) expect(r.stdout).toMatch(new RegExp(`rank ${rank}: 300 rounds, .* misses 300, evicted by pincoh 300, stale registrations handed out 0`));
    expect(r.stderr).toMatch(/pincoh: 2 processes connected, 600 registrations, 600 invalidations \(munmap 600\), 600 calls on registered memory \(0 waited for the coordinator\), 0 timeouts/);
  });

  it('regcache --no-invalidate shows the hazard pincoh prevents', async () => {
    const r = await pincoh(['run', '--', example('regcache'), '200', '--no-invalidate']);
    const m = r.stdout.match(/stale registrations handed out (\d+)/);
    expect(Number(m?.[1])).toBeGreaterThan(0);
  });

  it('--trace writes one JSON line per event with the documented fields', async () => {
    const file = join(tempDir('trace'), 't.jsonl');
    const r = await pincoh(['run', '--trace', file, '--', prog('driver'), 'map', '0', '65536', 'reg', '0', '0', '4096', 'rw', 'prot', '0', '0', '4096', 'r', 'unmap', '0', '0', '65536']);
    expect(r.code).toBe(0);
    const events = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.event)).toEqual(['start', 'hello', 'register', 'call', 'gone']);
    expect(events[0]).toMatchObject({ t: expect.any(Number), rank: -1, host: hostname(), wall_ms: expect.any(Number) });
    const call = events[3];
    expect(call).toMatchObject({ call: 'mprotect', rank: 0, len: 4096, hits: 1, invalidated: [1], followed: [], outcome: 0, waited: false, timed_out: false });
    for (const k of ['t', 'pid', 'addr']) expect(call).toHaveProperty(k);
  });

  it('--mremap follow reaches the shim', async () => {
    const r = await pincoh(['run', '--mremap', 'follow', '--', example('mremapdemo')]);
    expect(r.stdout).toMatch(/registration followed/);
  });

  it('a usage error exits 2 with the reason and the usage', async () => {
    const r = await pincoh(['run', '-n', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-n takes a whole number.*\n.*usage:/s);
  });

  it('a trace it cannot write: exit 2 naming the file and the fix, no stack, and no socket directory left behind', async () => {
    const tmp = tempDir('cli-trace');
    const r = await run(process.execPath, [CLI, 'run', '--trace', '/nonexistent/dir/t.jsonl', '--', 'true'], { ...process.env, TMPDIR: tmp });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("pincoh: cannot write the trace /nonexistent/dir/t.jsonl: ENOENT: no such file or directory, open '/nonexistent/dir/t.jsonl'; choose another --trace FILE [PINCOH_ERR_TRACE]\n");
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a launcher run as the rank (pincoh run -- mpirun ...) is told plainly to put pincoh-exec under it instead', async () => {
    const dir = tempDir('cli-launcher');
    const mpirun = join(dir, 'mpirun');
    writeFileSync(mpirun, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const r = await pincoh(['run', '-q', '--', mpirun, '-np', '4', 'app']);
    expect(r.stderr).toContain(
      "pincoh: mpirun runs as one rank of pincoh run here: the ranks it starts all get PINCOH_RANK=0 and PINCOH_SIZE=1, and a rank's crash is reported as mpirun's; run each rank under pincoh instead: mpirun ... pincoh-exec -- CMD (docs/running.md, On a cluster)\n",
    );
    expect(r.code).toBe(0);
  });

  it('a TMPDIR that is missing, not a directory, or too long for a socket path: exit 2, one line saying to set TMPDIR', async () => {
    const file = join(tempDir('cli-tmp'), 'file');
    writeFileSync(file, '');
    for (const [tmp, why] of [
      ['/nonexistent', 'ENOENT'],
      [file, 'ENOTDIR'],
    ]) {
      const r = await pincoh(['run', '--', 'true'], { env: { ...process.env, TMPDIR: tmp } });
      expect(r.stderr).toBe(`pincoh: cannot make the coordinator's private directory in TMPDIR (${tmp}): ${why}; set TMPDIR to a directory you can write [PINCOH_ERR_SOCKET_PATH]\n`);
      expect(r.code).toBe(2);
    }
    const long = join(tempDir('cli-tmp'), 'd'.repeat(100));
    mkdirSync(long);
    const r = await pincoh(['run', '--', 'true'], { env: { ...process.env, TMPDIR: long } });
    expect(r.stderr).toMatch(/^pincoh: the coordinator's socket under TMPDIR \(.*\/d{100}\) would be 1\d\d bytes; a Unix socket path can hold 107: set TMPDIR to a shorter directory \[PINCOH_ERR_SOCKET_PATH\]\n$/);
    expect(r.code).toBe(2);
    expect(readdirSync(long)).toEqual([]); // nothing left behind
  });

  it('help for one command lists its options, environment and exit status; --version is package.json\'s', async () => {
    const h = await pincoh(['run', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^usage: pincoh run \[-n N\] \[options\] -- CMD \[ARGS\.\.\.\]\n/);
    for (const part of ['--metrics HOST:PORT', 'PINCOH_TIMEOUT_MS', 'PINCOH_SHIM', 'exit status:\n  the worst rank', 'PINCOH_ERR_TRACE']) expect(h.stdout).toContain(part);
    expect((await pincoh(['help', 'run'])).stdout).toBe(h.stdout);
    const trace = (await pincoh(['help', 'trace'])).stdout;
    for (const ev of ['start', 'hello', 'register', 'deregister', 'call', 'fork', 'publish', 'attach', 'revoke', 'cutoff', 'dropped', 'audit', 'gone']) expect(trace).toMatch(new RegExp(`^  ${ev} +\\w`, 'm'));
    const v = await pincoh(['--version']);
    expect(v.stdout).toBe(`pincoh ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
  });
});

describe('pincoh serve', () => {
  it('serves until SIGTERM, then removes its socket', async () => {
    const sock = join(tempDir('serve'), 'sub', 'c.sock');
    const child = spawn(process.execPath, [CLI, 'serve', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    expect(await until(() => stderr.includes('serving on'))).toBe(true);
    const r = await driver(sock, 'cb map 0 65536 reg 0 0 4096 rw unmap 0 0 65536 valid 0');
    expect(r.lines).toContain('cb 0 reason 1 len 4096');
    const exited = new Promise<number | null>((res) => child.once('close', res)); // 'close': after its stderr is read to the end
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect(stderr).toMatch(/1 process connected, 1 registration, 1 invalidation \(/);
  });

  it('cleans up a stale socket, and refuses to start over a live one', async () => {
    const dir = tempDir('stale');
    const sock = join(dir, 'c.sock');
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(sock, r));
    const busy = await pincoh(['serve', '--socket', sock], { timeoutMs: 10_000 });
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/already listens.*PINCOH_ERR_SOCKET_IN_USE/);
    // a listener that died without unlinking leaves a stale socket file behind
    const stale = join(dir, 'stale.sock');
    const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => dead.once('exit', r));
    expect(existsSync(stale)).toBe(true);
    const child = spawn(process.execPath, [CLI, 'serve', '--socket', stale], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    expect(await until(() => stderr.includes('serving on'))).toBe(true);
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    holder.close();
  });
});
