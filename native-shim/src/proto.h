/* Wire format shared with src/protocol/constants.ts (test/protocol-sync.test.ts
 * checks the two agree). Little-endian, fixed-size payloads on the hot path. */
#ifndef PC_PROTO_H
#define PC_PROTO_H

#include <stdint.h>

#define PC_PROTO_VERSION 1
#define PC_HDR_SIZE 16
#define PC_FRAME_MAX 65536

/* header: u32 length (whole frame) | u16 type | u16 flags | u64 seq */
#define PC_T_HELLO 1
#define PC_T_WELCOME 2
#define PC_T_REGISTER 3
#define PC_T_DEREGISTER 4
#define PC_T_BEGIN 5
#define PC_T_REPLY 6
#define PC_T_DONE 7
#define PC_T_FORK 8
#define PC_T_ERROR 9
#define PC_T_PUBLISH 10
#define PC_T_ATTACH 11
#define PC_T_DETACH 12
#define PC_T_REVOKE 13
#define PC_T_REVOKED 14
#define PC_T_BARRIER 15
#define PC_T_AUDIT 16   /* control client -> coordinator: i32 pid (0: all) */
#define PC_T_REPORT 17  /* coordinator -> control client: JSON */

#define PC_F_NOREPLY 1 /* header flag: the sender does not wait for a REPLY */

#define PC_OP_MUNMAP 1
#define PC_OP_MPROTECT 2
#define PC_OP_MREMAP 3
#define PC_OP_MADVISE 4   /* arg: the advice */
#define PC_OP_MMAP_FIXED 5 /* MAP_FIXED over existing memory: it is unmapped first */
#define PC_OP_EXIT 6       /* the whole address space goes: arg 0 exit, 1 exec */

#define PC_W_MREMAP_FOLLOW 1 /* WELCOME flag: mremap moves registrations */
#define PC_W_FORK_DONTFORK 2 /* WELCOME flag: registered pages are kept from fork's children */

struct pc_hdr { uint32_t len; uint16_t type; uint16_t flags; uint64_t seq; };
#define PC_NAME_MAX 64
#define PC_JOB_MAX 32
/* libc: how libc's internal calls are covered (PINCOH_LIBC_* of pincoh.h) */
struct pc_hello { uint32_t version; int32_t pid; int32_t ppid; int32_t rank; int32_t size; uint32_t page_size; char argv0[64]; char job[PC_JOB_MAX]; uint32_t libc; uint32_t chained; };
struct pc_welcome { uint32_t version; uint32_t flags; };
struct pc_register { uint64_t key; uint64_t addr; uint64_t len; uint32_t flags; uint32_t pad; };
struct pc_deregister { uint64_t key; };
/* arg: prot for mprotect, flags for mremap */
struct pc_begin { uint32_t op; uint32_t arg; uint64_t addr; uint64_t len; uint64_t new_len; uint64_t new_addr; };
/* a REPLY may carry up to PC_REPLY_EXTRA more bytes (ATTACH: struct pc_attached) */
struct pc_reply { int32_t status; uint32_t pad; };
#define PC_REPLY_EXTRA 32
/* result: the call's return value, or -errno; begin_seq: the BEGIN it closes */
struct pc_done { uint32_t op; uint32_t flags; int64_t result; uint64_t begin_seq; };
#define PC_DONE_TIMED_OUT 1 /* DONE flag: the BEGIN's ACK did not come within the timeout */
struct pc_fork { int32_t child; uint32_t pad; };
struct pc_error { int32_t code; uint32_t pad; /* then a message, not NUL-terminated */ };
struct pc_publish { uint64_t key; char name[PC_NAME_MAX]; };
/* handle: the attacher's own handle, echoed in REVOKE; state_addr: where its
 * handle state lives, so a coordinator can mark it dead without its help */
struct pc_attach { uint64_t handle; uint64_t state_addr; int32_t timeout_ms; uint32_t pad; char name[PC_NAME_MAX]; };
struct pc_attached { uint64_t addr; uint64_t len; int32_t pid; uint32_t flags; };
struct pc_detach { uint64_t handle; };
struct pc_revoke { uint64_t handle; uint32_t reason; uint32_t pad; };
struct pc_revoked { uint64_t handle; };
struct pc_barrier { int32_t timeout_ms; uint32_t pad; };
struct pc_audit { int32_t pid; uint32_t pad; };

_Static_assert(sizeof(struct pc_hdr) == PC_HDR_SIZE, "header");
_Static_assert(sizeof(struct pc_hello) == 128, "hello");
_Static_assert(sizeof(struct pc_publish) == 72, "publish");
_Static_assert(sizeof(struct pc_attach) == 88, "attach");
_Static_assert(sizeof(struct pc_attached) == 24, "attached");
_Static_assert(sizeof(struct pc_detach) == 8, "detach");
_Static_assert(sizeof(struct pc_revoke) == 16, "revoke");
_Static_assert(sizeof(struct pc_revoked) == 8, "revoked");
_Static_assert(sizeof(struct pc_barrier) == 8, "barrier");
_Static_assert(sizeof(struct pc_audit) == 8, "audit");
_Static_assert(sizeof(struct pc_register) == 32, "register");
_Static_assert(sizeof(struct pc_begin) == 40, "begin");
_Static_assert(sizeof(struct pc_done) == 24, "done");
_Static_assert(sizeof(struct pc_welcome) == 8, "welcome");
_Static_assert(sizeof(struct pc_deregister) == 8, "deregister");
_Static_assert(sizeof(struct pc_reply) == 8, "reply");
_Static_assert(sizeof(struct pc_fork) == 8, "fork");
_Static_assert(sizeof(struct pc_error) == 8, "error");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire is little-endian");

#endif
