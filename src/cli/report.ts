// pincoh report TRACE... -o FILE.html (src/report/ builds the page).

import { PincohError } from '../errors.js';
import type { ReportOptions } from './options.js';

export async function reportCommand(o: ReportOptions): Promise<number> {
  throw new PincohError('PINCOH_ERR_USAGE', `pincoh report is not built yet (${o.traces.length} traces, ${o.output})`);
}
