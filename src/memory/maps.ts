// /proc/PID/maps, and the audit built on it: which registrations no longer
// lie in memory mapped with the permissions they need. What no hook can see
// (a raw syscall, a missed path) shows up here.

import { readFileSync } from 'node:fs';
import { PINCOH_READ, PINCOH_WRITE } from '../protocol/constants.js';
import type { Finding } from '../coherence/ports.js';
import type { Registration } from '../registry/interval-index.js';

export interface Mapping {
  start: number;
  end: number;
  read: boolean;
  write: boolean;
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) (.)(.)/);
    if (m) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), read: m[3] === 'r', write: m[4] === 'w' });
  }
  return out;
}

export function readMaps(pid: number): Mapping[] | undefined {
  try {
    return parseMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return undefined; // gone
  }
}

export type { Finding };

/** Why `r` is stale in `maps` (sorted, as the kernel lists them), or undefined if it is not. */
export function auditOne(r: Registration, maps: Mapping[]): Finding | undefined {
  let at = r.start;
  for (const m of maps) {
    if (m.end <= at) continue;
    if (m.start > at) return 'unmapped'; // a hole
    if (r.flags & PINCOH_READ && !m.read) return 'lost read';
    if (r.flags & PINCOH_WRITE && !m.write) return 'lost write';
    at = m.end;
    if (at >= r.end) return undefined;
  }
  return 'unmapped';
}

export function audit(regs: Iterable<Registration>, maps: Mapping[]): Array<{ reg: Registration; finding: Finding }> {
  const out: Array<{ reg: Registration; finding: Finding }> = [];
  for (const reg of regs) {
    const finding = auditOne(reg, maps);
    if (finding) out.push({ reg, finding });
  }
  return out;
}
