// Invariant 2: a hooked call that touches nothing registered makes no system
// call beyond the real one; nor does one that touches registered memory, even
// published memory others are attached to, when no put of theirs is in
// flight. strace counts every system call between two marks.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { prog, run, shimEnv, startCoordinator, startDriver, until, type Coordinator, type LiveDriver, tempDir } from './helpers.js';
import { ESTALE } from '../src/protocol/errno.js';

let c: Coordinator;
let fc: Coordinator; // --free invalidate
beforeAll(async () => {
  c = await startCoordinator({ revokeTimeoutMs: 300 });
  fc = await startCoordinator({ freeInvalidate: true });
});
afterAll(async () => {
  await c.close();
  await fc.close();
});

/** Every system call the driver's main thread made between its two `mark`s.
 * The hooked calls run there, and the fast path wakes no other thread (that
 * would itself be a futex call here); the listener thread may re-enter its
 * blocking read at any moment, so it is not counted. */
async function syscallsBetweenMarks(script: string[], at = c): Promise<Record<string, number>> {
  const out = join(tempDir('strace'), 'trace');
  // asynchronously: the coordinator answering the driver runs in this process
  const r = await run('strace', ['-f', '-qq', '-o', out, prog('driver'), ...script], shimEnv(at.path));
  expect(r.stdout).toMatch(/^reg 0 0$/m);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(''); // no timeout, no degraded process
  return countBetweenMarks(out);
}

function countBetweenMarks(out: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let marks = 0;
  let main: string | undefined;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = line.match(/^(\d+)\s+(\w+)\(/);
    if (!m) continue; // "<... resumed>" halves of calls that started before the mark
    const [, tid, name] = m as unknown as [string, string, string];
    main ??= tid;
    if (tid !== main) continue;
    if (name === 'getpgrp') marks++;
    else if (marks === 1) counts[name] = (counts[name] ?? 0) + 1;
  }
  expect(marks).toBe(2);
  return counts;
}

describe('zero cost when untouched', () => {
  it('200 munmap/mprotect/mremap calls on unregistered memory make the 200 real system calls and no other', async () => {
    // a registration exists, so the fast path really searches the table
    const script = ['map', '0', '65536', 'map', '1', '1048576', 'reg', '0', '0', '65536', 'rw', 'mark'];
    for (let i = 0; i < 50; i++) script.push('prot', '1', String(i * 8192), '4096', 'r', 'prot', '1', String(i * 8192), '4096', 'rw');
    for (let i = 0; i < 50; i++) script.push('unmap', '1', String(i * 8192), '4096');
    for (let i = 0; i < 50; i++) script.push('remap', '1', '4096', '4096', '0');
    script.push('mark');
    // the driver prints one line per call: those writes are its own, not the shim's
    expect(await syscallsBetweenMarks(script)).toEqual({ mprotect: 100, munmap: 50, mremap: 50, write: 200 });
  });

  it('registering and deregistering unshared memory makes no system call at all: 100 pairs', async () => {
    const script = ['map', '0', '1048576', 'reg', '0', '0', '4096', 'rw', 'mark']; // the first registration connects
    for (let i = 1; i <= 100; i++) script.push('reg', '0', String(i * 4096), '4096', 'rw', 'dereg', String(i));
    script.push('mark');
    // only the driver's own lines: 200 writes
    expect(await syscallsBetweenMarks(script)).toEqual({ write: 200 });
  });

  it('invalidating unshared registrations makes no system call beyond the real one: 50 munmaps, mprotects, madvises', async () => {
    const script = ['map', '0', '1048576', 'reg', '0', '0', '4096', 'rw'];
    for (let i = 1; i <= 150; i++) script.push('reg', '0', String(i * 4096), '4096', 'rw');
    script.push('cb', 'mark');
    for (let i = 1; i <= 50; i++) script.push('unmap', '0', String(i * 4096), '4096');
    for (let i = 51; i <= 100; i++) script.push('prot', '0', String(i * 4096), '4096', 'r');
    for (let i = 101; i <= 150; i++) script.push('advise', '0', String(i * 4096), '4096', '4');
    script.push('mark');
    // each call's line and its callback's line are the driver's writes
    expect(await syscallsBetweenMarks(script)).toEqual({ munmap: 50, mprotect: 50, madvise: 50, write: 300 });
  });

  it('under --free invalidate, 100 malloc/free pairs beside a registered chunk make no system call; a free of the registered chunk makes none either', async () => {
    const script = ['malloc', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'mark'];
    for (let i = 0; i < 100; i++) script.push('malloc', '1', '4096', 'free', '1');
    script.push('cb', 'free', '0', 'mark');
    // the driver's lines: 200 mallocs and frees, the callback's, the last free's
    expect(await syscallsBetweenMarks(script, fc)).toEqual({ write: 202 });
  });

  /** An owner under strace with an attacher linked to its export; the owner's munmap between marks, once the test says go. */
  async function publishedMunmap(job: string, attacherScript: string, beforeGo: (attacher: LiveDriver) => Promise<void>) {
    const env = { PINCOH_JOB: job, PINCOH_SIZE: '2' };
    const attacher = startDriver(c.path, `att ${job} 5000 bar 10000 ${attacherScript}`, env);
    const out = join(tempDir('strace'), 'trace');
    const owner = spawn('strace', ['-f', '-qq', '-o', out, prog('driver'), ...`map 0 65536 reg 0 0 65536 rw pub ${job} 0 bar 10000 wait mark unmap 0 0 65536 mark`.split(' ')], {
      env: shimEnv(c.path, env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    owner.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise((r) => owner.once('close', r));
    expect(await until(() => /^bar 0$/m.test(stdout))).toBe(true); // attached and linked
    await beforeGo(attacher);
    owner.stdin.write('go\n');
    await exited;
    expect(stdout).toMatch(/^munmap 0 777$/m);
    return { counts: countBetweenMarks(out), attacher };
  }

  it('an owner\'s munmap of published memory, an attacher linked and no put in flight: no system call but the munmap itself', async () => {
    const { counts, attacher } = await publishedMunmap('zc-pub', 'wait put 0 0 8 1', async () => {});
    expect(counts).toEqual({ munmap: 1, write: 1 }); // the munmap, and the driver's line saying so
    attacher.send();
    expect((await attacher.done).lines.pop()).toBe(`put -${ESTALE}`); // revoked all the same
  });

  it('the control: with the attacher stopped inside a put, the same munmap waits (yields) and hands it to the coordinator (the test can fail)', async () => {
    const { counts, attacher } = await publishedMunmap('zc-stuck', 'putloop 0 100000000', async (a) => {
      await a.waitFor(/^looping/);
      const p = [...c.engine.processes.values()].find((x) => x.pid === a.pid)!;
      let caught = false;
      for (let i = 0; i < 200 && !caught; i++) {
        process.kill(a.pid, 'SIGSTOP');
        await until(() => false, 5);
        caught = p.job.table!.inflight(p.member, 0) > 0;
        if (!caught) process.kill(a.pid, 'SIGCONT');
      }
      expect(caught).toBe(true);
    });
    expect(counts.munmap).toBe(1);
    expect(counts.sched_yield).toBeGreaterThan(0); // waiting for the put in flight
    expect(counts.sendto).toBe(1); // STUCK: past the bound, to the coordinator, which ends the attacher
    expect((await attacher.done).signal).toBe('SIGKILL');
  });
});
