// The shim built with AddressSanitizer and UndefinedBehaviorSanitizer
// (native-shim/build/libpincoh-asan.so), under the end-to-end scenarios that
// exercise most of its code: hooks, sharing and revoke, 8 racing threads, fork
// under load. And with ThreadSanitizer (libpincoh-tsan.so) under the racing
// threads, a halo exchange and 16 attachers putting while their owner revokes
// them in place (stalewrite); TSan cannot follow a multithreaded process's
// forked child that starts a thread, so fork stays with ASan. Any report fails.

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, example, prog, ROOT, run, startCoordinator, startDriver, type Coordinator, type RunResult } from './helpers.js';

const ASAN_SHIM = resolve(ROOT, 'native-shim/build/libpincoh-asan.so');
const TSAN_SHIM = resolve(ROOT, 'native-shim/build/libpincoh-tsan.so');
const runtime = (name: string) => execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
const LIBASAN = runtime('libasan.so');
const LIBTSAN = runtime('libtsan.so');
const SAN_ENV = {
  ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
};

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator({ revokeTimeoutMs: 300 })));
afterAll(async () => c.close());

function sanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, LD_PRELOAD: `${LIBASAN}:${ASAN_SHIM}`, PINCOH_SOCKET: c.path, ...SAN_ENV, ...extra };
}

/** `pincoh run --preload RUNTIME`: the sanitizer runtime in the ranks only (first), not in the coordinator's node. */
function ranksUnder(runtime: string, shim: string, ranks: number, argv: string[], extra: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, 'run', '-q', '--preload', runtime, '-n', String(ranks), '--', ...argv], { ...process.env, PINCOH_SHIM: shim, ...SAN_ENV, ...extra }, 120_000);
}

function clean(r: RunResult): void {
  expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer/);
  expect(r.signal).toBeNull();
  expect(r.code).toBe(0);
}

describe('under ASan + UBSan', () => {
  it('the hooks, the policies and the callbacks', async () => {
    clean(await run(prog('driver'), 'cb map 0 65536 reg 0 4096 8192 rw reg 0 0 4096 r prot 0 0 4096 rwx unmap 0 8192 4096 remap 0 65536 1048576 maymove valid 0 valid 1 stats'.split(' '), sanEnv()));
  });

  it('8 threads racing, and 50 forks under load', async () => {
    clean(await run(prog('race'), ['200'], sanEnv(), 120_000));
    clean(await run(prog('forkstress'), ['50'], sanEnv(), 120_000));
  });

  it('sharing: attach, put, get, revoke, a stopped attacher cut off', async () => {
    const o = startDriver(c.path, 'map 0 65536 reg 0 0 65536 rw pub san 0 wait unmap 0 0 65536', { ...sanEnv(), PINCOH_JOB: 'san' });
    await o.waitFor(/^waiting/);
    const a = await run(prog('driver'), 'cb att san 5000 put 0 0 4096 1 get 0 0 4096'.split(' '), sanEnv({ PINCOH_JOB: 'san' }));
    clean(a);
    const b = startDriver(c.path, 'cb att san 5000 put 0 0 8 1 stop put 0 0 8 1', { ...sanEnv(), PINCOH_JOB: 'san' });
    await b.waitFor(/^stopping/);
    o.send();
    clean(await o.done);
    process.kill(b.pid, 'SIGCONT');
    clean(await b.done);
  });

  it('a ring of 4 ranks through pincoh run', async () => {
    const r = await ranksUnder(LIBASAN, ASAN_SHIM, 4, [example('ring'), '100']);
    clean(r);
    expect(r.stdout.match(/0 bad/g)).toHaveLength(4);
  });
});

describe('under TSan', () => {
  const tsan = { TSAN_OPTIONS: 'halt_on_error=1' };
  it('8 threads racing munmap/mprotect/mremap against registrations: no data race', async () => {
    const r = await ranksUnder(LIBTSAN, TSAN_SHIM, 1, [prog('race'), '100'], tsan);
    clean(r);
    expect(r.stdout).toMatch(/missed 0 spurious 0/);
  });

  it('threads exiting while others unmap (an exiting thread\'s stack madvise reaches the shim after TSan has finished the thread): no crash, no race', async () => {
    const r = await ranksUnder(LIBTSAN, TSAN_SHIM, 1, [prog('threads'), 'exiting', '200'], tsan);
    clean(r);
    expect(r.stdout).toMatch(/missed 0 spurious 0 stale 0/);
  });

  it('a halo exchange (puts racing owners\' revokes in the job table): no data race', async () => {
    const r = await ranksUnder(LIBTSAN, TSAN_SHIM, 4, [example('halo'), '40'], tsan);
    clean(r);
    expect(r.stdout.match(/, 0 bad/g)).toHaveLength(4);
  });

  it('16 attachers putting in a loop while their owner revokes them in place, 30 rounds (stalewrite): no data race, no stale write', async () => {
    const r = await ranksUnder(LIBTSAN, TSAN_SHIM, 17, [example('stalewrite'), 'munmap', '30'], tsan);
    clean(r);
    expect(r.stdout).toMatch(/stalewrite munmap: 30 rounds, 16 attachers, canary overwritten in 0 /);
    expect(r.stdout.match(/30 handles found stale/g)).toHaveLength(16);
  });
});
