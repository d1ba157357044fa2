// The peer's pid/uid/gid of a Unix socket, from the kernel (SO_PEERCRED),
// through libc: Node's net module does not expose it.

import { SO_PEERCRED, SOL_SOCKET, sys, type Ucred } from '../libc.js';

export type PeerCred = Ucred;

/** undefined if the fd is not a connected Unix socket. */
export function peerCred(fd: number): PeerCred | undefined {
  const cred = { pid: 0, uid: 0, gid: 0 };
  const len = [12];
  if (sys().getsockopt_ucred(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0 || cred.pid <= 0) return undefined;
  return cred;
}

/** The OS fd behind a net.Socket (Node keeps it on the internal handle). */
export function socketFd(socket: unknown): number | undefined {
  const fd = (socket as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
