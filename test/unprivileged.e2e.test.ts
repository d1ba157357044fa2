// Most users are not root; CI is. Here the tree is seen through a bind mount
// in a mount namespace of the test's own (so it is reachable whatever
// directory CI cloned it into), and pincoh run, pincoh exec and pincoh-exec
// run as uid 65534 (nobody): the coordinator, the ranks and their job
// directories are that user's, in a TMPDIR of that user's.

import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { itAsRootWith, ROOT, run, SUMMARY, tempDir, until, type RunResult } from './helpers.js';

const NOBODY = 65534;

/** `sh -c script` as nobody in cwd, the tree at /tmp/...: $P (the tree), $TMPDIR, with env besides. */
function asNobody(script: string, cwd: string, tmp: string, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const parent = tempDir('unpriv-mnt');
  chmodSync(parent, 0o755); // nobody passes through to the mount point
  const at = join(parent, 'pincoh');
  mkdirSync(at, { mode: 0o755 });
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: cwd, TMPDIR: tmp, P: at, PINCOH_SHIM: `${at}/native-shim/build/libpincoh.so`, PINCOH_CLI: `${at}/bin/pincoh.js`, ...env };
  const inner = `mount --bind "$0" "$P" && cd "$1" && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups -- sh -c "$2"`;
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inner, ROOT, cwd, script], base, 120_000);
}

/** A directory nobody owns (0700), under a tempDir of ours (0700 too: opened for nobody to pass). */
function nobodysDir(name: string): string {
  const parent = tempDir(name);
  chownSync(parent, NOBODY, NOBODY);
  const dir = join(parent, 'd');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY, NOBODY);
  return dir;
}

const ompi = (r: number) => `OMPI_COMM_WORLD_RANK=${r} OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_LOCAL_RANK=${r} OMPI_COMM_WORLD_LOCAL_SIZE=2 OMPI_MCA_ess_base_jobid=asnobody`;

describe('as an unprivileged user (uid 65534)', () => {
  itAsRootWith(['unshare', 'setpriv'], 'util-linux', 'pincoh run: the ring, the coordinator and its socket directory nobody\'s', async () => {
    const [cwd, tmp] = [nobodysDir('unpriv-cwd'), nobodysDir('unpriv-tmp')];
    const r = await asNobody('id -u; node "$P/bin/pincoh.js" run -n 2 -- "$P/examples/bin/ring" 100', cwd, tmp);
    expect(r.stderr).toMatch(SUMMARY);
    expect(r.lines[0]).toBe(`${NOBODY}`);
    expect(r.lines.slice(1).sort()).toEqual(['rank 0 of 2: 100 iterations from rank 1, 0 bad', 'rank 1 of 2: 100 iterations from rank 0, 0 bad']);
    expect(r.code).toBe(0);
    expect(readdirSync(tmp)).toEqual([]); // its private socket directory removed
  });

  for (const native of [false, true]) {
    itAsRootWith(['unshare', 'setpriv'], 'util-linux', `${native ? 'pincoh-exec' : 'pincoh exec'} under Open MPI's variables: two ranks, the node's coordinator and log nobody's`, async () => {
      const [cwd, tmp] = [nobodysDir('unpriv-cwd'), nobodysDir('unpriv-tmp')];
      const wrapper = native ? '"$P/native-shim/build/pincoh-exec"' : 'node "$P/bin/pincoh.js" exec';
      const ranks = [0, 1].map((r) => `env ${ompi(r)} ${wrapper} -- "$P/examples/bin/ring" 100 &`).join(' ');
      const r = await asNobody(`${ranks} wait`, cwd, tmp);
      expect(r.stderr).toBe('');
      expect(r.lines.sort()).toEqual(['rank 0 of 2: 100 iterations from rank 1, 0 bad', 'rank 1 of 2: 100 iterations from rank 0, 0 bad']);
      const logs = () => readdirSync(cwd).filter((f) => f.endsWith('.log'));
      expect(await until(() => logs().length === 1 && SUMMARY.test(readFileSync(join(cwd, logs()[0]!), 'utf8')), 15_000)).toBe(true);
      expect(statSync(join(cwd, logs()[0]!)).uid).toBe(NOBODY);
      expect(readFileSync(join(cwd, logs()[0]!), 'utf8')).toMatch(new RegExp(`^pincoh: serving on ${tmp}/pincoh-${NOBODY}-asnobody/c\\.sock `));
      expect(await until(() => readdirSync(tmp).length === 0)).toBe(true); // its job directory removed as it ended
    });
  }
});
