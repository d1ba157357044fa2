// Everything shared exists twice (proto.h for C, constants.ts for TS): hold
// them equal, values, sizes and the offsets of every field either side touches.

import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HELP } from '../src/cli/options.js';
import { DEFAULT_LIMITS, Engine, MAX_WAIT_MS } from '../src/coherence/engine.js';
import { BOUNDS, DEFAULTS } from '../src/defaults.js';
import { DRAIN_MS } from '../src/transport/server.js';
import * as K from '../src/protocol/constants.js';
import { ETIMEDOUT } from '../src/protocol/errno.js';
import { Trace, TRACE_BASE, TRACE_SCHEMA, type PincohEvent } from '../src/trace.js';
import { FakeRing, fakeTable, ROOT, tempDir } from './helpers.js';

const header = readFileSync(resolve(ROOT, 'native-shim/src/proto.h'), 'utf8');
const defines = new Map([...header.matchAll(/^#define PC_(\w+) (0x[0-9a-f]+u?|\d+)/gm)].map((m) => [m[1]!, Number(m[2]!.replace(/u$/, ''))]));
const sizes = new Map([...header.matchAll(/sizeof\(struct pc_(\w+)\) == (\d+)/g)].map((m) => [m[1]!.toUpperCase(), Number(m[2])]));
const offsets = [...header.matchAll(/offsetof\(struct pc_(\w+), (\w+)\) == (\d+)/g)].map((m) => ({ struct: m[1]!.toUpperCase(), field: m[2]!, at: Number(m[3]) }));

describe('proto.h and constants.ts agree', () => {
  it('on the frame basics and the WELCOME flags', () => {
    expect(defines.get('PROTO_VERSION')).toBe(K.PROTO_VERSION);
    expect(defines.get('HDR_SIZE')).toBe(K.HDR_SIZE);
    expect(defines.get('FRAME_MAX')).toBe(K.FRAME_MAX);
    expect(defines.get('F_NOREPLY')).toBe(K.F_NOREPLY);
    expect(defines.get('W_MREMAP_FOLLOW')).toBe(K.W_MREMAP_FOLLOW);
    expect(defines.get('W_FORK_DONTFORK')).toBe(K.W_FORK_DONTFORK);
    expect(defines.get('W_SYNC_EXIT')).toBe(K.W_SYNC_EXIT);
    expect(defines.get('W_FREE_INVALIDATE')).toBe(K.W_FREE_INVALIDATE);
    expect(defines.get('W_NO_COHERENCE')).toBe(K.W_NO_COHERENCE);
    expect(defines.get('CALL_WAITED')).toBe(K.CALL_WAITED);
    expect(defines.get('CALL_TIMED_OUT')).toBe(K.CALL_TIMED_OUT);
    expect(defines.get('EV_EXPORT')).toBe(K.EV_EXPORT);
    expect(defines.get('REPLY_EXTRA')).toBe(K.REPLY_EXTRA);
  });

  it('on every frame type, event type, member state and export state', () => {
    for (const [prefix, table] of [['T_', K.T], ['R_', K.R], ['M_', K.M], ['X_', K.X]] as const) {
      for (const [name, v] of Object.entries(table)) expect(defines.get(prefix + name), prefix + name).toBe(v);
      expect([...defines.keys()].filter((k) => k.startsWith(prefix)).length, prefix).toBe(Object.keys(table).length);
    }
  });

  it('on the shared area\'s layout', () => {
    expect(defines.get('AREA_MAGIC')).toBe(K.AREA.MAGIC);
    expect(defines.get('RING_SLOTS')).toBe(K.AREA.RING_SLOTS);
    expect(defines.get('AREA_HDR_SIZE')).toBe(K.AREA.HDR_SIZE);
    expect(K.AREA.RING_OFF).toBe(K.AREA.HDR_SIZE);
    expect(K.AREA.BYTES).toBe(K.AREA.RING_OFF + K.AREA.RING_SLOTS * K.SIZE.REC);
  });

  it('on the job table\'s layout', () => {
    expect(defines.get('JT_MAGIC')).toBe(K.JT.MAGIC);
    expect(defines.get('JT_MEMBERS')).toBe(K.JT.MEMBERS);
    expect(defines.get('JT_EXPORTS')).toBe(K.JT.EXPORTS);
    expect(defines.get('HANDLE_SLOTS')).toBe(K.JT.HANDLES);
    expect(defines.get('JT_LINKS')).toBe(K.JT.LINKS);
    expect(defines.get('JT_HDR_BYTES')).toBe(K.JT.HDR_BYTES);
    expect(defines.get('LINK_NONE')).toBe(K.JT.LINK_NONE);
    expect(defines.get('JT_SEG_EXPORTS_OFF')).toBe(K.JT.SEG_EXPORTS_OFF);
    // derived in the header: the export words (8 bytes each), then the in-flight words (4 each)
    expect(K.JT.SEG_INFLIGHT_OFF).toBe(K.JT.EXPORTS * K.SIZE.JT_EXPORT);
    expect(K.JT.SEG_BYTES).toBe(K.JT.SEG_INFLIGHT_OFF + K.JT.HANDLES * 4);
    expect(header).toMatch(/#define PC_JT_SEG_INFLIGHT_OFF \(PC_JT_EXPORTS \* 8\)/);
    expect(header).toMatch(/#define PC_JT_SEG_BYTES \(PC_JT_SEG_INFLIGHT_OFF \+ PC_HANDLE_SLOTS \* 4\)/);
  });

  it('on every size the header asserts', () => {
    expect([...sizes.keys()].sort()).toEqual(Object.keys(K.SIZE).sort());
    for (const [name, size] of sizes) expect(K.SIZE[name as keyof typeof K.SIZE], name).toBe(size);
  });

  it('on the offset of every field the two sides share', () => {
    expect(offsets.length).toBeGreaterThan(15);
    for (const { struct, field, at } of offsets) {
      const table = (K.OFF as Record<string, Record<string, number>>)[struct];
      expect(table?.[field], `${struct}.${field}`).toBe(at);
    }
    // and the other way: no offset here the header does not assert
    for (const [struct, fields] of Object.entries(K.OFF))
      for (const field of Object.keys(fields)) expect(offsets.some((o) => o.struct === struct && o.field === field), `${struct}.${field}`).toBe(true);
  });

  it('on the reasons, the one numbering from pincoh.h to the trace', () => {
    const api = readFileSync(resolve(ROOT, 'native-shim/include/pincoh.h'), 'utf8');
    const reasons = new Map([...api.matchAll(/PINCOH_REASON_(\w+) = (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    expect(Object.fromEntries(reasons)).toEqual(K.REASON);
  });
});

/** Every .ts file under these directories of the repo. */
function sources(...dirs: string[]): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(resolve(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts')) out.push({ path: rel, text: readFileSync(resolve(ROOT, rel), 'utf8') });
    }
  };
  dirs.forEach(walk);
  return out;
}

describe('one source for each shared fact', () => {
  it('libc is loaded through koffi in src/libc.ts alone', () => {
    const loaders = sources('src', 'test', 'bench')
      .filter((f) => /koffi\.load\(\s*['"]libc\.so\.6['"]\s*\)/.test(f.text))
      .map((f) => f.path);
    // binding.e2e writes a user's own program, which loads koffi as a user would
    expect(loaders.filter((p) => p !== 'test/binding.e2e.test.ts')).toEqual(['src/libc.ts']);
  });
});

describe('limits and defaults: one table (src/defaults.ts)', () => {
  it('the shim\'s PINCOH_TIMEOUT_MS default and bounds (config.c) are the table\'s, and so is what the help says of it', () => {
    const config = readFileSync(resolve(ROOT, 'native-shim/src/config.c'), 'utf8');
    const m = config.match(/parse_int\("PINCOH_TIMEOUT_MS", [^,]+, (\d+), (\d+), (\d+)\)/);
    expect(m, 'config.c parses PINCOH_TIMEOUT_MS with parse_int(name, value, min, max, default)').not.toBeNull();
    expect([Number(m![1]), Number(m![2])]).toEqual([...BOUNDS.timeoutMs]);
    expect(Number(m![3])).toBe(DEFAULTS.shimTimeoutMs);
    expect(config).toMatch(new RegExp(`\\.timeout_ms = ${DEFAULTS.shimTimeoutMs}\\b`));
    expect(HELP.run).toContain(`PINCOH_TIMEOUT_MS (${BOUNDS.timeoutMs[0]}-${BOUNDS.timeoutMs[1]}, ${DEFAULTS.shimTimeoutMs})`);
  });

  it('the engine and the server take theirs from it', () => {
    expect(DEFAULT_LIMITS).toEqual(DEFAULTS.limits);
    expect(MAX_WAIT_MS).toBe(DEFAULTS.maxWaitMs);
    expect(DRAIN_MS).toBe(DEFAULTS.drainMs);
    expect(new Engine({ mremapFollow: false }).revokeTimeoutMs).toBe(DEFAULTS.revokeTimeoutMs);
    expect(DEFAULTS.limits.attachmentsPerProcess).toBe(K.JT.HANDLES); // a handle is a slot of the member's in the job table
  });

  it('no source but the table writes the defaults as literals', () => {
    const literal = /\?\?\s*(1000|2000|30_?000|256)\b(?!\s*\*)/;
    const found = sources('src').filter((f) => f.path !== 'src/defaults.ts').flatMap((f) => f.text.split('\n').filter((l) => literal.test(l)).map((l) => `${f.path}: ${l.trim()}`));
    expect(found).toEqual([]);
  });
});

describe('the trace: one schema (src/trace.ts) for the writer, the help and the report', () => {
  /** `pincoh help trace` as event -> the fields it names (a field is a word before ',' or ' (' or the end) */
  function helpFields(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    let text = '';
    let name = '';
    const flush = () => {
      if (!name) return;
      const bare = text.replace(/\([^)]*\)/g, '').replace(/^[^:]*: /, ''); // notes, then a 'what: ' lead
      out.set(name, bare.split(',').map((w) => w.trim()).filter(Boolean));
    };
    for (const line of HELP.trace.split('\n').slice(1, -1)) {
      const m = line.match(/^  (\w+) +(.*)$/);
      if (m) {
        flush();
        [name, text] = [m[1]!, m[2]!];
      } else text += ' ' + line.trim();
    }
    flush();
    return out;
  }

  it('pincoh help trace names every event and field of the schema, and nothing else', () => {
    const help = helpFields();
    expect([...help.keys()]).toEqual(Object.keys(TRACE_SCHEMA));
    for (const [name, e] of Object.entries(TRACE_SCHEMA)) expect(help.get(name), name).toEqual(Object.keys(e.fields));
    expect(HELP.trace.split('\n')[0]).toContain(Object.keys(TRACE_BASE).slice(1).join(', '));
  });

  it('the reference\'s --trace paragraph (docs/reference.md) names every event of the schema (a copy in prose, read here, not made)', () => {
    const readme = readFileSync(resolve(ROOT, 'docs/reference.md'), 'utf8');
    const at = readme.indexOf('- **`--trace FILE`**');
    expect(at).toBeGreaterThan(0);
    const para = readme.slice(at, readme.indexOf('\n- **', at + 1));
    for (const name of Object.keys(TRACE_SCHEMA)) expect(para, name).toContain(`\`${name}\``);
  });

  it('every event the source writes is in the schema, and every event of the schema is written somewhere', () => {
    const written = new Set(sources('src').flatMap((f) => [...f.text.matchAll(/\.emit\(\{\s*event: '(\w+)'/g)].map((m) => m[1]!)));
    expect([...written].sort()).toEqual(Object.keys(TRACE_SCHEMA).sort());
  });

  it('the events an engine writes carry exactly the fields the help names for them (control: a field the help lacks is caught)', async () => {
    const events: PincohEvent[] = [];
    const trace = new Trace();
    trace.on((e) => events.push(e));
    const memory = { isMapped: () => true, audit: (_pid: number, regs: Iterable<{ key: bigint; start: number; end: number; flags: number }>) => [...regs].map((reg) => ({ reg, finding: 'unmapped' as const })) };
    const lives = { kill: () => true, runningSince: () => undefined, exited: () => true, deathSignal: () => 'SIGSEGV' };
    const e = new Engine({ mremapFollow: false, trace, memory, lives, makeTable: fakeTable });
    const hello = { version: K.PROTO_VERSION, pid: 1, ppid: 1, rank: 0, size: 2, pageSize: 4096, argv0: 'unit', job: 'j', areaFd: -1, areaSize: K.AREA.BYTES };
    const ownerRing = new FakeRing();
    const owner = e.connect(10, 0, hello, undefined, ownerRing);
    const attacherRing = new FakeRing();
    const attacher = e.connect(11, 0, { ...hello, rank: 1 }, { cutOff: () => {} }, attacherRing);
    ownerRing.write(
      { type: K.R.REG, key: 1n, addr: 0x10000, len: 4096, flags: 3 },
      { type: K.R.REG, key: 2n, addr: 0x20000, len: 4096, flags: 3 },
      { type: K.R.DEREG, key: 2n },
      { type: K.R.FORK, result: 99 },
    );
    expect(e.publish(owner, { key: 1n, name: 'buf', terminated: true, export: 1, xgen: 1 })).toBe(0);
    expect(await e.attach(attacher, { handle: (1n << 32n) | 1n, timeoutMs: 0, name: 'buf' })).toMatchObject({ status: 0 });
    expect(await e.attach(attacher, { handle: (1n << 32n) | 2n, timeoutMs: 0, name: 'nothing' })).toBe(-ETIMEDOUT);
    e.auditAll();
    ownerRing.write({ type: K.R.INVAL, key: 1n, reason: K.REASON.MUNMAP, call: 1 }, { type: K.R.REVOKED, key: 1n, addr: 1, len: 1, reason: K.REASON.MUNMAP }, { type: K.R.CALL, call: 1, reason: K.REASON.MUNMAP, addr: 0x10000, len: 4096 });
    ownerRing.dropped = 3;
    e.drain(owner);
    e.cutOff(attacher, 'a test');
    e.drop(owner, 'disconnected');
    e.close();
    const names = new Set(events.map((ev) => ev.event));
    // every kind, once at least, but start: the Trace writes that itself, as its file opens (the next test)
    expect([...names].sort()).toEqual(Object.keys(TRACE_SCHEMA).filter((k) => k !== 'start').sort());
    const help = helpFields();
    const base = Object.keys(TRACE_BASE);
    const extra = (ev: PincohEvent, fields: string[] | undefined) => Object.keys(ev).filter((k) => !base.includes(k) && !fields?.includes(k));
    for (const ev of events) expect(extra(ev, help.get(ev.event)), ev.event).toEqual([]);
    // control: had the help left out a field the writer writes, the check would say which
    const call = events.find((ev) => ev.event === 'call')!;
    expect(extra(call, help.get('call')!.filter((f) => f !== 'hits'))).toEqual(['hits']);
  });

  it("a trace's first line is its start: the node and the wall clock at t = 0, with the fields the help names", () => {
    const file = resolve(tempDir('start'), 't.jsonl');
    const before = Date.now();
    const trace = new Trace(file);
    const after = Date.now();
    trace.emit({ event: 'cutoff', pid: 1, rank: 0, reason: 'a test', killed: false });
    trace.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PincohEvent & Record<string, unknown>);
    expect(lines.map((e) => e.event)).toEqual(['start', 'cutoff']);
    expect(lines[0]).toMatchObject({ event: 'start', pid: process.pid, rank: -1, host: hostname() });
    expect(lines[0]!.wall_ms).toBeGreaterThanOrEqual(before);
    expect(lines[0]!.wall_ms).toBeLessThanOrEqual(after);
    expect(lines[0]!.t).toBeLessThan(50);
    const base = Object.keys(TRACE_BASE);
    expect(Object.keys(lines[0]!).filter((k) => !base.includes(k))).toEqual(helpFields().get('start'));
  });
});
