// The shim must be invisible to programs nobody here wrote: each runs bare and
// under the shim with a coordinator up (nothing registered), and must exit and
// print the same.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareEnv, prog, run, shimEnv, startCoordinator, type Coordinator } from './helpers.js';

let c: Coordinator;
let dir: string;
beforeAll(async () => {
  c = await startCoordinator();
  dir = mkdtempSync(join(tmpdir(), 'pincoh-real-'));
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
  'git init and commit': () => sh(`cd $(mktemp -d) && git init -q && echo x > f && git add f && git -c user.name=t -c user.email=t@t commit -q -m first && git log --format=%s && git status --short | wc -l`),
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
