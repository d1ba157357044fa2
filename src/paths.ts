// Where the package's own files are, wherever it is run from.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PincohError } from './errors.js';

/** The package root: src/ and dist/ both sit one level below it. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** libpincoh.so: PINCOH_SHIM overrides, else the one `npm install` built. */
export function shimPath(): string {
  const p = process.env.PINCOH_SHIM ?? resolve(packageRoot, 'native-shim/build/libpincoh.so');
  if (!existsSync(p)) throw new PincohError('PINCOH_ERR_SHIM_MISSING', `${p} is missing; run \`npm install\` (or \`make -C native-shim\`) first.`);
  return p;
}

/** The package's version (package.json), which the shim's soname also carries. */
export function version(): string {
  return (JSON.parse(readFileSync(resolve(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
