// The wire constants exist twice (proto.h for C, constants.ts for TS): hold them equal.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as K from '../src/protocol/constants.js';
import { ROOT } from './helpers.js';

const header = readFileSync(resolve(ROOT, 'native-shim/src/proto.h'), 'utf8');
const defines = new Map([...header.matchAll(/^#define PC_(\w+) (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
const asserted = new Map([...header.matchAll(/sizeof\(struct pc_(\w+)\) == (\d+)/g)].map((m) => [m[1]!.toUpperCase(), Number(m[2])]));

describe('proto.h and constants.ts agree', () => {
  it('on the frame basics', () => {
    expect(defines.get('PROTO_VERSION')).toBe(K.PROTO_VERSION);
    expect(defines.get('HDR_SIZE')).toBe(K.HDR_SIZE);
    expect(defines.get('FRAME_MAX')).toBe(K.FRAME_MAX);
    expect(defines.get('F_NOREPLY')).toBe(K.F_NOREPLY);
    expect(defines.get('DONE_TIMED_OUT')).toBe(K.DONE_TIMED_OUT);
    expect(defines.get('W_MREMAP_FOLLOW')).toBe(K.W_MREMAP_FOLLOW);
  });

  it('on every frame type and op', () => {
    for (const [name, v] of Object.entries(K.T)) expect(defines.get(`T_${name}`), name).toBe(v);
    for (const [name, v] of Object.entries(K.OP)) expect(defines.get(`OP_${name}`), name).toBe(v);
    expect([...defines.keys()].filter((k) => k.startsWith('T_')).length).toBe(Object.keys(K.T).length);
  });

  it('on every payload size the header asserts', () => {
    expect(asserted.size).toBe(Object.keys(K.SIZE).length);
    for (const [name, size] of asserted) expect(K.SIZE[name as keyof typeof K.SIZE], name).toBe(size);
  });
});
