// The shim's registration table (native-shim/src/table.c, a B+tree) against a
// naive model: test/progs/tabletest.c compiles it in with its invariant check
// and runs seeded random operations (add, remove, set_export, valid, query,
// hit, apply of every kind of call with and without mremap follow, move,
// exit), then up to 100,000+ registrations removed oldest, newest or random
// first. Built at the shim's node width and at 4 slots a node (deep trees:
// splits and merges at every turn). A failure prints its seed: rerun
// `test/progs/build/tabletest SEED 1` to replay it. And its lock-free reader
// against a busy writer: a range always registered must always hit, one
// never registered must never, also under ThreadSanitizer.

import { describe, expect, it } from 'vitest';
import { prog, run } from './helpers.js';

describe('table.c against a model', () => {
  it('random operations and bulk phases, at the shim\'s node width', async () => {
    const r = await run(prog('tabletest'), ['1', '6'], process.env, 300_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tabletest ok: seeds 1\.\.6, up to 1\d\d\d\d\d registrations/);
  }, 310_000);

  it('the same, at 4 slots a node', async () => {
    const r = await run(prog('tabletest-f4'), ['101', '6'], process.env, 300_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tabletest ok: seeds 101\.\.106, .*F=4/);
  }, 310_000);

  it('readers racing a writer: always registered always hits, never registered never does', async () => {
    const r = await run(prog('tabletest'), ['race', '1000000'], process.env, 300_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^race ok: \d+ reads by 3 threads, 1000000 writes, 0 wrong/);
  }, 310_000);

  it('the same under ThreadSanitizer: no data race', async () => {
    const r = await run(prog('tabletest-tsan'), ['race', '100000'], { ...process.env, TSAN_OPTIONS: 'halt_on_error=1' }, 300_000);
    expect(r.stderr).not.toMatch(/ThreadSanitizer/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^race ok: \d+ reads by 3 threads, 100000 writes, 0 wrong/);
  }, 310_000);
});
