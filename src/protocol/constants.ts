// Wire constants and the shared area's layout, mirrored from
// native-shim/src/proto.h (test/protocol-sync.test.ts reads that header and
// checks every value, size and offset here against it).

export const PROTO_VERSION = 4; // 4: the job table; owners revoke in place
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
  STUCK: 13,
  FAREWELL: 14,
} as const;

export const NAME_MAX = 64;
export const JOB_MAX = 32;
export const REPLY_EXTRA = 48;

export const F_NOREPLY = 1;
export const W_MREMAP_FOLLOW = 1;
export const W_FORK_DONTFORK = 2;
export const W_SYNC_EXIT = 4;
export const W_FREE_INVALIDATE = 8;
export const W_NO_COHERENCE = 16;

/** Payload sizes; a frame whose payload is shorter is malformed. */
export const SIZE = {
  HELLO: 136,
  WELCOME: 40,
  REPLY: 8,
  ERROR: 8,
  SYNC: 8,
  PUBLISH: 80,
  ATTACH: 80,
  ATTACHED: 40,
  DETACH: 8,
  BARRIER: 8,
  AUDIT: 8,
  STATUS: 8,
  STUCK: 16,
  FAREWELL: 24,
  AREA_HDR: 192,
  REC: 64,
  JT_HDR: 256,
  JT_MEMBER: 16,
  JT_EXPORT: 8,
  JT_LINK: 16,
} as const;

/** The shared area: header and event ring (proto.h). */
export const AREA = {
  MAGIC: 0x48534350,
  RING_SLOTS: 4096,
  HDR_SIZE: 192,
  RING_OFF: 192,
  BYTES: 192 + 4096 * 64,
} as const;

/** The job table (proto.h): its header, member records, export heads, links, and one segment per member. */
export const JT = {
  MAGIC: 0x544a4350,
  MEMBERS: 1024,
  EXPORTS: 1024,
  HANDLES: 4096,
  LINKS: 65536,
  HDR_BYTES: 4096,
  SEG_EXPORTS_OFF: 0,
  SEG_INFLIGHT_OFF: 1024 * 8,
  SEG_BYTES: 1024 * 8 + 4096 * 4,
  LINK_NONE: 0xffffffff,
} as const;
/** Member record states (PC_M_*), the low 4 bits; the rest is the slot's generation. */
export const M = { FREE: 0, ACTIVE: 1, EXPELLED: 2, GONE: 3 } as const;
/** Export word states (PC_X_*), the low 4 bits; the rest is the export's generation. */
export const X = { FREE: 0, LIVE: 1, DEAD: 2 } as const;

/** Byte offsets of the fields each side reads or writes (proto.h's offsetof asserts). */
export const OFF = {
  AREA_HDR: { head: 64, dropped: 68, tail: 128 },
  REC: { type: 0, reason: 2, call: 4, flags: 8, ns: 12, key: 16, addr: 24, len: 32, result: 40, arg: 48, arg2: 56 },
  HELLO: { area_fd: 128, area_size: 132 },
  ATTACH: { name: 16 },
  FAREWELL: { connected: 8, last: 12, slow_calls: 16 },
  WELCOME: { revoke_ms: 12, jt_fd: 16, coord_tid: 32 },
  PUBLISH: { export: 72 },
  ATTACHED: { owner: 24, owner_word: 36 },
  JT_HDR: { members: 8, size: 24, seg_size: 28, member_off: 32, head_off: 36, link_off: 40, seg_off: 44, lock: 64, coord_tid: 128 },
  JT_MEMBER: { pid: 4 },
  JT_EXPORT: { reason: 4 },
  JT_LINK: { gen: 4, who: 8, next: 12 },
} as const;

/** Event records (PC_R_*). */
export const R = { REG: 1, DEREG: 2, INVAL: 3, MOVING: 4, MOVED: 5, CALL: 6, FORK: 7, BYE: 8, REVOKED: 9, REARM: 10 } as const;
export const CALL_WAITED = 1;
export const CALL_TIMED_OUT = 2;
/** INVAL, MOVING, DEREG flag: the registration was published; the owner revokes in place and a REVOKED follows. */
export const EV_EXPORT = 1;

/** Why, in one numbering from pincoh.h's PINCOH_REASON_* to the trace. */
export const REASON = { MUNMAP: 1, MPROTECT: 2, MREMAP: 3, REVOKED: 4, MADVISE: 5, MMAP: 6, EXIT: 7, DEREGISTER: 8, FREE: 9 } as const;
/** Each reason's name, as the trace and the stats say it: REASON's, in lower case. */
export const REASON_NAMES: Record<number, string> = Object.fromEntries(Object.entries(REASON).map(([k, v]) => [v, k.toLowerCase()]));

// From <sys/mman.h> on Linux.
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// From pincoh.h.
export const PINCOH_READ = 1;
export const PINCOH_WRITE = 2;
