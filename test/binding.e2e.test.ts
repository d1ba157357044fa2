// The Node binding (src/binding/ffi.ts, as dist/binding/ffi.js) end to end:
// Node programs under `pincoh run -n 2` against a real coordinator, every
// function of pincoh.h with exact error codes, and invalidation callbacks from
// the JS thread and from a libuv thread; and a Node program run without the
// shim, which loads the binding silently and is told why its calls fail.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareEnv, CLI, ROOT, run, tempDir } from './helpers.js';

const BINDING = join(ROOT, 'dist/binding/ffi.js');

/** A Node script in a fresh directory; it imports the binding (and koffi) from this package. */
function script(body: string): string {
  const path = join(tempDir('binding'), 'app.mjs');
  writeFileSync(
    path,
    `import { createRequire } from 'node:module';
import { Pincoh, PincohCallError, REASON } from ${JSON.stringify(BINDING)};
const koffi = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('koffi');
const say = (...a) => console.log(...a);
const err = (fn) => { try { fn(); return 'no error'; } catch (e) { return e instanceof PincohCallError ? e.call + ' ' + e.code + ' ' + e.errno : 'other ' + e; } };
${body}
`,
  );
  return path;
}

const rankLines = (stdout: string, rank: number) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith(`${rank}: `))
    .map((l) => l.slice(3));

describe('under pincoh run', () => {
  it('two Node ranks: register, query, publish, attach, handleInfo, put, get, stats, callbacks in order, revocation, errors', async () => {
    const app = script(`
const p = new Pincoh();
const me = p.rank;
const out = (...a) => say(me + ':', ...a);
const seen = [];
let wanted; // [key, resolve]: a delivery to wait for
p.onInvalidate((inv) => {
  seen.push(inv.key + ' ' + inv.reasonName + ' ' + inv.len);
  if (wanted && inv.key === wanted[0]) wanted[1]();
});
out('preloaded', p.preloaded, 'size', p.size);
if (me === 0) {
  const r = p.alloc(65536);
  const k = p.register(r);
  const q = p.query(k);
  out('query', q.addr === r.addr, q.len, 'valid', p.isValid(k), p.validity(k));
  out('publish', err(() => p.publish('buf', k)));
  out('publish again', err(() => p.publish('buf', k)));
  out('info', process.pid, r.addr.toString(16));
  p.barrier(10000);                           // 1: published
  p.barrier(10000);                           // 2: rank 1 has put
  out('bytes', r.bytes[0], r.bytes[4095], r.bytes[4096]);
  p.free(r);                                  // invalidates: the callback has run when free returns
  out('after free', JSON.stringify(seen), 'query', p.query(k), 'valid', p.isValid(k));
  out('deregister', err(() => p.deregister(k)), 'publish dead', err(() => p.publish('dead', k)));
  out('is_valid never issued', err(() => p.isValid(999n)), 'query never issued', err(() => p.query(999n)));
  const s = p.stats();
  out('stats', s.slowCalls, s.invalidations, s.timeouts, s.degraded, s.connected, s.libc, s.chained);
  p.barrier(10000);                           // 3: freed
  // a libuv thread unmaps registered memory: delivered in the JS thread from the event loop
  const r2 = p.alloc(8192);
  const k2 = p.register(r2);
  const munmap = koffi.load('libc.so.6').func('int munmap(void *addr, size_t len)');
  const before = seen.length;
  // no call of the binding until it arrives: only the shim's poke can bring it
  const delivered = new Promise((resolve) => (wanted = [k2, resolve]));
  const rc = await new Promise((resolve) => munmap.async(r2.ptr, r2.len, (e, rc) => resolve(rc)));
  await delivered;
  out('async munmap', rc, 'delivered', seen.length - before, seen.at(-1) === k2 + ' munmap 8192');
  // this registration is still live at exit: the shim invalidates it then (no JS callback, no crash)
  p.register(p.alloc(4096));
  p.barrier(10000);                           // 4
} else {
  p.barrier(10000);                           // 1
  const h = p.attach('buf', 10000);
  const info = p.handleInfo(h);
  out('handle', info.pid, info.addr.toString(16), info.len, info.live);
  p.put(h, 0, new Uint8Array(4096).fill(7));
  const back = new Uint8Array(2);
  p.get(h, 4095, back);
  out('get', back[0], back[1]);
  out('put past the end', err(() => p.put(h, 65535, new Uint8Array(2))));
  out('attach nothing', err(() => p.attach('nothing', 50)), 'name too long', err(() => p.attach('x'.repeat(64), 50)));
  p.barrier(10000);                           // 2
  p.barrier(10000);                           // 3: the owner freed it
  out('live', p.handleInfo(h).live);
  const e = (() => { try { p.put(h, 0, new Uint8Array(1)); } catch (e) { return e; } })();
  out('put stale', e.call, e.code, e.errno, e.message, 'callback first', JSON.stringify(seen.map((l) => l.replace(String(h) + ' ', 'h '))));
  out('progress', p.progress());
  out('detach', err(() => p.detach(h)), 'again', err(() => p.detach(h)), 'info', err(() => p.handleInfo(h)));
  p.barrier(10000);                           // 4
}
`);
    const r = await run(process.execPath, [CLI, 'run', '-n', '2', '--', process.execPath, app], bareEnv(), 60_000);
    expect(r.stderr).not.toMatch(/SIG|died/);
    expect(r.code).toBe(0);
    const zero = rankLines(r.stdout, 0);
    const one = rankLines(r.stdout, 1);
    const [, pid, addr] = zero.find((l) => l.startsWith('info '))!.split(' ');
    expect(zero).toEqual([
      'preloaded true size 2',
      'query true 65536 valid true 1',
      'publish no error',
      'publish again pincoh_publish EEXIST 17',
      `info ${pid} ${addr}`,
      'bytes 7 7 0',
      'after free ["1 munmap 65536"] query undefined valid false',
      'deregister pincoh_deregister ENOENT 2 publish dead pincoh_publish ENOENT 2',
      'is_valid never issued pincoh_is_valid EINVAL 22 query never issued pincoh_query EINVAL 22',
      'stats 1 1 0 false true patched 0',
      'async munmap 0 delivered 1 true',
    ]);
    expect(one).toEqual([
      'preloaded true size 2',
      `handle ${pid} ${addr} 65536 true`,
      'get 7 0',
      'put past the end pincoh_put ERANGE 34',
      'attach nothing pincoh_attach ETIMEDOUT 110 name too long pincoh_attach EINVAL 22',
      'live false',
      "put stale pincoh_put ESTALE 116 pincoh_put failed: ESTALE (the owner's memory changed; the handle is dead) callback first [\"h revoked 65536\"]",
      'progress 0',
      'detach no error again pincoh_detach EBADF 9 info pincoh_handle_info EBADF 9',
    ]);
    // both ranks exited normally, a registration live at exit included
    expect(r.stderr).toMatch(/pincoh: 2 processes connected, 3 registrations, 3 invalidations \(munmap 2, exit 1\)/);
  }, 90_000);
});

// Why onInvalidate never gives the shim a JS function: what a koffi-registered
// callback does when the shim calls it. These pin down koffi's behaviour the
// binding's design rests on; if koffi changes, they say so.
describe('a raw koffi callback given to pincoh_on_invalidate (what the binding avoids)', () => {
  const raw = () => script(`
const p = new Pincoh(); // stats, alloc, register; its onInvalidate is not used here
const lib = koffi.load(p.path);
const libc = koffi.load('libc.so.6');
const CB = koffi.proto('void raw_cb(uint64_t key, void *addr, size_t len, int reason, void *ctx)');
const onInvalidate = lib.func('int pincoh_on_invalidate(raw_cb *fn, void *ctx)');
const gettid = libc.func('int gettid(void)');
const munmap = libc.func('int munmap(void *addr, size_t len)');
const mincore = libc.func('int mincore(void *addr, size_t len, _Out_ uint8_t *vec)');
const mapped = (r) => mincore(r.ptr, 4096, new Uint8Array(1)) === 0;
const seen = [];
onInvalidate(koffi.register((key, addr, len, reason) => seen.push([key, reason, gettid()]), koffi.pointer(CB)), null);
const js = gettid();
const mode = process.argv[2];
if (mode === 'threads') {
  const a = p.alloc(4096);
  const ka = p.register(a);
  munmap(a.ptr, 4096);
  say('js thread: inline', seen.length, BigInt(seen[0][0]) === ka, seen[0][2] === js);
  const b = p.alloc(4096);
  p.register(b);
  const done = new Promise((resolve) => munmap.async(b.ptr, 4096, (e, rc) => resolve(rc)));
  while (p.stats().slowCalls < 2); // the libuv thread is in the shim's munmap hook now
  say('libuv thread: while JS runs, not yet called', seen.length, 'still mapped', mapped(b));
  const rc = await done;
  say('after JS yielded: called in the JS thread', seen.length, seen[1][2] === js, 'munmap', rc, 'mapped', mapped(b));
} else {
  p.register(p.alloc(4096));
  say('exiting with a registration');
}
`);

  it('from the JS thread it runs inline; from a libuv thread koffi queues it to the JS thread and that thread waits in munmap until JS yields', async () => {
    const r = await run(process.execPath, [CLI, 'run', '--quiet', '--', process.execPath, raw(), 'threads'], bareEnv(), 60_000);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual([
      'js thread: inline 1 true true',
      'libuv thread: while JS runs, not yet called 1 still mapped true',
      'after JS yielded: called in the JS thread 2 true munmap 0 mapped false',
    ]);
  });

  it('at exit (the shim invalidates every registration then) the JS callback crashes the process', async () => {
    const r = await run(process.execPath, [CLI, 'run', '--quiet', '--', process.execPath, raw(), 'exit'], bareEnv(), 60_000);
    expect(r.lines).toEqual(['exiting with a registration']);
    expect(r.stderr).toMatch(/killed by SIGSEGV/);
    expect(r.code).toBe(139);
  });
});

describe('without the shim', () => {
  const quiet = () => script(`
const p = new Pincoh();
say('preloaded', p.preloaded);
const s = p.stats();
say('stats', s.connected, s.libc, s.slowCalls);
try { p.register(p.alloc(4096)); } catch (e) { say(e.code, e.errno, e.message); }
try { p.barrier(10); } catch (e) { say(e.code); }
`);

  it('plain `node app.mjs`: loading says nothing and patches nothing; calls throw ENOTCONN saying the library is not preloaded', async () => {
    const r = await run(process.execPath, [quiet()], bareEnv());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.lines).toEqual([
      'preloaded false',
      'stats false none 0',
      'ENOTCONN 107 pincoh_register failed: ENOTCONN (libpincoh.so is not preloaded in this process, so its hooks see nothing: run it as `pincoh run -- node app.mjs` (or with LD_PRELOAD=libpincoh.so and PINCOH_SOCKET set))',
      'ENOTCONN',
    ]);
  });

  it('PINCOH_SOCKET set but the library not preloaded: the shim says so once, at the first call', async () => {
    const r = await run(process.execPath, [quiet()], { ...bareEnv(), PINCOH_SOCKET: join(tempDir('binding'), 'nothing') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `pincoh[${r.pid}]: libpincoh.so was loaded with dlopen, not preloaded: its hooks see none of this process's calls, so pincoh calls return -ENOTCONN (run the program under pincoh run, or with LD_PRELOAD)\n`,
    );
    expect(r.lines[1]).toBe('stats false none 0');
  });

  it('preloaded without PINCOH_SOCKET: libc left unpatched, and the error says PINCOH_SOCKET is not set', async () => {
    const r = await run(process.execPath, [quiet()], { ...bareEnv(), LD_PRELOAD: join(ROOT, 'native-shim/build/libpincoh.so') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.lines).toEqual([
      'preloaded true',
      'stats false none 0',
      'ENOTCONN 107 pincoh_register failed: ENOTCONN (no coordinator: PINCOH_SOCKET is not set; run it as `pincoh run -- node app.mjs`)',
      'ENOTCONN',
    ]);
  });
});
