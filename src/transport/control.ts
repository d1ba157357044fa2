// A control client (pincoh status, pincoh audit): one question to a running
// coordinator, one answer of any length, read to the end of the connection;
// and where this user's coordinators are.

import { readdirSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { StatusSnapshot } from '../coherence/status.js';
import { encodeFrame } from '../protocol/codec.js';
import { HDR_SIZE, SIZE, T } from '../protocol/constants.js';
import { PincohError } from '../errors.js';
import { isLive, jobsBases } from './socket-path.js';

const ANSWER_MS = 5000;

const unreachable = (socket: string, why: string) =>
  new PincohError('PINCOH_ERR_COORDINATOR', `cannot reach a coordinator at ${socket}: ${why}; pincoh run prints its socket at start, pincoh status without --socket lists yours`);

/** Sends one control frame (AUDIT, STATUS) and resolves with the REPORT's JSON. */
export function ask(socket: string, type: number, payload: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(unreachable(socket, `no answer in ${ANSWER_MS / 1000} s (is it a pincoh coordinator?)`));
    }, ANSWER_MS);
    s.on('connect', () => s.write(encodeFrame(type, 0, 1n, payload)));
    s.on('data', (d) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(unreachable(socket, e.code === 'ENOENT' ? 'no such socket' : e.code === 'ECONNREFUSED' ? 'nothing listens there (a coordinator that ended?)' : (e.code ?? e.message)));
    });
    s.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      if (all.length < HDR_SIZE) return reject(unreachable(socket, 'it closed the connection without an answer'));
      const len = all.readUInt32LE(0);
      const kind = all.readUInt16LE(4);
      if (all.length < len) return reject(unreachable(socket, `the answer ended after ${all.length} of ${len} bytes`));
      const body = all.subarray(HDR_SIZE, len);
      if (kind === T.ERROR) return reject(unreachable(socket, `it refused: ${body.subarray(SIZE.ERROR).toString()}`));
      if (kind !== T.REPORT) return reject(unreachable(socket, `it answered with frame type ${kind}`));
      try {
        resolve(JSON.parse(body.toString()));
      } catch {
        reject(unreachable(socket, 'its answer is not JSON'));
      }
    });
  });
}

/** What pincoh status shows, from the coordinator at socket. */
export function fetchStatus(socket: string): Promise<StatusSnapshot> {
  return ask(socket, T.STATUS, Buffer.alloc(8)) as Promise<StatusSnapshot>;
}

/** The live coordinators of this user in dir, or else where pincoh puts them (TMPDIR, and
 * XDG_RUNTIME_DIR for exec's): pincoh run's (coord.sock) and exec's (c.sock). */
export async function findCoordinators(dir?: string): Promise<string[]> {
  const found: string[] = [];
  for (const d of dir !== undefined ? [dir] : jobsBases()) found.push(...(await findIn(d)));
  return found;
}

async function findIn(dir: string): Promise<string[]> {
  const uid = process.getuid?.() ?? 0;
  const found: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('pincoh-'));
  } catch {
    return [];
  }
  for (const n of names.sort())
    for (const sock of ['coord.sock', 'c.sock']) {
      const path = join(dir, n, sock);
      try {
        if (statSync(join(dir, n)).uid !== uid || !statSync(path).isSocket()) continue;
      } catch {
        continue;
      }
      if (await isLive(path)) found.push(path);
    }
  return found;
}
