// The "as a user" project's global setup (vitest.config.ts): makes the user
// its tests run every process as (a normal user with a home), once per
// machine; it stays for the next run (`userdel -r pincoh-ci` removes it).
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const user = project.config.env.PINCOH_TEST_USER!;
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--create-home', '--user-group', '--shell', '/bin/sh', '--comment', 'pincoh tests, as a user', user], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  // the tests end what they start: anything of the user's still running is a leak, said here and ended
  return () => {
    let ps = '';
    try {
      ps = execFileSync('ps', ['-o', 'pid=,stat=,args=', '-u', user], { encoding: 'utf8' });
    } catch {
      return; // none (ps exits 1)
    }
    // a zombie is already gone, its parent not yet told
    const left = ps.split('\n').filter((l) => l.trim() && !/^\s*\d+\s+Z/.test(l));
    if (left.length === 0) return;
    process.stderr.write(`processes of ${user} left running after the tests, now killed:\n${left.join('\n')}\n`);
    for (const pid of left.map((l) => Number.parseInt(l, 10))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  };
}
