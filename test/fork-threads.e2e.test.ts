// fork, threads, and file descriptors.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, driver, example, prog, run, shimEnv, startCoordinator, type Coordinator } from './helpers.js';

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator()));
afterAll(async () => c.close());

describe('fork', () => {
  it('the child starts with no registrations and its own connection; the parent keeps its own', async () => {
    const r = await run(example('forkdemo'), [], shimEnv(c.path, { PINCOH_RANK: '0', PINCOH_SIZE: '1' }));
    expect(r.stdout).toMatch(/child: parent's registration valid here: no; its pages here: a private copy \(fork keep\); own registration: ok/);
    expect(r.stdout).toMatch(/parent: registration still valid after fork: yes/);
    expect(r.code).toBe(0);
  });

  it('never deadlocks while 8 threads keep the shim busy (100 forks)', async () => {
    const r = await run(prog('forkstress'), ['100'], shimEnv(c.path), 120_000);
    expect(r.signal).toBeNull(); // a hang ends in SIGKILL from run()
    expect(r.stdout).toMatch(/forks 100 bad 0 parent-valid 1/);
  });
});

describe('--fork dontfork', () => {
  it('keeps registered pages out of the child (SIGSEGV there), and gives them back to later forks once deregistered', async () => {
    const script = ['map', '0', '65536', 'fill', '0', '0', '65536', '42', 'reg', '0', '0', '4096', 'rw', 'forktouch', '0', '0', 'forktouch', '0', '8192', 'dereg', '0', 'forktouch', '0', '0', 'touch', '0', '0'];
    const kept = await run(process.execPath, [CLI, 'run', '-q', '--fork', 'dontfork', '--', prog('driver'), ...script]);
    expect(kept.lines).toEqual(['map 0 ok', 'reg 0 0', 'child signal 11', 'child exit 0', 'dereg 0 0', 'child exit 0', 'touch ok']);
    const plain = await run(process.execPath, [CLI, 'run', '-q', '--', prog('driver'), ...script]);
    expect(plain.lines).toEqual(['map 0 ok', 'reg 0 0', 'child exit 0', 'child exit 0', 'dereg 0 0', 'child exit 0', 'touch ok']);
  });
});

describe('spawning without atfork handlers', () => {
  it('system, popen, posix_spawn and vfork+exec while 8 threads keep the shim busy: no deadlock, nothing lost', async () => {
    const r = await run(prog('spawns'), ['30'], shimEnv(c.path), 120_000);
    expect(r.signal).toBeNull();
    expect(r.stdout).toMatch(/spawns 30 bad 0 valid 1/);
  });
});

describe('clone without CLONE_VM', () => {
  it('is a fork to the shim: the child holds none of the parent\'s registrations and connects on its own, while 8 threads keep the shim busy', async () => {
    const r = await run(prog('clones'), ['20'], shimEnv(c.path), 120_000);
    expect(r.lines.filter((l) => l === 'child inherited 0 own 0 valid 1 after-munmap 0')).toHaveLength(20);
    expect(r.lines.pop()).toBe('parent valid 1');
    expect(r.code).toBe(0);
  });
});

describe('threads', () => {
  it('8 threads racing munmap/mprotect/mremap: no missed and no spurious invalidation', async () => {
    const r = await run(prog('race'), ['400'], shimEnv(c.path), 120_000);
    expect(r.stdout).toMatch(/ops 3200 missed 0 spurious 0/);
    expect(r.code).toBe(0);
  });
});

describe('file descriptors', () => {
  // (the driver's stdio are socketpairs from Node: count the difference)
  it('the coordinator socket does not reach a forked child', async () => {
    const r = await driver(c.path, 'fds map 0 4096 reg 0 0 4096 rw fds forkfds');
    const [before, after, child] = r.lines.filter((l) => /sockets/.test(l)).map((l) => Number(l.split(' ').pop()));
    expect(after).toBe(before! + 1);
    expect(child).toBe(before);
  });

  it('nor an exec\'d program (CLOEXEC)', async () => {
    const count = 'ls -l /proc/self/fd | grep -c socket: || true';
    const bare = await run(prog('driver'), ['exec', 'sh', '-c', count], shimEnv(c.path));
    const after = await run(prog('driver'), ['map', '0', '4096', 'reg', '0', '0', '4096', 'rw', 'exec', 'sh', '-c', count], shimEnv(c.path));
    expect(after.lines).toContain('reg 0 0');
    expect(after.lines.pop()).toBe(bare.lines.pop());
  });
});
