// `pincoh exec` under a launcher (issue 10), with the launcher's environment
// made by hand here (Open MPI's variables); the real mpirun, across two
// "nodes", is test/cluster.e2e.test.ts. Exactly one coordinator per node per
// job, whatever the race; it ends with its job; the rank is CMD itself.

import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AS_USER, CLI, giveToUser, itAsRootWith, PINCOH_EXEC, prog, run, RUN_UID, spawnAs, tempDir, until, type RunResult, SUMMARY } from './helpers.js';
import { EOWNERDEAD, ETIMEDOUT } from '../src/protocol/errno.js';

let jobs = 0;
const newJob = () => `t${process.pid}x${++jobs}`;
// The ranks' /tmp, so the job directories here (and the one starter that
// removes dead ones) see only this file's jobs
const TMP = tempDir('exec-tmp');
// XDG_RUNTIME_DIR, where a user's session has one, would take the job
// directories out of TMP: left out here but where a test gives it
const { XDG_RUNTIME_DIR: _session, ...ENV } = process.env;
const ompi = (job: string, rank: number, size: number): NodeJS.ProcessEnv => ({
  ...ENV,
  TMPDIR: TMP,
  OMPI_COMM_WORLD_RANK: String(rank),
  OMPI_COMM_WORLD_SIZE: String(size),
  OMPI_COMM_WORLD_LOCAL_RANK: String(rank),
  OMPI_COMM_WORLD_LOCAL_SIZE: String(size),
  OMPI_MCA_ess_base_jobid: job,
});
const jobDir = (job: string) => join(TMP, `pincoh-${RUN_UID}-${job}`);

/** size ranks of `job` at once, each `pincoh exec OPTS -- CMD...` (native: pincoh-exec) in `cwd` */
function ranks(job: string, size: number, cmd: (rank: number) => string[], cwd: string, opts: string[] = [], env: NodeJS.ProcessEnv = {}, native = false): Promise<RunResult[]> {
  return Promise.all(
    Array.from({ length: size }, (_, r) =>
      new Promise<RunResult>((res) => {
        const [file, args] = native ? [PINCOH_EXEC, [...opts, '--', ...cmd(r)]] : [process.execPath, [CLI, 'exec', ...opts, '--', ...cmd(r)]];
        const c = spawnAs(file, args, { env: { ...ompi(job, r, size), ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout!.on('data', (d) => (stdout += d));
        c.stderr!.on('data', (d) => (stderr += d));
        c.on('close', (code, signal) => res({ code, signal, stdout, stderr, lines: stdout.split('\n').filter(Boolean), pid: c.pid ?? -1 }));
      }),
    ),
  );
}

/** the node's coordinator has ended: its log closes with the summary, its directory is gone */
async function ended(cwd: string, job: string): Promise<string> {
  const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
  expect(await until(() => existsSync(log) && SUMMARY.test(readFileSync(log, 'utf8')) && !existsSync(jobDir(job)), 10_000)).toBe(true);
  return readFileSync(log, 'utf8');
}

describe(`pincoh exec${AS_USER}`, () => {
  it('16 local ranks started at once find exactly one coordinator; it ends with them, leaving nothing but its log', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const rs = await ranks(job, 16, () => [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '20000'], cwd);
    for (const r of rs) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
    const log = await ended(cwd, job);
    expect(log.match(/serving on/g)).toHaveLength(1);
    expect(log).toMatch(/ends once 16 ranks have come and gone/);
    expect(log).toMatch(/16 processes connected, 16 registrations/);
    expect(log).not.toMatch(/so far/); // the line so far became the summary
    expect(log.trimEnd().split('\n').at(-1)).toMatch(SUMMARY);
  });

  for (const native of [false, true])
    it(`${native ? 'pincoh-exec' : 'pincoh exec'}: once the job's last rank has ended, its node's log is whole and its directory gone, with no wait`, async () => {
      const cwd = tempDir('exec');
      const job = newJob();
      // two ranks register; two never call pincoh, each running /bin/true twice (their children are no ranks: they say nothing)
      const cmd = (r: number) => (r < 2 ? [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r'] : ['sh', '-c', '/bin/true; /bin/true']);
      const rs = await ranks(job, 4, cmd, cwd, [], {}, native);
      expect(rs.map((r) => [r.code, r.stderr])).toEqual([[0, ''], [0, ''], [0, ''], [0, '']]);
      // read at once, as a script does after mpirun returns: each rank said farewell at exit, and the last was answered once the log was whole
      const log = readFileSync(join(cwd, `pincoh-${hostname()}-${job}.log`), 'utf8');
      expect(log.trimEnd().split('\n').at(-1)).toMatch(/^pincoh: 2 processes connected, 2 registrations, .*, 2 ranks ended without a pincoh call; libc's own calls: code patch in 4 processes$/);
      expect(existsSync(jobDir(job))).toBe(false);
    });

  it('a node coordinator that does not answer the last rank\'s farewell (stopped) holds that rank\'s exit for --timeout-ms at most, and the rank says so', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    const held = spawnAs(process.execPath, [CLI, 'exec', '--', prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'wait'], { env: ompi(job, 0, 2), cwd, stdio: ['pipe', 'ignore', 'ignore'] });
    let pid = 0;
    try {
      expect(await until(() => existsSync(log) && /so far, .*: 1 process connected/.test(readFileSync(log, 'utf8')), 15_000)).toBe(true);
      pid = Number((await run('pgrep', ['-f', `serve --socket ${jobDir(job)}/c.sock`])).stdout.trim());
      process.kill(pid, 'SIGSTOP');
      // rank 0 leaves first: not the last, it writes its farewell and goes (the kernel holds the connection meanwhile)
      const gone = new Promise((r) => held.once('close', r));
      held.stdin!.end();
      await gone;
      // rank 1 is the job's last to leave: it waits for an answer that cannot come
      const r = await run(process.execPath, [CLI, 'exec', '--timeout-ms', '300', '--', '/bin/true'], ompi(job, 1, 2));
      expect([r.code, r.stderr]).toEqual([0, `pincoh[${r.pid}]: this rank's coordinator did not answer its farewell within PINCOH_TIMEOUT_MS; the node's log may lack the job's summary for a while\n`]);
      process.kill(pid, 'SIGCONT');
      pid = 0;
      expect(await ended(cwd, job)).toMatch(/^pincoh: 1 process connected, 1 registration, .*, 1 rank ended without a pincoh call; /m);
    } finally {
      if (pid) process.kill(pid, 'SIGCONT');
      held.kill('SIGKILL');
    }
  });

  it('a node coordinator SIGKILLed mid-job (as Slurm\'s cgroup kill does) leaves a log whose last line is the summary up to then, saying it was cut short', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    // two ranks that register and then wait on stdin: spawned as the launcher would, kept running
    const held = [0, 1].map((r) =>
      spawnAs(process.execPath, [CLI, 'exec', '--', prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'wait'], { env: ompi(job, r, 2), cwd, stdio: ['pipe', 'ignore', 'ignore'] }),
    );
    try {
      const soFar = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      expect(await until(() => /so far, .*: 2 processes connected, 2 registrations/.test(soFar()), 15_000)).toBe(true);
      const pid = Number((await run('pgrep', ['-f', `serve --socket ${jobDir(job)}/c.sock`])).stdout.trim());
      expect(pid).toBeGreaterThan(0);
      process.kill(pid, 'SIGKILL');
      // gone, or a zombie its parent (rank 0, which started it) has not reaped
      const dead = () => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
        } catch {
          return true;
        }
      };
      expect(await until(dead)).toBe(true);
      const lines = soFar().trimEnd().split('\n');
      expect(lines[0]).toMatch(/^pincoh: serving on /);
      expect(lines.at(-1)).toMatch(
        /^pincoh: so far, at \d\d:\d\d:\d\d UTC: 2 processes connected, 2 registrations, .* \(the coordinator was running then: if the log ends here, it was killed before its job ended\) *$/,
      );
      expect(soFar()).not.toMatch(SUMMARY);
    } finally {
      for (const h of held) h.kill('SIGKILL');
      rmSync(jobDir(job), { recursive: true, force: true });
    }
  });

  it('a lock holder that dies (a starter killed as it starts the coordinator) does not wedge the rest: they wait, then one starts it', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    mkdirSync(jobDir(job), { mode: 0o700 });
    giveToUser(jobDir(job)); // as a rank of the job made it
    // flock(1) hands the locked descriptor to its command too: kill both
    const holder = spawnAs('flock', [join(jobDir(job), 'lock'), 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      expect(await until(() => existsSync(join(jobDir(job), 'lock')))).toBe(true);
      const waiting = ranks(job, 4, () => [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '20000'], cwd);
      await until(() => false, 2000); // time enough for all four to start and reach the lock
      expect([existsSync(join(jobDir(job), 'c.sock')), readdirSync(cwd)]).toEqual([false, []]); // nobody got past it
      process.kill(-holder.pid!, 'SIGKILL');
      for (const r of await waiting) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
      expect((await ended(cwd, job)).match(/serving on/g)).toHaveLength(1);
    } finally {
      try {
        process.kill(-holder.pid!, 'SIGKILL');
      } catch {
        /* killed above */
      }
    }
  });

  it('the rank is CMD itself: same pid, its own exit status and signal; the local rank and size are node-local, the global ones in PINCOH_GLOBAL_*', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const [a, b] = await ranks(job, 2, (r) => (r === 0 ? ['sh', '-c', 'echo $$ $PINCOH_RANK $PINCOH_SIZE $PINCOH_GLOBAL_RANK $PINCOH_GLOBAL_SIZE; exit 7'] : ['sh', '-c', 'kill -TERM $$']), cwd);
    expect(a!.lines).toEqual([`${a!.pid} 0 2 0 2`]);
    expect(a!.code).toBe(7);
    expect(b!.signal).toBe('SIGTERM');
    // sh never spoke to the coordinator, which ends with its ranks all the same (not after 30 s idle):
    // rank 0 said at its exit what the shim did in it (the summary counts it); rank 1, killed, could
    // not, and is named (its pid from the rank file)
    const log = await ended(cwd, job);
    expect(log).toMatch(/^pincoh: no process connected \(1 rank ended without a pincoh call, the shim running in it\); libc's own calls: code patch in 1 process$/m);
    expect(log).not.toMatch(new RegExp(`pid ${a!.pid}`));
    expect(log).toMatch(new RegExp(`^pincoh: rank 1 \\(pid ${b!.pid}\\) ended( by SIGTERM)? without connecting: it made no pincoh call, or died before its first \\(the launcher has its exit status\\)$`, 'm'));
  });

  it('CMD gets what the launcher gave the rank: signals as they were (not Node ignoring SIGPIPE and SIGXFSZ), the PMI_FD descriptor', async () => {
    const cwd = tempDir('exec');
    const look = 'grep -E "^Sig(Ign|Blk)" /proc/self/status; ls /proc/self/fd/5 >/dev/null && echo fd 5 open';
    const bare = await run('sh', ['-c', `exec 5</dev/null; ${look}`]);
    expect(bare.lines).toEqual(['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000', 'fd 5 open']);
    const job = newJob();
    const r = await run('sh', ['-c', `cd "$0"; exec 5</dev/null; PMI_FD=5 exec "$1" "$2" exec -- sh -c '${look}'`, cwd, process.execPath, CLI], ompi(job, 0, 1));
    expect(r.lines).toEqual(bare.lines);
    await ended(cwd, job);
  });

  it('two jobs on one node have a coordinator each and never see the names of the other', async () => {
    const cwd = tempDir('exec');
    const [one, two] = [newJob(), newJob()];
    const D = prog('driver');
    const [ones, twos] = await Promise.all([
      // job one: rank 1 finds rank 0's name; it stays published until rank 1 has slept
      ranks(one, 2, (r) => (r === 0 ? [D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'pub', 'shared', '0', 'bar', '20000'] : [D, 'att', 'shared', '20000', 'sleep', '3000', 'bar', '20000']), cwd),
      // job two, meanwhile: the same name is never there
      ranks(two, 1, () => [D, 'att', 'shared', '2500'], cwd),
    ]);
    expect(ones.map((r) => r.lines)).toEqual([['map 0 ok', 'reg 0 0', 'pub 0', 'bar 0'], ['att 0 0', 'bar 0']]);
    expect(twos[0]!.lines).toEqual([`att -1 -${ETIMEDOUT}`]);
    for (const j of [one, two]) expect((await ended(cwd, j)).match(/serving on/g)).toHaveLength(1);
  });

  it('a CMD that cannot run: 127 (126 when not executable), as a shell says, and the coordinator still ends', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const [missing, notExec] = await ranks(job, 2, (r) => [r === 0 ? '/nonexistent/prog' : cwd], cwd);
    expect({ code: missing!.code, stderr: missing!.stderr }).toEqual({ code: 127, stderr: 'pincoh: cannot run /nonexistent/prog: not found [PINCOH_ERR_EXEC]\n' });
    expect({ code: notExec!.code, stderr: notExec!.stderr }).toEqual({ code: 126, stderr: `pincoh: cannot run ${cwd}: permission denied [PINCOH_ERR_EXEC]\n` });
    expect(await ended(cwd, job)).toMatch(/^pincoh: no process connected$/m);
  });

  for (const native of [false, true])
    it(`${native ? 'pincoh-exec' : 'pincoh exec'}: a bare name on no directory of PATH is "not found" (127) even past a directory it may not search, as a shell says; a file on PATH that cannot run is 126`, async () => {
      const cwd = tempDir('exec');
      const job = newJob();
      // root's, 0700: a directory the ranks may not search in the user project (root searches anything)
      const closed = join(tempDir('exec-closed'), 'bin');
      mkdirSync(closed, { mode: 0o700 });
      const open = join(cwd, 'bin');
      mkdirSync(open);
      writeFileSync(join(open, 'plain-file'), 'not a program\n', { mode: 0o644 });
      giveToUser(open);
      const PATH = `${closed}:${open}:${process.env.PATH}`;
      const [missing, plain] = await ranks(job, 2, (r) => [r === 0 ? 'pincoh-no-such-command' : 'plain-file'], cwd, [], { PATH }, native);
      expect([missing!.code, missing!.stderr]).toEqual([127, 'pincoh: cannot run pincoh-no-such-command: not found [PINCOH_ERR_EXEC]\n']);
      expect([plain!.code, plain!.stderr]).toEqual([126, 'pincoh: cannot run plain-file: permission denied [PINCOH_ERR_EXEC]\n']);
      await ended(cwd, job);
    });

  it('a log it cannot write: exit 2 naming the file and the way out, and nothing left behind', async () => {
    const cwd = tempDir('exec');
    writeFileSync(join(cwd, 'file'), '');
    // (under /proc: Node's own recursive mkdir never returns there)
    const cases = [
      ['--output-dir', {}, ['--output-dir', `${cwd}/file/logs`], `${cwd}/file/logs`, 'ENOTDIR'],
      ['PINCOH_OUTPUT_DIR', { PINCOH_OUTPUT_DIR: `${cwd}/file/logs` }, [], `${cwd}/file/logs`, 'ENOTDIR'],
      ['PINCOH_OUTPUT_DIR', { PINCOH_OUTPUT_DIR: '/proc/pincoh-nope/logs' }, [], '/proc/pincoh-nope/logs', 'ENOENT'],
    ] as const;
    for (const native of [false, true])
      for (const [how, env, opts, dir, code] of cases) {
        const job = newJob();
        const [r] = await ranks(job, 1, () => ['true'], cwd, [...opts], env, native);
        expect({ code: r!.code, stderr: r!.stderr }).toEqual({
          code: 2,
          stderr: `pincoh: cannot write this node's log ${dir}/pincoh-${hostname()}-${job}.log (${code}): give ${how} a directory the ranks can write [PINCOH_ERR_COORDINATOR]\n`,
        });
        expect(existsSync(jobDir(job))).toBe(false);
      }
  });

  for (const native of [false, true])
    it(`${native ? 'pincoh-exec' : 'pincoh exec'}: PINCOH_OUTPUT_DIR gathers a job's logs in a directory it makes; --output-dir has the last word`, async () => {
      const cwd = tempDir('exec');
      const [job, other] = [newJob(), newJob()];
      await ranks(job, 2, () => ['true'], cwd, [], { PINCOH_OUTPUT_DIR: join(cwd, 'logs', job) }, native);
      await ranks(other, 1, () => ['true'], cwd, ['--output-dir', join(cwd, 'given')], { PINCOH_OUTPUT_DIR: join(cwd, 'logs', other) }, native);
      expect(readdirSync(cwd).sort()).toEqual(['given', 'logs']);
      expect(readdirSync(join(cwd, 'logs'))).toEqual([job]);
      expect(readFileSync(join(cwd, 'logs', job, `pincoh-${hostname()}-${job}.log`), 'utf8')).toMatch(/^pincoh: no process connected \(2 ranks ended without a pincoh call/m);
      expect(readdirSync(join(cwd, 'given'))).toEqual([`pincoh-${hostname()}-${other}.log`]);
    });

  it('the rank that starts a coordinator removes job directories nothing uses any more, and only those', async () => {
    const cwd = tempDir('exec');
    const [dead, locked, running, listening] = [newJob(), newJob(), newJob(), newJob()];
    for (const j of [dead, locked, running, listening]) {
      mkdirSync(jobDir(j), { mode: 0o700 });
      writeFileSync(join(jobDir(j), 'lock'), '');
    }
    writeFileSync(join(jobDir(dead), 'c.sock'), ''); // not a socket any more: its coordinator was killed
    writeFileSync(join(jobDir(dead), 'rank-0'), '999999999 1\n');
    // the dead job's own log, ending with its summary so far, as a killed coordinator leaves it
    const deadLog = join(tempDir('exec-dead'), 'pincoh-node-dead.log');
    writeFileSync(deadLog, 'pincoh: so far, at 10:00:00 UTC: no process connected (the coordinator was running then: if the log ends here, it was killed before its job ended)\n');
    giveToUser(deadLog);
    writeFileSync(join(jobDir(dead), 'log'), deadLog);
    const holder = spawnAs('flock', [join(jobDir(locked), 'lock'), 'sleep', '60'], { stdio: 'ignore', detached: true });
    const stat = readFileSync('/proc/self/stat', 'utf8');
    writeFileSync(join(jobDir(running), 'rank-0'), `${process.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]}\n`);
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(jobDir(listening), 'c.sock'), r));
    for (const j of [dead, locked, running, listening]) giveToUser(jobDir(j)); // as the job's ranks made them (its socket: the user's to connect to)
    try {
      await until(() => false, 200); // flock has the lock
      const [r] = await ranks(newJob(), 1, () => ['true'], cwd);
      expect(r!.code).toBe(0);
      expect([dead, locked, running, listening].map((j) => existsSync(jobDir(j)))).toEqual([false, true, true, true]);
      // the dead job's log is told, not this job's
      expect(readFileSync(deadLog, 'utf8').split('\n').at(-2)).toMatch(
        new RegExp(`^pincoh: at \\d\\d:\\d\\d:\\d\\d UTC the next job on this node removed ${jobDir(dead)}, which this job's coordinator left: it was killed before its job ended$`),
      );
      expect(readFileSync(join(cwd, readdirSync(cwd)[0]!), 'utf8')).not.toMatch(/removed/);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
      server.close();
      for (const j of [locked, running, listening]) rmSync(jobDir(j), { recursive: true, force: true });
    }
  });

  // what another user could make first in a shared TMPDIR (a directory of ours
  // but open to others stands for it without root; the root test below is the real one)
  const squatted = async (squat: (dir: string) => void) => {
    const cwd = tempDir('exec');
    const job = newJob();
    squat(jobDir(job));
    try {
      const rs = await ranks(job, 2, () => [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '20000'], cwd);
      for (const r of rs) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
      const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
      expect(await until(() => existsSync(log) && SUMMARY.test(readFileSync(log, 'utf8')) && !existsSync(`${jobDir(job)}+1`), 10_000)).toBe(true);
      expect(readFileSync(log, 'utf8')).toMatch(`serving on ${jobDir(job)}+1/c.sock`);
      expect(readdirSync(jobDir(job))).toEqual(['theirs']); // left as it was
    } finally {
      rmSync(jobDir(job), { recursive: true, force: true });
    }
  };

  it('a job directory name taken by a directory that is not private (0755): the job takes the next name, leaving it be', async () => {
    await squatted((dir) => {
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'theirs'), '');
      giveToUser(dir); // ours but for its mode
    });
  });

  itAsRootWith(['chown'], 'coreutils', 'a job directory name another user made first: the job takes the next name, never waits on theirs', async () => {
    await squatted((dir) => {
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, 'theirs'), '');
      chownSync(join(dir, 'theirs'), 65534, 65534);
      chownSync(dir, 65534, 65534);
    });
  });

  it('XDG_RUNTIME_DIR, when set and private, holds the job directory instead of TMPDIR', async () => {
    const cwd = tempDir('exec');
    const xdg = tempDir('exec-xdg');
    chmodSync(xdg, 0o700);
    const job = newJob();
    const rs = await ranks(job, 2, () => [prog('driver'), 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'bar', '20000'], cwd, [], { XDG_RUNTIME_DIR: xdg });
    for (const r of rs) expect(r.lines).toEqual(['map 0 ok', 'reg 0 0', 'bar 0']);
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    expect(await until(() => existsSync(log) && SUMMARY.test(readFileSync(log, 'utf8')), 10_000)).toBe(true);
    expect(readFileSync(log, 'utf8')).toMatch(`serving on ${join(xdg, `pincoh-${RUN_UID}-${job}`)}/c.sock`);
    expect(existsSync(jobDir(job))).toBe(false);
    expect(await until(() => readdirSync(xdg).length === 0)).toBe(true); // cleared as it ends
  });

  it('a rank that connects after another crashed, with no member left, gets -EOWNERDEAD: the failure is the job\'s for its lifetime', async () => {
    const cwd = tempDir('exec');
    const job = newJob();
    const log = join(cwd, `pincoh-${hostname()}-${job}.log`);
    const D = prog('driver');
    // rank 0 starts its program once the node's log names rank 1's crash
    const late = `while ! grep -q 'died without exiting' ${log} 2>/dev/null; do sleep 0.05; done; exec ${D} map 0 4096 reg 0 0 4096 r bar 5000`;
    const [r0, r1] = await ranks(job, 2, (r) => (r === 1 ? [D, 'map', '0', '4096', 'reg', '0', '0', '4096', 'r', 'segv'] : ['sh', '-c', late]), cwd);
    expect(r1!.signal).toBe('SIGSEGV');
    expect(r0!.lines).toEqual(['map 0 ok', 'reg 0 0', `bar -${EOWNERDEAD}`]);
    await ended(cwd, job);
  });

  it('serve --until-ranks given a directory of other things removes only what pincoh put there', async () => {
    const dir = tempDir('exec');
    writeFileSync(join(dir, 'data.txt'), 'keep me');
    const r = await run(process.execPath, [CLI, 'serve', '--socket', join(dir, 'c.sock'), '--until-ranks', '1', '--idle-exit-ms', '200']);
    expect(r.stderr).toMatch(/ends once 1 rank has come and gone\n/);
    expect(r.code).toBe(0);
    expect(readdirSync(dir)).toEqual(['data.txt']);
  });

  it('a node coordinator stopped by SIGTERM says its summary, clears its directory, and nothing more', async () => {
    const dir = join(tempDir('exec'), 'job');
    const child = spawnAs(process.execPath, [CLI, 'serve', '--socket', join(dir, 'c.sock'), '--until-ranks', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    expect(await until(() => err.includes('serving on'))).toBe(true);
    await until(() => false, 300); // its job watcher has looked a few times
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.once('close', r))).toBe(0);
    expect(err.split('\n')).toEqual([`pincoh: serving on ${join(dir, 'c.sock')} (mremap invalidate); ends once 2 ranks have come and gone`, "pincoh: no process connected", '']);
    expect(existsSync(dir)).toBe(false);
  });

  it('outside a launcher: exit 2 and an error naming every variable looked for', async () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (/^(OMPI_|SLURM_|PMI_|PMIX_)/.test(k)) delete env[k];
    const r = await run(process.execPath, [CLI, 'exec', '--', 'true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no launcher this knows set the environment.*OMPI_COMM_WORLD_RANK.*SLURM_PROCID.*PMI_RANK.*PMIX_RANK.*use pincoh run.*\[PINCOH_ERR_LAUNCHER\]/s);
  });
});
