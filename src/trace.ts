// --trace: one JSON line per event. Free when off: callers test `enabled`
// before building an event.

import { closeSync, openSync, writeSync } from 'node:fs';

export interface TraceEvent {
  event: string;
  pid: number;
  rank: number;
  [k: string]: unknown;
}

export class Trace {
  readonly enabled: boolean;
  private fd: number;
  private failed = false;
  private readonly t0 = process.hrtime.bigint();

  /** target: a file path, '-' for stderr, or undefined for off */
  constructor(target?: string) {
    this.enabled = target !== undefined;
    this.fd = target === undefined ? -1 : target === '-' ? 2 : openSync(target, 'w');
  }

  emit(e: TraceEvent): void {
    if (!this.enabled || this.failed || this.fd < 0) return;
    const t = Number(process.hrtime.bigint() - this.t0) / 1e6;
    try {
      writeSync(this.fd, JSON.stringify({ t: Number(t.toFixed(3)), ...e }) + '\n');
    } catch (err) {
      // Coherence matters more than the trace: say it once and go on without it.
      this.failed = true;
      process.stderr.write(`pincoh: trace stopped, cannot write it: ${(err as Error).message}\n`);
    }
  }

  close(): void {
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

export const hex = (n: number): string => '0x' + n.toString(16);
