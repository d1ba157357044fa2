// A job's failure (a member died without exiting): under pincoh serve it is
// cleared when the job's last member leaves, so a later run may reuse the
// job's name; a job that lives as long as its coordinator (pincoh run, exec's
// node coordinator: failureSticks) keeps it for a rank that comes later.

import { describe, expect, it } from 'vitest';
import { Job } from '../src/job/jobs.js';
import { EOWNERDEAD, ETIMEDOUT } from '../src/protocol/errno.js';

/** one member that crashes and leaves, then one that comes later and waits at the barrier */
async function later(failureSticks: boolean): Promise<number> {
  const job = new Job<string, never>('j', failureSticks);
  job.members++;
  job.fail({ pid: 1, rank: 1, signal: 'SIGSEGV' });
  job.leave('crashed');
  job.members++;
  return job.arrive('late', 2, 50);
}

describe('a job\'s failure', () => {
  it('under pincoh serve: cleared when its last member leaves; a later member waits as in a new job', async () => {
    expect(await later(false)).toBe(-ETIMEDOUT);
  });

  it('failureSticks (run, exec): kept; a later member\'s barrier fails at once', async () => {
    expect(await later(true)).toBe(-EOWNERDEAD);
  });
});
