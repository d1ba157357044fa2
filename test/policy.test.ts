// native-shim/src/policy.c alone: what each hooked call does to one
// registration (keep, invalidate, follow), case by case in
// test/progs/policytest.c; and a copy with one advice forgotten must fail.

import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prog, ROOT, run, tempDir } from './helpers.js';

describe('policy.c, case by case', () => {
  it('every case gets its action', async () => {
    const r = await run(prog('policytest'), []);
    expect(r.stdout).toBe('policy: 36 cases, 0 failed\n');
    expect(r.code).toBe(0);
  });

  it('the cases can fail: a policy.c that forgot MADV_PAGEOUT is caught by name', async () => {
    const dir = tempDir('policy');
    const src = readFileSync(resolve(ROOT, 'native-shim/src/policy.c'), 'utf8');
    const forgot = src.replace(/^\tcase 21: .*\n/m, '');
    expect(forgot).not.toBe(src);
    const mutant = join(dir, 'policy.c');
    writeFileSync(mutant, forgot);
    const bin = join(dir, 'policytest');
    // -I the original's directory: the copy's own includes resolve as the original's do
    const cc = await run('gcc', ['-std=gnu11', '-O2', `-I${resolve(ROOT, 'native-shim/src')}`, `-DPOLICY_SRC="${mutant}"`, '-o', bin, resolve(ROOT, 'test/progs/policytest.c')]);
    expect(cc.stderr).toBe('');
    const r = await run(bin, []);
    expect(r.stdout).toBe('madvise PAGEOUT: keep, expected invalidate\npolicy: 36 cases, 1 failed\n');
    expect(r.code).toBe(1);
  });
});
