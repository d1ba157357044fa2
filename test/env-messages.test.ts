// docs/reference.md, Environment: "A bad value ... is named once on stderr and replaced by
// its default." PINCOH_SOCKET naming nothing that listens is named when the
// first connection attempt fails (not at start-up: a process that never
// registers never tries), PINCOH_LIBC=bogus at start-up; PINCOH_QUIET=1
// silences both. Real processes under the shim.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENOTCONN } from '../src/protocol/errno.js';
import { driver, prog, run, shimEnv, startCoordinator, tempDir } from './helpers.js';

const unreachable = (pid: number, path: string, cause: string) =>
  `pincoh[${pid}]: cannot reach the coordinator at PINCOH_SOCKET=${path}: ${cause}; pincoh calls return -ENOTCONN and the hooks pass every call through until it can be reached\n`;

describe('PINCOH_SOCKET that nothing listens on', () => {
  it('named once, at the first failed connection attempt, with the path and the error', async () => {
    const path = join(tempDir('env'), 'nothing');
    const r = await driver(path, 'map 0 65536 reg 0 0 4096 rw reg 0 4096 4096 rw unmap 0 0 65536');
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`, `reg -1 -${ENOTCONN}`, 'munmap 0 777']);
    expect(r.stderr).toBe(unreachable(r.pid, path, 'ENOENT (nothing at that path)'));
  });

  it('a regular file there: ECONNREFUSED, once', async () => {
    const path = join(tempDir('env'), 'file');
    writeFileSync(path, 'x');
    const r = await driver(path, 'map 0 65536 reg 0 0 4096 rw bar 100 reg 0 0 4096 rw');
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`, `bar -${ENOTCONN}`, `reg -1 -${ENOTCONN}`]);
    expect(r.stderr).toBe(unreachable(r.pid, path, 'ECONNREFUSED (nothing listens there, or it is not a socket)'));
  });

  it('a process that never registers says nothing, and makes no socket or connect call', async () => {
    const path = join(tempDir('env'), 'nothing');
    const out = join(tempDir('strace'), 'trace');
    const r = await run('strace', ['-f', '-qq', '-e', 'trace=socket,connect', '-o', out, prog('driver'), 'map', '0', '65536', 'unmap', '0', '0', '65536'], shimEnv(path));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(readFileSync(out, 'utf8')).toBe('');
  });

  it('PINCOH_QUIET=1: nothing said, same results', async () => {
    const path = join(tempDir('env'), 'nothing');
    const r = await driver(path, 'map 0 65536 reg 0 0 4096 rw', { PINCOH_QUIET: '1' });
    expect(r.lines).toEqual(['map 0 ok', `reg -1 -${ENOTCONN}`]);
    expect(r.stderr).toBe('');
  });

  it('a coordinator that is there: nothing said', async () => {
    const c = await startCoordinator();
    try {
      const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 rw');
      expect(r.lines).toEqual(['map 0 ok', 'reg 0 0']);
      expect(r.stderr).toBe('');
    } finally {
      await c.close();
    }
  });
});

describe('PINCOH_LIBC', () => {
  it('a bogus value is named once at start-up and replaced by patch', async () => {
    const c = await startCoordinator();
    try {
      const r = await driver(c.path, 'map 0 65536 reg 0 0 4096 rw stats', { PINCOH_LIBC: 'bogus' });
      expect(r.code).toBe(0);
      expect(r.stderr).toBe(`pincoh[${r.pid}]: PINCOH_LIBC is none of patch, norelease, off; using patch\n`);
      expect(c.engine.stats.libc).toEqual({ 'code patch': 1 }); // HELLO said how libc is covered: the default
    } finally {
      await c.close();
    }
  });

  it('each valid value, and PINCOH_QUIET=1 with a bogus one, says nothing', async () => {
    for (const [libc, quiet] of [['patch', ''], ['norelease', ''], ['off', ''], ['bogus', '1']] as const) {
      const r = await driver(undefined, 'map 0 4096', { PINCOH_LIBC: libc, ...(quiet && { PINCOH_QUIET: quiet }) });
      expect(r.code, libc).toBe(0);
      expect(r.stderr, libc).toBe('');
    }
  });
});
