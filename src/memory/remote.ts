// Another process's memory, through process_vm_readv (libc): the check that
// a published registration lies in its owner's memory. The same ptrace rules
// apply as for the shim's put/get (docs/c-api.md, binding notes).

import { addressOf, sys } from '../libc.js';

/** Pages of [start, end) that a registration check reads: the first, the last,
 * and up to 62 spread between (one process_vm_readv; see docs/limits.md). */
export function samplePages(start: number, end: number, page: number, max = 64): number[] {
  const first = start - (start % page);
  const last = end - 1 - ((end - 1) % page);
  const count = (last - first) / page + 1;
  if (count <= max) return Array.from({ length: count }, (_, i) => first + i * page);
  const step = (count - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => first + Math.round(i * step) * page);
}

/** The registration check runs on every REGISTER: its iovecs are packed once
 * into Buffers that never move and passed as raw pointers (koffi's marshalling of
 * object arrays cost 11 µs a call; this costs about one system call). */
let check: { readv: (pid: number, local: Buffer, lc: number, remote: Buffer, rc: number, flags: number) => number | bigint; local: Buffer; remote: DataView; remoteBuf: Buffer } | undefined;

function bindCheck(): NonNullable<typeof check> {
  if (!check) {
    const readv = sys().process_vm_readv;
    const scratch = Buffer.alloc(64);
    const local = Buffer.alloc(16);
    local.writeBigUInt64LE(addressOf(scratch), 0);
    const remoteBuf = Buffer.alloc(64 * 16);
    check = { readv, local, remote: new DataView(remoteBuf.buffer, remoteBuf.byteOffset, remoteBuf.length), remoteBuf };
    // keep scratch alive with the iovec that points at it
    (check as { scratch?: Buffer }).scratch = scratch;
  }
  return check;
}

/** Whether pid has [start, end) mapped and readable, by sampling its pages. */
export function isMapped(pid: number, start: number, end: number, page: number): boolean {
  const c = bindCheck();
  const pages = samplePages(start, end, page);
  for (let i = 0; i < pages.length; i++) {
    c.remote.setBigUint64(i * 16, BigInt(Math.max(pages[i]!, start)), true);
    c.remote.setBigUint64(i * 16 + 8, 1n, true);
  }
  c.local.writeBigUInt64LE(BigInt(pages.length), 8);
  return Number(c.readv(pid, c.local, 1, c.remoteBuf, pages.length, 0)) === pages.length;
}
