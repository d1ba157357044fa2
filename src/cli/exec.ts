// `pincoh exec -- CMD`: one rank under someone else's launcher (mpirun, srun).
// It finds this node's coordinator for this job, or starts it (exactly one,
// whatever the race between local ranks: a flock decides who starts it, and a
// starter that dies lets go of the lock), then becomes CMD under the shim,
// with pincoh's rank and size the node-local ones. The job's directory on the
// node is src/job/jobdir.ts.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULTS } from '../defaults.js';
import { PincohError } from '../errors.js';
import { errnoName } from '../protocol/errno.js';
import { cannotRun, pincohEnv } from '../job/launch.js';
import { jobName, placementFrom } from '../job/launcher.js';
import { announceRank, clearJobDir, holdLock } from '../job/jobdir.js';
import { isLive } from '../transport/socket-path.js';
import { execReplacing } from '../job/native.js';
import { shimPath } from '../paths.js';
import type { ExecOptions } from './options.js';

const CLI = resolve(import.meta.dirname, '../../bin/pincoh.js');

/** mkdir -p, a level at a time: Node 20's recursive mkdirSync never returns for a path under /proc. */
function makeDirs(dir: string): void {
  if (dirname(dir) !== dir && !existsSync(dirname(dir))) makeDirs(dirname(dir));
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

export async function execCommand(o: ExecOptions): Promise<number> {
  const place = placementFrom(process.env);
  const shim = shimPath();
  const job = jobName(place.job);
  const host = hostname();
  // a job's logs gathered in one place: --output-dir, or PINCOH_OUTPUT_DIR set once for the job (made if missing)
  const outFrom = o.outputDir !== undefined ? '--output-dir' : process.env.PINCOH_OUTPUT_DIR ? 'PINCOH_OUTPUT_DIR' : undefined;
  const out = resolve(o.outputDir ?? (process.env.PINCOH_OUTPUT_DIR || process.cwd()));
  const { fd, dir } = await holdLock(job);
  const sock = join(dir, 'c.sock');
  try {
    if (!(await isLive(sock))) {
      // We start it: the first local rank here, or the next one after a starter died.
      const base = join(out, `pincoh-${host}-${job}`);
      let log: number;
      try {
        if (outFrom) makeDirs(out);
        log = openSync(`${base}.log`, 'a');
      } catch (e) {
        clearJobDir(dir); // nothing started: leave nothing behind (a waiting rank re-makes it)
        const fix = outFrom ? `give ${outFrom} a directory the ranks can write` : 'run where the ranks can write, or give --output-dir';
        throw new PincohError('PINCOH_ERR_COORDINATOR', `cannot write this node's log ${base}.log (${(e as NodeJS.ErrnoException).code}): ${fix}`);
      }
      const args = [CLI, 'serve', '--socket', sock, '--log', `${base}.log`, '--until-ranks', String(place.localSize), '--idle-exit-ms', String(o.idleExitMs ?? DEFAULTS.idleExitMs), ...o.coordinatorArgs];
      if (o.trace) args.push('--trace', `${base}.trace.jsonl`);
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      let exited: string | undefined;
      child.once('exit', (c, sig) => (exited = sig ? `was killed by ${sig}` : `exited with ${c}`));
      child.unref();
      const end = Date.now() + 20_000;
      while (!(await isLive(sock))) {
        if (exited !== undefined || Date.now() > end) {
          if (exited !== undefined) clearJobDir(dir);
          const said = readFileSync(`${base}.log`, 'utf8').trim().split('\n').slice(-3).join('\n');
          throw new PincohError('PINCOH_ERR_COORDINATOR', `the coordinator for job ${job} on ${host} did not start (it ${exited ?? 'did not listen within 20 s'}):\n${said}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    announceRank(dir, place.localRank); // the coordinator waits for this pid to end, whether CMD uses pincoh or not
  } finally {
    closeSync(fd);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...pincohEnv(shim, sock, { rank: place.localRank, size: place.localSize, job, globalRank: place.rank, globalSize: place.size, timeoutMs: o.timeoutMs, rankPid: process.pid }),
  };
  const { why, status } = cannotRun(o.argv[0]!, errnoName(execReplacing(o.argv[0]!, o.argv, env)), env.PATH);
  throw new PincohError('PINCOH_ERR_EXEC', `cannot run ${o.argv[0]}: ${why}`, status); // as a shell says
}
