// Invariant 2: a hooked call that touches nothing registered makes no system
// call beyond the real one. strace counts every system call of two runs that
// differ only by 200 calls on unregistered memory.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prog, run, shimEnv, startCoordinator, type Coordinator, tempDir } from './helpers.js';

let c: Coordinator;
let fc: Coordinator; // --free invalidate
beforeAll(async () => {
  c = await startCoordinator();
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

  it('the same call on published memory does talk to the coordinator (the test can fail)', async () => {
    const script = ['map', '0', '65536', 'reg', '0', '0', '65536', 'rw', 'pub', 'zc', '0', 'mark', 'prot', '0', '0', '4096', 'r', 'mark'];
    const counts = await syscallsBetweenMarks(script);
    expect(counts.sendto).toBe(1); // SYNC
    expect(counts.mprotect).toBe(1);
  });
});
