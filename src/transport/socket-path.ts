// Where the coordinator listens: a socket of mode 0600 in a directory of mode
// 0700, a stale socket from a dead coordinator cleaned up, a live one refused.

import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { PincohError } from '../errors.js';

const SUN_PATH_MAX = 107;

/** A directory ours alone: 0700 (no more), of our uid, not a link. Throws if there is none. */
export function isPrivate(path: string): boolean {
  const st = lstatSync(path);
  return st.isDirectory() && st.uid === (process.getuid?.() ?? 0) && (st.mode & 0o077) === 0;
}

/** Where this user's job directories for pincoh exec may be on this node, preferred first:
 * $XDG_RUNTIME_DIR when it is set and private to us (nobody else can create anything
 * there), and TMPDIR. */
export function jobsBases(): string[] {
  const xdg = process.env.XDG_RUNTIME_DIR;
  let ok = false;
  try {
    ok = !!xdg && isAbsolute(xdg) && isPrivate(xdg) && xdg !== tmpdir();
  } catch {
    /* not there */
  }
  return ok ? [xdg!, tmpdir()] : [tmpdir()];
}

/** A fresh private directory for `pincoh run` under TMPDIR; returns the socket path and a cleanup. */
export function privateSocketPath(): { path: string; cleanup: () => void } {
  const tmp = tmpdir();
  // the longest path mkdtemp can make there, checked before anything is made
  const longest = Buffer.byteLength(join(tmp, 'pincoh-XXXXXX', 'coord.sock'));
  if (longest > SUN_PATH_MAX)
    throw new PincohError('PINCOH_ERR_SOCKET_PATH', `the coordinator's socket under TMPDIR (${tmp}) would be ${longest} bytes; a Unix socket path can hold ${SUN_PATH_MAX}: set TMPDIR to a shorter directory`);
  let dir: string;
  try {
    dir = mkdtempSync(join(tmp, 'pincoh-'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new PincohError('PINCOH_ERR_SOCKET_PATH', `cannot make the coordinator's private directory in TMPDIR (${tmp}): ${code}; set TMPDIR to a directory you can write`);
  }
  chmodSync(dir, 0o700);
  return { path: join(dir, 'coord.sock'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Makes `path` usable for listen(): checks its length, makes its directory, removes a stale socket. */
export async function prepareSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > SUN_PATH_MAX)
    throw new PincohError('PINCOH_ERR_SOCKET_PATH', `socket path is ${Buffer.byteLength(path)} bytes; a Unix socket path can hold ${SUN_PATH_MAX}. Choose a shorter --socket.`);
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket())
    throw new PincohError('PINCOH_ERR_SOCKET_PATH', `${path} exists and is not a socket; remove it or choose another --socket.`);
  if (await isLive(path)) throw new PincohError('PINCOH_ERR_SOCKET_IN_USE', `a coordinator already listens on ${path}; stop it or choose another --socket.`);
  unlinkSync(path);
}

/** Does a coordinator listen at path? Only "nothing there" counts as no: a full
 * accept queue (EAGAIN) is a live coordinator, which nobody may replace. */
export function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(!['ECONNREFUSED', 'ENOENT', 'ENOTSOCK', 'ENOTDIR'].includes(err.code ?? '')));
  });
}
