// pincoh report, part 2: one self-contained HTML page from a Report. Inline
// CSS, SVG drawn here (a few paths per timeline row, whatever the number of
// events), and a little inline script for tooltips over the bins. No network.

import { basename } from 'node:path';
import { fmtUs, type FileReport, type Histogram, type Moment, type Report, type Row } from './aggregate.js';

const ROW_H = 40;
const HELD_TOP = 3;
const HELD_H = 14;
const INV_TOP = 19;
const INV_H = 10;
const REV_TOP = 30;
const REV_H = 4;
const REVD_TOP = 35;

export const CAUSE_COLORS: Record<string, string> = {
  munmap: '#d1495b',
  mprotect: '#edae49',
  mremap: '#00798c',
  madvise: '#66a182',
  mmap: '#8d6a9f',
  free: '#f28f3b',
  realloc: '#c8553d',
  exit: '#7f8c8d',
  exec: '#4f5d75',
};
const colorOf = (cause: string): string => CAUSE_COLORS[cause] ?? '#b0a090';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const n = (x: number): string => Math.round(x).toLocaleString('en-US');
const r1 = (x: number): number => Math.round(x * 10) / 10;

export function fmtMs(ms: number): string {
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)} min ${((ms % 60_000) / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(3)} s`;
  return `${ms.toFixed(ms >= 100 ? 1 : 2)} ms`;
}

/** Bins every timeline uses: up to the last event of any trace (they share one time line and one bin width). */
const usedBins = (r: Report): number => Math.max(1, ...r.files.map((f) => Math.min(240, Math.floor(f.tLast / f.binMs) + 1)));

/** What a row group is called: the node, or for a trace without a `start` event, this. */
export const UNKNOWN_HOST = 'unknown host';

/** The traces by node, each node's in the order given; nodes by their first trace's start, traces without `start` last. */
export function byHost(r: Report): Array<{ host: string; files: number[] }> {
  const groups = new Map<string, number[]>();
  r.files.forEach((f, i) => {
    const h = f.wallMs === undefined ? UNKNOWN_HOST : (f.host ?? UNKNOWN_HOST);
    if (!groups.has(h)) groups.set(h, []);
    groups.get(h)!.push(i);
  });
  const first = (g: number[]) => Math.min(...g.map((i) => (r.files[i]!.wallMs === undefined ? Infinity : r.files[i]!.offsetMs)));
  return [...groups].map(([host, files]) => ({ host, files })).sort((a, b) => first(a.files) - first(b.files) || (a.files[0]! - b.files[0]!));
}

/** The time line's origin, in words. */
function timeLine(r: Report): string {
  const without = r.files.filter((f) => f.wallMs === undefined);
  const names = (fs: FileReport[]) => fs.map((f) => esc(basename(f.path))).join(', ');
  if (r.originMs === undefined)
    return `<span class="nostart">Times are ms since ${without.length === 1 ? "the trace's coordinator started: it has" : "each trace's coordinator started: none has"} a <code>start</code> event (older traces do not), so ${without.length === 1 ? 'it is' : 'they are'} not placed by the wall clock (under ${UNKNOWN_HOST}).</span>`;
  const hosts = new Set(r.files.filter((f) => f.wallMs !== undefined).map((f) => f.host));
  let s = `One time line: 0 is <b class="origin">${esc(new Date(r.originMs).toISOString())}</b> (UTC), the earliest coordinator start among the traces; each trace's events are placed at its coordinator's wall clock at its start plus their t.`;
  if (hosts.size > 1)
    s += ` The nodes' clocks may differ by their NTP offsets (typically well under a millisecond to tens of ms on a cluster): the alignment across nodes is only as good as their clocks.`;
  if (without.length)
    s += ` <span class="nostart">${names(without)}: no <code>start</code> event (an older trace), so not placed by the wall clock: ${without.length === 1 ? 'its' : 'their'} times are ms since ${without.length === 1 ? 'its' : 'their'} coordinator started, drawn from the time line's 0, under ${UNKNOWN_HOST}.</span>`;
  return s;
}

/** Registrations held at each bin (the most within it), carried across bins without a change. */
function heldLevels(row: Row, nb: number): number[] {
  const out: number[] = [];
  let carry = 0;
  for (let i = 0; i < nb; i++) {
    out.push(row.heldMax[i]! >= 0 ? Math.max(row.heldMax[i]!, carry) : carry);
    if (row.heldEnd[i]! >= 0) carry = row.heldEnd[i]!;
  }
  return out;
}

function rowLabel(row: Row): string {
  if (row.kind === 'node') return `<b>all processes</b><small>${n(row.processes)} processes, ${n(row.eventCount)} events</small>`;
  if (row.kind === 'others') return `<b>${n(row.processes)} more processes</b><small>together (past ${n(200)} rows)</small>`;
  const end = row.how ? `, ${esc(row.how)}${row.signal ? ' ' + esc(row.signal) : ''}` : ', still connected at the end';
  return `<b class="pid">pid ${row.pid}</b> <span>rank ${row.rank}</span> <span class="argv0">${esc(row.argv0)}</span><small>${n(row.eventCount)} events, up to ${n(row.maxHeld)} held${end}</small>`;
}

interface Scale {
  inv: number;
  rev: number;
}

/** SVG units per bin: whole numbers keep the paths short. */
const BW = 2;

/** Bars as one stroked path: a vertical segment per bin, relative moves. */
function barPath(a: ArrayLike<number>, nb: number, bottom: number, h: number, max: number, below?: Float64Array): string {
  let p = '';
  let px = 0;
  let py = 0;
  for (let i = 0; i < nb; i++) {
    const v = a[i]!;
    if (!v) continue;
    const b0 = below ? below[i]! : 0;
    const y0 = bottom - Math.round((h * Math.sqrt(b0)) / Math.sqrt(max));
    const y1 = Math.min(y0 - 1, bottom - Math.round((h * Math.sqrt(b0 + v)) / Math.sqrt(max)));
    const x = i * BW + BW / 2;
    p += p ? `m${x - px} ${y0 - py}` : `M${x} ${y0}`;
    p += `v${y1 - y0}`;
    px = x;
    py = y1;
    if (below) below[i] = b0 + v;
  }
  return p;
}

function rowSvg(f: FileReport, row: Row, nb: number, scale: Scale): string {
  const W = nb * BW;
  const tx = (t: number) => Math.min(W, Math.round((t / f.binMs) * BW * 10) / 10);
  const parts: string[] = [];
  // alive: from its first event to its end (or the end of the trace)
  if (row.kind === 'process' && row.start !== undefined) {
    const x0 = tx(row.start);
    const x1 = row.end !== undefined ? tx(row.end) : W;
    parts.push(`<rect class="alive" x="${x0}" y="1" width="${r1(Math.max(0.5, x1 - x0))}" height="${ROW_H - 2}"/>`);
  }
  // registrations held: one step path
  const levels = heldLevels(row, nb);
  const top = Math.max(1, row.maxHeld);
  const y = (v: number) => Math.round(HELD_TOP + HELD_H * (1 - v / top));
  // a closed area for each stretch holding something
  const floor = HELD_TOP + HELD_H;
  let d = '';
  let prev = 0;
  levels.forEach((v, i) => {
    if (v === prev) return;
    d += prev === 0 ? `M${i * BW} ${floor}V${y(v)}` : v === 0 ? `H${i * BW}V${floor}Z` : `H${i * BW}V${y(v)}`;
    prev = v;
  });
  if (prev !== 0) d += `H${W}V${floor}Z`;
  if (row.maxHeld > 0) parts.push(`<path class="held" d="${d}"/>`);
  // invalidations: stacked by cause in the node's row; in a process's row, one
  // bar a bin in the colour of its main cause (the tooltip has them all), which
  // keeps the page small with many busy processes
  const causes = [...row.inval.keys()].sort();
  let series = causes.map((c) => row.inval.get(c)!);
  if (row.kind !== 'node' && causes.length > 1) {
    series = causes.map(() => new Float64Array(nb));
    for (let i = 0; i < nb; i++) {
      let best = 0;
      let total = 0;
      causes.forEach((c, k) => {
        const v = row.inval.get(c)![i]!;
        total += v;
        if (v > row.inval.get(causes[best]!)![i]!) best = k;
      });
      series[best]![i] = total;
    }
  }
  const base = new Float64Array(nb);
  causes.forEach((cause, k) => {
    const p = barPath(series[k]!, nb, INV_TOP + INV_H, INV_H, scale.inv, base);
    if (p) parts.push(`<path class="bar" stroke="${colorOf(cause)}" d="${p}"/>`);
  });
  const rev = barPath(row.revokes, nb, REV_TOP + REV_H, REV_H, scale.rev);
  if (rev) parts.push(`<path class="bar revoke" d="${rev}"/>`);
  if (row.kind !== 'node') {
    const revd = barPath(row.handlesRevoked, nb, REVD_TOP + REV_H, REV_H, scale.rev);
    if (revd) parts.push(`<path class="bar revoked" d="${revd}"/>`);
  }
  // timeouts and lost events: marks above the held band
  const marks = (a: Float64Array, cls: string) => {
    let p = '';
    for (let i = 0; i < nb; i++) if (a[i]) p += `M${i * BW + BW / 2 - 2} 0h4l-2 4z`;
    if (p) parts.push(`<path class="${cls}" d="${p}"/>`);
  };
  marks(row.timeouts, 'timeout');
  marks(row.dropped, 'dropped');
  // start and end
  let note = '';
  if (row.kind === 'process') {
    if (row.start !== undefined) parts.push(`<path class="start" d="M${tx(row.start)} 1V${ROW_H - 1}"/>`);
    if (row.end !== undefined) {
      const bad = row.how === 'crash' || row.how === 'cut off';
      const ex = tx(row.end);
      parts.push(`<path class="${bad ? 'end bad' : 'end'}" d="M${ex} 1V${ROW_H - 1}"/>`);
      if (bad) {
        const pct = (100 * ex) / W;
        note = `<span class="badtext" style="${pct > 85 ? `right:${r1(100 - pct + 0.5)}%` : `left:${r1(pct + 0.5)}%`}">${esc(row.how ?? '')}${row.signal ? ' ' + esc(row.signal) : ''}</span>`;
      }
    }
  }
  return `<svg viewBox="0 0 ${W} ${ROW_H}" preserveAspectRatio="none" class="tl">${parts.join('')}</svg>${note}`;
}

/** Non-negative integers as base64 varints (5 bits a character, the 6th says more follows): most bins take one character. */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function varints(a: ArrayLike<number>, nb: number): string {
  let s = '';
  let any = false;
  for (let i = 0; i < nb; i++) {
    let v = Math.max(0, Math.round(a[i]!));
    if (v) any = true;
    do {
      const low = v & 31;
      v = Math.floor(v / 32);
      s += B64[low | (v ? 32 : 0)];
    } while (v);
  }
  return any ? s : '';
}

/** What the tooltip script reads for each row: a varint string per series, empty when all zero. */
function rowData(row: Row, nb: number): unknown {
  const inval: Record<string, string> = {};
  for (const [c, a] of row.inval) inval[c] = varints(a, nb);
  return { h: varints(heldLevels(row, nb), nb), e: varints(row.events, nb), c: varints(row.calls, nb), i: inval, r: varints(row.revokes, nb), a: row.kind === 'node' ? '' : varints(row.handlesRevoked, nb), o: varints(row.timeouts, nb), d: varints(row.dropped, nb) };
}

function niceStep(span: number, target: number): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function axis(f: FileReport, nb: number): string {
  const span = nb * f.binMs;
  const step = niceStep(span, 8);
  const ticks: string[] = [];
  for (let t = 0; t <= span + 1e-9; t += step) {
    const pct = (100 * t) / span;
    ticks.push(`<span class="tick" style="left:${r1(pct)}%"><span class="${pct < 3 ? 'first' : pct > 95 ? 'last' : ''}">${fmtMs(t)}</span></span>`);
  }
  return `<div class="axis">${ticks.join('')}</div>`;
}

function timelines(r: Report, data: unknown[][]): string {
  const out: string[] = [];
  const nb = usedBins(r);
  const sections: string[] = [];
  r.files.forEach((f, fi) => {
    const rows = [...f.rows, ...(f.others ? [f.others] : [])];
    const maxOf = (get: (row: Row) => Float64Array[]) => {
      let m = 1;
      for (const row of rows) for (const a of get(row)) for (let i = 0; i < nb; i++) m = Math.max(m, a[i]!);
      return m;
    };
    const invTotal = (row: Row) => {
      const t = new Float64Array(nb);
      for (const a of row.inval.values()) for (let i = 0; i < nb; i++) t[i]! += a[i]!;
      return [t];
    };
    const scale = { inv: maxOf(invTotal), rev: maxOf((row) => [row.revokes, row.handlesRevoked]) };
    const nodeScale = { inv: maxOf(() => invTotal(f.node)), rev: maxOf(() => [f.node.revokes]) };
    const fileData: unknown[] = [];
    const lines: string[] = [];
    const add = (row: Row, sc: Scale) => {
      lines.push(`<div class="row${row.kind === 'node' ? ' node' : ''}"><div class="label">${rowLabel(row)}</div><div class="plot" data-f="${fi}" data-r="${fileData.length}">${rowSvg(f, row, nb, sc)}</div></div>`);
      fileData.push(rowData(row, nb));
    };
    add(f.node, nodeScale);
    for (const row of rows) add(row, scale);
    data.push(fileData);
    const when =
      f.wallMs === undefined
        ? `${fmtMs(f.tFirst)} – ${fmtMs(f.tLast)} after its coordinator started (no start event: not placed by the wall clock)`
        : `${fmtMs(f.tFirst)} – ${fmtMs(f.tLast)} on the time line; its coordinator${f.coordinator ? ` (pid ${f.coordinator})` : ''} started at ${fmtMs(f.offsetMs)}`;
    sections[fi] =
      `<section class="file" data-file="${fi}"><h3>${esc(basename(f.path))} <small>${esc(f.path)}: ${n(f.events)} events, ${n(f.rows.length + (f.others?.processes ?? 0))} processes, ${when}; bins of ${fmtMs(f.binMs)}</small></h3>` +
      `<div class="row axisrow"><div class="label"></div><div class="plot">${axis(f, nb)}</div></div>${lines.join('')}</section>`;
  });
  for (const g of byHost(r)) {
    const events = g.files.reduce((a, i) => a + r.files[i]!.events, 0);
    out.push(
      `<div class="hostgroup" data-host="${esc(g.host)}"><div class="row hostrow"><div class="label"><b>${esc(g.host)}</b><small>${g.files.length} trace${g.files.length === 1 ? '' : 's'}, ${n(events)} events</small></div><div class="plot"></div></div>` +
        g.files.map((i) => sections[i]).join('') +
        `</div>`,
    );
  }
  return out.join('');
}

const legend = (causes: string[]): string =>
  `<div class="legend"><span><i class="sw held"></i>registrations held (top band, scaled to the row's most)</span>` +
  causes.map((c) => `<span><i class="sw" style="background:${colorOf(c)}"></i>invalidated by ${esc(c)}</span>`).join('') +
  `<span><i class="sw revoke"></i>revokes of attachments to its memory</span><span><i class="sw revoked"></i>its handles revoked</span><span><i class="sw timeout"></i>timeout</span><span><i class="sw dropped"></i>events lost</span>` +
  `<span><i class="sw start"></i>start</span><span><i class="sw end"></i>end</span><span><i class="sw bad"></i>crash / cut off</span>` +
  `<span class="note">bar heights: square root of the count, the same scale for every process of a file; a process's invalidation bar takes the colour of the bin's main cause (all processes: stacked by cause; hover for the counts)</span></div>`;

function histogram(title: string, h: Histogram, key: string): string {
  const oct = h.octaves();
  const hw = 360;
  const hh = 110;
  const bw = hw / Math.max(1, oct.length);
  const max = Math.max(1, ...oct.map(([, c]) => c));
  const bars = oct
    .map(([e, c], i) => {
      const bh = c ? Math.max(1, ((hh - 20) * c) / max) : 0;
      return `<rect x="${r1(i * bw + 1)}" y="${r1(hh - 18 - bh)}" width="${r1(Math.max(1, bw - 2))}" height="${r1(bh)}"><title>${n(c)} in ${fmtUs(2 ** e)} – ${fmtUs(2 ** (e + 1))}</title></rect>`;
    })
    .join('');
  const labelEvery = Math.ceil(oct.length / 6);
  const labels = oct
    .map(([e], i) => (i % labelEvery === 0 ? `<text x="${r1(i * bw + 1)}" y="${hh - 4}">${fmtUs(2 ** e)}</text>` : ''))
    .join('');
  const qline = (v: number, cls: string) => {
    if (!oct.length) return '';
    const pos = (Math.log2(v) - oct[0]![0]) * bw;
    return `<path class="${cls}" d="M${r1(Math.max(0, Math.min(hw, pos)))} 0V${hh - 18}"/>`;
  };
  return (
    `<div class="hist" data-hist="${esc(key)}"><h4>${esc(title)}</h4>` +
    `<p><span data-stat="count">${n(h.count)}</span> · p50 ≈ <b>${fmtUs(h.quantile(0.5))}</b> · p99 ≈ <b>${fmtUs(h.quantile(0.99))}</b> · max <b>${fmtUs(h.max)}</b></p>` +
    `<svg viewBox="0 0 ${hw} ${hh}" class="histsvg">${bars}${qline(h.quantile(0.5), 'p50')}${qline(h.quantile(0.99), 'p99')}${labels}</svg></div>`
  );
}

function momentsTable(title: string, items: Moment[], r: Report, total?: number, empty = 'none'): string {
  const multi = r.files.length > 1;
  const more = total !== undefined && total > items.length ? ` <small>(the first ${items.length} of ${n(total)})</small>` : total !== undefined ? ` <small>(${n(total)})</small>` : '';
  if (!items.length) return `<div class="moments"><h4>${esc(title)}${more}</h4><p class="none">${esc(empty)}</p></div>`;
  const rows = items
    .map(
      (m) =>
        `<tr><td class="num">${fmtMs(m.t)}</td>${multi ? `<td>${esc(basename(r.files[m.file]?.path ?? ''))}${r.files[m.file]?.host ? ` <small>(${esc(r.files[m.file]!.host!)})</small>` : ''}</td>` : ''}<td class="num">${m.pid}</td><td class="num">${m.rank}</td><td>${esc(m.argv0)}</td><td>${esc(m.what)}</td></tr>`,
    )
    .join('');
  return `<div class="moments"><h4>${esc(title)}${more}</h4><table><thead><tr><th>time</th>${multi ? '<th>trace</th>' : ''}<th>pid</th><th>rank</th><th>program</th><th>what happened</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function busiestBins(r: Report, k: number): Moment[] {
  const all: Array<{ file: number; bin: number; events: number }> = [];
  const nb = usedBins(r);
  r.files.forEach((f, fi) => {
    for (let i = 0; i < nb; i++) if (f.node.events[i]) all.push({ file: fi, bin: i, events: f.node.events[i]! });
  });
  all.sort((a, b) => b.events - a.events || a.file - b.file || a.bin - b.bin);
  return all.slice(0, k).map(({ file, bin, events }) => {
    const f = r.files[file]!;
    const node = f.node;
    let busiest: Row | undefined;
    for (const row of [...f.rows, ...(f.others ? [f.others] : [])]) if (!busiest || row.events[bin]! > busiest.events[bin]!) busiest = row;
    const inv = [...node.inval].filter(([, a]) => a[bin]).map(([c, a]) => `${c} ${n(a[bin]!)}`);
    const parts = [`${n(events)} events in ${fmtMs(f.binMs)}`, `${n(node.calls[bin]!)} calls`];
    if (inv.length) parts.push(`invalidations: ${inv.join(', ')}`);
    if (node.revokes[bin]) parts.push(`${n(node.revokes[bin]!)} revokes`);
    if (node.timeouts[bin]) parts.push(`${n(node.timeouts[bin]!)} timeouts`);
    if (node.dropped[bin]) parts.push(`${n(node.dropped[bin]!)} events lost`);
    const who = busiest?.kind === 'process' ? `; busiest: pid ${busiest.pid} (${n(busiest.events[bin]!)} events)` : '';
    return { file, t: bin * f.binMs, pid: busiest?.kind === 'process' ? busiest.pid : 0, rank: busiest?.kind === 'process' ? busiest.rank : -1, argv0: busiest?.kind === 'process' ? busiest.argv0 : 'several', what: parts.join(', ') + who };
  });
}

function card(key: string, label: string, value: number, cls = ''): string {
  return `<div class="card${cls ? ' ' + cls : ''}"><div class="v" data-total="${esc(key)}">${n(value)}</div><div class="k">${esc(label)}</div></div>`;
}

function breakdown(title: string, prefix: string, o: Record<string, number>, colors = false): string {
  const entries = Object.entries(o).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!entries.length) return '';
  return (
    `<div class="breakdown"><h4>${esc(title)}</h4><table>` +
    entries
      .map(([k, v]) => `<tr><td>${colors ? `<i class="sw" style="background:${colorOf(k)}"></i>` : ''}${esc(k)}</td><td class="num" data-total="${esc(prefix + '.' + k)}">${n(v)}</td></tr>`)
      .join('') +
    `</table></div>`
  );
}

const CSS = `
*{box-sizing:border-box}
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;padding:16px 24px;color:#1d2430;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 4px}h3 small,h4 small{font-weight:normal;color:#5b6675}h4{margin:8px 0 4px;font-size:13px}
.sub{color:#5b6675;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:6px 10px;min-width:110px}
.card .v{font-size:18px;font-weight:600;font-variant-numeric:tabular-nums}.card .k{color:#5b6675;font-size:12px}
.card.warn .v{color:#b3261e}
.breakdowns{display:flex;flex-wrap:wrap;gap:24px;margin-top:8px}
.breakdown table,.moments table{border-collapse:collapse}
td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eef1f4;vertical-align:top}th{color:#5b6675;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px;border-radius:2px}
.sw.held{background:#3d7fd966;border:1px solid #3d7fd9}.sw.revoke{background:#6a4c93}.sw.revoked{background:#b39ddb}.sw.timeout{background:#e00}.sw.dropped{background:#ff8c00}
.sw.start{background:#2e9e44;width:3px}.sw.end{background:#444;width:3px}.sw.bad{background:#e00;width:3px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;color:#3a4452;margin:4px 0 8px}.legend .note{color:#7a8593}
.row{display:flex;align-items:stretch;border-bottom:1px solid #eef1f4}
.row .label{flex:0 0 250px;padding:2px 8px 2px 0;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.row .label small{display:block;color:#5b6675;font-size:11px;overflow:hidden;text-overflow:ellipsis}
.row .label span{color:#3a4452;margin-left:4px}.row .label .argv0{font-family:ui-monospace,Menlo,Consolas,monospace}
.row.node{background:#f0f4f9}
.hostgroup{margin-top:12px}.row.hostrow{background:#dde6f1;border-bottom:2px solid #9aa4b1}.row.hostrow .label{flex:1 1 auto;padding:4px 8px}.row.hostrow .label small{display:inline;margin-left:8px}
.nostart{color:#8a5a00}
.plot{flex:1 1 auto;min-width:300px;position:relative}
svg.tl{width:100%;height:${ROW_H}px;display:block}
.axis{position:relative;height:20px}.tick{position:absolute;bottom:0;height:6px;border-left:1px solid #9aa4b1}
.tick span{position:absolute;bottom:6px;transform:translateX(-50%);font-size:10px;color:#5b6675;white-space:nowrap}.tick span.first{transform:none}.tick span.last{transform:translateX(-100%)}
.bar{fill:none;stroke-width:${BW * 0.8}}
.alive{fill:#e9eef4}.held{fill:#3d7fd955;stroke:#3d7fd9;stroke-width:1;vector-effect:non-scaling-stroke}
.bar.revoke{stroke:#6a4c93}.bar.revoked{stroke:#b39ddb}.timeout{fill:#e00}.dropped{fill:#ff8c00}
.start{stroke:#2e9e44;stroke-width:2;vector-effect:non-scaling-stroke}.end{stroke:#444;stroke-width:2;vector-effect:non-scaling-stroke}.end.bad{stroke:#e00}
.badtext{position:absolute;bottom:2px;font-size:10px;color:#b3261e;font-weight:600;background:#fffc;padding:0 2px}
.hists{display:flex;flex-wrap:wrap;gap:16px}
.hist{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:6px 10px;width:390px}.hist p{margin:0 0 4px;color:#3a4452}
.histsvg{width:100%;height:auto}.histsvg rect{fill:#3d7fd9}.histsvg text{font-size:9px;fill:#5b6675}
.histsvg .p50{stroke:#2e9e44;stroke-dasharray:3 2}.histsvg .p99{stroke:#e00;stroke-dasharray:3 2}
.moments{margin-bottom:12px}.none{color:#7a8593;margin:0}
#tip{position:fixed;pointer-events:none;background:#1d2430;color:#fff;padding:4px 8px;border-radius:4px;font-size:12px;display:none;z-index:10;max-width:420px}
footer{margin-top:32px;color:#7a8593;font-size:11px}
`;

// The tooltip: which bin is under the pointer, and what it holds.
const SCRIPT = `
(function(){
var D=JSON.parse(document.getElementById('data').textContent),tip=document.getElementById('tip'),cache={};
var B='${B64}';
function dense(s,nb){var a=new Array(nb).fill(0);if(!s)return a;for(var i=0,j=0;i<nb;i++){var v=0,m=1,c;do{c=B.indexOf(s[j++]);v+=(c&31)*m;m*=32}while(c&32);a[i]=v}return a}
function fmt(ms){return ms>=1000?(ms/1000).toFixed(3)+' s':ms.toFixed(ms>=100?1:2)+' ms'}
document.querySelectorAll('.plot[data-r]').forEach(function(el){
  var f=D.files[+el.dataset.f],row=f.rows[+el.dataset.r],nb=f.nb;
  el.addEventListener('mousemove',function(e){
    var b=el.getBoundingClientRect(),i=Math.min(nb-1,Math.max(0,Math.floor((e.clientX-b.left)/b.width*nb)));
    var k=el.dataset.f+'/'+el.dataset.r,c=cache[k];
    if(!c){c=cache[k]={e:dense(row.e,nb),c:dense(row.c,nb),r:dense(row.r,nb),a:dense(row.a,nb),o:dense(row.o,nb),d:dense(row.d,nb),i:{}};
      for(var q in row.i)c.i[q]=dense(row.i[q],nb);
      c.h=dense(row.h,nb)}
    var s=fmt(i*f.w)+' – '+fmt((i+1)*f.w)+'<br>'+c.e[i]+' events, up to '+c.h[i]+' registrations held, '+c.c[i]+' calls';
    var inv=[];for(var q in c.i)if(c.i[q][i])inv.push(q+' '+c.i[q][i]);if(inv.length)s+='<br>invalidated: '+inv.join(', ');
    if(c.r[i])s+='<br>'+c.r[i]+' revokes of attachments to its memory';if(c.a[i])s+='<br>'+c.a[i]+' of its handles revoked';if(c.o[i])s+='<br>'+c.o[i]+' timeouts';if(c.d[i])s+='<br>'+c.d[i]+' events lost';
    tip.innerHTML=s;tip.style.display='block';tip.style.left=Math.min(window.innerWidth-300,e.clientX+12)+'px';tip.style.top=(e.clientY+14)+'px'});
  el.addEventListener('mouseleave',function(){tip.style.display='none'})});
})();
`;

export function renderHtml(r: Report, generatedAt = new Date()): string {
  const T = r.totals;
  const data: unknown[][] = [];
  const tl = timelines(r, data);
  const causes = Object.keys(T.invalidationsByCause).sort();
  const nb = usedBins(r);
  const payload = JSON.stringify({ files: r.files.map((f, i) => ({ nb, w: f.binMs, rows: data[i] })) }).replace(/</g, '\\u003c');
  const files = r.files
    .map((f) => `<tr><td title="${esc(f.path)}">${esc(f.path)}</td><td>${esc(f.wallMs === undefined ? UNKNOWN_HOST : (f.host ?? UNKNOWN_HOST))}</td><td class="num">${f.wallMs === undefined ? '' : esc(new Date(f.wallMs).toISOString())}</td><td class="num">${n(f.lines)}</td><td class="num">${n(f.events)}</td><td class="num">${n(f.node.processes)}</td><td class="num">${fmtMs(f.tFirst)} – ${fmtMs(f.tLast)}</td></tr>`)
    .join('');
  const calls = [...r.callLatency.entries()].sort((a, b) => b[1].count - a[1].count);
  const hists = calls.map(([c, h]) => histogram(`${c}: time in pincoh (latency_us)`, h, `call.${c}`)).join('') + (r.revokeLatency.count ? histogram('revokes: time to revoke an attacher\'s handle', r.revokeLatency, 'revoke') : '');
  const revokeOutcomes = [...r.revokeLatencyByOutcome.entries()].map(([o, h]) => `${esc(o)}: ${n(h.count)}, p99 ≈ ${fmtUs(h.quantile(0.99))}, max ${fmtUs(h.max)}`).join(' · ');
  const topMoments = (t: { items: Array<{ item: Moment }> }) => t.items.map((x) => x.item);
  const other = Object.entries(T.otherEvents);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>pincoh report: ${esc(r.files.map((f) => basename(f.path)).join(', '))}</title><style>${CSS}</style></head><body>
<h1>pincoh report</h1>
<p class="sub">${n(T.events)} events from ${r.files.length} trace${r.files.length === 1 ? '' : 's'} (one coordinator, one node, each), grouped by node.</p>
<p class="sub timeline">${timeLine(r)}</p>
<table class="files"><thead><tr><th>trace</th><th>node</th><th>its coordinator started (UTC)</th><th>lines</th><th>events</th><th>processes</th><th>first – last event</th></tr></thead><tbody>${files}</tbody></table>
<h2>Totals</h2>
<div class="cards">
${card('processes', 'processes', T.processes)}${card('registrations', 'registrations', T.registrations)}${card('deregistrations', 'deregistrations', T.deregistrations)}${card('invalidations', 'invalidations', T.invalidations)}${card('followed', 'followed mremaps (kept)', T.followed)}
${card('calls', 'calls on registered memory', T.calls)}${card('waited', 'waited for the coordinator', T.waited)}${card('timeouts', 'timeouts', T.timeouts, T.timeouts ? 'warn' : '')}${card('failed-calls', 'calls that failed', T.failedCalls)}
${card('publishes', 'publishes', T.publishes)}${card('attachments', 'attachments', T.attachments)}${card('attach-failed', 'attaches that found no name yet (each poll for a name not yet published is one)', T.attachNoName)}${card('revokes', 'revokes', T.revokes)}
${card('cutoffs', 'cut-offs (killed)', T.cutoffs, T.cutoffs ? 'warn' : '')}${card('crashes', 'crashes', T.crashes, T.crashes ? 'warn' : '')}${card('dropped', 'events lost (dropped)', T.dropped, T.dropped ? 'warn' : '')}${card('forks', 'forks', T.forks)}${card('audit-findings', 'audit findings', T.auditFindings, T.auditFindings ? 'warn' : '')}
</div>
<div class="breakdowns">
${breakdown('invalidations by cause', 'invalidations', T.invalidationsByCause, true)}${breakdown('calls by type', 'calls', T.callsByType)}${breakdown('revokes by outcome', 'revokes', T.revokesByOutcome)}${breakdown('failed calls by errno', 'errno', T.failedByErrno)}${breakdown('processes gone, by how', 'gone', T.goneByHow)}${other.length ? breakdown('other events', 'other', T.otherEvents) : ''}
</div>
${T.heldAtGone ? `<p class="sub">${n(T.heldAtGone)} registration${T.heldAtGone === 1 ? ' was' : 's were'} still held when their process went (dropped with it, not counted as invalidations).</p>` : ''}
<h2>Timelines</h2>
${legend(causes)}
${tl}
<h2>Latency</h2>
<p class="sub">Log-scale buckets, one per power of two. p50 and p99 are read from finer buckets (8 per power of two): within 5%. Hover a bar for its count.${revokeOutcomes ? ` Revokes by outcome: ${revokeOutcomes}.` : ''}</p>
<div class="hists">${hists || '<p class="none">no latencies in these traces</p>'}</div>
<h2>The worst moments</h2>
${momentsTable('slowest calls', topMoments(r.slowestCalls), r)}
${momentsTable('timeouts', r.timeouts.items, r, r.timeouts.total)}
${momentsTable('cut-offs', r.cutoffs.items, r, r.cutoffs.total)}
${momentsTable('crashes (gone without exiting)', r.crashes.items, r, r.crashes.total)}
${momentsTable('events lost', r.dropped.items, r, r.dropped.total)}
${momentsTable('failed calls', r.failedCalls.items, r, r.failedCalls.total)}
${momentsTable('slowest revokes', topMoments(r.slowestRevokes), r)}
${momentsTable('busiest bins', busiestBins(r, 10), r)}
<footer>pincoh report, ${esc(generatedAt.toISOString())}. Self-contained: no network, no fonts, no scripts from elsewhere.</footer>
<div id="tip"></div>
<script type="application/json" id="data">${payload}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
