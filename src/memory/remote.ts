// Another process's memory, through process_vm_readv/writev (koffi). The
// coordinator uses it to mark an unresponsive attacher's handles dead; the
// same ptrace rules apply as for the shim's put/get (see README).

import koffi from 'koffi';

type VmFn = (pid: number, local: object[], liovcnt: number, remote: object[], riovcnt: number, flags: number) => number | bigint;

let fns: { readv: VmFn; writev: VmFn; errno: () => number } | undefined;

function bind(): NonNullable<typeof fns> {
  if (!fns) {
    const libc = koffi.load('libc.so.6');
    // the remote side's addresses are not pointers of ours: plain integers
    koffi.struct('pincoh_local_iovec', { base: 'void *', len: 'size_t' });
    koffi.struct('pincoh_remote_iovec', { base: 'uint64_t', len: 'size_t' });
    const sig = (name: string) => `intptr_t ${name}(int pid, pincoh_local_iovec *local, unsigned long liovcnt, pincoh_remote_iovec *remote, unsigned long riovcnt, unsigned long flags)`;
    fns = {
      readv: libc.func(sig('process_vm_readv')) as unknown as VmFn,
      writev: libc.func(sig('process_vm_writev')) as unknown as VmFn,
      errno: () => koffi.errno(),
    };
  }
  return fns;
}

/** Writes buf at addr in pid; returns true if all of it was written. */
export function writeRemote(pid: number, addr: number, buf: Buffer): boolean {
  const f = bind();
  return Number(f.writev(pid, [{ base: buf, len: buf.length }], 1, [{ base: BigInt(addr), len: buf.length }], 1, 0)) === buf.length;
}

/** Reads len bytes at addr in pid; undefined if they could not all be read. */
export function readRemote(pid: number, addr: number, len: number): Buffer | undefined {
  const f = bind();
  const buf = Buffer.alloc(len);
  return Number(f.readv(pid, [{ base: buf, len }], 1, [{ base: BigInt(addr), len }], 1, 0)) === len ? buf : undefined;
}
