// The shim must be invisible to programs nobody here wrote: each runs bare and
// under the shim with a coordinator up (nothing registered), and must exit and
// print the same.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, bareEnv, itWithProgs, prog, run, shimEnv, startCoordinator, type Coordinator, tempDir } from './helpers.js';

let c: Coordinator;
const dir = tempDir('real'); // here, not in beforeAll: removed after the file's tests
beforeAll(async () => {
  c = await startCoordinator();
  writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\n#include <stdlib.h>\nint main(void){long s=0;for(int i=0;i<1000;i++){char*p=malloc(1<<20);p[0]=i;s+=p[0];free(p);}printf("%ld\\n",s);return 0;}\n');
  writeFileSync(join(dir, 'Makefile'), 'all: a b c d\n%:\n\t@echo $@ > $@.out && cat $@.out\n');
});
afterAll(async () => c.close());

const sh = (script: string): [string, string[]] => ['bash', ['-c', script]];
const CASES: Record<string, () => [string, string[]]> = {
  'a bash pipeline': () => sh('seq 1 20000 | sort -rn | head -3 | tr "\\n" " "; echo; { for i in 1 2 3; do (echo sub $i) & done; wait; } | sort'),
  'python3 allocating and freeing large objects': () => [
    'python3',
    ['-c', 'import hashlib\nfor i in range(30):\n  x=[bytearray(1<<22) for _ in range(8)]\n  del x\nprint(hashlib.sha256(bytes(1<<24)).hexdigest())'],
  ],
  'node with child processes': () => [
    process.execPath,
    ['-e', "const cp=require('child_process');console.log(cp.execFileSync('echo',['hi']).toString().trim(), cp.spawnSync('sh',['-c','echo $((6*7))']).stdout.toString().trim(), Buffer.alloc(1<<26).length)"],
  ],
  'gcc compiling and running a program': () => sh(`cd ${dir} && gcc -O2 -o hello hello.c && ./hello`),
  'git init and commit': () => sh(`cd $(mktemp -d -p ${dir}) && git init -q && echo x > f && git add f && git -c user.name=t -c user.email=t@t commit -q -m first && git log --format=%s && git status --short | wc -l`),
  'make -j2': () => sh(`cd ${dir} && rm -f *.out && make -s -j2 | sort`),
  'sqlite3 with a transaction': () => sh("sqlite3 :memory: 'create table t(x); begin; insert into t values (1),(2),(3); commit; select sum(x) from t; pragma integrity_check;'"),
  'a C program with 8 threads doing mmap/munmap/mprotect/mremap/fork': () => [prog('race'), ['100', 'bare']],
};

describe('real programs, bare and under the shim', () => {
  for (const [name, make] of Object.entries(CASES)) {
    it(name, async () => {
      const [cmd, args] = make();
      const bare = await run(cmd, args, bareEnv(), 120_000);
      const shim = await run(cmd, args, shimEnv(c.path), 120_000);
      expect(bare.code).toBe(0);
      expect({ code: shim.code, signal: shim.signal, stdout: shim.stdout, stderr: shim.stderr }).toEqual({ code: bare.code, signal: bare.signal, stdout: bare.stdout, stderr: bare.stderr });
    });
  }
});

// Debian's Open MPI (libopenmpi-dev, openmpi-bin): mpirun starts the ranks, the
// shim is preloaded into them (and into mpirun) through the environment.
const MPI_ENV = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl: 'self,vader', OMPI_MCA_rmaps_base_oversubscribe: '1' };
const mpirun = (mode: string): [string, string[]] => ['mpirun', ['-np', '2', prog('mpiring'), mode]];

describe('an Open MPI program under mpirun -np 2', () => {
  itWithProgs(['mpiring'], 'openmpi-bin libopenmpi-dev', 'runs the same bare and with the shim in its ranks', async () => {
    const [cmd, args] = mpirun('plain');
    const bare = await run(cmd, args, { ...bareEnv(), ...MPI_ENV }, 120_000);
    const shim = await run(cmd, args, { ...shimEnv(c.path), ...MPI_ENV }, 120_000);
    expect(bare.code).toBe(0);
    expect(bare.stdout).toBe("rank 0/2: got 'from 1' sum 3\nrank 1/2: got 'from 0' sum 3\n");
    expect({ code: shim.code, stdout: shim.stdout }).toEqual({ code: bare.code, stdout: bare.stdout });
  }, 240_000);

  itWithProgs(['mpiring'], 'openmpi-bin libopenmpi-dev', 'under pincoh run: each rank\'s registered window buffer is invalidated inside free()', async () => {
    const [cmd, args] = mpirun('coherent');
    const r = await run(process.execPath, [CLI, 'run', '--', cmd, ...args], { ...process.env, ...MPI_ENV }, 120_000);
    expect(r.stdout).toBe("rank 0/2: got 'from 1' sum 3 fired 1 valid 0 libc 1\nrank 1/2: got 'from 0' sum 3 fired 1 valid 0 libc 1\n");
    expect(r.stderr).toMatch(/pincoh: 2 processes connected, 2 registrations, 2 invalidations \(munmap 2\)/);
    expect(r.code).toBe(0);
  }, 120_000);
});
