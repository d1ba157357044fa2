// pincoh status: what a running coordinator sees.

import { PincohError } from '../errors.js';
import type { StatusOptions } from './options.js';

export async function statusCommand(o: StatusOptions): Promise<number> {
  throw new PincohError('PINCOH_ERR_USAGE', `pincoh status is not built yet (${o.socket})`);
}
