// The peer's pid/uid/gid of a Unix socket, from the kernel (SO_PEERCRED),
// through koffi: Node's net module does not expose it.

import koffi from 'koffi';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

let getsockopt: ((fd: number, level: number, name: number, out: object, len: number[]) => number) | undefined;

function bind(): NonNullable<typeof getsockopt> {
  if (!getsockopt) {
    const libc = koffi.load('libc.so.6');
    koffi.struct('pincoh_ucred', { pid: 'int32', uid: 'uint32', gid: 'uint32' });
    getsockopt = libc.func('int getsockopt(int, int, int, _Out_ pincoh_ucred *, _Inout_ uint32 *)') as unknown as typeof getsockopt;
  }
  return getsockopt!;
}

/** undefined if the fd is not a connected Unix socket. */
export function peerCred(fd: number): PeerCred | undefined {
  const cred = { pid: 0, uid: 0, gid: 0 };
  const len = [12];
  if (bind()(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0 || cred.pid <= 0) return undefined;
  return cred;
}

/** The OS fd behind a net.Socket (Node keeps it on the internal handle). */
export function socketFd(socket: unknown): number | undefined {
  const fd = (socket as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
