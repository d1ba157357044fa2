// The log of pincoh exec's node coordinator, written as the job goes: each
// message appended, and the summary so far kept as its last line, rewritten
// in place (one pwrite with the message before it) whenever it changes. A
// coordinator killed at any moment (Slurm's proctrack/cgroup SIGKILLs what a
// step leaves) thus leaves a log whose last line is the summary up to then,
// saying the coordinator was still running; a clean end replaces it with the
// summary itself.

import { closeSync, constants as fsc, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';

export class RunningLog {
  private readonly fd: number;
  /** where the messages end: the line so far is written from here */
  private end: number;
  private tail = '';

  constructor(path: string) {
    // not O_APPEND: the last line is rewritten where it is (Node opens close-on-exec)
    this.fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT, 0o644);
    this.end = fstatSync(this.fd).size;
  }

  /** A message (whole lines), before the line so far. */
  say(text: string): void {
    const msg = Buffer.from(text);
    this.write(Buffer.concat([msg, this.padded(this.tail)]));
    this.end += msg.length;
  }

  /** The summary so far (a `pincoh: ...` line), as the log's last line. */
  soFar(summary: string): void {
    const at = new Date().toISOString().slice(11, 19);
    this.tail = `pincoh: so far, at ${at} UTC: ${summary.replace(/^pincoh: /, '')} (the coordinator was running then: if the log ends here, it was killed before its job ended)`;
    this.write(this.padded(this.tail));
  }

  /** The last word: the final summary in place of the line so far. */
  close(summary: string): void {
    const last = Buffer.from(summary + '\n');
    this.write(last);
    ftruncateSync(this.fd, this.end + last.length);
    closeSync(this.fd);
  }

  /** A line so far never shorter than the one it replaces: nothing of the old one is left after it. */
  private written = 0;
  private padded(line: string): Buffer {
    if (!line) return Buffer.alloc(0);
    const b = Buffer.from(line);
    const len = Math.max(b.length + 1, this.written);
    const out = Buffer.alloc(len, ' ');
    b.copy(out);
    out[len - 1] = 0x0a;
    this.written = len;
    return out;
  }

  private write(b: Buffer): void {
    if (b.length) writeSync(this.fd, b, 0, b.length, this.end);
  }
}
