// The job service: names of exported registrations, lookups that wait for a
// name, and the barrier. Everything is scoped to one job (one `pincoh run`,
// or one PINCOH_JOB under `pincoh serve`).

// Generic in its members (P: the engine's ProcessState) and its table (T), so
// it imports neither the engine nor the transport.

import { EOWNERDEAD, ETIMEDOUT } from '../protocol/errno.js';

export interface Export<P> {
  owner: P;
  key: bigint;
}

interface Lookup<P> {
  p: P;
  resolve: (e: Export<P> | undefined) => void;
  timer: NodeJS.Timeout;
}

interface BarrierWait {
  resolve: (status: number) => void;
  timer: NodeJS.Timeout;
}


/** A member that died without exiting: the job cannot complete its barriers. */
export interface Failure {
  pid: number;
  rank: number;
  signal?: string;
}

export class Job<P, T> {
  readonly names = new Map<string, Export<P>>();
  /** the same names by owner and key, so a registration's names go without a walk of every name */
  private readonly byOwner = new Map<P, Map<bigint, Set<string>>>();
  private readonly lookups = new Map<string, Lookup<P>[]>();
  private barrier = new Map<P, BarrierWait>();
  /** set when a member died without exiting; from then on waits fail at once: for the job's
   * lifetime when it is the coordinator's (failureSticks), else until every member has gone */
  failed: Failure | undefined;
  /** processes connected in this job */
  members = 0;
  /** the job's shared table, while it has members (the engine makes it at the first) */
  table: T | undefined;
  /** the table could not be made: said once */
  tableFailed = false;
  /** who holds each slot of the table: connected and quarantined processes */
  readonly byMember = new Map<number, P>();

  /** failureSticks: the job lives as long as its coordinator (pincoh run, pincoh exec's node
   * coordinator), so a rank that connects after a member crashed fails at once too */
  constructor(
    readonly id: string,
    private readonly failureSticks = false,
  ) {}

  /** A member died: every barrier and attach waiting in the job ends now (EOWNERDEAD, undefined). */
  fail(f: Failure): void {
    this.failed ??= f;
    for (const w of this.barrier.values()) {
      clearTimeout(w.timer);
      w.resolve(-EOWNERDEAD);
    }
    this.barrier.clear();
    for (const list of this.lookups.values())
      for (const l of list) {
        clearTimeout(l.timer);
        l.resolve(undefined);
      }
    this.lookups.clear();
  }

  publish(name: string, e: Export<P>): boolean {
    if (this.names.has(name)) return false;
    this.names.set(name, e);
    let keys = this.byOwner.get(e.owner);
    if (!keys) this.byOwner.set(e.owner, (keys = new Map()));
    let names = keys.get(e.key);
    if (!names) keys.set(e.key, (names = new Set()));
    names.add(name);
    const waiting = this.lookups.get(name);
    this.lookups.delete(name);
    for (const w of waiting ?? []) {
      clearTimeout(w.timer);
      w.resolve(e);
    }
    return true;
  }

  /** Removes the names of an owner's registration (all of them if key is undefined). */
  unpublish(owner: P, key?: bigint): string[] {
    const keys = this.byOwner.get(owner);
    if (!keys) return [];
    const gone: string[] = [];
    for (const k of key === undefined ? [...keys.keys()] : [key]) {
      for (const name of keys.get(k) ?? []) {
        this.names.delete(name);
        gone.push(name);
      }
      keys.delete(k);
    }
    if (keys.size === 0) this.byOwner.delete(owner);
    return gone;
  }

  /** The export named `name`, waiting up to timeoutMs for it to appear. */
  lookup(p: P, name: string, timeoutMs: number): Export<P> | Promise<Export<P> | undefined> | undefined {
    const e = this.names.get(name);
    if (e || timeoutMs <= 0 || this.failed) return e;
    return new Promise((resolve) => {
      const list = this.lookups.get(name) ?? [];
      const w: Lookup<P> = {
        p,
        resolve,
        timer: setTimeout(() => {
          list.splice(list.indexOf(w), 1);
          resolve(undefined);
        }, timeoutMs),
      };
      list.push(w);
      this.lookups.set(name, list);
    });
  }

  /** Resolves 0 once `size` distinct processes of the job are waiting; -ETIMEDOUT after timeoutMs. */
  arrive(p: P, size: number, timeoutMs: number): Promise<number> {
    if (this.failed) return Promise.resolve(-EOWNERDEAD);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.barrier.delete(p);
        resolve(-ETIMEDOUT);
      }, timeoutMs);
      this.barrier.get(p)?.resolve(-ETIMEDOUT); // a second call replaces the first
      this.barrier.set(p, { resolve, timer });
      if (this.barrier.size >= size) {
        const all = this.barrier;
        this.barrier = new Map();
        for (const w of all.values()) {
          clearTimeout(w.timer);
          w.resolve(0);
        }
      }
    });
  }

  /** A process left: its waits end and its names go. Under pincoh serve the last one out clears a
   * failure (a later run may reuse the job's name); a job that is its coordinator's keeps it. */
  leave(p: P): void {
    if (--this.members === 0 && !this.failureSticks) this.failed = undefined;
    const w = this.barrier.get(p);
    if (w) {
      clearTimeout(w.timer);
      this.barrier.delete(p);
    }
    for (const [name, list] of this.lookups) {
      for (const l of list.filter((l) => l.p === p)) {
        clearTimeout(l.timer);
        list.splice(list.indexOf(l), 1);
      }
      if (list.length === 0) this.lookups.delete(name);
    }
    this.unpublish(p);
  }

  get empty(): boolean {
    return this.names.size === 0 && this.lookups.size === 0 && this.barrier.size === 0;
  }
}
