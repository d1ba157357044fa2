// The shim on aarch64, built with Debian's cross compiler and run under
// qemu-user against the same coordinator: libc's entries are patched there
// too (arch-aarch64.c), so free, realloc, malloc_trim, a thread arena and a
// free that lowers the break all deliver the invalidation; PINCOH_LIBC=off
// misses them, and the no-release fallback keeps the memory instead. The
// hooks themselves work as on x86_64. With UCX's ucm for arm64 (multiarch) in
// the process, the shim chains with it in both orders, as on x86_64. (qemu-user
// emulates the break: a lowered break stays mapped there, so "top" shows the
// invalidation only.)

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ROOT, bareEnv, itWithProgs, prog, run, startCoordinator, type Coordinator } from './helpers.js';

const SHIM_AARCH64 = resolve(ROOT, 'native-shim/build/aarch64/libpincoh.so');
const PACKAGES = 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user';

let c: Coordinator;
beforeAll(async () => (c = await startCoordinator()));
afterAll(async () => c.close());

// The guest's root: / where Debian's arm64 libc is installed through multiarch
// (qemu would otherwise mix the cross loader with that libc through the host's
// ld.so.cache, and hang), else the cross compiler's libc. qemu-aarch64 -E sets
// the guest's LD_PRELOAD only (not qemu's own).
const SYSROOT = existsSync('/lib/ld-linux-aarch64.so.1') ? '/' : '/usr/aarch64-linux-gnu';
const underQemu = (name: string, args: string[], extra: string[] = [], sysroot = SYSROOT) =>
  run('qemu-aarch64', ['-L', sysroot, '-E', `LD_PRELOAD=${SHIM_AARCH64}`, ...extra.flatMap((e) => ['-E', e]), prog(`aarch64/${name}`), ...args], { ...bareEnv(), PINCOH_SOCKET: c.path }, 60_000);

describe('aarch64 under qemu-user', () => {
  itWithProgs(['aarch64/mallocs'], PACKAGES, 'libc\'s own calls are seen through the patch, missed without it, and held off by the no-release fallback', async () => {
    for (const mode of ['free', 'realloc', 'trim', 'arena', 'top']) {
      const patched = await underQemu('mallocs', [mode]);
      expect(patched.stdout).toMatch(new RegExp(`^${mode}: fired 1 valid 0 mapped \\d kept \\d libc 1\n$`));
      expect(patched.stderr).toBe('');
      const off = await underQemu('mallocs', [mode], ['PINCOH_LIBC=off']);
      expect(off.stdout).toMatch(new RegExp(`^${mode}: fired 0 valid 1 mapped \\d kept \\d libc 0\n$`));
      const kept = await underQemu('mallocs', [mode], ['PINCOH_LIBC=norelease']);
      expect(kept.stdout).toBe(`${mode}: fired 0 valid 1 mapped 1 kept 1 libc 2\n`);
    }
    const lost = await underQemu('mallocs', ['free'], ['PINCOH_LIBC=off']);
    expect(lost.stdout).toBe('free: fired 0 valid 1 mapped 0 kept 0 libc 0\n'); // stale: what the patch prevents
  }, 120_000);

  itWithProgs(['aarch64/driver'], PACKAGES, 'the hooks: munmap, mprotect and mremap invalidate before the call returns', async () => {
    const script = 'cb map 0 65536 map 1 65536 reg 0 0 65536 rw reg 1 0 4096 rw prot 1 0 4096 r valid 0 valid 1 remap 0 65536 131072 maymove reg 1 0 4096 r unmap 1 0 65536 stats';
    const r = await underQemu('driver', script.split(' '), ['PINCOH_QUIET=1']);
    expect(r.lines).toEqual([
      'map 0 ok',
      'map 1 ok',
      'reg 0 0',
      'reg 1 0',
      'cb 1 reason 2 len 4096',
      'mprotect 0 777',
      'valid 0 1',
      'valid 1 0',
      'cb 0 reason 3 len 65536',
      'mremap ok 777',
      'reg 2 0',
      'cb 2 reason 1 len 4096',
      'munmap 0 777',
      'stats slow 3 inval 3 timeouts 0 degraded 0 connected 1',
    ]);
  });

  for (const name of ['ucm-first', 'ucm-late']) {
    itWithProgs([`aarch64/${name}`], 'libucx0:arm64 (after dpkg --add-architecture arm64) libucx-dev', `${name}: chained with UCX's ucm, a free() reaches both; PINCOH_LIBC=off breaks ucm`, async () => {
      // (ucm's own patching races its entry's callers under qemu, shim or not: no churn here)
      const r = await underQemu(name, ['nochurn'], [], '/'); // libucm for arm64 lives there
      expect(r.stdout).toBe('ucm status 0\npincoh fired 1 libc 1 chained 5\nucm saw free 1\n');
      expect(r.stderr).toMatch(/chained to another interposer's hooks in \S*libucm\.so/);
      const off = await underQemu(name, ['nochurn'], ['PINCOH_LIBC=off'], '/');
      expect(off.stdout).toMatch(/^ucm status -\d+\npincoh fired 0 libc 0 chained 0\nucm saw free 0\n/);
    }, 120_000);
  }
});
