// npm run bench: every figure against a baseline measured in this same run.
// Never a timed test: it prints, it does not judge.

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../src/coherence/engine.js';
import { CoordinatorServer } from '../src/transport/server.js';
import { echoServer } from './echo-server.js';

const ROOT = resolve(import.meta.dirname, '..');
const BENCH = resolve(ROOT, 'bench/build/bench');
const PINGPONG = resolve(ROOT, 'bench/build/pingpong');
const SHIM = resolve(ROOT, 'native-shim/build/libpincoh.so');
const CLI = resolve(ROOT, 'bin/pincoh.js');
const STUB = resolve(ROOT, 'native-shim/build/libpincoh-stub.so');
const quick = process.argv.includes('--quick');
// --only 3,5: just those sections
const onlyArg = process.argv[process.argv.indexOf('--only') + 1];
const only = process.argv.includes('--only') && onlyArg ? onlyArg.split(',').map(Number) : undefined;
const want = (n: number) => !only || only.includes(n);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<any> {
  return new Promise((res, rej) => {
    const e = { ...process.env, ...env };
    delete e.LD_PRELOAD;
    if (env.LD_PRELOAD) e.LD_PRELOAD = env.LD_PRELOAD;
    const c = spawn(cmd, args, { env: e, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

async function coordinator(): Promise<{ path: string; close: () => Promise<void> }> {
  const path = join(mkdtempSync(join(tmpdir(), 'pincoh-bench-')), 'c.sock');
  const server = new CoordinatorServer({ socketPath: path, engine: new Engine({ mremapFollow: false }) });
  await server.listen();
  return { path, close: () => server.close() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number, d = 1) => n.toFixed(d);
const us = (ns: number) => `${f(ns / 1000)} µs`;

console.log(`pincoh bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}${quick ? ' (quick)' : ''}\n`);

// 1. The hook's own cost: the real calls are stubbed out (libpincoh-stub.so), so
//    no kernel time hides it; the baseline is a plain indirect call.
if (want(1)) {
console.log('1. hook cost per call on unregistered memory, system call stubbed out (ns)');
console.log('   registrations  indirect call   munmap  mprotect   mremap   munmap overhead');
for (const nregs of quick ? [0, 1000] : [0, 1000, 100000]) {
  const c = await coordinator();
  const r = await run(BENCH, ['hook', String(nregs), quick ? '1000000' : '5000000'], { LD_PRELOAD: STUB, PINCOH_SOCKET: c.path, PINCOH_TIMEOUT_MS: '60000' });
  await c.close();
  console.log(`   ${String(nregs).padStart(13)}  ${f(r.call, 2).padStart(13)}  ${f(r.munmap, 2).padStart(7)}  ${f(r.mprotect, 2).padStart(8)}  ${f(r.mremap, 2).padStart(7)}  ${f(r.munmap - r.call, 2).padStart(16)}`);
}
}

// 2. Plain loops with the real shim (1,000 registrations elsewhere) against bare.
if (want(2)) {
  const iters = quick ? '20000' : '100000';
  const c = await coordinator();
  const bare: any[] = [];
  const shim: any[] = [];
  for (let i = 0; i < 9; i++) {
    bare.push(await run(BENCH, ['loop', iters, '1000']));
    shim.push(await run(BENCH, ['loop', iters, '1000'], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path }));
  }
  await c.close();
  const b1 = median(bare.map((r) => r.mmap_munmap)), s1 = median(shim.map((r) => r.mmap_munmap));
  const b2 = median(bare.map((r) => r.mprotect)), s2 = median(shim.map((r) => r.mprotect));
  console.log('\n2. plain loops, median of 9 alternating runs (ns per iteration)');
  console.log(`   mmap+munmap 4 KiB  bare ${f(b1)}  shim ${f(s1)}  ratio ${f(s1 / b1, 3)}x`);
  console.log(`   mprotect           bare ${f(b2)}  shim ${f(s2)}  ratio ${f(s2 / b2, 3)}x`);
}

// 3. The slow path against a C-to-C AF_UNIX ping-pong of the same frame sizes,
//    alternating 5 times each (this VM's wake-up latency drifts between runs).
if (want(3)) {
  const slow: any[] = [];
  const pp: any[] = [];
  for (let i = 0; i < 5; i++) {
    const c = await coordinator();
    slow.push(await run(BENCH, ['slow', quick ? '1000' : '4000'], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path }));
    await c.close();
    pp.push(await run(PINGPONG, [quick ? '2000' : '8000']));
  }
  const s50 = median(slow.map((r) => r.p50)), s99 = median(slow.map((r) => r.p99));
  const p50 = median(pp.map((r) => r.p50)), p99 = median(pp.map((r) => r.p99));
  console.log('\n3. munmap hitting a registration (BEGIN, ACK, munmap, DONE) against a C<->C ping-pong, medians of 5 alternating runs');
  console.log(`   ping-pong  p50 ${us(p50)}  p99 ${us(p99)}`);
  console.log(`   slow path  p50 ${us(s50)}  p99 ${us(s99)}   p50 ratio ${f(s50 / p50, 2)}x, own p99/p50 ${f(s99 / s50, 2)}x`);
}

// 4. The coordinator under load: 16 processes invalidating in a loop, against
//    the minimal echo server answering the very same frames.
if (want(4)) {
  const procs = 16;
  const secs = quick ? '1' : '3';
  const total = async (path: string) => {
    const rs = await Promise.all(Array.from({ length: procs }, () => run(BENCH, ['load', secs], { LD_PRELOAD: SHIM, PINCOH_SOCKET: path })));
    return rs.reduce((a, r) => a + r.invalidations, 0) / Number(secs);
  };
  const c = await coordinator();
  const ours = await total(c.path);
  await c.close();
  const echoPath = join(mkdtempSync(join(tmpdir(), 'pincoh-echo-')), 'e.sock');
  const echo = await echoServer(echoPath);
  const base = await total(echoPath);
  echo.close();
  console.log(`\n4. ${procs} processes registering and invalidating in a loop (invalidations per second)`);
  console.log(`   echo server ${f(base, 0)}/s   coordinator ${f(ours, 0)}/s   ratio ${f(ours / base, 2)}x`);
}

/** Runs `bench ARGS` as an N-rank job under `pincoh run`; rank 0's JSON line. */
async function job(ranks: number, args: string[]): Promise<any> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [CLI, 'run', '-q', '-n', String(ranks), '--', BENCH, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? res(JSON.parse(out.trim().split('\n').find((l) => l.startsWith('{') || l.startsWith('['))!)) : rej(new Error(`bench ${args.join(' ')} exited ${code}`))));
  });
}

// 5. Revoke fan-out: a munmap whose registration 1, 4 or 16 other processes are
//    attached to. Timed right after the barrier that saw them attach (every
//    process waking at once on 2 cores), and again 2 ms later (the revoke alone).
if (want(5)) {
  const rounds = quick ? '60' : '300';
  console.log(`\n5. munmap of a registration with N attachers, p50/p99 over ${rounds} rounds`);
  for (const settle of ['0', '2000']) {
    const base = await job(2, ['revoke', rounds, settle]);
    const rows = [`   ${settle === '0' ? 'right after the barrier' : '2 ms after the barrier '}  1: ${us(base.p50)} / ${us(base.p99)}`];
    for (const n of [4, 16]) {
      const r = await job(n + 1, ['revoke', rounds, settle]);
      rows.push(`${n}: ${us(r.p50)} / ${us(r.p99)} (${f(r.p50 / base.p50, 2)}x)`);
    }
    console.log(rows.join('   '));
  }
}

// 6. Put bandwidth against raw process_vm_writev to the same place, same process, best of 5.
if (want(6)) {
  const r: Array<{ size: number; raw: number; put: number }> = await job(2, ['put']);
  console.log('\n6. put bandwidth (GB/s), best of 5, against raw process_vm_writev in the same run');
  for (const x of r) console.log(`   ${String(x.size / 1024).padStart(5)} KiB  raw ${f(x.raw, 2)}  put ${f(x.put, 2)}  ratio ${f(x.put / x.raw, 3)}x`);
}

// 7. A process SIGKILLed in the middle of a call (its SYNC never answered):
//    how long until the coordinator has dropped all its state.
if (want(7)) {
  const { startDriver, until } = await import('../test/helpers.js');
  const { Engine: HangEngine } = await import('../src/coherence/engine.js');
  class Hanging extends HangEngine {
    waiting = new Set<number>();
    override sync(p: any): Promise<number> {
      super.sync(p);
      this.waiting.add(p.pid);
      return new Promise(() => {});
    }
  }
  const engine = new Hanging({ mremapFollow: false });
  const path = join(mkdtempSync(join(tmpdir(), 'pincoh-kill-')), 'c.sock');
  const server = new CoordinatorServer({ socketPath: path, engine });
  await server.listen();
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const d = startDriver(path, 'map 0 65536 reg 0 0 4096 rw reg 0 8192 4096 rw pub p 0 unmap 0 0 4096', { PINCOH_TIMEOUT_MS: '60000', PINCOH_JOB: `kill-${i}` });
    await until(() => engine.waiting.has(d.pid));
    const t0 = process.hrtime.bigint();
    process.kill(d.pid, 'SIGKILL');
    while ([...engine.processes.values()].some((p) => p.pid === d.pid)) await new Promise((r) => setImmediate(r));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await d.done;
  }
  await server.close();
  console.log('\n7. a process SIGKILLed while its SYNC waits: time until the coordinator dropped its state, 20 kills');
  console.log(`   p50 ${f(median(times), 2)} ms, max ${f(Math.max(...times), 2)} ms`);
}
