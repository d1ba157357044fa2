// pincoh report TRACE... -o FILE.html (src/report/ builds the page).

import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PincohError } from '../errors.js';
import { readTraces } from '../report/aggregate.js';
import { renderHtml } from '../report/render.js';
import type { ReportOptions } from './options.js';

const reason = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such directory';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  if (code === 'ENOSPC') return 'no space left on the device';
  return (e as Error).message;
};

const cannotWrite = (path: string, e: unknown) => new PincohError('PINCOH_ERR_TRACE', `cannot write the report to ${path}: ${reason(e)}`);

export async function reportCommand(o: ReportOptions): Promise<number> {
  // Before reading a long trace: can the page be written where asked?
  try {
    const s = await stat(o.output).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (s?.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    await access(s ? o.output : dirname(resolve(o.output)), constants.W_OK);
  } catch (e) {
    throw cannotWrite(o.output, e);
  }
  const report = await readTraces(o.traces);
  const html = renderHtml(report);
  try {
    await writeFile(o.output, html);
  } catch (e) {
    throw cannotWrite(o.output, e);
  }
  const t = report.totals;
  process.stderr.write(`pincoh: wrote ${o.output} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB): ${t.events} events, ${t.processes} processes, from ${o.traces.length} trace${o.traces.length === 1 ? '' : 's'}\n`);
  return 0;
}
