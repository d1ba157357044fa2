// Real processes against a real coordinator on a real socket.

import { execFileSync, spawn, type ChildProcess, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';
import { existsSync, lchownSync, lstatSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, it, onTestFinished } from 'vitest';
import { Engine, type EngineOptions } from '../src/coherence/engine.js';
import { F_ADD_SEALS, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, MAP_SHARED, MFD_ALLOW_SEALING, MFD_CLOEXEC, PROT_READ, PROT_WRITE, sys, view } from '../src/libc.js';
import { AREA, OFF, PROTO_VERSION } from '../src/protocol/constants.js';
import { putRec, type Rec } from '../src/protocol/records.js';
import type { EventRing, Table } from '../src/coherence/ports.js';
import { encodeHello, type Hello } from '../src/protocol/messages.js';
import { CoordinatorServer, type ServerOptions } from '../src/transport/server.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const SHIM = resolve(ROOT, 'native-shim/build/libpincoh.so');
export const CLI = resolve(ROOT, 'bin/pincoh.js');
/** the native rank wrapper, built beside the shim */
export const PINCOH_EXEC = resolve(ROOT, 'native-shim/build/pincoh-exec');
export const prog = (name: string): string => resolve(ROOT, 'test/progs/build', name);

/**
 * The user every process a test starts runs as, in the "as a user" project
 * (vitest.config.ts: root runs the cluster and exec tests again so); undefined:
 * as this process. The test process itself stays root: it reads logs and /proc,
 * and kills, as before.
 */
export const TEST_USER = process.env.PINCOH_TEST_USER || undefined;
const idOf = (flag: '-u' | '-g'): number => (TEST_USER ? Number(execFileSync('id', [flag, TEST_USER], { encoding: 'utf8' })) : flag === '-u' ? process.getuid!() : process.getgid!());
/** The uid and gid the tests' processes run as (job directories are /tmp/pincoh-UID-JOB). */
export const RUN_UID = idOf('-u');
export const RUN_GID = idOf('-g');
/** Said after a describe block's name, so a test's full name (CI's report) says it ran as the user. */
export const AS_USER = TEST_USER ? ` (as user ${TEST_USER})` : '';

const AS_USER_SH = resolve(ROOT, 'test/cluster/as-user');
// What the user's processes must reach, at the same paths: the tree, node_modules
// (it may be a link out of the tree), node (it may live under /root)
const REACH = [ROOT, realpathSync(join(ROOT, 'node_modules')), dirname(dirname(process.execPath))]
  .filter((p, i, all) => !all.slice(0, i).some((q) => p === q || p.startsWith(`${q}/`)))
  .join(':');

/** cmd and args as this mode runs them: as TEST_USER (test/cluster/as-user, which execs: same pid), or as they are. */
export function asUser(cmd: string, args: string[]): [string, string[]] {
  return TEST_USER ? [AS_USER_SH, [TEST_USER, REACH, cmd, ...args]] : [cmd, args];
}

/** cmd and args run as root, with the tree reachable by TEST_USER's processes it starts (Slurm's daemons). */
export function asRootReaching(cmd: string, args: string[]): [string, string[]] {
  return TEST_USER ? [AS_USER_SH, ['--root', TEST_USER, REACH, cmd, ...args]] : [cmd, args];
}

/** spawn, as TEST_USER in that mode. */
export function spawnAs(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const [c, a] = asUser(cmd, args);
  return spawn(c, a, opts);
}

/** Gives path (and all under it) to TEST_USER, as if the user had made it; nothing otherwise. */
export function giveToUser(path: string): void {
  if (!TEST_USER) return;
  lchownSync(path, RUN_UID, RUN_GID);
  if (lstatSync(path).isDirectory()) for (const f of readdirSync(path)) giveToUser(join(path, f));
}

/**
 * A `sh -c` script for a job in which rank `crasher` dies of SIGSEGV while the
 * others run the driver words `rest`. Each other rank first publishes
 * `ready<its rank>`, and the crasher attaches to each of `peers` before it
 * dies: every one of them has connected by then, on any machine (no sleep).
 * rankVar: the variable that holds the rank (PINCOH_GLOBAL_RANK across nodes).
 */
export function crashOnceReady(crasher: number, peers: number[], rest: string, rankVar = 'PINCOH_RANK'): string {
  const d = prog('driver');
  const waits = peers.map((p) => `att ready${p} 60000`).join(' ');
  return `if [ "$${rankVar}" = ${crasher} ]; then exec ${d} map 0 4096 reg 0 0 4096 r ${waits} segv; else exec ${d} map 0 4096 reg 0 0 4096 r pub ready$${rankVar} 0 ${rest}; fi`;
}
export const example = (name: string): string => resolve(ROOT, 'examples/bin', name);
/** The CLI in the background (a live run or serve): its output gathered, its stdin ours. */
export interface LiveCli {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  err(): string;
  /** its exit code, once its output is all read */
  closed: Promise<number | null>;
}

/** Starts the CLI in the background; ended (SIGTERM) with the test if it still runs then. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): LiveCli {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await closed;
  });
  return { child, out: () => out, err: () => err, closed };
}

/** `pincoh serve` in a process of its own (to stop or kill it), its trace on stderr; extra: more options. */
export function serve(sock: string, extra: string[] = []): { child: ChildProcess; out: () => string; ready: Promise<boolean> } {
  const child = spawn(process.execPath, [CLI, 'serve', '--socket', sock, '--trace', '-', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  });
  return { child, out: () => out, ready: until(() => out.includes('serving on')) };
}

/** The coordinator's summary line, as it ends (Stats.summary). */
export const SUMMARY = /^pincoh: (no process connected|\d+ process(es)? connected)/m;

/**
 * A test of a program built only where its Debian packages are installed
 * (test/progs/Makefile). Under CI, which installs them (.ci/run), a missing
 * program fails the test; elsewhere the test is skipped and says what to install.
 */
export function itWithProgs(names: string[], packages: string, name: string, fn: () => Promise<void>, timeout?: number): void {
  const missing = names.filter((n) => !existsSync(prog(n)));
  if (missing.length === 0) it(name, fn, timeout);
  else if (process.env.CI) it(name, () => { throw new Error(`${missing.join(', ')} not built: apt-get install ${packages}, then npm run build`); });
  // Skipped only off CI, on a machine without those Debian packages (a developer's):
  // the test's name says what to install. CI installs them, and there it fails instead.
  else it.skip(`${name} (needs: apt-get install ${packages})`, fn);
}

/** Is cmd on PATH? */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}

let nestedNamespaces: boolean | undefined;
/**
 * Can the tests' processes (RUN_UID, not root) make what test/cluster/fakenode
 * makes for a node: a user namespace holding the node's own (hostname, mounts,
 * pids), and one nested in it in which the node's processes keep their uid.
 */
function userNamespaces(): boolean {
  if (nestedNamespaces === undefined) {
    const inner = ['unshare', '--user', `--map-user=${RUN_UID}`, `--map-group=${RUN_GID}`, 'true'];
    try {
      execFileSync(...asUser('unshare', ['--user', '--map-root-user', '--uts', '--mount', '--pid', '--fork', '--mount-proc', ...inner]), { stdio: 'ignore' });
      nestedNamespaces = true;
    } catch {
      nestedNamespaces = false;
    }
  }
  return nestedNamespaces;
}

/**
 * A test of Debian's programs (a launcher, Prometheus' tools, a browser):
 * under CI, which installs them (.ci/run), a missing one fails the test;
 * elsewhere the test is skipped and says what it needs. privilege: 'root', it
 * needs root too; 'namespaces', root or else user namespaces that nest (the
 * nodes test/cluster/fakenode makes).
 */
export function itWith(cmds: string[], packages: string, name: string, fn: () => Promise<void>, timeout?: number, privilege: 'root' | 'namespaces' | 'none' = 'none'): void {
  const root = process.getuid?.() === 0;
  // (in the "as a user" project this process is root, and the nodes are made by TEST_USER)
  const lacking = privilege === 'root' && !root ? ['root'] : privilege === 'namespaces' && RUN_UID !== 0 && !userNamespaces() ? [`root, or user namespaces that nest for uid ${RUN_UID}`] : [];
  const missing = [...cmds.filter((c) => !onPath(c)).map((c) => `${c} (apt-get install ${packages})`), ...lacking];
  if (missing.length === 0) it(name, fn, timeout);
  else if (process.env.CI) it(name, () => { throw new Error(`needs ${missing.join(', ')}`); });
  // Skipped only off CI, where a developer's machine may lack the package or root: the
  // test's name says what it needs. CI installs them and runs as root, and there it fails instead.
  else it.skip(`${name} (needs ${missing.join(', ')})`, fn);
}

/** A test of Debian's programs run as root (namespaces, a cluster's daemons). */
export function itAsRootWith(cmds: string[], packages: string, name: string, fn: () => Promise<void>, timeout?: number): void {
  itWith(cmds, packages, name, fn, timeout, 'root');
}

/** A test over nodes made by test/cluster/fakenode: as root, or as a user where user namespaces nest. */
export function itOnFakeNodesWith(cmds: string[], packages: string, name: string, fn: () => Promise<void>, timeout?: number): void {
  itWith(cmds, packages, name, fn, timeout, 'namespaces');
}

const madeDirs = new Set<string>();
const removeDir = (dir: string) => {
  rmSync(dir, { recursive: true, force: true });
  madeDirs.delete(dir);
};
process.on('exit', () => madeDirs.forEach(removeDir));

/** A fresh directory under /tmp named pincoh-PREFIX-..., removed when the test
 * that made it ends, pass or fail; made outside a test, after the file's tests;
 * outside vitest, when the process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pincoh-${prefix}-`));
  madeDirs.add(dir);
  giveToUser(dir); // the user's processes write in it (root removes it all the same)
  try {
    onTestFinished(() => removeDir(dir));
  } catch {
    try {
      afterAll(() => removeDir(dir)); // made while a file's tests are collected (not in a hook)
    } catch {
      /* outside vitest (the bench, the soak, the fuzzer): at exit */
    }
  }
  return dir;
}

export interface Coordinator {
  path: string;
  engine: Engine;
  server: CoordinatorServer;
  logs: string[];
  close(): Promise<void>;
}

export async function startCoordinator(
  opts: Partial<EngineOptions> & { engine?: Engine; server?: Partial<ServerOptions> } = {},
): Promise<Coordinator> {
  const dir = tempDir('test');
  const path = join(dir, 'c.sock');
  const logs: string[] = [];
  const engine = opts.engine ?? new Engine({ mremapFollow: false, log: (l) => logs.push(l), ...opts });
  const server = new CoordinatorServer({ socketPath: path, engine, log: (l) => logs.push(l), ...opts.server });
  await server.listen();
  return {
    path,
    engine,
    server,
    logs,
    close: async () => {
      await server.close();
      removeDir(dir);
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lines: string[];
  pid: number;
}

/** Runs a program to its end (killed after timeoutMs: a hang is a failure, not a wait); as TEST_USER in that mode. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnAs(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, lines: stdout.split('\n').filter(Boolean), pid: child.pid ?? -1 });
    });
  });
}

/** The pincoh command, as a user runs it (process.env unless env is given). */
export function pincoh(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], opts.env ?? process.env, opts.timeoutMs ?? 120_000);
}

/** The environment of a process under the shim; socket undefined: no coordinator. */
export function shimEnv(socket: string | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: SHIM, ...extra };
  delete env.PINCOH_SOCKET;
  if (socket !== undefined) env.PINCOH_SOCKET = socket;
  return env;
}

export function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.PINCOH_SOCKET;
  return env;
}

/** Runs the driver under the shim against `socket`. */
export function driver(socket: string | undefined, script: string, extra: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(prog('driver'), script.trim().split(/\s+/), shimEnv(socket, extra));
}

export async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** A driver that runs while the test steers it: `wait` in its script reads a line we send. */
export interface LiveDriver {
  pid: number;
  lines: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  send(line?: string): void;
  done: Promise<RunResult>;
}

export function startDriver(socket: string | undefined, script: string, extra: NodeJS.ProcessEnv = {}): LiveDriver {
  return startProgram(prog('driver'), script.trim().split(/\s+/), shimEnv(socket, extra));
}

/** Any program that prints a line per step and reads `wait` lines from stdin, as the driver does. */
export function startProgram(file: string, args: string[], env: NodeJS.ProcessEnv): LiveDriver {
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    lines.splice(0, lines.length, ...stdout.split('\n').filter(Boolean));
  });
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((resolvePromise) =>
    child.once('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr, lines: [...lines], pid: child.pid ?? -1 })),
  );
  return {
    pid: child.pid ?? -1,
    lines,
    async waitFor(re, timeoutMs = 10_000) {
      const ok = await until(() => lines.some((l) => re.test(l)), timeoutMs);
      if (!ok) throw new Error(`no line matching ${re} in:\n${lines.join('\n')}\n${stderr}`);
      return lines.find((l) => re.test(l))!;
    },
    send(line = 'go') {
      child.stdin.write(line + '\n');
    },
    done,
  };
}

/** An event as the shim writes it (proto.h struct pc_rec): src/protocol/records.ts. */
export { putRec, type Rec } from '../src/protocol/records.js';

/** The shim's side of a ring over `words` (an area's memory): writes events at its head. */
export function ringWriter(words: Uint32Array): (r: Rec) => void {
  const v = new DataView(words.buffer, words.byteOffset, words.byteLength);
  return (r) => {
    const head = Atomics.load(words, OFF.AREA_HDR.head / 4);
    putRec(v, AREA.RING_OFF + (head & (AREA.RING_SLOTS - 1)) * 64, r);
    Atomics.store(words, OFF.AREA_HDR.head / 4, (head + 1) >>> 0);
  };
}

/** A job table of plain JS (the engine's table port, faked): every process joins, every export is live. */
export function fakeTable(): Table & { joined: number[]; closed: boolean } {
  const joined: number[] = [];
  return {
    fd: -1,
    size: 0,
    coordTid: 1,
    joined,
    closed: false,
    join: (pid) => (joined.push(pid), { member: joined.length - 1, word: 1 }),
    memberPid: (m) => joined[m] ?? 0,
    expel: () => {},
    release: () => {},
    isLive: () => true,
    killExport: () => true,
    inflight: () => 0,
    link: () => 1,
    unlink: () => {},
    freeList: () => {},
    close() {
      this.closed = true;
    },
  };
}

/** An event ring of plain JS (the engine's ring port, faked): what write() queued, drained in order. */
export class FakeRing implements EventRing {
  private readonly queued: Rec[] = [];
  private readonly v = new DataView(new ArrayBuffer(64));
  dropped = 0;
  unmapped = false;
  write(...rs: Rec[]): void {
    this.queued.push(...rs);
  }
  drain(fn: (v: DataView, off: number) => void): number {
    const rs = this.queued.splice(0);
    for (const r of rs) {
      putRec(this.v, 0, r);
      fn(this.v, 0);
    }
    return rs.length;
  }
  unmap(): void {
    this.unmapped = true;
  }
}

/**
 * A raw protocol client's shared area, made in this process as the shim makes
 * one (a sealed memfd): the coordinator maps it from /proc/PID/fd as for any
 * process, so tests can speak the protocol byte by byte, events included.
 */
export interface FakeArea {
  fd: number;
  words: Uint32Array;
  write: (r: Rec) => void;
  hello: (h?: Partial<Hello>) => Buffer;
  close: () => void;
}

export function fakeArea(opts: { seal?: boolean; name?: string; bytes?: number } = {}): FakeArea {
  const libc = sys();
  const fd = libc.memfd_create(opts.name ?? 'pincoh-area', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  const bytes = opts.bytes ?? AREA.BYTES;
  libc.ftruncate(fd, BigInt(bytes));
  if (opts.seal !== false) libc.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW);
  const ptr = libc.mmap(null, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
  const words = new Uint32Array(view(ptr, bytes));
  if (bytes >= AREA.HDR_SIZE) words.set([AREA.MAGIC, PROTO_VERSION, AREA.RING_SLOTS, 0, AREA.RING_OFF, 0, AREA.BYTES], 0);
  return {
    fd,
    words,
    write: ringWriter(words),
    hello: (h = {}) => encodeHello({ version: PROTO_VERSION, pid: 0, ppid: 0, rank: 0, size: 1, pageSize: 4096, argv0: 'raw', job: 'raw', areaFd: fd, areaSize: AREA.BYTES, ...h }),
    /** closes the descriptor and unmaps: words must not be touched after */
    close: () => {
      libc.close(fd);
      libc.munmap(ptr, bytes);
    },
  };
}

/** Strongly connected components of a graph (Tarjan), each sorted, in a stable order: the layers and import-graph tests' check for circles. */
export function stronglyConnected(g: Map<string, Iterable<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      out.push(c.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}
