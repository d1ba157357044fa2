// How a process ended, as far as the coordinator can tell: it said BYE
// (exit or exec), or its connection closed without it (killed or crashed).
// The signal is read from /proc/PID/stat while the process is a zombie
// (exit_code, field 52); its parent may have reaped it already.

import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

const NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The signal that ended pid, if /proc still shows it as a zombie that died of one. */
export function deathSignal(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  if (fields[0] !== 'Z') return undefined;
  const code = Number(fields[52 - 3]);
  return code & 0x7f ? NAMES.get(code & 0x7f) : undefined;
}
