// The shim is a guest in other people's processes (issue 12): whatever a
// program does with descriptor numbers, the shim never reads, writes or closes
// one that is not its own, never hangs because of it, and carries on.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itAsRootWith, prog, run, shimEnv, startCoordinator, until, type Coordinator } from './helpers.js';
import { EMFILE, ENOTCONN, EPERM, ESTALE } from '../src/protocol/errno.js';

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator()));
afterAll(async () => c.close());

describe('the shim owns its descriptors', () => {
  it('a program that dup2()s its own socket over the shim\'s: its messages byte for byte, pincoh goes on after reconnecting', async () => {
    const r = await run(prog('fdreuse'), ['dup2'], shimEnv(c.path), 20_000);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual([
      'reg 0',
      'shim socket found',
      'talk 0', // 1,000 messages each way, every byte checked
      'reg 0',
      'pub 0', // a request: found the number taken, reconnected, went through
      'reg 0',
      'munmap 0', // published: waited for the new coordinator connection, not for a timeout
      'valid 0 1',
      'talk 0',
      'left over -1 -1', // nothing of the shim's in the program's socket, either end
      'connected 1',
    ]);
    expect(r.stderr).toMatch(/the program closed or reused this process's connection descriptor; reconnecting/);
    expect(r.stderr).not.toMatch(/did not answer within PINCOH_TIMEOUT_MS/);
  });

  it('an attacher whose connection number is taken: the coordinator sees the connection close and expels it in the job table; its next put is -ESTALE, and nothing of pincoh touches the program\'s socket', async () => {
    const r = await run(prog('fdreuse'), ['watch'], shimEnv(c.path, { PINCOH_JOB: 'fdwatch' }), 20_000);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['reg 0', 'shim socket found', 'pub 0', 'att 0', 'put 0', `put -${ESTALE}`, 'talk 0']);
  });

  it('a program that closes every descriptor >= 3 (closefrom): pincoh reconnects at the next call; a dropped connection is no crash', async () => {
    const crashed = c.engine.stats.crashed;
    const r = await run(prog('fdreuse'), ['closeall'], shimEnv(c.path), 20_000);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['reg 0', 'shim socket found', 'reg 0', 'pub 0', 'reg 0', 'munmap 0', 'valid 0 1', 'connected 1']);
    expect(r.stderr).toMatch(/re-announced registrations: 2/);
    // the process still ran when its first connection closed: its job is not failed, nothing is said of a crash
    expect(await until(() => c.engine.stats.live === 0)).toBe(true);
    expect(c.engine.stats.crashed).toBe(crashed);
  });
});

describe('a process that cannot have a socket or a thread', () => {
  const lean = (how: string) => run(prog('lean'), [how], shimEnv(c.path, { PINCOH_JOB: `lean-${how}` }), 20_000);

  it('no descriptor left (RLIMIT_NOFILE): pincoh_register is -EMFILE, the hooks are transparent, and it works once one is free', async () => {
    const r = await lean('nofile');
    expect(r.lines).toEqual([`reg -${EMFILE}`, 'transparent 1', 'reg 0', 'cb reason 7']);
  });

  it('a seccomp filter forbidding socket(), connect() or memfd_create(): -EPERM, the hooks transparent', async () => {
    for (const how of ['seccomp', 'connect', 'memfd']) {
      const r = await lean(how);
      expect(r.code, how).toBe(0);
      expect(r.lines, how).toEqual([`reg -${EPERM}`, 'transparent 1']);
    }
  });

  it('no memory for another thread\'s stack: pincoh_attach needs no thread, so it works all the same', async () => {
    const r = await lean('nothread');
    expect(r.lines).toEqual(['reg 0', 'pub 0', 'att 0', 'transparent 1', 'att 0']);
    expect(r.stderr).toBe('');
  });

  // unshare(CLONE_NEWNS) and mount need root: CI runs as root (without it this fails there, and is skipped elsewhere saying so)
  itAsRootWith([], '', 'a new mount namespace hiding the socket after the connection went: -ENOTCONN, invalidations go on locally', async () => {
    const r = await lean('mountns');
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['reg 0', `bar -${ENOTCONN}`, `reg -${ENOTCONN}`, 'transparent 1', 'cb reason 1', 'munmap 0', 'valid 0']);
  });
});

describe('many threads', () => {
  const threads = (args: string[]) => run(prog('threads'), args, shimEnv(c.path), 120_000);

  it('256 threads registering and unmapping at once: every munmap invalidates before it returns, nothing else is', async () => {
    const r = await threads(['many', '256', '20']);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['missed 0 spurious 0 stale 0 threads 256']);
  });

  it('1,000 threads alive while registrations churn', async () => {
    const r = await threads(['alive', '1000', '500']);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['missed 0 spurious 0 stale 0 threads 1000']);
  });

  it('threads exiting (libc madvises and unmaps their registered stacks) while others unmap: no registration left valid over memory gone', async () => {
    const r = await threads(['exiting', '300']);
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['missed 0 spurious 0 stale 0 threads 600']);
  });
});
