// How a process stands or ended, as far as another process can tell from
// /proc/PID/stat: whether it still runs (not exiting, not a zombie), when it
// started (so a pid the kernel has given to another process is not taken for
// it), and the signal that ended it while it is a zombie (its parent may have
// reaped it already).

import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { ProcessPort } from '../coherence/ports.js';

const NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));
const PF_EXITING = 0x4; // set as do_exit begins, before the process's descriptors close

interface Stat {
  state: string;
  flags: number;
  /** clock ticks after boot (field 22) */
  start: string;
  /** exit_code (field 52): the wait status */
  exitCode: number;
}

function stat(pid: number): Stat | undefined {
  if (!(pid > 0)) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return { state: f[0]!, flags: Number(f[9 - 3]), start: f[22 - 3]!, exitCode: Number(f[52 - 3]) };
}

/** pid's start time while it runs; undefined once it is exiting, a zombie or gone. */
export function runningSince(pid: number): string | undefined {
  const s = stat(pid);
  return s && s.state !== 'Z' && s.state !== 'X' && !(s.flags & PF_EXITING) ? s.start : undefined;
}

/**
 * Has the process that started at `since` exited, every thread of it? A
 * zombie counts once it is its last thread (a leader that called
 * pthread_exit shows as a zombie while the others run); another start time
 * means the pid is another process's now.
 */
export function exited(pid: number, since?: string): boolean {
  const s = stat(pid);
  if (!s || (since !== undefined && s.start !== since)) return true;
  if (s.state !== 'Z' && s.state !== 'X') return false;
  try {
    return readdirSync(`/proc/${pid}/task`).length <= 1;
  } catch {
    return true;
  }
}

/** The signal that ends pid, if /proc still shows it dying of one: exiting (do_exit sets exit_code
 * before it closes the descriptors, whose closing is how we hear of it) or a zombie. */
export function deathSignal(pid: number): string | undefined {
  const s = stat(pid);
  return s && (s.state === 'Z' || s.flags & PF_EXITING) && s.exitCode & 0x7f ? NAMES.get(s.exitCode & 0x7f) : undefined;
}

/** The engine's port to other processes' lives: /proc, and kill(2). */
export const systemProcesses: ProcessPort = {
  kill: (pid) => {
    try {
      process.kill(pid, 'SIGKILL');
      return true;
    } catch {
      return false; // already gone
    }
  },
  runningSince,
  exited,
  deathSignal,
};
