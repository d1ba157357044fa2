/* Everything the shim and the coordinator share, declared once: the frames on
 * the socket and the shared area's layout. src/protocol/constants.ts mirrors
 * it; test/protocol-sync.test.ts checks every value, size and offset here
 * against it. Little-endian, fixed sizes. */
#ifndef PC_PROTO_H
#define PC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PC_PROTO_VERSION 3 /* 3: the BYE event (PC_R_BYE) */
#define PC_HDR_SIZE 16
#define PC_FRAME_MAX 65536

/* ---- frames: u32 length (whole frame) | u16 type | u16 flags | u64 seq | payload ---- */
#define PC_T_HELLO 1
#define PC_T_WELCOME 2
#define PC_T_REPLY 3
#define PC_T_ERROR 4
#define PC_T_SYNC 5     /* read my area; answer once every attachment to what it invalidated is dead */
#define PC_T_PUBLISH 6
#define PC_T_ATTACH 7
#define PC_T_DETACH 8
#define PC_T_BARRIER 9
#define PC_T_AUDIT 10   /* control client -> coordinator: i32 pid (0: all) */
#define PC_T_REPORT 11  /* coordinator -> control client: JSON (a control client reads any length) */
#define PC_T_STATUS 12  /* control client -> coordinator: u64 0; answered by a REPORT (pincoh status) */

#define PC_F_NOREPLY 1 /* header flag: the sender does not wait for a REPLY */

#define PC_W_MREMAP_FOLLOW 1 /* WELCOME flag: mremap moves registrations */
#define PC_W_FORK_DONTFORK 2 /* WELCOME flag: registered pages are kept from fork's children */
#define PC_W_SYNC_EXIT 4     /* WELCOME flag: wait for the coordinator at exit and exec (it audits then) */
#define PC_W_FREE_INVALIDATE 8 /* WELCOME flag: free() and realloc() invalidate the registrations in their chunk */

struct pc_hdr { uint32_t len; uint16_t type; uint16_t flags; uint64_t seq; };
#define PC_NAME_MAX 64
#define PC_JOB_MAX 32
/* libc: how libc's internal calls are covered (PINCOH_LIBC_* of pincoh.h);
 * area_fd: the shim's descriptor of its shared area (a memfd), open until WELCOME */
struct pc_hello { uint32_t version; int32_t pid; int32_t ppid; int32_t rank; int32_t size; uint32_t page_size; char argv0[64]; char job[PC_JOB_MAX]; uint32_t libc; uint32_t chained; int32_t area_fd; uint32_t area_size; };
/* max_regs: registrations this process may hold (the shim enforces it) */
struct pc_welcome { uint32_t version; uint32_t flags; uint32_t max_regs; uint32_t pad; };
/* a REPLY may carry up to PC_REPLY_EXTRA more bytes (ATTACH: struct pc_attached) */
struct pc_reply { int32_t status; uint32_t pad; };
#define PC_REPLY_EXTRA 32
struct pc_error { int32_t code; uint32_t pad; /* then a message, not NUL-terminated */ };
/* call: the hooked call waiting (0: a full ring or exit) */
struct pc_sync { uint32_t call; uint32_t pad; };
struct pc_publish { uint64_t key; char name[PC_NAME_MAX]; };
/* handle: the attacher's own handle; its state word is slot (handle & 0xffffffff) - 1 of its area */
struct pc_attach { uint64_t handle; int32_t timeout_ms; uint32_t pad; char name[PC_NAME_MAX]; };
struct pc_attached { uint64_t addr; uint64_t len; int32_t pid; uint32_t flags; };
struct pc_detach { uint64_t handle; };
struct pc_barrier { int32_t timeout_ms; uint32_t pad; };
struct pc_audit { int32_t pid; uint32_t pad; };
struct pc_status { uint64_t zero; }; /* pincoh status: what the coordinator sees, as JSON */

/* ---- the shared area: one per connection ----
 * A memfd the shim creates and maps MAP_SHARED (kept from fork's children);
 * the coordinator maps the same file at HELLO (through /proc/PID/fd). It holds
 * the event ring, written by the shim and drained by the coordinator, and the
 * state words of the process's handles on others' exports, which the
 * coordinator marks dead itself. Events are still there after a SIGKILL. */
#define PC_AREA_MAGIC 0x48534350u /* "PCSH" */
#define PC_RING_SLOTS 4096        /* a power of two */
#define PC_HANDLE_SLOTS 4096      /* attachments per process */

/* The header. One producer at a time (the shim writes events under its table
 * lock), one consumer (the coordinator): perf's ring. The producer stores a
 * record, then head with release; the consumer reads head with acquire, the
 * records, then stores tail with release. Positions run freely mod 2^32. */
struct pc_area_hdr {
	uint32_t magic, version, ring_slots, handle_slots;
	uint32_t ring_off, handle_off, size, pad0;
	uint32_t pad1[8];
	uint32_t head;     /* 64: next record the shim writes */
	uint32_t dropped;  /* 68: events lost: the ring was full and the coordinator did not answer */
	uint32_t pad2[14];
	uint32_t tail;     /* 128: next record the coordinator reads */
	uint32_t pad3[15];
};
#define PC_AREA_HDR_SIZE 192

/* Event records, 64 bytes each. One hooked call that touches registrations is
 * INVAL and MOVING records (before the real call), MOVED records (after it,
 * if it moved memory that follows) and one CALL record that closes it, all
 * carrying the same call number. */
#define PC_R_REG 1    /* key addr len flags */
#define PC_R_DEREG 2  /* key */
#define PC_R_INVAL 3  /* key (0: every registration) reason call */
#define PC_R_MOVING 4 /* key reason call: it will follow an mremap; attachers let go */
#define PC_R_MOVED 5  /* key addr (its new start) call */
#define PC_R_CALL 6   /* call reason flags addr len result arg arg2 */
#define PC_R_FORK 7   /* result: the child's pid */
#define PC_R_BYE 8    /* arg: 0 exit, 1 exec: the process ends on purpose (a socket closing without it: killed or crashed) */

#define PC_CALL_WAITED 1    /* CALL flag: it waited for the coordinator (published memory) */
#define PC_CALL_TIMED_OUT 2 /* CALL flag: the coordinator did not answer within the timeout */

struct pc_rec {
	uint16_t type;
	uint16_t reason;   /* PINCOH_REASON_*: INVAL, MOVING, CALL (the call's own) */
	uint32_t call;     /* this process's number of the hooked call */
	uint32_t flags;    /* REG: PINCOH_READ|WRITE; CALL: PC_CALL_* */
	uint32_t ns;       /* CALL: nanoseconds the call spent in pincoh before the real call (waits included; saturates at 2^32-1) */
	uint64_t key;
	uint64_t addr;     /* REG; MOVED: the new start; CALL: the range's start */
	uint64_t len;      /* REG; CALL: the length given */
	int64_t result;    /* CALL: the real call's result or -errno; FORK: the child */
	uint64_t arg;      /* CALL: prot, advice, mremap or mmap flags; exit 0 / exec 1 */
	uint64_t arg2;     /* CALL: mremap's new length */
};

/* A handle's shared word pair. state = gen << 4 | PC_H_*; the gen makes a
 * reused slot look different, so the coordinator (compare-and-swap) never
 * kills a newer handle than the one it means. A put counts itself in flight,
 * then checks state; the coordinator marks DEAD, then reads inflight (both
 * sequentially consistent): either the put sees DEAD, or the coordinator sees
 * it in flight and waits for it. */
#define PC_H_FREE 0
#define PC_H_PENDING 1 /* allocated, ATTACH not answered yet */
#define PC_H_LIVE 2
#define PC_H_DEAD 3
struct pc_handle_word { uint32_t state; uint32_t inflight; uint32_t reason; uint32_t pad; };

#define PC_AREA_RING_OFF PC_AREA_HDR_SIZE
#define PC_AREA_HANDLE_OFF (PC_AREA_RING_OFF + PC_RING_SLOTS * 64)
#define PC_AREA_BYTES (PC_AREA_HANDLE_OFF + PC_HANDLE_SLOTS * 16)

_Static_assert(sizeof(struct pc_hdr) == PC_HDR_SIZE, "header");
_Static_assert(sizeof(struct pc_hello) == 136, "hello");
_Static_assert(sizeof(struct pc_welcome) == 16, "welcome");
_Static_assert(sizeof(struct pc_reply) == 8, "reply");
_Static_assert(sizeof(struct pc_error) == 8, "error");
_Static_assert(sizeof(struct pc_sync) == 8, "sync");
_Static_assert(sizeof(struct pc_publish) == 72, "publish");
_Static_assert(sizeof(struct pc_attach) == 80, "attach");
_Static_assert(sizeof(struct pc_attached) == 24, "attached");
_Static_assert(sizeof(struct pc_detach) == 8, "detach");
_Static_assert(sizeof(struct pc_barrier) == 8, "barrier");
_Static_assert(sizeof(struct pc_audit) == 8, "audit");
_Static_assert(sizeof(struct pc_status) == 8, "status");
_Static_assert(sizeof(struct pc_area_hdr) == 192, "area_hdr");
_Static_assert(sizeof(struct pc_rec) == 64, "rec");
_Static_assert(sizeof(struct pc_handle_word) == 16, "handle_word");
_Static_assert(offsetof(struct pc_area_hdr, head) == 64, "area_hdr.head");
_Static_assert(offsetof(struct pc_area_hdr, dropped) == 68, "area_hdr.dropped");
_Static_assert(offsetof(struct pc_area_hdr, tail) == 128, "area_hdr.tail");
_Static_assert(offsetof(struct pc_rec, type) == 0, "rec.type");
_Static_assert(offsetof(struct pc_rec, reason) == 2, "rec.reason");
_Static_assert(offsetof(struct pc_rec, call) == 4, "rec.call");
_Static_assert(offsetof(struct pc_rec, flags) == 8, "rec.flags");
_Static_assert(offsetof(struct pc_rec, ns) == 12, "rec.ns");
_Static_assert(offsetof(struct pc_rec, key) == 16, "rec.key");
_Static_assert(offsetof(struct pc_rec, addr) == 24, "rec.addr");
_Static_assert(offsetof(struct pc_rec, len) == 32, "rec.len");
_Static_assert(offsetof(struct pc_rec, result) == 40, "rec.result");
_Static_assert(offsetof(struct pc_rec, arg) == 48, "rec.arg");
_Static_assert(offsetof(struct pc_rec, arg2) == 56, "rec.arg2");
_Static_assert(offsetof(struct pc_handle_word, state) == 0, "handle_word.state");
_Static_assert(offsetof(struct pc_handle_word, inflight) == 4, "handle_word.inflight");
_Static_assert(offsetof(struct pc_handle_word, reason) == 8, "handle_word.reason");
_Static_assert(offsetof(struct pc_hello, area_fd) == 128, "hello.area_fd");
_Static_assert(offsetof(struct pc_hello, area_size) == 132, "hello.area_size");
_Static_assert(offsetof(struct pc_attach, name) == 16, "attach.name");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire is little-endian");

#endif
