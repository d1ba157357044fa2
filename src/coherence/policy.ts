// What a hooked call does to one registration it overlaps. Mirrors
// native-shim/src/policy.c; test/policy.test.ts runs both on the same random
// cases. The shim applies it to its own table (so its owner stays right even
// without us); we apply it to the registry and, for exports, to the importers.

import { OP, PINCOH_READ, PINCOH_WRITE, PROT_READ, PROT_WRITE } from '../protocol/constants.js';

export const ACT_KEEP = 0;
export const ACT_INVALIDATE = 1;
export const ACT_FOLLOW = 2;
export type Action = typeof ACT_KEEP | typeof ACT_INVALIDATE | typeof ACT_FOLLOW;

/** A call's page-rounded ranges; dest/destEnd only for mremap with MREMAP_FIXED (else 0, 0). */
export interface MapEvent {
  op: number;
  arg: number;
  start: number;
  end: number;
  len: number;
  newLen: number;
  dest: number;
  destEnd: number;
}

const overlaps = (a: number, b: number, rs: number, re: number): boolean => a < re && rs < b;

/** madvise advice after which the pinned pages are not the mapped ones (policy.c's pc_advice_drops). */
const DROPPING_ADVICE = new Set([4, 8, 9, 12, 21, 24]); // DONTNEED FREE REMOVE MERGEABLE PAGEOUT DONTNEED_LOCKED

export function decide(ev: MapEvent, rs: number, re: number, rflags: number, follow: boolean): Action {
  switch (ev.op) {
    case OP.MUNMAP:
    case OP.MMAP_FIXED:
    case OP.EXIT:
      return overlaps(ev.start, ev.end, rs, re) ? ACT_INVALIDATE : ACT_KEEP;
    case OP.MADVISE:
      return overlaps(ev.start, ev.end, rs, re) && DROPPING_ADVICE.has(ev.arg) ? ACT_INVALIDATE : ACT_KEEP;
    case OP.MPROTECT: {
      if (!overlaps(ev.start, ev.end, rs, re)) return ACT_KEEP;
      const need = (rflags & PINCOH_READ ? PROT_READ : 0) | (rflags & PINCOH_WRITE ? PROT_WRITE : 0);
      return (ev.arg & need) === need ? ACT_KEEP : ACT_INVALIDATE;
    }
    case OP.MREMAP: {
      if (ev.destEnd && overlaps(ev.dest, ev.destEnd, rs, re)) return ACT_INVALIDATE;
      if (!overlaps(ev.start, ev.end, rs, re)) return ACT_KEEP;
      if (follow) {
        const keep = Math.min(ev.newLen, ev.len);
        if (rs >= ev.start && re - ev.start <= keep) return ACT_FOLLOW;
      }
      return ACT_INVALIDATE;
    }
  }
  return ACT_INVALIDATE;
}

export function pageStart(a: number, page: number): number {
  return a - (a % page);
}

/** End of the last page the kernel touches for [a, a+len); saturates like the shim's. */
export function pageEnd(a: number, len: number, page: number): number {
  const end = a + len;
  if (end >= Number.MAX_SAFE_INTEGER - page) return Number.MAX_SAFE_INTEGER;
  return Math.ceil(end / page) * page;
}
