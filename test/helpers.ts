// Real processes against a real coordinator on a real socket.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { it } from 'vitest';
import { Engine, type EngineOptions } from '../src/coherence/engine.js';
import { CoordinatorServer, type ServerOptions } from '../src/transport/server.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const SHIM = resolve(ROOT, 'native-shim/build/libpincoh.so');
export const CLI = resolve(ROOT, 'bin/pincoh.js');
export const prog = (name: string): string => resolve(ROOT, 'test/progs/build', name);
export const example = (name: string): string => resolve(ROOT, 'examples/bin', name);

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
  const dir = mkdtempSync(join(tmpdir(), 'pincoh-test-'));
  const path = join(dir, 'c.sock');
  const engine = opts.engine ?? new Engine({ mremapFollow: false, ...opts });
  const logs: string[] = [];
  const server = new CoordinatorServer({ socketPath: path, engine, log: (l) => logs.push(l), ...opts.server });
  await server.listen();
  return {
    path,
    engine,
    server,
    logs,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
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

/** Runs a program to its end (killed after timeoutMs: a hang is a failure, not a wait). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, lines: stdout.split('\n').filter(Boolean), pid: child.pid ?? -1 });
    });
  });
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
  const child = spawn(prog('driver'), script.trim().split(/\s+/), { env: shimEnv(socket, extra), stdio: ['pipe', 'pipe', 'pipe'] });
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
