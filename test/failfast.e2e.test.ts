// A job fails fast, as mpirun's do (issue 10): a member that dies without
// exiting is announced at once, the job's barriers and attaches fail at once
// with EOWNERDEAD, `pincoh run --abort-on-failure` ends the other ranks, the
// trace tells a crash from an exit, and SIGHUP ends run and serve cleanly.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, crashOnceReady, pincoh, prog, tempDir, until } from './helpers.js';
import { EOWNERDEAD } from '../src/protocol/errno.js';

const D = prog('driver');

describe('a member that dies without exiting', () => {
  it('is announced at once; the others waiting in the barrier get -EOWNERDEAD at once, not the timeout; the trace says crash', async () => {
    const file = join(tempDir('ff'), 't.jsonl');
    const r = await pincoh(['run', '-n', '3', '--trace', file, '--', 'sh', '-c', crashOnceReady(1, [0, 2], 'bar 30000')]);
    expect(r.lines.filter((l) => l.startsWith('bar'))).toEqual([`bar -${EOWNERDEAD}`, `bar -${EOWNERDEAD}`]);
    expect(r.stderr).toMatch(/pincoh: rank 1 \(pid \d+\) killed by SIGSEGV/);
    expect(r.stderr).toMatch(/pincoh: pid \d+ \(driver, rank 1\) of job run-\S+ died without exiting \(SIGSEGV\); its job's barriers and attaches now fail with EOWNERDEAD/);
    expect(r.stderr).toMatch(/1 process died without exiting/);
    expect(r.code).toBe(139); // the worst rank's: 128 + SIGSEGV
    const gone = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'gone');
    expect(gone.map((e) => [e.rank, e.how]).sort()).toEqual([[0, 'exit'], [1, 'crash'], [2, 'exit']]);
    // named with its signal whichever comes first: /proc's zombie, or pincoh run reaping its rank
    expect(gone.find((e) => e.how === 'crash').signal).toBe('SIGSEGV');
  });

  it('sticks for the job\'s lifetime: a rank that connects after the crash (all others gone) gets -EOWNERDEAD from the barrier and from attach', async () => {
    const trace = join(tempDir('ff'), 't.jsonl');
    // rank 0 starts once the trace says rank 1 crashed: the job then has no member left
    const late = `while ! grep -q '"how":"crash"' ${trace} 2>/dev/null; do sleep 0.05; done; exec ${D} map 0 4096 reg 0 0 4096 r bar 5000 att never 5000`;
    const r = await pincoh(['run', '-n', '2', '--trace', trace, '--', 'sh', '-c', `if [ "$PINCOH_RANK" = 1 ]; then exec ${D} map 0 4096 reg 0 0 4096 r segv; else ${late}; fi`]);
    // rank 1's two lines, then rank 0's
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'map 0 ok', 'reg 0 0', `bar -${EOWNERDEAD}`, `att -1 -${EOWNERDEAD}`]);
    expect(r.code).toBe(139);
  });

  it('fails an attach waiting for a name, too', async () => {
    const r = await pincoh(['run', '-n', '2', '--', 'sh', '-c', crashOnceReady(1, [0], 'att never 30000')]);
    expect(r.lines).toContain(`att -1 -${EOWNERDEAD}`);
  });

  it('--abort-on-failure ends the other ranks (SIGTERM) and exits with the failed rank\'s status', async () => {
    const r = await pincoh(['run', '-n', '3', '--abort-on-failure', '--', 'sh', '-c', crashOnceReady(1, [0, 2], 'sleep 30000')]);
    expect(r.stderr).toMatch(/rank 1 \(pid \d+\) killed by SIGSEGV; ending the job \(--abort-on-failure\)/);
    expect(r.stderr.match(/killed by SIGTERM/g)).toHaveLength(2);
    expect(r.code).toBe(139);
    expect(r.stderr.match(/ending the job/g)).toHaveLength(1); // said of the failure that ends it, not of the ranks it ends
    // the ranks it ends die without exiting by design: not crashes to announce (the failed one may be, if seen first)
    expect(r.stderr).not.toMatch(/\(driver, rank [02]\) of job \S+ died without exiting/);
  });

  it('--abort-on-failure and a forwarded SIGTERM end what the ranks started too (each rank process group), as mpirun does', async () => {
    const dead = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
      } catch {
        return true;
      }
    };
    // each rank starts a child of its own and waits for it; rank 1 then fails (or, below, pincoh run gets SIGTERM)
    const script = (fail: boolean) => `sleep 300 & echo child $!; ${fail ? 'if [ $PINCOH_RANK = 1 ]; then sleep 0.5; exit 5; fi; ' : ''}wait`;
    const aborted = await pincoh(['run', '-n', '3', '--abort-on-failure', '--', 'sh', '-c', script(true)]);
    expect(aborted.code).toBe(5);
    const children = (out: string) => out.split('\n').filter((l) => l.startsWith('child ')).map((l) => Number(l.slice(6)));
    expect(children(aborted.stdout)).toHaveLength(3);
    expect(await until(() => children(aborted.stdout).every(dead))).toBe(true);

    const c = spawn(process.execPath, [CLI, 'run', '-n', '2', '--', 'sh', '-c', script(false)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    expect(await until(() => children(out).length === 2)).toBe(true);
    c.kill('SIGTERM');
    expect(await new Promise((r) => c.once('exit', r))).toBe(128 + 15); // the ranks': killed by SIGTERM
    expect(await until(() => children(out).every(dead))).toBe(true);
  });
});

describe('SIGHUP (the terminal closed)', () => {
  it('ends pincoh run cleanly: ranks get it, the socket and its directory go', async () => {
    const rank = `echo "$PINCOH_SOCKET"; exec ${D} map 0 4096 reg 0 0 4096 r say wait`;
    const child = spawn(process.execPath, [CLI, 'run', '--', 'sh', '-c', rank], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    expect(await until(() => out.includes('said'))).toBe(true);
    const dir = dirname(out.split('\n')[0]!);
    expect(existsSync(dir)).toBe(true);
    child.kill('SIGHUP');
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.once('close', (c, s) => r([c, s])));
    expect(signal).toBeNull();
    expect(code).toBe(129); // the rank's: 128 + SIGHUP
    expect(existsSync(dir)).toBe(false);
    expect(err).toMatch(/^pincoh: rank 0 \(pid \d+\) killed by SIGHUP$/m);
    expect(err).not.toMatch(/of job \S+ died without exiting/); // a signal passed on is the job's end, not a crash to announce
  });

  it('ends pincoh serve cleanly: socket removed, summary printed', async () => {
    const sock = join(tempDir('hup'), 's', 'c.sock');
    const child = spawn(process.execPath, [CLI, 'serve', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    expect(await until(() => err.includes('serving on'))).toBe(true);
    child.kill('SIGHUP');
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c))); // 'close': after its stderr is read to the end
    expect(code).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect(err).toMatch(/pincoh: no process connected/);
  });
});
