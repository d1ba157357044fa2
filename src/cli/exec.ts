// `pincoh exec -- CMD`: one rank under someone else's launcher (mpirun, srun).
// It finds this node's coordinator for this job, or starts it (exactly one,
// whatever the race between local ranks: a flock decides who starts it, and a
// starter that dies lets go of the lock), then becomes CMD under the shim,
// with pincoh's rank and size the node-local ones.

import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PincohError } from '../errors.js';
import { preloadWith } from '../job/launch.js';
import { jobName, placementFrom } from '../job/launcher.js';
import { execReplacing, lockWithin } from '../job/native.js';
import { shimPath } from '../paths.js';
import type { ExecOptions } from './options.js';

const CLI = resolve(import.meta.dirname, '../../bin/pincoh.js');

/** Does something accept connections at path? */
function alive(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** The node's directory for the job: ours alone (0700, our uid). */
function jobDir(job: string): string {
  const dir = join(tmpdir(), `pincoh-${process.getuid?.() ?? 0}-${job}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? 0) || (st.mode & 0o077) !== 0)
    throw new PincohError('PINCOH_ERR_COORDINATOR', `${dir} is not a private directory of ours; remove it`);
  return dir;
}

/** The job's lock, held: re-opened if the coordinator removed the file meanwhile (its exit cleans up under the lock). */
async function holdLock(job: string): Promise<{ fd: number; dir: string }> {
  for (let tries = 0; tries < 100; tries++) {
    const dir = jobDir(job);
    const path = join(dir, 'lock');
    const fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT, 0o600 /* Node opens close-on-exec */);
    if (!(await lockWithin(fd, 30_000))) {
      closeSync(fd);
      throw new PincohError('PINCOH_ERR_COORDINATOR', `waited 30 s for ${path}: another rank holds it and does not let go`);
    }
    if (existsSync(path) && statSync(path).ino === fstatSync(fd).ino) return { fd, dir };
    closeSync(fd); // locked a file the coordinator had just removed: again
  }
  throw new PincohError('PINCOH_ERR_COORDINATOR', `the lock of job ${job} keeps going away`);
}

export async function execCommand(o: ExecOptions): Promise<number> {
  const place = placementFrom(process.env);
  const shim = shimPath();
  const job = jobName(place.job);
  const host = hostname();
  const out = resolve(o.outputDir ?? process.cwd());
  const { fd, dir } = await holdLock(job);
  const sock = join(dir, 'c.sock');
  try {
    if (!(await alive(sock))) {
      // We start it: the first local rank here, or the next one after a starter died.
      const base = join(out, `pincoh-${host}-${job}`);
      const log = openSync(`${base}.log`, 'a');
      const args = [CLI, 'serve', '--socket', sock, '--until-ranks', String(place.localSize), '--idle-exit-ms', String(o.idleExitMs ?? 30_000), '--remove-dir', ...o.coordinatorArgs];
      if (o.trace) args.push('--trace', `${base}.trace.jsonl`);
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      let exited: number | null | undefined;
      child.once('exit', (c) => (exited = c));
      child.unref();
      const end = Date.now() + 20_000;
      while (!(await alive(sock))) {
        if (exited !== undefined || Date.now() > end) {
          const said = existsSync(`${base}.log`) ? readFileSync(`${base}.log`, 'utf8').trim().split('\n').slice(-3).join('\n') : '';
          throw new PincohError('PINCOH_ERR_COORDINATOR', `the coordinator for job ${job} on ${host} did not start${exited !== undefined ? ` (it exited with ${exited})` : ' within 20 s'}:\n${said}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  } finally {
    closeSync(fd);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_PRELOAD: preloadWith(shim, process.env.LD_PRELOAD),
    PINCOH_SOCKET: sock,
    PINCOH_RANK: String(place.localRank),
    PINCOH_SIZE: String(place.localSize),
    PINCOH_JOB: job,
    PINCOH_GLOBAL_RANK: String(place.rank),
    PINCOH_GLOBAL_SIZE: String(place.size),
    ...(o.timeoutMs !== undefined && { PINCOH_TIMEOUT_MS: String(o.timeoutMs) }),
  };
  const err = execReplacing(o.argv[0]!, o.argv, env);
  throw new PincohError('PINCOH_ERR_EXEC', `cannot run ${o.argv[0]}: errno ${err}${err === 2 ? ' (not found)' : err === 13 ? ' (permission denied)' : ''}`);
}
