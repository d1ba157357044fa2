// The engine without sockets or processes.

import { describe, expect, it } from 'vitest';
import { Engine } from '../src/coherence/engine.js';
import { MREMAP_FIXED, MREMAP_MAYMOVE, OP, PROTO_VERSION } from '../src/protocol/constants.js';

const hello = { version: PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 1, pageSize: 4096, argv0: 'unit', job: 'default' };
const reg = (key: bigint, addr: number, len: number, flags = 3) => ({ key, addr, len, flags });

describe('Engine', () => {
  it('validates registrations: bad flags, zero length, duplicates, the per-process limit', () => {
    const e = new Engine({ mremapFollow: false, verifyMappings: false, limits: { registrationsPerProcess: 2 } });
    const p = e.connect(10, 0, hello);
    expect(e.register(p, reg(1n, 4096, 0))).toBe(-22);
    expect(e.register(p, reg(1n, 4096, 4096, 4))).toBe(-22);
    expect(e.register(p, reg(0n, 4096, 4096))).toBe(-22);
    expect(e.register(p, reg(1n, 4096, 4096))).toBe(0);
    expect(e.register(p, reg(1n, 8192, 4096))).toBe(-17);
    expect(e.register(p, reg(2n, 8192, 4096))).toBe(0);
    expect(e.register(p, reg(3n, 16384, 4096))).toBe(-28);
    expect(e.deregister(p, 9n)).toBe(-2);
  });

  it('follows an mremap only once DONE reports success, by the distance moved', () => {
    const e = new Engine({ mremapFollow: true, verifyMappings: false });
    const p = e.connect(10, 0, hello);
    e.register(p, reg(1n, 0x10000 + 4096, 4096));
    e.begin(p, 5n, { op: OP.MREMAP, arg: MREMAP_MAYMOVE, addr: 0x10000, len: 0x10000, newLen: 0x20000, newAddr: 0 });
    expect(p.registry.get(1n)?.start).toBe(0x11000); // not yet
    e.done(p, { op: OP.MREMAP, flags: 0, result: 0x50000, beginSeq: 5n });
    expect(p.registry.get(1n)).toMatchObject({ start: 0x51000, end: 0x52000 });
    e.begin(p, 6n, { op: OP.MREMAP, arg: MREMAP_MAYMOVE, addr: 0x50000, len: 0x20000, newLen: 0x40000, newAddr: 0 });
    e.done(p, { op: OP.MREMAP, flags: 0, result: -12, beginSeq: 6n }); // failed: stays
    expect(p.registry.get(1n)?.start).toBe(0x51000);
    expect(e.stats.follows).toBe(1);
  });

  it('invalidates what an MREMAP_FIXED destination covers', () => {
    const e = new Engine({ mremapFollow: true, verifyMappings: false });
    const p = e.connect(10, 0, hello);
    e.register(p, reg(1n, 0x90000, 4096));
    e.begin(p, 1n, { op: OP.MREMAP, arg: MREMAP_MAYMOVE | MREMAP_FIXED, addr: 0x10000, len: 0x10000, newLen: 0x10000, newAddr: 0x88000 });
    expect(p.registry.has(1n)).toBe(false);
    expect(e.stats.invalidations.mremap).toBe(1);
  });

  it('counts DONEs whose BEGIN timed out in the shim, and bounds calls in flight', () => {
    const e = new Engine({ mremapFollow: false, verifyMappings: false, limits: { pendingPerProcess: 3 } });
    const p = e.connect(10, 0, hello);
    for (let i = 1n; i <= 10n; i++) e.begin(p, i, { op: OP.MUNMAP, arg: 0, addr: 0, len: 4096, newLen: 0, newAddr: 0 });
    expect(p.inFlight.size).toBe(3);
    e.done(p, { op: OP.MUNMAP, flags: 1, result: 0, beginSeq: 99n });
    expect(e.stats.timeouts).toBe(1);
  });

  it('an unknown op is -EINVAL; dropping a process twice counts it once', () => {
    const e = new Engine({ mremapFollow: false, verifyMappings: false });
    const p = e.connect(10, 0, hello);
    expect(e.begin(p, 1n, { op: 77, arg: 0, addr: 0, len: 4096, newLen: 0, newAddr: 0 })).toBe(-22);
    e.drop(p, 'x');
    e.drop(p, 'x');
    expect(e.stats.live).toBe(0);
  });
});
