// pincoh exec and pincoh-exec under MPICH's Hydra (mpiexec.hydra, Debian's
// mpich), for real: Hydra 4 puts no job id in a rank's environment, so the
// job on a node is named after Hydra's proxy there, the ranks' parent
// (src/job/launcher.ts, hydraProxyJob). On one node, and over two nodes made
// on this machine by test/cluster/fakenode as Hydra's ssh launcher.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect } from 'vitest';
import { AS_USER, CLI, PINCOH_EXEC, example, itOnFakeNodesWith, itWith, ROOT, run, RUN_UID, SUMMARY, tempDir, until, type RunResult } from './helpers.js';

const FAKENODE = resolve(ROOT, 'test/cluster/fakenode');

function hydra(cwd: string, hydraArgs: string[], native: boolean, cmd: string[]): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, FAKENODE_SHARE: ROOT };
  for (const k of Object.keys(env)) if (k.startsWith('PINCOH_') || k === 'LD_PRELOAD' || k === 'XDG_RUNTIME_DIR') delete env[k];
  const wrapper = native ? [PINCOH_EXEC] : [process.execPath, CLI, 'exec'];
  return run('sh', ['-c', 'cd "$0" && exec mpiexec.hydra "$@"', cwd, ...hydraArgs, ...wrapper, '--', ...cmd], env, 120_000);
}

/** The node logs in cwd once each has its summary. */
async function logs(cwd: string, count: number): Promise<Record<string, string>> {
  const names = () => readdirSync(cwd).filter((f) => f.endsWith('.log'));
  const done = () => names().length === count && names().every((f) => SUMMARY.test(readFileSync(resolve(cwd, f), 'utf8')));
  expect(await until(done, 20_000)).toBe(true);
  expect(names().map((f) => statSync(resolve(cwd, f)).uid)).toEqual(names().map(() => RUN_UID)); // the coordinators ran as the tests' user
  return Object.fromEntries(names().map((f) => [f, readFileSync(resolve(cwd, f), 'utf8')]));
}

describe(`under mpiexec.hydra${AS_USER}`, () => {
  for (const native of [false, true]) {
    itWith(['mpiexec.hydra'], 'mpich', `one node, ${native ? 'pincoh-exec' : 'pincoh exec'}: the ring, every byte checked; the job named after Hydra's proxy`, async () => {
      const cwd = tempDir('hydra');
      const r = await hydra(cwd, ['-n', '4'], native, [example('ring'), '300']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.lines.sort()).toEqual([0, 1, 2, 3].map((k) => `rank ${k} of 4: 300 iterations from rank ${(k + 3) % 4}, 0 bad`));
      const [[name, log]] = Object.entries(await logs(cwd, 1)) as [[string, string]];
      expect(name).toMatch(/^pincoh-\S+-hydra-\d+-\d+\.log$/);
      expect(log.match(/serving on/g)).toHaveLength(1);
      expect(log).toMatch(/^pincoh: 4 processes connected, 4 registrations, 4 invalidations \(exit 4\), .* 4 attachments, /m);
    }, 120_000);
  }

  itOnFakeNodesWith(['mpiexec.hydra'], 'mpich', 'two fake nodes (fakenode as the ssh launcher), pincoh-exec: node-local ranks, global ranks, a coordinator per node', async () => {
    const cwd = tempDir('hydra');
    const r = await hydra(cwd, ['-launcher', 'ssh', '-launcher-exec', FAKENODE, '-hosts', 'nodeA:2,nodeB:2', '-n', '4'], true, [
      'sh',
      '-c',
      'echo $(hostname) $PINCOH_RANK/$PINCOH_SIZE $PINCOH_GLOBAL_RANK/$PINCOH_GLOBAL_SIZE',
    ]);
    expect(r.code).toBe(0);
    expect(r.lines.sort()).toEqual(['nodeA 0/2 0/4', 'nodeA 1/2 1/4', 'nodeB 0/2 2/4', 'nodeB 1/2 3/4']);
    const found = await logs(cwd, 2);
    expect(Object.keys(found).sort().map((f) => f.replace(/-hydra-\d+-\d+\.log$/, ''))).toEqual(['pincoh-nodeA', 'pincoh-nodeB']);
    for (const log of Object.values(found)) expect(log).toMatch(/ends once 2 ranks have come and gone/);
  }, 120_000);
});
