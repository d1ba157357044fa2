// The Linux errno values that travel in REPLY frames (as -errno), and that
// the tests expect of the shim's calls.

import { constants as osConstants } from 'node:os';

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EBADF = 9;
export const EAGAIN = 11;
export const EACCES = 13;
export const EFAULT = 14;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EMFILE = 24;
export const ERANGE = 34;
export const EPROTO = 71;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ESTALE = 116;
export const EOWNERDEAD = 130;

const NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** 'ESTALE' for 116 (or -116); 'errno N' for a number Linux has no name for. */
export function errnoName(n: number): string {
  return NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}
