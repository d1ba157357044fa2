// Whether a command is a statically linked ELF program: LD_PRELOAD never
// reaches one, so the shim cannot see its calls. `pincoh run` says so.

import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const PT_LOAD = 1;
const PT_INTERP = 3;

/** The file a command name runs: as given if it holds a slash, else the first executable on PATH. */
export function resolveCommand(cmd: string, path = process.env.PATH ?? ''): string | undefined {
  if (cmd.includes('/')) return cmd;
  for (const dir of path.split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** True for a 64-bit little-endian ELF file that loads without a program
 *  interpreter (static, or static-pie); false for anything else. */
export function isStaticElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64) return false;
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false;
    const phoff = Number(head.readBigUInt64LE(32));
    const size = head.readUInt16LE(54);
    const count = head.readUInt16LE(56);
    if (size < 4 || count === 0 || count > 4096) return false;
    const ph = Buffer.alloc(size * count);
    if (readSync(fd, ph, 0, ph.length, phoff) < ph.length) return false;
    const types = Array.from({ length: count }, (_, i) => ph.readUInt32LE(i * size));
    return types.includes(PT_LOAD) && !types.includes(PT_INTERP);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
