// The events of a process's ring (proto.h struct pc_rec, 64 bytes): read by
// the coordinator through one reusable view (no allocation an event), written
// as the shim writes them by putRec (the tests' side of a ring).

import { i64, u64 } from './codec.js';
import { OFF } from './constants.js';

/** One record at `off` of `v`, its fields read as they are asked for. at() moves it to the next. */
export class RecordView {
  v: DataView = new DataView(new ArrayBuffer(0));
  off = 0;
  at(v: DataView, off: number): this {
    this.v = v;
    this.off = off;
    return this;
  }
  get type(): number {
    return this.v.getUint16(this.off + OFF.REC.type, true);
  }
  get reason(): number {
    return this.v.getUint16(this.off + OFF.REC.reason, true);
  }
  /** the hooked call's number: its events and its CALL share it */
  get call(): number {
    return this.v.getUint32(this.off + OFF.REC.call, true);
  }
  get flags(): number {
    return this.v.getUint32(this.off + OFF.REC.flags, true);
  }
  get ns(): number {
    return this.v.getUint32(this.off + OFF.REC.ns, true);
  }
  get key(): bigint {
    return this.v.getBigUint64(this.off + OFF.REC.key, true);
  }
  /** addr and len as numbers (saturating past 2^53), and exactly (for messages) */
  get addr(): number {
    return u64(this.v, this.off + OFF.REC.addr);
  }
  get len(): number {
    return u64(this.v, this.off + OFF.REC.len);
  }
  get addrExact(): bigint {
    return this.v.getBigUint64(this.off + OFF.REC.addr, true);
  }
  get lenExact(): bigint {
    return this.v.getBigUint64(this.off + OFF.REC.len, true);
  }
  get result(): number {
    return i64(this.v, this.off + OFF.REC.result);
  }
  get arg(): bigint {
    return this.v.getBigUint64(this.off + OFF.REC.arg, true);
  }
  get arg2(): bigint {
    return this.v.getBigUint64(this.off + OFF.REC.arg2, true);
  }
}

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
