// npm run bench: every figure against a baseline measured in this same run.
// Never a timed test: it prints, it does not judge.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../src/coherence/engine.js';
import { CoordinatorServer } from '../src/transport/server.js';

const ROOT = resolve(import.meta.dirname, '..');
const BENCH = resolve(ROOT, 'bench/build/bench');
const PINGPONG = resolve(ROOT, 'bench/build/pingpong');
// BENCH_SHIM_DIR: another build's libpincoh.so and libpincoh-stub.so (to set
// one build's figures beside another's, run by run; pincoh run is told too)
const SHIM_DIR = process.env.BENCH_SHIM_DIR ? resolve(process.env.BENCH_SHIM_DIR) : resolve(ROOT, 'native-shim/build');
const SHIM = resolve(SHIM_DIR, 'libpincoh.so');
const CLI = resolve(ROOT, 'bin/pincoh.js');
const STUB = resolve(SHIM_DIR, 'libpincoh-stub.so');
const quick = process.argv.includes('--quick');
// --only 3,5: just those sections
const onlyArg = process.argv[process.argv.indexOf('--only') + 1];
const only = process.argv.includes('--only') && onlyArg ? onlyArg.split(',').map(Number) : undefined;
const want = (n: number) => !only || only.includes(n);

// the bench imports nothing of test/ (and so no vitest); section 7 runs the
// test driver program, which npm run build makes
const madeDirs: string[] = [];
process.on('exit', () => madeDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pincoh-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const path = join(tempDir('bench'), 'c.sock');
  const server = new CoordinatorServer({ socketPath: path, engine: new Engine({ mremapFollow: false }) });
  await server.listen();
  return { path, close: () => server.close() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number, d = 1) => n.toFixed(d);
const us = (ns: number) => `${f(ns / 1000)} µs`;

console.log(`pincoh bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}${quick ? ' (quick)' : ''}\n`);

// 1. The hook's own cost: the real calls are stubbed out (libpincoh-stub.so), so
//    no kernel time hides it; the baseline is a plain indirect call. The same
//    page each time, 64 pages between registrations by turns (no two calls in
//    a row read the same words), and 64 pages past every registration by
//    turns. Median of 3 runs.
if (want(1)) {
console.log('1. hook cost per call on unregistered memory, system call stubbed out (ns), median of 3 runs');
console.log('   registrations  indirect call   munmap  mprotect   mremap   munmap overhead   64 pages by turns: between  overhead  past all  overhead');
for (const nregs of quick ? [0, 1000] : [0, 1000, 100000]) {
  const rs: any[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await coordinator();
    rs.push(await run(BENCH, ['hook', String(nregs), quick ? '1000000' : '5000000'], { LD_PRELOAD: STUB, PINCOH_SOCKET: c.path, PINCOH_TIMEOUT_MS: '60000' }));
    await c.close();
  }
  const m = (k: string) => median(rs.map((r) => r[k]));
  const over = median(rs.map((r) => r.munmap - r.call)), spread = median(rs.map((r) => r.munmap_spread - r.call_spread));
  const outside = median(rs.map((r) => r.munmap_outside - r.call_spread));
  console.log(`   ${String(nregs).padStart(13)}  ${f(m('call'), 2).padStart(13)}  ${f(m('munmap'), 2).padStart(7)}  ${f(m('mprotect'), 2).padStart(8)}  ${f(m('mremap'), 2).padStart(7)}  ${f(over, 2).padStart(16)}  ${f(m('munmap_spread'), 2).padStart(26)}  ${f(spread, 2).padStart(8)}  ${f(m('munmap_outside'), 2).padStart(8)}  ${f(outside, 2).padStart(8)}`);
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

/** Runs `bench ARGS` as an N-rank job under `pincoh run`; rank 0's JSON line. */
async function job(ranks: number, args: string[]): Promise<any> {
  return new Promise((res, rej) => {
    const env = process.env.BENCH_SHIM_DIR ? { ...process.env, PINCOH_SHIM: SHIM } : process.env;
    const c = spawn(process.execPath, [CLI, 'run', '-q', '-n', String(ranks), '--', BENCH, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? res(JSON.parse(out.trim().split('\n').find((l) => l.startsWith('{') || l.startsWith('['))!)) : rej(new Error(`bench ${args.join(' ')} exited ${code}`))));
  });
}

// 3. What a registration cache pays: munmap of a registered buffer nobody else
//    holds against an unregistered one, interleaved in one process; and a
//    register + deregister pair (no system call: test/zero-cost.test.ts).
if (want(3)) {
  const runs: any[] = [];
  const pairs: any[] = [];
  for (let i = 0; i < 5; i++) {
    const c = await coordinator();
    runs.push(await run(BENCH, ['unshared', quick ? '500' : '2000'], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path }));
    pairs.push(await run(BENCH, ['pair', quick ? '100000' : '1000000'], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path }));
    await c.close();
  }
  const reg = median(runs.map((r) => r.registered)), plain = median(runs.map((r) => r.unregistered));
  console.log('\n3. unshared memory, medians of 5 runs');
  console.log(`   munmap 64 KiB  unregistered ${us(plain)}  registered, never published ${us(reg)}  ratio ${f(reg / plain, 2)}x`);
  console.log(`   pincoh_register + pincoh_deregister  ${f(median(pairs.map((r) => r.pair)), 0)} ns per pair`);
}

// 4. The mprotect loop of a process with registrations, against the same process
//    before it connected; and of an attacher against itself before it attached
//    (no thread of pincoh's either way). Best of 5 per phase, median of 9 runs.
if (want(4)) {
  const iters = quick ? '20000' : '100000';
  const own: number[] = [];
  const att: number[] = [];
  for (let i = 0; i < 9; i++) {
    const c = await coordinator();
    const r = await run(BENCH, ['prot', iters, '1000'], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path });
    await c.close();
    own.push(r.after / r.before);
    const a = await job(2, ['attprot', iters]);
    att.push(a.after / a.before);
  }
  console.log('\n4. mprotect loop, after against before, median of 9 runs');
  console.log(`   connected with 1,000 registrations  ${f(median(own), 3)}x`);
  console.log(`   after attaching                     ${f(median(att), 3)}x`);
}

// 5. munmap of published 64 KiB with 1 and 16 attachers linked (the owner revokes
//    them in place), against a munmap of an unshared registered 64 KiB buffer in
//    the same process, in turns, each round; 2 ms after the barrier that saw them
//    attach (right after it, the 16 are still being scheduled on 2 cores). Then
//    with the coordinator stopped (SIGSTOP) around the munmaps, and with every
//    attacher stopped. The C<->C ping-pong is what any round trip would cost.
if (want(5)) {
  const rounds = quick ? '60' : '300';
  const stopRounds = quick ? 20 : 60;
  const pp: any[] = [];
  for (let i = 0; i < 3; i++) pp.push(await run(PINGPONG, [quick ? '2000' : '8000']));
  const p50 = median(pp.map((r) => r.p50));
  console.log(`\n5. munmap of published 64 KiB (attachers linked) against an unshared registered one, in turns, ${rounds} rounds`);
  console.log(`   (a C<->C ping-pong, the floor of any round trip: p50 ${us(p50)})`);
  console.log('                                   published p50 / p99      unshared p50 / p99     ratio (median of rounds)  p99/p50');
  const line = (what: string, r: any) =>
    console.log(`   ${what.padEnd(32)} ${`${us(r.p50)} / ${us(r.p99)}`.padEnd(24)} ${`${us(r.unshared_p50)} / ${us(r.unshared_p99)}`.padEnd(22)} ${f(r.ratio, 3).padStart(7)}x ${f(r.p99 / r.p50, 2).padStart(16)}x`);
  line('1 attacher', await job(2, ['revoke', rounds, '2000']));
  line('16 attachers', await job(17, ['revoke', rounds, '2000']));
  line('1 attacher, coordinator stopped', await job(2, ['revoke', rounds, '2000', 'coordstop']));
  line('16, coordinator stopped', await job(17, ['revoke', rounds, '2000', 'coordstop']));
  const stopped = await job(17, ['revoke', String(stopRounds), '2000', 'stop']);
  line('16 attachers, all stopped', stopped);
  console.log(`   (all stopped: ${stopped.stale} of ${16 * stopRounds} handles dead after SIGCONT, none cut off: the job exits 0)`);
}

// 6. Put bandwidth against raw process_vm_writev to the same place, same process, best of 5.
if (want(6)) {
  const r: Array<{ size: number; raw: number; put: number }> = await job(2, ['put']);
  console.log('\n6. put bandwidth (GB/s), best of 5, against raw process_vm_writev in the same run');
  for (const x of r) console.log(`   ${String(x.size / 1024).padStart(5)} KiB  raw ${f(x.raw, 2)}  put ${f(x.put, 2)}  ratio ${f(x.put / x.raw, 3)}x`);
}

// 7. A process SIGKILLed in the middle of a call (its SYNC for a full event ring
//    never answered): how long until the coordinator has dropped all its state.
if (want(7)) {
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
  const path = join(tempDir('kill'), 'c.sock');
  const server = new CoordinatorServer({ socketPath: path, engine, drainMs: 60_000 }); // no timer: the 4,097th event waits
  await server.listen();
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const env = { ...process.env, LD_PRELOAD: SHIM, PINCOH_SOCKET: path, PINCOH_TIMEOUT_MS: '60000', PINCOH_JOB: `kill-${i}` };
    const d = spawn(resolve(ROOT, 'test/progs/build/driver'), ['map', '0', '20480000', 'regmany', '0', '5000'], { env, stdio: 'ignore' });
    const done = new Promise((r) => d.once('close', r));
    while (!engine.waiting.has(d.pid!)) await tick(1);
    const t0 = process.hrtime.bigint();
    process.kill(d.pid!, 'SIGKILL');
    while ([...engine.processes.values()].some((p) => p.pid === d.pid)) await new Promise((r) => setImmediate(r));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await done;
  }
  await server.close();
  console.log('\n7. a process SIGKILLed while its SYNC waits: time until the coordinator dropped its state, 20 kills');
  console.log(`   p50 ${f(median(times), 2)} ms, max ${f(Math.max(...times), 2)} ms`);
}

// 8. The coordinator draining events: 16 processes invalidating unshared
//    registrations as fast as they can (3 events each: REG, INVAL, CALL),
//    against the same 16 processes making the same mprotect calls bare.
if (want(8)) {
  const procs = 16;
  const secs = quick ? '1' : '3';
  const total = async (env: NodeJS.ProcessEnv) => {
    const rs = await Promise.all(Array.from({ length: procs }, () => run(BENCH, ['load', secs], env)));
    return rs.reduce((a, r) => a + r.invalidations, 0) / Number(secs);
  };
  const bare = await total({});
  const engine = new Engine({ mremapFollow: false });
  const path = join(tempDir('bench'), 'c.sock');
  const server = new CoordinatorServer({ socketPath: path, engine });
  await server.listen();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const ours = await total({ LD_PRELOAD: SHIM, PINCOH_SOCKET: path });
  await server.drain(5000);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await server.close();
  console.log(`\n8. ${procs} processes invalidating unshared registrations in a loop`);
  console.log(`   bare mprotect pairs ${f(bare, 0)}/s   under pincoh ${f(ours, 0)} invalidations/s (${f(ours / bare, 2)}x)`);
  console.log(`   the coordinator drained ${engine.stats.events} events in ${f(s, 2)} s: ${f(engine.stats.events / s, 0)} events/s; ${engine.stats.dropped} lost; it was busy ${f(((cpu.user + cpu.system) / 1e6 / s) * 100, 0)}% of one core (this process also spawned and timed the 16)`);
}

// 9. The table's writers: N registrations of neighbouring pages, then all of
//    them deregistered, oldest first (the order a registration cache evicts
//    in), newest first, or in random order; and registered in descending and
//    random address order. ns per call, the coordinator's draining of the
//    ring excluded (bench.c: a barrier between batches of 1,000, untimed).
//    Median of 3 runs; each ratio is against N = 1,000 in the same run.
if (want(9)) {
  const sizes = quick ? [1000, 10000] : [1000, 10000, 100000];
  const cases: Array<[string, string]> = [['oldest', 'asc'], ['newest', 'asc'], ['random', 'asc'], ['oldest', 'desc'], ['random', 'random']];
  console.log('\n9. register N pages, then deregister them all, median of 3 runs (ns per call)');
  console.log('   deregister  addresses        N   register  deregister   register / N=1,000  deregister / N=1,000');
  for (const [order, addr] of cases) {
    const base: { register: number; deregister: number } = { register: 0, deregister: 0 };
    for (const n of sizes) {
      const rs: any[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await coordinator();
        rs.push(await run(BENCH, ['regs', String(n), order, addr], { LD_PRELOAD: SHIM, PINCOH_SOCKET: c.path, PINCOH_TIMEOUT_MS: '60000' }));
        await c.close();
      }
      const reg = median(rs.map((r) => r.register)), dereg = median(rs.map((r) => r.deregister));
      if (n === sizes[0]) Object.assign(base, { register: reg, deregister: dereg });
      console.log(`   ${order.padEnd(10)}  ${addr.padEnd(9)}  ${String(n).padStart(7)}  ${f(reg, 0).padStart(9)}  ${f(dereg, 0).padStart(10)}  ${f(reg / base.register, 2).padStart(18)}x  ${f(dereg / base.deregister, 2).padStart(19)}x`);
    }
  }
}

// 10. The rank wrapper. One rank of `pincoh-exec -- true` on a node whose
//     coordinator runs (rank 0 of the job holds it up), against bare `true`:
//     wall time from fork to reaping, and peak RSS; by turns, 5 batches of 20
//     (the same through `pincoh exec`, Node in the rank: 5 batches of 2). A
//     job's first rank on a node also pays the coordinator's start and, as the
//     last rank, its end: a 1-rank job of `true`, less bare `true`. Then whole
//     jobs of `true` under `mpirun --oversubscribe -np 16`, bare, through
//     pincoh-exec and through pincoh exec, by turns, 5 each.
if (want(10)) {
  const EXEC = resolve(ROOT, 'native-shim/build/pincoh-exec');
  const tmp = tempDir('bench-exec');
  const cwd = tempDir('bench-exec-logs');
  const ompi = (job: string, rank: number, size: number): NodeJS.ProcessEnv => ({
    TMPDIR: tmp, OMPI_COMM_WORLD_RANK: String(rank), OMPI_COMM_WORLD_SIZE: String(size), OMPI_COMM_WORLD_LOCAL_RANK: String(rank),
    OMPI_COMM_WORLD_LOCAL_SIZE: String(size), OMPI_MCA_ess_base_jobid: job, XDG_RUNTIME_DIR: '',
  });
  const spawnRuns = (n: number, cmd: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ us: number[]; max_rss_kib: number }>((res, rej) => {
      const c = spawn(BENCH, ['spawn', String(n), ...cmd], { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`bench spawn ${cmd.join(' ')} exited ${code}`))));
    });
  // rank 0 of job "held" keeps the node's coordinator up: it registers, then waits on stdin
  const holder = spawn(process.execPath, [CLI, 'exec', '--', resolve(ROOT, 'test/progs/build/driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'wait'], {
    env: { ...process.env, ...ompi('held', 0, 2) }, cwd, stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((r) => holder.stdout.on('data', (d) => String(d).includes('waiting') && r()));
  const batches = quick ? 2 : 5;
  const bare: number[] = [], shim: number[] = [], native: number[] = [], node: number[] = [], first: number[] = [];
  const rss = { bare: 0, native: 0, node: 0 };
  // the shim alone, as in a rank (libc patched): what any way of preloading it costs
  const preloaded = { LD_PRELOAD: SHIM, PINCOH_SOCKET: join(tmp, `pincoh-${process.getuid?.() ?? 0}-held`, 'c.sock') };
  for (let i = 0; i < batches; i++) {
    const b = await spawnRuns(20, ['true']);
    shim.push(...(await spawnRuns(20, ['true'], preloaded)).us);
    const n = await spawnRuns(20, [EXEC, '--', 'true'], ompi('held', 1, 2));
    const j = await spawnRuns(2, [process.execPath, CLI, 'exec', '--', 'true'], ompi('held', 1, 2));
    const s = await spawnRuns(2, [EXEC, '--', 'true'], ompi(`alone-${i}`, 0, 1));
    bare.push(...b.us), native.push(...n.us), node.push(...j.us), first.push(...s.us);
    rss.bare = Math.max(rss.bare, b.max_rss_kib), rss.native = Math.max(rss.native, n.max_rss_kib), rss.node = Math.max(rss.node, j.max_rss_kib);
  }
  holder.stdin.end();
  await new Promise((r) => holder.once('close', r));
  const ms = (x: number) => `${f(x / 1000, 2)} ms`;
  console.log(`\n10. the rank wrapper: one rank of \`true\` where the node's coordinator runs, medians of ${batches} × 20 runs by turns (wall from fork to reaping; peak RSS)`);
  console.log(`   bare true             ${ms(median(bare)).padStart(10)}   ${String(rss.bare).padStart(6)} KiB`);
  console.log(`   true under the shim   ${ms(median(shim)).padStart(10)}               +${ms(median(shim) - median(bare))} (LD_PRELOAD, libc patched: no wrapper)`);
  console.log(`   pincoh-exec -- true   ${ms(median(native)).padStart(10)}   ${String(rss.native).padStart(6)} KiB   +${ms(median(native) - median(bare))}, +${f((rss.native - rss.bare) / 1024, 1)} MiB`);
  console.log(`   pincoh exec -- true   ${ms(median(node)).padStart(10)}   ${String(rss.node).padStart(6)} KiB   +${ms(median(node) - median(bare))} (Node in the rank; ${batches} × 2 runs)`);
  const start = median(first) - median(bare);
  console.log(`   a 1-rank job (the coordinator's start and end, once a node): ${ms(median(first))}, +${ms(start)} (${batches} × 2 runs)`);
  if (process.env.PATH?.split(':').some((d) => existsSync(join(d, 'mpirun')))) {
    const root = process.getuid?.() === 0 ? { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' } : {};
    const mpirun = ['mpirun', '--oversubscribe', '-np', '16'];
    const jobs = { bare: [] as number[], native: [] as number[], node: [] as number[] };
    for (let i = 0; i < (quick ? 2 : 5); i++) {
      jobs.bare.push(...(await spawnRuns(1, [...mpirun, 'true'], { ...root, TMPDIR: tmp })).us);
      jobs.native.push(...(await spawnRuns(1, [...mpirun, EXEC, '--', 'true'], { ...root, TMPDIR: tmp })).us);
      jobs.node.push(...(await spawnRuns(1, [...mpirun, process.execPath, CLI, 'exec', '--', 'true'], { ...root, TMPDIR: tmp })).us);
    }
    const [jb, jn, jj] = [median(jobs.bare), median(jobs.native), median(jobs.node)];
    console.log(`   16 ranks of true under mpirun --oversubscribe -np 16, medians of ${jobs.bare.length} by turns:`);
    console.log(`     bare ${ms(jb)}; pincoh-exec ${ms(jn)} (${f(jn / jb, 2)}x; less one coordinator's start and end, ${f((jn - start) / jb, 2)}x); pincoh exec ${ms(jj)} (${f(jj / jb, 2)}x)`);
  } else console.log('   (no mpirun on PATH: the 16-rank jobs are not measured)');
}
