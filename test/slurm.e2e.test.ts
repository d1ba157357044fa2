// `pincoh exec` under Slurm's srun (issue 10), on a one-node Slurm cluster
// the test starts (test/cluster/slurm: munged, slurmctld and slurmd, as root,
// everything in a directory of its own). Slurm starts each task itself
// (slurmstepd), sets its variables, and with proctrack/linuxproc leaves a
// process the tasks started alone once they end, as the node's coordinator is.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { AS_USER, CLI, PINCOH_EXEC, ROOT, RUN_UID, asRootReaching, crashOnceReady, example, itAsRootWith, onPath, prog, run, tempDir, until, type RunResult, SUMMARY } from './helpers.js';
import { EOWNERDEAD } from '../src/protocol/errno.js';

const SLURM = resolve(ROOT, 'test/cluster/slurm');
const TOOLS = ['srun', 'slurmctld', 'slurmd', 'munged'];
const itSlurm = (name: string, fn: () => Promise<void>) => itAsRootWith(TOOLS, 'slurmctld slurmd slurm-client munge', name, fn, 120_000);
let dir = '';

/** A Slurm cluster for the tests of the describe block that calls this (one at a time: fixed ports). */
function slurmCluster(proctrack: 'linuxproc' | 'cgroup'): void {
  beforeAll(() => {
    if (!TOOLS.every(onPath) || process.getuid?.() !== 0) return;
    dir = mkdtempSync(join(tmpdir(), 'pincoh-slurm-'));
    // as root; in the "as a user" project srun and so the tasks are the user's, and
    // slurmstepd starts them in slurmd's mount namespace: there the tree must be theirs to reach
    execFileSync(...asRootReaching(SLURM, ['up', dir, proctrack]), { stdio: ['ignore', 'ignore', 'inherit'] });
  }, 60_000);
  afterAll(() => {
    if (dir) execFileSync(SLURM, ['down', dir], { stdio: ['ignore', 'ignore', 'inherit'] }); // removes dir
    dir = '';
  });
}

/** srun -n N, each task `pincoh exec -- CMD...`, in cwd */
function srun(cwd: string, cmd: string[], n = 4, native = false): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: join(dir, 'slurm.conf') };
  for (const k of Object.keys(env)) if (k.startsWith('PINCOH_') || k === 'LD_PRELOAD') delete env[k];
  const wrapper = native ? [PINCOH_EXEC] : [process.execPath, CLI, 'exec'];
  return run('sh', ['-c', 'cd "$0" && n=$1 && shift && exec srun -n "$n" "$@"', cwd, String(n), ...wrapper, '--', ...cmd], env, 60_000);
}

/** The node's coordinator log, once it has ended: the summary written, its directory gone, nothing else in cwd. */
async function nodeLog(cwd: string): Promise<{ job: string; log: string }> {
  const name = () => readdirSync(cwd).find((f) => f.endsWith('.log'));
  const path = () => join(cwd, name() ?? 'none');
  expect(await until(() => name() !== undefined && SUMMARY.test(readFileSync(path(), 'utf8')), 10_000)).toBe(true);
  const m = new RegExp(`^pincoh-${hostname()}-(\\d+\\.\\d+)\\.log$`).exec(name()!);
  expect(readdirSync(cwd)).toEqual([m ? name() : 'pincoh-HOST-JOB.STEP.log']);
  const job = m![1]!;
  expect(statSync(path()).uid).toBe(RUN_UID); // the coordinator ran as the tests' user (the one srun ran as)
  expect(await until(() => !existsSync(join(tmpdir(), `pincoh-${RUN_UID}-${job}`)), 5000)).toBe(true);
  return { job, log: readFileSync(path(), 'utf8') };
}

/** pids of the processes whose command line contains `args` (NUL-separated) */
const running = (args: string) =>
  readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(args);
    } catch {
      return false; // gone meanwhile
    }
  });

describe(`pincoh exec under srun, one node (proctrack/linuxproc: what the tasks leave runs on)${AS_USER}`, () => {
  slurmCluster('linuxproc');

  itSlurm('ring: four tasks, one coordinator for the step; it ends with them, leaving its log', async () => {
    const cwd = tempDir('slurm-job');
    const r = await srun(cwd, [example('ring'), '300']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.sort()).toEqual([0, 1, 2, 3].map((k) => `rank ${k} of 4: 300 iterations from rank ${(k + 3) % 4}, 0 bad`));
    const { job, log } = await nodeLog(cwd);
    expect(log).toMatch(`serving on /tmp/pincoh-${RUN_UID}-${job}/c.sock (mremap invalidate); ends once 4 ranks have come and gone\n`);
    expect(log).toMatch(/^pincoh: 4 processes connected, 4 registrations, 4 invalidations \(exit 4\), .* 4 attachments, /m);
    expect(running(`serve\0--socket\0/tmp/pincoh-${RUN_UID}-${job}/c.sock`)).toEqual([]); // the coordinator is gone too
  });

  itSlurm('ring through pincoh-exec, the native wrapper: the same four tasks, one coordinator, its log', async () => {
    const cwd = tempDir('slurm-job');
    const r = await srun(cwd, [example('ring'), '300'], 4, true);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.sort()).toEqual([0, 1, 2, 3].map((k) => `rank ${k} of 4: 300 iterations from rank ${(k + 3) % 4}, 0 bad`));
    const { job, log } = await nodeLog(cwd);
    expect(log.match(/serving on/g)).toHaveLength(1);
    expect(log).toMatch(`serving on /tmp/pincoh-${RUN_UID}-${job}/c.sock (mremap invalidate); ends once 4 ranks have come and gone\n`);
    expect(log).toMatch(/^pincoh: 4 processes connected, 4 registrations, 4 invalidations \(exit 4\), .* 4 attachments, /m);
  });

  itSlurm('a task that crashes: the tasks waiting in the barrier get EOWNERDEAD at once and end, so the step ends without a kill', async () => {
    const cwd = tempDir('slurm-job');
    const r = await srun(cwd, ['sh', '-c', crashOnceReady(3, [0, 1, 2], 'bar 60000')]);
    expect(r.code).not.toBe(0);
    expect(r.lines.filter((l) => l.startsWith('bar'))).toEqual([`bar -${EOWNERDEAD}`, `bar -${EOWNERDEAD}`, `bar -${EOWNERDEAD}`]);
    const { job, log } = await nodeLog(cwd);
    // the signal shows only if the coordinator looks before slurmstepd reaps the task
    expect(log).toMatch(new RegExp(`^pincoh: pid \\d+ \\(driver, rank 3\\) of job ${job.replace('.', '\\.')} died without exiting \\((SIGSEGV|killed or crashed)\\); its job's barriers and attaches now fail with EOWNERDEAD$`, 'm'));
  });
});

// Most production clusters track a step's processes in a cgroup: once the
// last task ends, Slurm SIGKILLs everything left in it, the node's coordinator
// too. The last task's farewell holds it until the coordinator has written its
// summary and removed its directory. A task killed says no farewell, and the
// kill races the coordinator's own end: when the coordinator loses, its log
// ends with the summary so far, saying so, and its directory stays, until the
// next job's first rank on the node removes it (that removal is tested
// deterministically in test/exec.e2e.test.ts).
describe(`pincoh exec under srun, one node (proctrack/cgroup: what the tasks leave is killed)${AS_USER}`, () => {
  slurmCluster('cgroup');

  /** the one log in cwd: its job (JOB.STEP) and text, read at once */
  const onlyLog = (cwd: string) => {
    const names = readdirSync(cwd);
    const m = new RegExp(`^pincoh-${hostname()}-(\\d+\\.0)\\.log$`).exec(names[0] ?? '');
    expect(m && names.length === 1 ? 'one log' : names).toBe('one log');
    return { job: m![1]!, log: readFileSync(join(cwd, names[0]!), 'utf8') };
  };

  for (const native of [false, true])
    itSlurm(`a one-task step through ${native ? 'pincoh-exec' : 'pincoh exec'}: when srun returns, the node's log is whole and the job's directory gone, although Slurm kills what the step leaves`, async () => {
      const cwd = tempDir('slurm-job');
      // one task that exits at once: before the farewell, Slurm's kill came before the coordinator's end 10 times of 10
      const r = await srun(cwd, [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r'], 1, native);
      expect([r.code, r.lines]).toEqual([0, ['map 0 ok', 'reg 0 0']]);
      // read at once: the task's farewell was answered only once the coordinator had written its summary
      const { job, log } = onlyLog(cwd);
      expect(log.trimEnd().split('\n').at(-1)).toMatch(/^pincoh: 1 process connected, 1 registration, 1 invalidation \(exit 1\), /);
      expect(existsSync(join(tmpdir(), `pincoh-${RUN_UID}-${job}`))).toBe(false);
    });

  itSlurm('a task killed, so no farewell: the coordinator ends before the kill, or is killed and the next job on the node removes what it left', async () => {
    const cwd = tempDir('slurm-job');
    const first = await srun(cwd, ['sh', '-c', 'kill -KILL $$'], 1);
    expect(first.code).not.toBe(0);
    const { job } = onlyLog(cwd);
    const left = join(tmpdir(), `pincoh-${RUN_UID}-${job}`);
    // read once its coordinator is gone, by its own end or Slurm's kill
    expect(await until(() => running(`serve\0--socket\0${left}/c.sock`).length === 0)).toBe(true);
    const stayed = existsSync(left);
    // killed or not, the log's last line says what the job did: the summary, or the summary so far and that it was cut short
    const last = readFileSync(join(cwd, `pincoh-${hostname()}-${job}.log`), 'utf8').trimEnd().split('\n').at(-1)!;
    if (stayed) expect(last).toMatch(/^pincoh: so far, at .* UTC: no process connected.*\(the coordinator was running then: if the log ends here, it was killed before its job ended\) *$/);
    else expect(last).toMatch(/^pincoh: no process connected$/);
    const next = tempDir('slurm-job');
    const second = await srun(next, [example('ring'), '100'], 2);
    expect(second.code).toBe(0);
    expect(existsSync(left)).toBe(false);
    // the killed job's own log says so, not the next job's
    expect(onlyLog(next).log).not.toMatch(/removed/);
    expect(readFileSync(join(cwd, `pincoh-${hostname()}-${job}.log`), 'utf8').includes(` UTC the next job on this node removed ${left}, which this job's coordinator left: it was killed before its job ended\n`)).toBe(stayed);
  });
});
