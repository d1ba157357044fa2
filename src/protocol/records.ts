// The events of a process's ring (proto.h struct pc_rec, 64 bytes): read by
// the coordinator field by field (no allocation an event), written
// as the shim writes them by putRec (the tests' side of a ring).

import { i64, u64 } from './codec.js';
import { OFF } from './constants.js';

// Each field of the record at `off` of `v`: plain functions, so the engine's
// drain reads the ring as directly as by hand (a view object moved from
// record to record cost 10% of the drain).
export const recType = (v: DataView, off: number): number => v.getUint16(off + OFF.REC.type, true);
export const recReason = (v: DataView, off: number): number => v.getUint16(off + OFF.REC.reason, true);
/** the hooked call's number: its events and its CALL share it */
export const recCall = (v: DataView, off: number): number => v.getUint32(off + OFF.REC.call, true);
export const recFlags = (v: DataView, off: number): number => v.getUint32(off + OFF.REC.flags, true);
export const recNs = (v: DataView, off: number): number => v.getUint32(off + OFF.REC.ns, true);
export const recKey = (v: DataView, off: number): bigint => v.getBigUint64(off + OFF.REC.key, true);
/** addr and len as numbers (saturating past 2^53); recAddrExact and recLenExact for messages */
export const recAddr = (v: DataView, off: number): number => u64(v, off + OFF.REC.addr);
export const recLen = (v: DataView, off: number): number => u64(v, off + OFF.REC.len);
export const recAddrExact = (v: DataView, off: number): bigint => v.getBigUint64(off + OFF.REC.addr, true);
export const recLenExact = (v: DataView, off: number): bigint => v.getBigUint64(off + OFF.REC.len, true);
export const recResult = (v: DataView, off: number): number => i64(v, off + OFF.REC.result);
export const recArg = (v: DataView, off: number): bigint => v.getBigUint64(off + OFF.REC.arg, true);
export const recArg2 = (v: DataView, off: number): bigint => v.getBigUint64(off + OFF.REC.arg2, true);

/** A record's fields, as a test writes one (absent: 0). */
export interface Rec {
  type: number;
  reason?: number;
  call?: number;
  flags?: number;
  ns?: number;
  key?: bigint;
  addr?: number;
  len?: number;
  result?: number;
  arg?: number;
  arg2?: number;
}

/** Writes rec at off of v, as the shim does. */
export function putRec(v: DataView, off: number, r: Rec): void {
  v.setUint16(off + OFF.REC.type, r.type, true);
  v.setUint16(off + OFF.REC.reason, r.reason ?? 0, true);
  v.setUint32(off + OFF.REC.call, r.call ?? 0, true);
  v.setUint32(off + OFF.REC.flags, r.flags ?? 0, true);
  v.setUint32(off + OFF.REC.ns, r.ns ?? 0, true);
  v.setBigUint64(off + OFF.REC.key, r.key ?? 0n, true);
  v.setBigUint64(off + OFF.REC.addr, BigInt(r.addr ?? 0), true);
  v.setBigUint64(off + OFF.REC.len, BigInt(r.len ?? 0), true);
  v.setBigInt64(off + OFF.REC.result, BigInt(r.result ?? 0), true);
  v.setBigUint64(off + OFF.REC.arg, BigInt(r.arg ?? 0), true);
  v.setBigUint64(off + OFF.REC.arg2, BigInt(r.arg2 ?? 0), true);
}
