// Wire constants and the shared area's layout, mirrored from
// native-shim/src/proto.h (test/protocol-sync.test.ts reads that header and
// checks every value, size and offset here against it).

export const PROTO_VERSION = 3; // 3: the BYE event
export const HDR_SIZE = 16;
export const FRAME_MAX = 65536;

export const T = {
  HELLO: 1,
  WELCOME: 2,
  REPLY: 3,
  ERROR: 4,
  SYNC: 5,
  PUBLISH: 6,
  ATTACH: 7,
  DETACH: 8,
  BARRIER: 9,
  AUDIT: 10,
  REPORT: 11,
  STATUS: 12,
} as const;

export const NAME_MAX = 64;
export const JOB_MAX = 32;
export const REPLY_EXTRA = 32;

export const F_NOREPLY = 1;
export const W_MREMAP_FOLLOW = 1;
export const W_FORK_DONTFORK = 2;
export const W_SYNC_EXIT = 4;
export const W_FREE_INVALIDATE = 8;

/** Payload sizes; a frame whose payload is shorter is malformed. */
export const SIZE = {
  HELLO: 136,
  WELCOME: 16,
  REPLY: 8,
  ERROR: 8,
  SYNC: 8,
  PUBLISH: 72,
  ATTACH: 80,
  ATTACHED: 24,
  DETACH: 8,
  BARRIER: 8,
  AUDIT: 8,
  STATUS: 8,
  AREA_HDR: 192,
  REC: 64,
  HANDLE_WORD: 16,
} as const;

/** The shared area: header, event ring, handle words (proto.h). */
export const AREA = {
  MAGIC: 0x48534350,
  RING_SLOTS: 4096,
  HANDLE_SLOTS: 4096,
  HDR_SIZE: 192,
  RING_OFF: 192,
  HANDLE_OFF: 192 + 4096 * 64,
  BYTES: 192 + 4096 * 64 + 4096 * 16,
} as const;

/** Byte offsets of the fields each side reads or writes (proto.h's offsetof asserts). */
export const OFF = {
  AREA_HDR: { head: 64, dropped: 68, tail: 128 },
  REC: { type: 0, reason: 2, call: 4, flags: 8, ns: 12, key: 16, addr: 24, len: 32, result: 40, arg: 48, arg2: 56 },
  HANDLE_WORD: { state: 0, inflight: 4, reason: 8 },
  HELLO: { area_fd: 128, area_size: 132 },
  ATTACH: { name: 16 },
} as const;

/** Event records (PC_R_*). */
export const R = { REG: 1, DEREG: 2, INVAL: 3, MOVING: 4, MOVED: 5, CALL: 6, FORK: 7, BYE: 8 } as const;
export const CALL_WAITED = 1;
export const CALL_TIMED_OUT = 2;

/** Handle states (PC_H_*), the low 4 bits of a handle word's state; the rest is its generation. */
export const H = { FREE: 0, PENDING: 1, LIVE: 2, DEAD: 3 } as const;

/** Why, in one numbering from pincoh.h's PINCOH_REASON_* to the trace. */
export const REASON = { MUNMAP: 1, MPROTECT: 2, MREMAP: 3, REVOKED: 4, MADVISE: 5, MMAP: 6, EXIT: 7, DEREGISTER: 8, FREE: 9 } as const;
export const REASON_NAMES: Record<number, string> = { 1: 'munmap', 2: 'mprotect', 3: 'mremap', 4: 'revoked', 5: 'madvise', 6: 'mmap', 7: 'exit', 8: 'deregister', 9: 'free' };

// From <sys/mman.h> on Linux.
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// From pincoh.h.
export const PINCOH_READ = 1;
export const PINCOH_WRITE = 2;
