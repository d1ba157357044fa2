// pincoh-exec (native-shim/exec/pincoh-exec.c), the native rank wrapper: for a
// rank whose node's coordinator already listens it does what `pincoh exec`
// does without starting Node; the first rank starts the coordinator itself
// (one Node: serve); anything else it hands to `pincoh exec`. Run
// here side by side with `pincoh exec`, under each launcher's variables made
// by hand (the real mpirun and srun: cluster.e2e and slurm.e2e).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, itWith, PINCOH_EXEC, prog, run, startProgram, SUMMARY, tempDir, until, type RunResult } from './helpers.js';

const D = prog('driver');
let jobs = 0;
const newJob = () => `n${process.pid}x${++jobs}`;
const TMP = tempDir('exec-native-tmp');

/** Each launcher's variables for rank `rank` of `size`, all on this node. */
const LAUNCHERS: Record<string, (job: string, rank: number, size: number) => NodeJS.ProcessEnv> = {
  'Open MPI': (job, rank, size) => ({
    OMPI_COMM_WORLD_RANK: String(rank),
    OMPI_COMM_WORLD_SIZE: String(size),
    OMPI_COMM_WORLD_LOCAL_RANK: String(rank),
    OMPI_COMM_WORLD_LOCAL_SIZE: String(size),
    OMPI_MCA_ess_base_jobid: job,
  }),
  Slurm: (job, rank, size) => ({ SLURM_PROCID: String(rank), SLURM_NTASKS: String(size), SLURM_LOCALID: String(rank), SLURM_NODEID: '0', SLURM_STEP_TASKS_PER_NODE: `${size}(x1)`, SLURM_JOB_ID: job, SLURM_STEP_ID: '3' }),
  'MPICH Hydra': (job, rank, size) => ({ PMI_RANK: String(rank), PMI_SIZE: String(size), MPI_LOCALRANKID: String(rank), MPI_LOCALNRANKS: String(size), PMI_KVSNAME: `kvs_${job}` }),
  PMIx: (job, rank, size) => ({ PMIX_RANK: String(rank), PMIX_SIZE: String(size), PINCOH_LOCAL_RANK: String(rank), PINCOH_LOCAL_SIZE: String(size), PMIX_NAMESPACE: `${job}@1` }),
};

/** The environment of a rank: the test's, less what would steer it elsewhere, plus the launcher's. */
function rankEnv(launcher: string, job: string, rank: number, size: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: TMP, ...LAUNCHERS[launcher]!(job, rank, size) };
  for (const k of ['XDG_RUNTIME_DIR', 'PINCOH_SOCKET', 'PINCOH_JOB', 'LD_PRELOAD']) delete env[k];
  return env;
}

/** `pincoh exec` (node) or pincoh-exec (native) as a launcher would start it */
const wrapper = (native: boolean, args: string[]): [string, string[]] => (native ? [PINCOH_EXEC, args] : [process.execPath, [CLI, 'exec', ...args]]);

/** What a rank's program sees of pincoh: its variables, sorted (PINCOH_RANK_PID shown as "self" when it is the program's own pid) */
const SHOW = ['sh', '-c', 'env | grep -E "^(PINCOH_[A-Z_]*|LD_PRELOAD)=" | grep -v -E "^PINCOH_(LOCAL_RANK|LOCAL_SIZE|NODE)=" | sed "s/^PINCOH_RANK_PID=$$\\$/PINCOH_RANK_PID=self/" | LC_ALL=C sort'];

/** Rank 0 (pincoh exec) holds the node's coordinator up in a driver waiting on stdin, once it is registered. */
async function holder(launcher: string, job: string, size: number, cwd: string, env: NodeJS.ProcessEnv = {}) {
  const [cmd, args] = wrapper(false, ['--', D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'wait']);
  const h = startProgram(cmd, args, { ...rankEnv(launcher, job, 0, size), ...env });
  await h.waitFor(/^waiting/, 30_000);
  return { ...h, cwd };
}

async function rank(native: boolean, launcher: string, job: string, r: number, size: number, cwd: string, cmd: string[], opts: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const [file, args] = wrapper(native, [...opts, '--', ...cmd]);
  return run('sh', ['-c', 'cd "$0" && exec "$@"', cwd, file, ...args], { ...rankEnv(launcher, job, r, size), ...env }, 60_000);
}

describe('pincoh-exec, the native rank wrapper', () => {
  for (const launcher of Object.keys(LAUNCHERS)) {
    it(`${launcher}: a rank gets from it exactly the environment pincoh exec gives, and is CMD itself`, async () => {
      const cwd = tempDir('exec-native');
      const job = newJob();
      const h = await holder(launcher, job, 2, cwd);
      const viaNode = await rank(false, launcher, job, 1, 2, cwd, SHOW);
      const viaNative = await rank(true, launcher, job, 1, 2, cwd, SHOW, [], { PINCOH_NODE: '/nonexistent/node' }); // the native path or nothing
      expect(viaNative.stderr).toBe('');
      expect(viaNative.stdout).toBe(viaNode.stdout);
      expect(viaNative.stdout).toMatch(/^LD_PRELOAD=\S*libpincoh\.so\nPINCOH_GLOBAL_RANK=1\nPINCOH_GLOBAL_SIZE=2\nPINCOH_JOB=\S+\nPINCOH_RANK=1\nPINCOH_RANK_PID=self\nPINCOH_SIZE=2\nPINCOH_SOCKET=\S+\/c\.sock\n$/);
      // the rank is CMD itself: the process the launcher started (here a sh that execs the wrapper)
      const self = await rank(true, launcher, job, 1, 2, cwd, ['sh', '-c', 'echo $$']);
      expect(self.stdout).toBe(`${self.pid}\n`);
      h.send();
      expect((await h.done).code).toBe(0);
    });
  }

  it('where Node would put the job\'s directory (TMP when TMPDIR is unset, as os.tmpdir()), and --timeout-ms as a number', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const env = { TMPDIR: '', TMP: TMP }; // TMPDIR empty counts as unset for both
    const h = await holder('Open MPI', job, 2, cwd, env);
    const show = [...SHOW];
    const viaNode = await rank(false, 'Open MPI', job, 1, 2, cwd, show, ['--timeout-ms', '0050'], env);
    // no Node to fall back on: the native path or nothing
    const viaNative = await rank(true, 'Open MPI', job, 1, 2, cwd, show, ['--timeout-ms', '0050'], { ...env, PINCOH_NODE: '/nonexistent/node' });
    expect(viaNative.stdout).toBe(viaNode.stdout);
    expect(viaNative.stdout).toContain(`PINCOH_SOCKET=${TMP}/pincoh-`);
    expect(viaNative.stdout).toContain('PINCOH_TIMEOUT_MS=50\n');
    h.send();
    await h.done;
  });

  itWith(['strace'], 'strace', 'with the coordinator listening, the rank starts no Node: the only programs run are pincoh-exec and CMD', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const h = await holder('Open MPI', job, 2, cwd);
    const r = await run('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', join(cwd, 'strace.out'), PINCOH_EXEC, '--', D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'r'], {
      ...rankEnv('Open MPI', job, 1, 2),
    });
    expect(r.lines).toEqual(['map 0 ok', 'reg 0 0']);
    const execs = readFileSync(join(cwd, 'strace.out'), 'utf8').split('\n').filter((l) => /execve\(/.test(l) && !/= -1/.test(l));
    expect(execs.map((l) => l.match(/execve\("([^"]+)"/)![1])).toEqual([PINCOH_EXEC, D]);
    h.send();
    await h.done;
  });

  /** a `node` that notes each start (its first two arguments) in cwd/node-started, then is Node */
  const countedNode = (cwd: string) => {
    const node = join(cwd, 'node');
    writeFileSync(node, `#!/bin/sh\necho "$2" >> ${join(cwd, 'node-started')}\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
    return { node, started: () => (existsSync(join(cwd, 'node-started')) ? readFileSync(join(cwd, 'node-started'), 'utf8').trim().split('\n') : []) };
  };

  it('16 ranks at once: one of them starts the node\'s coordinator itself (one Node: serve), the other 15 wait for it and start none', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const { node, started } = countedNode(cwd);
    const rs = await Promise.all(
      Array.from({ length: 16 }, (_, r) => rank(true, 'Open MPI', job, r, 16, cwd, [D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '30000'], [], { PINCOH_NODE: node })),
    );
    for (const r of rs) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
    expect(started()).toEqual(['serve']);
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    expect(await until(() => existsSync(log) && SUMMARY.test(readFileSync(log, 'utf8')), 15_000)).toBe(true);
    const text = readFileSync(log, 'utf8');
    expect(text.match(/serving on/g)).toHaveLength(1);
    expect(text).toMatch(/16 processes connected, 16 registrations/);
  });

  it('an option for the coordinator (--mremap follow): the starting rank hands it to pincoh exec, which starts it with it (and would say what is wrong with it)', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const { node, started } = countedNode(cwd);
    const [r] = await Promise.all([rank(true, 'Open MPI', job, 0, 1, cwd, ['true'], ['--mremap', 'follow'], { PINCOH_NODE: node })]);
    expect([r!.code, r!.stderr]).toEqual([0, '']);
    expect(started()).toEqual(['exec']);
    expect(readFileSync(join(cwd, `pincoh-${hostname()}-${job}.log`), 'utf8')).toMatch(/^pincoh: serving on \S+ \(mremap follow\)/);
    const bad = await rank(true, 'Open MPI', newJob(), 0, 1, cwd, ['true'], ['--mremap', 'sideways'], { PINCOH_NODE: node });
    expect([bad.code, bad.stderr]).toEqual([2, (await rank(false, 'Open MPI', newJob(), 0, 1, cwd, ['true'], ['--mremap', 'sideways'])).stderr]);
  });

  it('the coordinator it starts holds none of the launcher\'s descriptors (a launcher may wait for their end)', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const marker = join(cwd, 'launcher-fd');
    writeFileSync(marker, '');
    // rank 0 starts the coordinator with descriptor 5 open (as PMI_FD is), and stays until told
    const h = startProgram('sh', ['-c', `exec 5<"${marker}"; exec "$0" -- "$1" map 0 4096 reg 0 0 4096 r wait`, PINCOH_EXEC, D], { ...rankEnv('Open MPI', job, 0, 1) });
    await h.waitFor(/^waiting/, 30_000);
    const pid = Number((await run('pgrep', ['-f', `serve --socket ${TMP}/pincoh-${process.getuid?.() ?? 0}-${job}/c.sock`])).stdout.trim());
    expect(pid).toBeGreaterThan(0);
    const fds = (await run('sh', ['-c', `for f in /proc/${pid}/fd/*; do readlink "$f"; done`])).lines;
    expect(fds.length).toBeGreaterThan(3);
    expect(fds.filter((f) => f === marker)).toEqual([]);
    h.send();
    expect((await h.done).code).toBe(0);
  });

  it('mixed with pincoh exec in one job: 16 ranks, half native, find exactly one coordinator', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    const rs = await Promise.all(Array.from({ length: 16 }, (_, r) => rank(r % 2 === 1, 'Open MPI', job, r, 16, cwd, [D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '30000'])));
    for (const r of rs) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    expect(await until(() => existsSync(log) && SUMMARY.test(readFileSync(log, 'utf8')), 15_000)).toBe(true);
    expect(readFileSync(log, 'utf8').match(/serving on/g)).toHaveLength(1);
  });

  it('what it does not read itself, pincoh exec says: a bad option, no launcher, --help; a CMD that cannot run is 127 as there', async () => {
    const cwd = tempDir('exec-native');
    const job = newJob();
    for (const args of [['--mremap', 'sideways', '--', 'true'], ['--help']]) {
      const [n, t] = await Promise.all([rank(true, 'Open MPI', job, 0, 1, cwd, [], args), rank(false, 'Open MPI', job, 0, 1, cwd, [], args)]);
      expect([n.code, n.stdout, n.stderr]).toEqual([t.code, t.stdout, t.stderr]);
    }
    const bare: NodeJS.ProcessEnv = { ...process.env, TMPDIR: TMP };
    for (const k of Object.keys(bare)) if (/^(OMPI_|SLURM_|PMI_|PMIX_|MPI_)/.test(k)) delete bare[k];
    const [n, t] = await Promise.all([run(PINCOH_EXEC, ['--', 'true'], bare), run(process.execPath, [CLI, 'exec', '--', 'true'], bare)]);
    expect(n.code).toBe(2);
    expect([n.code, n.stderr]).toEqual([t.code, t.stderr]);
    // with a coordinator listening, the native path itself says it
    const h = await holder('Open MPI', job, 2, cwd);
    const missing = await rank(true, 'Open MPI', job, 1, 2, cwd, ['no-such-program-here']);
    expect([missing.code, missing.stderr]).toEqual([127, 'pincoh: cannot run no-such-program-here: not found [PINCOH_ERR_EXEC]\n']);
    h.send();
    await h.done;
  });
});
