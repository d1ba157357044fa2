// Revocation's books: which attacher holds which owner's export, and what
// becomes of those attachments when the owner revokes them (REVOKED, in the
// job table: the owners do it, the books follow), when nobody will
// (--no-coherence), when a put stays in flight past the bound (STUCK), and
// when either side is dropped. The engine calls in; processes are ended
// through the `end` it is handed (the lifecycle's), never by this module.

import { JT, REASON, REASON_NAMES } from '../protocol/constants.js';
import type { Stuck } from '../protocol/messages.js';
import { EBADF, EINVAL, ETIMEDOUT } from '../protocol/errno.js';
import type { Trace } from '../trace.js';
import type { ProcessPort, Table } from './ports.js';
import type { Stats } from './stats.js';
import { handleSlot, type Attachment, type ExportSlot, type ProcessState } from './process.js';

export interface RevocationDeps {
  readonly stats: Stats;
  readonly trace: Trace;
  /** false: never revoke attachments (`--no-coherence`) */
  readonly coherence: boolean;
  /** how long a put already in flight on a revoked handle may take before its process is ended */
  readonly revokeTimeoutMs: number;
  readonly lives: ProcessPort;
  /** ends p, whose put stays in flight past the bound: cut off while connected, killed once dropped */
  end(p: ProcessState, reason: string): void;
}

export class Revocation {
  constructor(private readonly d: RevocationDeps) {}

  /** An attacher linked to an owner's export at attach (the link made in the job table): it goes in the books. */
  attached(a: Attachment): void {
    a.attacher.attachments.set(a.handle, a);
    let set = a.owner.exports.get(a.key);
    if (!set) a.owner.exports.set(a.key, (set = new Set()));
    set.add(a);
    this.d.stats.attachments++;
  }

  /** DETACH: the attacher lets its handle go (the shim waited for its own puts on it before it said so). */
  detach(p: ProcessState, handle: bigint): number {
    const a = p.attachments.get(handle);
    if (!a) return -EBADF;
    const t = p.job.table;
    t?.unlink(a.link);
    // A handle found dead (-ESTALE) is often let go before its owner's REVOKED is read:
    // the owner's books keep it until then, so the revoke is counted and traced.
    if (t && !t.isLive(a.owner.member, a.export, a.xgen) && !a.owner.gone) p.attachments.delete(handle);
    else this.unlink(a);
    return 0;
  }

  /** An owner's registrations went (INVAL, DEREG): their names go; the attachments to the published ones go at REVOKED. */
  invalidated(owner: ProcessState, keys: bigint[], reason: number): void {
    for (const key of keys) {
      if (!owner.published.has(key)) continue; // never published: no name, nobody attached
      owner.job.unpublish(owner, key);
      if (!this.d.coherence) this.settle(owner, key, undefined, reason); // nobody revokes: no REVOKED will come
    }
  }

  /**
   * The owner revoked every attachment to `key` in place (REVOKED), or, under
   * --no-coherence, nobody will: the attachments are let go in the books, and
   * the export's links freed. It stays published if it only followed an mremap.
   */
  settle(owner: ProcessState, key: bigint, slot: ExportSlot | undefined, reason: number, outcome = 'none', us = 0): void {
    const pub = owner.published.get(key);
    const x = slot ?? pub;
    const set = owner.exports.get(key);
    for (const a of set ? [...set] : []) {
      if (x && (a.export !== x.export || a.xgen !== x.xgen)) continue; // of another generation
      this.unlink(a);
      if (this.d.coherence) this.revoked(a, reason, outcome, us);
    }
    if (x && owner.member >= 0) owner.job.table?.freeList(owner.member, x.export, slot ? x.xgen : undefined);
    if (pub && !owner.registry.has(key)) owner.published.delete(key);
  }

  /**
   * STUCK: an owner's revoke found a put of this attacher in flight past the
   * bound (stopped or hung inside pincoh_put). It may still write into the
   * memory being changed: nothing but ending its process keeps invariant 1.
   * Answers once the put is over or the process has exited (every thread).
   */
  stuck(p: ProcessState, s: Stuck): number | Promise<number> {
    const t = p.job.table;
    if (!t || s.member >= JT.MEMBERS || s.slot >= JT.HANDLES) return -EINVAL;
    if (t.inflight(s.member, s.slot) === 0) return 0;
    const att = p.job.byMember.get(s.member);
    if (att) this.d.end(att, `a put of it was still in flight ${this.d.revokeTimeoutMs} ms after its handle was revoked (stopped or hung inside pincoh_put)`);
    const pid = att?.pid ?? t.memberPid(s.member);
    const since = att?.startedAt;
    return until(() => t.inflight(s.member, s.slot) === 0 || this.d.lives.exited(pid, since), Math.max(this.d.revokeTimeoutMs, 1000)).then((ok) => (ok ? 0 : -ETIMEDOUT));
  }

  /** A dropped process's attachments as attacher: each link goes once no put of it is in flight (at once if it is dead). */
  attacherGone(p: ProcessState, dead: boolean): void {
    for (const a of [...p.attachments.values()]) this.letGo(a, dead);
  }

  /**
   * A dropped process's exports as owner: they die in its stead. Dead, its pid may be reused:
   * nobody may write there any more. Alive, it may reuse that memory at once: puts in flight are waited for.
   */
  ownerGone(p: ProcessState, t: Table | undefined, dead: boolean): void {
    for (const [key, x] of p.published) {
      const killed = this.d.coherence && t !== undefined && t.killExport(p.member, x.export, x.xgen, REASON.EXIT);
      for (const a of [...(p.exports.get(key) ?? [])]) {
        this.unlink(a);
        if (!this.d.coherence) continue;
        if (killed && !dead && t.inflight(a.attacher.member, handleSlot(a.handle)) > 0) this.drainPut(a, t);
        else this.revoked(a, REASON.EXIT, 'gone', 0);
      }
    }
    p.exports.clear();
    p.published.clear();
  }

  private revoked(a: Attachment, reason: number, outcome: string, us: number): void {
    const { stats, trace } = this.d;
    stats.revokes++;
    stats.revokeLatency.add(us);
    stats.onLatency?.('revoke', outcome, us / 1e6);
    if (trace.enabled)
      trace.emit({ event: 'revoke', pid: a.owner.pid, rank: a.owner.rank, attacher: a.attacher.pid, handle: handleSlot(a.handle) + 1, reason: REASON_NAMES[reason] ?? String(reason), outcome, latency_us: Math.round(us) });
  }

  private unlink(a: Attachment): void {
    a.attacher.attachments.delete(a.handle);
    const set = a.owner.exports.get(a.key);
    set?.delete(a);
    if (set?.size === 0) a.owner.exports.delete(a.key);
  }

  /** A dropped attacher's attachment: its link goes once no put of it is in flight (at once if it is dead). */
  private letGo(a: Attachment, dead: boolean): void {
    const t = a.attacher.job.table;
    this.unlink(a);
    if (!t) return;
    const slot = handleSlot(a.handle);
    const { revokeTimeoutMs, lives } = this.d;
    if (dead || t.inflight(a.attacher.member, slot) === 0) return t.unlink(a.link);
    void until(() => t.inflight(a.attacher.member, slot) === 0 || lives.exited(a.attacher.pid, a.attacher.startedAt), revokeTimeoutMs).then((ok) => {
      if (!ok) this.d.end(a.attacher, `a put of it was still in flight ${revokeTimeoutMs} ms after it was dropped (stopped or hung inside pincoh_put)`);
      // its owner no longer waits for it: only once it can write no more
      void until(() => t.inflight(a.attacher.member, slot) === 0 || lives.exited(a.attacher.pid, a.attacher.startedAt), 60_000).then(() => t.unlink(a.link));
    });
  }

  /** We revoked a dropped owner's export: a put in flight on it is waited for (bounded), then its process is ended. */
  private drainPut(a: Attachment, t: Table): void {
    const t0 = process.hrtime.bigint();
    const slot = handleSlot(a.handle);
    const { revokeTimeoutMs, lives } = this.d;
    void until(() => t.inflight(a.attacher.member, slot) === 0 || lives.exited(a.attacher.pid, a.attacher.startedAt), revokeTimeoutMs).then((ok) => {
      if (!ok) this.d.end(a.attacher, `a put of it was still in flight ${revokeTimeoutMs} ms after its handle was revoked (stopped or hung inside pincoh_put)`);
      this.revoked(a, REASON.EXIT, ok ? 'drained' : 'stuck', Number(process.hrtime.bigint() - t0) / 1000);
    });
  }
}

/** Resolves true once cond holds (polled: 1 ms at first, backing off to 50 ms), false after ms. */
function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    let wait = 1;
    const poll = () => {
      if (cond()) return resolve(true);
      if (Date.now() > end) return resolve(false);
      setTimeout(poll, wait).unref();
      wait = Math.min(wait * 2, 50);
    };
    poll();
  });
}
