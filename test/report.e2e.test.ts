// pincoh report: real traces from the examples, the page opened in a real
// headless Chromium from file://, its totals checked against our own count of
// the trace's lines; a synthetic 10^6-event trace for scale; the errors.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { byHost, renderHtml } from '../src/report/render.js';
import { readTraces } from '../src/report/aggregate.js';
import { crashOnceReady, example, itWith, pincoh, ROOT, tempDir } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * A test that needs Debian's chromium. Under CI a missing browser fails the
 * test, saying what to install; elsewhere it is skipped and its name says so.
 */
/** The report's pages are checked in a real browser: Debian's chromium. */
const itWithChromium = (name: string, fn: () => Promise<void>, timeout?: number): void => itWith(['chromium'], 'chromium', name, fn, timeout);

interface Seen {
  problems: string[];
  requests: string[];
}

/** Opens html from file:// in headless Chromium; every console error, page error and request is collected. Closes the browser after fn. */
async function inBrowser(html: string, fn: (page: Page, seen: Seen) => Promise<void>): Promise<void> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const seen: Seen = { problems: [], requests: [] };
    page.on('console', (m) => void (m.type() === 'error' && seen.problems.push(`console: ${m.text()}`)));
    page.on('pageerror', (e) => seen.problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => seen.problems.push(`request failed: ${r.url()}`));
    page.on('request', (r) => seen.requests.push(r.url()));
    await page.goto('file://' + html, { waitUntil: 'load' });
    await fn(page, seen);
    expect(seen.problems).toEqual([]);
    expect(seen.requests).toEqual(['file://' + html]);
  } finally {
    await browser.close();
  }
}

/** The totals, counted here from the JSON lines themselves (not by src/report). */
function countTraces(files: string[]): { totals: Record<string, number>; pids: number[] } {
  const t: Record<string, number> = {};
  const inc = (k: string, n = 1) => void (t[k] = (t[k] ?? 0) + n);
  for (const k of ['processes', 'registrations', 'invalidations', 'calls', 'waited', 'timeouts', 'attachments', 'revokes', 'cutoffs', 'crashes', 'dropped']) t[k] = 0;
  const pids: number[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const e = JSON.parse(text.slice(start, end));
      start = end + 1;
      switch (e.event) {
        case 'hello':
          inc('processes');
          pids.push(e.pid);
          break;
        case 'register':
          inc('registrations');
          break;
        case 'call':
          inc('calls');
          inc('invalidations', e.invalidated.length);
          if (e.invalidated.length) inc(`invalidations.${e.call}`, e.invalidated.length);
          inc(`calls.${e.call}`);
          if (e.waited) inc('waited');
          if (e.timed_out) inc('timeouts');
          break;
        case 'attach':
          if (e.outcome === 'ok') inc('attachments');
          break;
        case 'revoke':
          inc('revokes');
          inc(`revokes.${e.outcome}`);
          break;
        case 'cutoff':
          inc('cutoffs');
          break;
        case 'gone':
          if (e.how === 'crash') inc('crashes');
          break;
        case 'dropped':
          inc('dropped', e.events);
          break;
      }
    }
  }
  return { totals: t, pids };
}

/** What the page shows for each total (data-total marks the number shown), as numbers. */
async function shownTotals(page: Page, keys: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const k of keys) {
    const el = page.locator(`[data-total="${k}"]`);
    out[k] = (await el.count()) ? Number((await el.innerText()).replace(/,/g, '')) : 0;
  }
  return out;
}

async function checkPage(html: string, traces: string[], screenshot?: string): Promise<void> {
  const { totals, pids } = countTraces(traces);
  await inBrowser(html, async (page) => {
    expect(await shownTotals(page, Object.keys(totals))).toEqual(totals);
    const labels = (await page.locator('.row .label .pid').allInnerTexts()).join('\n');
    for (const pid of new Set(pids)) expect(labels).toContain(`pid ${pid}`);
    expect(await page.locator('.hist').count()).toBeGreaterThan(0);
    if (screenshot) {
      // the tooltip over a busy bin of the first process
      const plot = page.locator('.plot[data-r="1"]').first();
      await plot.scrollIntoViewIfNeeded();
      const box = (await plot.boundingBox())!;
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2);
      expect(await page.locator('#tip').isVisible()).toBe(true);
      await page.screenshot({ path: screenshot, fullPage: false });
    }
  });
}

describe('pincoh report', () => {
  itWithChromium(
    'real traces (halo, stalewrite, a rank that crashes): the page opens offline, shows every pid, and its totals are the trace\'s',
    async () => {
      const dir = tempDir('report');
      const halo = join(dir, 'halo.jsonl');
      const stale = join(dir, 'stalewrite.jsonl');
      const crash = join(dir, 'crash.jsonl');
      const runs = await Promise.all([
        pincoh(['run', '-n', '4', '--trace', halo, '--', example('halo')]),
        pincoh(['run', '-n', '3', '--trace', stale, '--', example('stalewrite'), 'munmap', '300']),
        pincoh(['run', '-n', '3', '--trace', crash, '--', 'sh', '-c', crashOnceReady(1, [0, 2], 'bar 30000')]),
      ]);
      expect(runs.map((r) => r.code)).toEqual([0, 0, 139]);
      const html = join(dir, 'report.html');
      const r = await pincoh(['report', halo, stale, crash, '-o', html]);
      expect(r.stderr).toMatch(/^pincoh: wrote .*report\.html \(\d+ KiB\): \d+ events, 10 processes, from 3 traces\n$/);
      expect(r.code).toBe(0);
      const { totals } = countTraces([halo, stale, crash]);
      expect(totals.revokes).toBeGreaterThan(0);
      expect(totals.crashes).toBe(1);
      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      // beside vitest's report (docs/report.png, in the README, is one such screenshot, committed)
      await checkPage(html, [halo, stale, crash], join(ROOT, 'test-results/report.png'));
      const page = readFileSync(html, 'utf8');
      expect(page).not.toMatch(/<(link|img|iframe)\b|src=|https?:\/\//); // nothing fetched from anywhere
      // pincoh run names its crashed rank's signal in the trace (/proc's zombie, or its own reaping)
      const gone = readFileSync(crash, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; how?: string; signal?: string }).find((e) => e.event === 'gone' && e.how === 'crash');
      expect(gone?.signal).toBe('SIGSEGV');
      expect(page).toContain('SIGSEGV');
    },
    180_000,
  );

  itWithChromium(
    'a synthetic trace of 10^6 events (for scale only: made up here, not by pincoh): the page stays small, renders, and its totals are right',
    async () => {
      const dir = tempDir('report-big');
      const trace = join(dir, 'big.jsonl');
      const lines = synthetic(trace, 1_000_000);
      expect(lines).toBe(1_000_000);
      const html = join(dir, 'big.html');
      const r = await pincoh(['report', trace, '-o', html]);
      expect(r.stderr).toMatch(/^pincoh: wrote .*big\.html \(\d+ KiB\): 1000000 events, 65 processes, from 1 trace\n$/);
      expect(r.code).toBe(0);
      // bounded by rows x bins, not by events: 65 busy processes x 240 bins made 430 KB
      expect(statSync(html).size).toBeLessThan(600_000);
      await checkPage(html, [trace]);
    },
    300_000,
  );

  it('a malformed line: exit 2, the file and line named, no stack trace, no page', async () => {
    const dir = tempDir('report-err');
    const trace = join(dir, 't.jsonl');
    writeFileSync(trace, '{"t":1,"event":"hello","pid":7,"rank":0,"argv0":"x"}\n{"t":2,"event":"register","pid":7,"rank":0,"key":1}\n{"t":3,"event":"call","pid":7\n');
    const html = join(dir, 'out.html');
    const r = await pincoh(['report', trace, '-o', html]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: ${trace}:3: not a trace record (not JSON): {"t":3,"event":"call","pid":7 (its last line: cut short as its coordinator was killed? remove that line and run report again) [PINCOH_ERR_TRACE]\n`);
    expect(existsSync(html)).toBe(false);
    // the same line in the middle: no such hint
    writeFileSync(trace, '{"t":1,"event":"hello","pid":7,"rank":0,"argv0":"x"}\n{"t":3,"event":"call","pid":7\n{"t":4,"event":"gone","pid":7,"rank":0,"how":"exit","reason":"x","registrations":0}\n');
    const mid = await pincoh(['report', trace, '-o', html]);
    expect(mid.code).toBe(2);
    expect(mid.stderr).toBe(`pincoh: ${trace}:2: not a trace record (not JSON): {"t":3,"event":"call","pid":7 [PINCOH_ERR_TRACE]\n`);
  });

  it('a line that is JSON but not a record: named by its field', async () => {
    const dir = tempDir('report-err');
    const trace = join(dir, 't.jsonl');
    writeFileSync(trace, '{"t":1,"pid":7,"rank":0}\n');
    const r = await pincoh(['report', trace, '-o', join(dir, 'out.html')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: ${trace}:1: not a trace record (no "event"): {"t":1,"pid":7,"rank":0} [PINCOH_ERR_TRACE]\n`);
  });

  it('a trace that does not exist: exit 2, named', async () => {
    const dir = tempDir('report-err');
    const r = await pincoh(['report', join(dir, 'none.jsonl'), '-o', join(dir, 'out.html')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: cannot read trace ${join(dir, 'none.jsonl')}: no such file [PINCOH_ERR_TRACE]\n`);
  });

  it('a page that cannot be written: exit 2, named, before any trace is read', async () => {
    const dir = tempDir('report-err');
    const out = join(dir, 'no/such/dir/out.html');
    const r = await pincoh(['report', join(dir, 'none.jsonl'), '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`pincoh: cannot write the report to ${out}: no such directory [PINCOH_ERR_TRACE]\n`);
  });
});

/**
 * Writes a made-up trace of exactly `total` lines, shaped like pincoh's (for
 * scale only): 64 processes registering, unmapping, mprotecting; published
 * buffers attached by a neighbour and revoked; a pid reused after its exit;
 * timeouts, failed calls, lost events, a cut-off and a crash.
 */
function synthetic(path: string, total: number): number {
  const fd = openSync(path, 'w');
  let buf: string[] = [];
  let written = 0;
  let t = 0;
  const out = (o: Record<string, unknown>) => {
    buf.push(JSON.stringify({ t: Number(t.toFixed(3)), ...o }));
    written++;
    if (buf.length === 10_000) {
      writeSync(fd, buf.join('\n') + '\n');
      buf = [];
    }
  };
  const P = 64;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pids = Array.from({ length: P }, (_, i) => 200_000 + i);
  const keys = new Array<number>(P).fill(0);
  for (let i = 0; i < P; i++) out({ event: 'hello', pid: pids[i], rank: i, ppid: 1, argv0: 'synthetic', job: 'synthetic', libc: 'code patch' });
  const endLines = P + 1; // a gone for each, and a cutoff
  let step = 0;
  const reuseAt = Math.floor(total / 2);
  let reused = false;
  while (written < total - endLines - 8) {
    t += 0.05;
    const i = step++ % P;
    const pid = pids[i]!;
    if (!reused && written >= reuseAt) {
      // pid 200000 exits, and its pid comes back as a new process
      reused = true;
      out({ event: 'gone', pid: pids[0], rank: 0, how: 'exit', reason: 'disconnected', registrations: keys[0]! > 0 ? 1 : 0 });
      out({ event: 'hello', pid: pids[0], rank: 0, ppid: 1, argv0: 'synthetic-again', job: 'synthetic', libc: 'code patch' });
      keys[0] = 0;
      continue;
    }
    const key = ++keys[i]!;
    out({ event: 'register', pid, rank: i, key, addr: '0x7f0000000000', len: 65536, flags: 3 });
    const r = rand();
    if (step % 500 === 0) {
      out({ event: 'call', pid, rank: i, call: 'mprotect', addr: '0x7f0000000000', len: 65536, hits: 0, invalidated: [], followed: [], outcome: 'EINVAL', latency_us: 1 + r * 5, waited: false, timed_out: false });
      out({ event: 'deregister', pid, rank: i, key, outcome: 'ok' });
    } else if (step % 7 === 0) {
      const peer = pids[(i + 1) % P]!;
      out({ event: 'publish', pid, rank: i, key, name: `buf/${i}` });
      out({ event: 'attach', pid: peer, rank: (i + 1) % P, name: `buf/${i}`, owner: pid, outcome: 'ok' });
      const timedOut = step % 7007 === 0;
      out({ event: 'call', pid, rank: i, call: 'munmap', addr: '0x7f0000000000', len: 65536, hits: 1, invalidated: [key], followed: [], outcome: 0, latency_us: timedOut ? 20_000_000 : 50 + r * r * 20_000, waited: true, timed_out: timedOut });
      out({ event: 'revoke', pid, rank: i, attacher: peer, handle: 1, reason: 'munmap', outcome: r < 0.8 ? 'dead' : 'drained', latency_us: Math.round(5 + r * r * r * 5000) });
    } else {
      out({ event: 'call', pid, rank: i, call: r < 0.7 ? 'munmap' : r < 0.9 ? 'madvise' : 'mremap', addr: '0x7f0000000000', len: 65536, hits: 1, invalidated: [key], followed: [], outcome: r < 0.9 ? 0 : '0x7f0000100000', latency_us: 0.3 + r * r * 80, waited: false, timed_out: false });
    }
    if (step % 100_003 === 0) out({ event: 'dropped', pid, rank: i, events: 17 });
  }
  // pad to exactly `total` with mprotects that add permissions (they invalidate nothing)
  while (written < total - endLines) out({ event: 'call', pid: pids[3], rank: 3, call: 'mprotect', addr: '0x7f0000000000', len: 65536, hits: 0, invalidated: [], followed: [], outcome: 0, latency_us: 2, waited: false, timed_out: false });
  // the ends: a cut-off, a crash, the rest exit
  t += 1;
  out({ event: 'cutoff', pid: pids[1], rank: 1, reason: 'a put in flight on a revoked handle for more than 1000 ms', killed: true });
  out({ event: 'gone', pid: pids[1], rank: 1, how: 'cut off', reason: 'killed: a put in flight', registrations: 0 });
  out({ event: 'gone', pid: pids[2], rank: 2, how: 'crash', signal: 'SIGSEGV', reason: 'disconnected', registrations: 0 });
  for (let i = 3; i < P; i++) out({ event: 'gone', pid: pids[i], rank: i, how: 'exit', reason: 'disconnected', registrations: 0 });
  out({ event: 'gone', pid: pids[0], rank: 0, how: 'exit', reason: 'disconnected', registrations: 0 });
  if (buf.length) writeSync(fd, buf.join('\n') + '\n');
  closeSync(fd);
  return written;
}

describe('pincoh report of several nodes: one time line, a row group per node', () => {
  const W = Date.UTC(2026, 11, 6, 12, 0, 0, 250); // node A's coordinator started then, B's 1000 ms later
  const lines = (...recs: object[]) => recs.map((x) => JSON.stringify(x)).join('\n') + '\n';
  /** Two nodes' traces (one node with two coordinators), and one of an older pincoh, without `start`. Made up here. */
  function nodes(dir: string): string[] {
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    const old = join(dir, 'old.jsonl');
    const a2 = join(dir, 'a2.jsonl');
    writeFileSync(a, lines(
      { t: 0, event: 'start', pid: 11, rank: -1, host: 'node-a', wall_ms: W },
      { t: 5, event: 'hello', pid: 100, rank: 0, ppid: 11, argv0: 'ring', job: 'j', libc: 'patched' },
      { t: 10, event: 'register', pid: 100, rank: 0, key: 1, addr: '0x1000', len: 4096, flags: 3 },
      { t: 20, event: 'call', pid: 100, rank: 0, call: 'munmap', addr: '0x1000', len: 4096, hits: 1, invalidated: [1], followed: [], outcome: 0, latency_us: 3, waited: false, timed_out: false },
      { t: 30, event: 'gone', pid: 100, rank: 0, how: 'exit', reason: 'exit', registrations: 0 },
    ));
    writeFileSync(b, lines(
      { t: 0, event: 'start', pid: 22, rank: -1, host: 'node-b', wall_ms: W + 1000 },
      { t: 5, event: 'hello', pid: 200, rank: 1, ppid: 22, argv0: 'ring', job: 'j', libc: 'patched' },
      { t: 10, event: 'register', pid: 200, rank: 1, key: 1, addr: '0x1000', len: 4096, flags: 3 },
      { t: 50, event: 'gone', pid: 200, rank: 1, how: 'crash', signal: 'SIGSEGV', reason: 'died', registrations: 1 },
    ));
    writeFileSync(old, lines(
      { t: 2, event: 'hello', pid: 300, rank: 0, ppid: 1, argv0: 'old', job: 'k', libc: 'patched' },
      { t: 7, event: 'gone', pid: 300, rank: 0, how: 'exit', reason: 'exit', registrations: 0 },
    ));
    writeFileSync(a2, lines(
      { t: 0, event: 'start', pid: 12, rank: -1, host: 'node-a', wall_ms: W + 500 },
      { t: 1, event: 'hello', pid: 101, rank: 2, ppid: 12, argv0: 'ring', job: 'j', libc: 'patched' },
      { t: 4, event: 'gone', pid: 101, rank: 2, how: 'exit', reason: 'exit', registrations: 0 },
    ));
    return [a, b, old, a2];
  }

  it('each trace is placed by its start: wall_ms + t less the earliest wall_ms, in the same bins; grouped by host; a trace without start is read as it is', async () => {
    const paths = nodes(tempDir('report-nodes'));
    const r = await readTraces(paths);
    expect(r.originMs).toBe(W);
    expect(r.files.map((f) => [f.host, f.wallMs, f.offsetMs, f.coordinator])).toEqual([
      ['node-a', W, 0, 11],
      ['node-b', W + 1000, 1000, 22],
      [undefined, undefined, 0, undefined],
      ['node-a', W + 500, 500, 12],
    ]);
    // each process's life on the one time line
    const life = (fi: number) => r.files[fi]!.rows.map((row) => [row.pid, row.start, row.end]);
    expect(life(0)).toEqual([[100, 5, 30]]);
    expect(life(1)).toEqual([[200, 1005, 1050]]);
    expect(life(2)).toEqual([[300, 2, 7]]); // its own t: no start to place it by
    expect(life(3)).toEqual([[101, 501, 504]]);
    expect(r.files.map((f) => [f.tFirst, f.tLast])).toEqual([[5, 30], [1005, 1050], [2, 7], [501, 504]]);
    // start is not an event of a process: no row for it, not counted
    expect(r.files.map((f) => f.events)).toEqual([4, 3, 2, 2]);
    expect(r.totals.processes).toBe(4);
    // one bin width for all (the longest needs 1050 ms in 240 bins: 8 ms), so a bin is the same moment in each
    expect(new Set(r.files.map((f) => f.binMs))).toEqual(new Set([8]));
    const binsWith = (a: Float64Array) => [...a.keys()].filter((i) => a[i]);
    expect(binsWith(r.files[0]!.node.events)).toEqual([0, 1, 2, 3]); // t 5, 10, 20, 30
    expect(binsWith(r.files[0]!.node.inval.get('munmap')!)).toEqual([2]);
    expect(binsWith(r.files[1]!.node.events)).toEqual([125, 126, 131]); // t 1005, 1010, 1050
    expect(binsWith(r.files[3]!.node.events)).toEqual([62, 63]); // t 501, 504
    // the worst moments are on the same time line
    expect(r.crashes.items.map((m) => [m.file, m.t, m.pid])).toEqual([[1, 1050, 200]]);
    // row groups: by node, in the order of their first start; traces without start last, under unknown host
    expect(byHost(r)).toEqual([
      { host: 'node-a', files: [0, 3] },
      { host: 'node-b', files: [1] },
      { host: 'unknown host', files: [2] },
    ]);
  });

  it('traces without a start event (older ones) are read as before, on their own t', async () => {
    const dir = tempDir('report-old');
    const [, , old] = nodes(dir);
    const r = await readTraces([old!]);
    expect(r.originMs).toBeUndefined();
    expect(r.files[0]).toMatchObject({ offsetMs: 0, tFirst: 2, tLast: 7, binMs: 1 });
    expect(renderHtml(r)).toMatch(/not placed by the wall clock/);
  });

  itWithChromium('the page: a header row per node, the time line\'s origin in UTC and the clocks\' caveat, each process under its node', async () => {
    const dir = tempDir('report-nodes');
    const paths = nodes(dir);
    const html = join(dir, 'nodes.html');
    const r = await pincoh(['report', ...paths, '-o', html]);
    expect(r.code).toBe(0);
    await inBrowser(html, async (page) => {
      expect(await page.locator('.hostrow .label b').allInnerTexts()).toEqual(['node-a', 'node-b', 'unknown host']);
      const under = async (host: string) => (await page.locator(`.hostgroup[data-host="${host}"] .label .pid`).allInnerTexts()).join(' ');
      expect(await under('node-a')).toBe('pid 100 pid 101');
      expect(await under('node-b')).toBe('pid 200');
      expect(await under('unknown host')).toBe('pid 300');
      const sub = await page.locator('.sub.timeline').innerText();
      expect(sub).toContain(new Date(W).toISOString());
      expect(sub).toMatch(/NTP offset/);
      expect(sub).toMatch(/old\.jsonl: no start event/);
      // every row has the same bins: the tooltip over node-b's process starts at 1 s
      const plot = page.locator('.hostgroup[data-host="node-b"] .plot[data-r="1"]');
      await plot.scrollIntoViewIfNeeded();
      const box = (await plot.boundingBox())!;
      await page.mouse.move(box.x + box.width * (125.5 / 132), box.y + box.height / 2);
      expect(await page.locator('#tip').innerText()).toMatch(/^1\.000 s – 1\.008 s/);
      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test-results/report-nodes.png'), fullPage: true });
    });
  });
});
