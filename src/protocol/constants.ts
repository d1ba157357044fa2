// Wire constants, mirrored from native-shim/src/proto.h (test/protocol-sync.test.ts
// reads that header and checks every value here against it).

export const PROTO_VERSION = 1;
export const HDR_SIZE = 16;
export const FRAME_MAX = 65536;

export const T = {
  HELLO: 1,
  WELCOME: 2,
  REGISTER: 3,
  DEREGISTER: 4,
  BEGIN: 5,
  REPLY: 6,
  DONE: 7,
  FORK: 8,
  ERROR: 9,
  PUBLISH: 10,
  ATTACH: 11,
  DETACH: 12,
  REVOKE: 13,
  REVOKED: 14,
  BARRIER: 15,
  AUDIT: 16,
  REPORT: 17,
} as const;

export const NAME_MAX = 64;
export const JOB_MAX = 32;
export const REPLY_EXTRA = 32;

export const F_NOREPLY = 1;
export const DONE_TIMED_OUT = 1;
export const W_MREMAP_FOLLOW = 1;
export const W_FORK_DONTFORK = 2;

export const OP = { MUNMAP: 1, MPROTECT: 2, MREMAP: 3, MADVISE: 4, MMAP_FIXED: 5, EXIT: 6 } as const;
export const OP_NAMES: Record<number, string> = { 1: 'munmap', 2: 'mprotect', 3: 'mremap', 4: 'madvise', 5: 'mmap', 6: 'exit' };

/** Payload sizes; a frame whose payload is shorter is malformed. */
export const SIZE = {
  HELLO: 128,
  WELCOME: 8,
  REGISTER: 32,
  DEREGISTER: 8,
  BEGIN: 40,
  REPLY: 8,
  DONE: 24,
  FORK: 8,
  ERROR: 8,
  PUBLISH: 72,
  ATTACH: 88,
  ATTACHED: 24,
  DETACH: 8,
  REVOKE: 16,
  REVOKED: 8,
  BARRIER: 8,
  AUDIT: 8,
} as const;

// From <sys/mman.h> on Linux, for the policy.
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// From pincoh.h.
export const PINCOH_READ = 1;
export const PINCOH_WRITE = 2;
