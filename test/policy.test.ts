// The policy is one pure function written twice (policy.c in the shim,
// policy.ts in the coordinator). Both answer the same random cases here.

import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACT_FOLLOW, ACT_INVALIDATE, ACT_KEEP, decide, type MapEvent } from '../src/coherence/policy.js';
import { MREMAP_FIXED, OP } from '../src/protocol/constants.js';
import { ROOT } from './helpers.js';
import { prng } from './registry.property.test.js';

const PAGE = 4096;
const hex = (n: number) => n.toString(16);

function randomCase(rnd: () => number): { ev: MapEvent; rs: number; re: number; rflags: number; follow: boolean } {
  const pages = (n: number) => Math.floor(rnd() * n) * PAGE;
  const op = 1 + Math.floor(rnd() * 6);
  const start = pages(16);
  const len = pages(8) + (rnd() < 0.3 ? Math.floor(rnd() * PAGE) : 0);
  const fixed = op === OP.MREMAP && rnd() < 0.3;
  const newLen = pages(16);
  const dest = fixed ? pages(32) : 0;
  const ev: MapEvent = {
    op,
    arg: op === OP.MPROTECT ? Math.floor(rnd() * 8) : op === OP.MADVISE ? Math.floor(rnd() * 26) : fixed ? MREMAP_FIXED | 1 : 1,
    start,
    end: start + Math.ceil(len / PAGE) * PAGE,
    len,
    newLen,
    dest,
    destEnd: fixed ? dest + Math.ceil(newLen / PAGE) * PAGE : 0,
  };
  const rs = Math.floor(rnd() * 20 * PAGE);
  return { ev, rs, re: rs + 1 + Math.floor(rnd() * 6 * PAGE), rflags: 1 + Math.floor(rnd() * 3), follow: rnd() < 0.5 };
}

describe('policy', () => {
  it('the C shim and the TS coordinator decide alike on 20,000 random cases', () => {
    const rnd = prng(7);
    const cases = Array.from({ length: 20000 }, () => randomCase(rnd));
    const input = cases
      .map(({ ev, rs, re, rflags, follow }) => [ev.op, ev.arg, ev.start, ev.end, ev.len, ev.newLen, ev.dest, ev.destEnd, rs, re, rflags, follow ? 1 : 0].map(hex).join(' '))
      .join('\n');
    const c = spawnSync(resolve(ROOT, 'native-shim/build/policy-check'), { input, encoding: 'utf8' });
    const fromC = c.stdout.trim().split('\n').map(Number);
    const fromTs = cases.map(({ ev, rs, re, rflags, follow }) => decide(ev, rs, re, rflags, follow));
    expect(fromC.length).toBe(cases.length);
    expect(fromC).toEqual(fromTs);
    // and the cases exercise every outcome
    expect(new Set(fromTs)).toEqual(new Set([ACT_KEEP, ACT_INVALIDATE, ACT_FOLLOW]));
  });

  it('mprotect keeps a registration that keeps its permissions', () => {
    const ev: MapEvent = { op: OP.MPROTECT, arg: 1 | 2 | 4, start: 0, end: PAGE, len: PAGE, newLen: 0, dest: 0, destEnd: 0 };
    expect(decide(ev, 0, PAGE, 3, false)).toBe(ACT_KEEP);
    expect(decide({ ...ev, arg: 1 }, 0, PAGE, 3, false)).toBe(ACT_INVALIDATE);
    expect(decide({ ...ev, arg: 0 }, 0, PAGE, 1, false)).toBe(ACT_INVALIDATE);
  });
});
