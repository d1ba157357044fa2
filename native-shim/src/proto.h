/* Everything the shim and the coordinator share, declared once: the frames on
 * the socket and the shared area's layout. src/protocol/constants.ts mirrors
 * it; test/protocol-sync.test.ts checks every value, size and offset here
 * against it. Little-endian, fixed sizes. */
#ifndef PC_PROTO_H
#define PC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PC_PROTO_VERSION 4 /* 4: the job table; owners revoke in place */
#define PC_HDR_SIZE 16
#define PC_FRAME_MAX 65536

/* ---- frames: u32 length (whole frame) | u16 type | u16 flags | u64 seq | payload ---- */
#define PC_T_HELLO 1
#define PC_T_WELCOME 2
#define PC_T_REPLY 3
#define PC_T_ERROR 4
#define PC_T_SYNC 5     /* read my area (a full ring; an exit under --audit); answer once it is applied */
#define PC_T_PUBLISH 6
#define PC_T_ATTACH 7
#define PC_T_DETACH 8
#define PC_T_BARRIER 9
#define PC_T_AUDIT 10   /* control client -> coordinator: i32 pid (0: all) */
#define PC_T_REPORT 11  /* coordinator -> control client: JSON (a control client reads any length) */
#define PC_T_STATUS 12  /* control client -> coordinator: u64 0; answered by a REPORT (pincoh status) */
#define PC_T_STUCK 13   /* an owner's revoke found a put in flight past the bound: the coordinator ends it, then answers */
#define PC_T_FAREWELL 14 /* pincoh exec's rank at exit, on a socket of its own, before any HELLO; the
			    job's last rank on the node waits for the answer: once the node's log has its summary */

#define PC_F_NOREPLY 1 /* header flag: the sender does not wait for a REPLY */

#define PC_W_MREMAP_FOLLOW 1 /* WELCOME flag: mremap moves registrations */
#define PC_W_FORK_DONTFORK 2 /* WELCOME flag: registered pages are kept from fork's children */
#define PC_W_SYNC_EXIT 4     /* WELCOME flag: wait for the coordinator at exit and exec (it audits then) */
#define PC_W_FREE_INVALIDATE 8 /* WELCOME flag: free() and realloc() invalidate the registrations in their chunk */
#define PC_W_NO_COHERENCE 16   /* WELCOME flag: owners never revoke their attachers (--no-coherence: the hazard, shown) */

struct pc_hdr { uint32_t len; uint16_t type; uint16_t flags; uint64_t seq; };
#define PC_NAME_MAX 64
#define PC_JOB_MAX 32
/* libc: how libc's internal calls are covered (PINCOH_LIBC_* of pincoh.h);
 * area_fd: the shim's descriptor of its shared area (a memfd), open until WELCOME */
struct pc_hello { uint32_t version; int32_t pid; int32_t ppid; int32_t rank; int32_t size; uint32_t page_size; char argv0[64]; char job[PC_JOB_MAX]; uint32_t libc; uint32_t chained; int32_t area_fd; uint32_t area_size; };
/* max_regs: registrations this process may hold (the shim enforces it).
 * The job's table: jt_fd is the coordinator's descriptor of it (the shim opens
 * /proc/COORDINATOR/fd/jt_fd, the coordinator's pid from SO_PEERCRED), jt_size
 * its size; member: this process's member slot in it, member_word: what that
 * slot's record holds while it is an active member; coord_tid: what the
 * coordinator's liveness word holds while it lives; revoke_ms: how long an
 * owner waits for a put in flight before it hands it to the coordinator.
 * jt_fd -1: no table (sharing refused). */
struct pc_welcome { uint32_t version; uint32_t flags; uint32_t max_regs; uint32_t revoke_ms;
		    int32_t jt_fd; uint32_t jt_size; uint32_t member; uint32_t member_word; int32_t coord_tid; uint32_t pad; };
/* a REPLY may carry up to PC_REPLY_EXTRA more bytes (ATTACH: struct pc_attached) */
struct pc_reply { int32_t status; uint32_t pad; };
#define PC_REPLY_EXTRA 48
struct pc_error { int32_t code; uint32_t pad; /* then a message, not NUL-terminated */ };
/* call: the hooked call waiting (0: a full ring or exit) */
struct pc_sync { uint32_t call; uint32_t pad; };
/* export: the owner's export slot in the job table, + 1; xgen: its generation (LIVE already) */
struct pc_publish { uint64_t key; char name[PC_NAME_MAX]; uint32_t export; uint32_t xgen; };
/* handle: the attacher's own handle; its state word is slot (handle & 0xffffffff) - 1 of its area */
struct pc_attach { uint64_t handle; int32_t timeout_ms; uint32_t pad; char name[PC_NAME_MAX]; };
/* owner: the owner's member slot, owner_word: its record while it is that
 * member (a slot given to another process later reads otherwise); export,
 * xgen: the export word a put checks */
struct pc_attached { uint64_t addr; uint64_t len; int32_t pid; uint32_t flags; uint32_t owner; uint32_t export; uint32_t xgen; uint32_t owner_word; };
struct pc_detach { uint64_t handle; };
struct pc_barrier { int32_t timeout_ms; uint32_t pad; };
struct pc_audit { int32_t pid; uint32_t pad; };
struct pc_status { uint64_t zero; }; /* pincoh status: what the coordinator sees, as JSON */
/* the attacher (member, handle slot) whose put on export (slot + 1, gen) stayed in flight */
struct pc_stuck { uint32_t member; uint32_t slot; uint32_t export; uint32_t xgen; };
/* what the shim did in a rank: libc, chained: as in HELLO; connected: it
 * connected at some time (made a pincoh call); last: the job's last rank on
 * the node to leave (it waits for the answer); slow_calls: hooked calls that
 * touched its registrations */
struct pc_farewell { uint32_t libc; uint32_t chained; uint32_t connected; uint32_t last; uint64_t slow_calls; };

/* ---- the shared area: one per connection ----
 * A memfd the shim creates and maps MAP_SHARED; the coordinator maps the same
 * file at HELLO (through /proc/PID/fd). It holds the event ring, written by
 * the shim and drained by the coordinator. Events are still there after a SIGKILL. */
#define PC_AREA_MAGIC 0x48534350u /* "PCSH" */
#define PC_RING_SLOTS 4096        /* a power of two */
#define PC_HANDLE_SLOTS 4096      /* attachments per process */

/* The header. One producer at a time (the shim writes events under its table
 * lock), one consumer (the coordinator): perf's ring. The producer stores a
 * record, then head with release; the consumer reads head with acquire, the
 * records, then stores tail with release. Positions run freely mod 2^32. */
struct pc_area_hdr {
	uint32_t magic, version, ring_slots, pad_a;
	uint32_t ring_off, pad_b, size, pad0;
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
#define PC_R_REVOKED 9 /* key reason call addr=export len=xgen ns=revoke time result=attachments arg=in flight arg2=handed over:
                         the owner revoked every attachment to it (after INVAL, MOVING or DEREG with PC_EV_EXPORT) */
#define PC_R_REARM 10  /* key addr=export len=xgen: a published registration that followed an mremap is attachable again */

#define PC_EV_EXPORT 1      /* INVAL, MOVING, DEREG flag: it was published; its REVOKED follows */

#define PC_CALL_WAITED 1    /* CALL flag: it waited for the coordinator (a put handed over by STUCK, a SYNC) */
#define PC_CALL_TIMED_OUT 2 /* CALL flag: that wait was not answered within the timeout */

struct pc_rec {
	uint16_t type;
	uint16_t reason;   /* PINCOH_REASON_*: INVAL, MOVING, CALL (the call's own) */
	uint32_t call;     /* this process's number of the hooked call */
	uint32_t flags;    /* REG: PINCOH_READ|WRITE; CALL: PC_CALL_*; INVAL, MOVING, DEREG: PC_EV_* */
	uint32_t ns;       /* CALL: nanoseconds the call spent in pincoh before the real call (waits included);
	                      REVOKED: from marking the export dead to the last put drained (both saturate at 2^32-1) */
	uint64_t key;
	uint64_t addr;     /* REG; MOVED: the new start; CALL: the range's start */
	uint64_t len;      /* REG; CALL: the length given */
	int64_t result;    /* CALL: the real call's result or -errno; FORK: the child */
	uint64_t arg;      /* CALL: prot, advice, mremap or mmap flags; exit 0 / exec 1 */
	uint64_t arg2;     /* CALL: mremap's new length */
};

#define PC_AREA_RING_OFF PC_AREA_HDR_SIZE
#define PC_AREA_BYTES (PC_AREA_RING_OFF + PC_RING_SLOTS * 64)

/* ---- the job table: one per job per coordinator ----
 * A sealed memfd the coordinator creates at the job's first HELLO and every
 * member maps: the whole of it read-only, its own segment read-write. The
 * coordinator fills it (the control plane); owners and attachers keep each
 * other coherent through it with no system call and no round trip (the data
 * plane). Each word has one writer:
 * - the header, the member records, the export heads and the links: the coordinator;
 * - a member's segment: that member (its export words as an owner, its
 *   in-flight words as an attacher); the coordinator only when the member is
 *   dropped (it then marks the member's exports dead in its stead).
 * The handshake (Dekker's, all sequentially consistent): a put adds itself to
 * its in-flight word, then checks the coordinator's liveness word, its own
 * member record and the owner's export word; an owner's revoke marks the
 * export word dead, then reads the links and each linked in-flight word, and
 * waits for those that are not 0. Either the put sees "dead", or the owner
 * sees it in flight. Offsets are page multiples; the header says them. */
#define PC_JT_MAGIC 0x544a4350u  /* "PCJT" */
#define PC_JT_MEMBERS 1024       /* processes of one job at once on one coordinator */
#define PC_JT_EXPORTS 1024       /* published registrations per process at once */
#define PC_JT_LINKS 65536        /* attachments per job at once */
#define PC_JT_HDR_BYTES 4096

struct pc_jt_hdr {
	uint32_t magic, version, members, exports;
	uint32_t handles, links, size, seg_size;
	uint32_t member_off, head_off, link_off, seg_off;
	uint32_t pad0[4];
	/* 64: the coordinator's robust pthread mutex (process-shared), locked by
	 * its main thread for as long as it serves the job. Its first word is the
	 * kernel's futex word: coord_tid while the coordinator lives; the kernel
	 * sets FUTEX_OWNER_DIED in it when the coordinator dies, however it dies;
	 * 0 once it closed the job. A put checks it with one load. */
	uint32_t lock[16];
	uint32_t coord_tid; /* 128 */
	uint32_t pad1[31];
};

/* member records: state = gen << 4 | PC_M_* */
#define PC_M_FREE 0
#define PC_M_ACTIVE 1    /* connected */
#define PC_M_EXPELLED 2  /* dropped while it may still run: its puts are refused; its slot is kept until it is gone */
#define PC_M_GONE 3      /* dead: nothing of it can be in flight */
struct pc_jt_member { uint32_t state; int32_t pid; uint32_t pad[2]; };

/* export words, in the owner's segment: state = gen << 4 | PC_X_* */
#define PC_X_FREE 0
#define PC_X_LIVE 1
#define PC_X_DEAD 2
struct pc_jt_export { uint32_t state; uint32_t reason; };

/* Attachments to an export: a list of links from the u32 head at
 * head_off + (owner * exports + export slot) * 4 (link index + 1; 0 ends it). owner_export = owner << 16 | export slot; gen
 * the export's generation; who = attacher member << 16 | its handle slot, or
 * PC_LINK_NONE once detached (a link is only reused once its export died). */
#define PC_LINK_NONE 0xffffffffu
struct pc_jt_link { uint32_t owner_export; uint32_t gen; uint32_t who; uint32_t next; };

/* a member's segment: its export words, then its handles' in-flight words */
#define PC_JT_SEG_EXPORTS_OFF 0
#define PC_JT_SEG_INFLIGHT_OFF (PC_JT_EXPORTS * 8)
#define PC_JT_SEG_BYTES (PC_JT_SEG_INFLIGHT_OFF + PC_HANDLE_SLOTS * 4)

_Static_assert(sizeof(struct pc_hdr) == PC_HDR_SIZE, "header");
_Static_assert(sizeof(struct pc_hello) == 136, "hello");
_Static_assert(sizeof(struct pc_welcome) == 40, "welcome");
_Static_assert(sizeof(struct pc_reply) == 8, "reply");
_Static_assert(sizeof(struct pc_error) == 8, "error");
_Static_assert(sizeof(struct pc_sync) == 8, "sync");
_Static_assert(sizeof(struct pc_publish) == 80, "publish");
_Static_assert(sizeof(struct pc_attach) == 80, "attach");
_Static_assert(sizeof(struct pc_attached) == 40, "attached");
_Static_assert(sizeof(struct pc_detach) == 8, "detach");
_Static_assert(sizeof(struct pc_barrier) == 8, "barrier");
_Static_assert(sizeof(struct pc_audit) == 8, "audit");
_Static_assert(sizeof(struct pc_status) == 8, "status");
_Static_assert(sizeof(struct pc_stuck) == 16, "stuck");
_Static_assert(sizeof(struct pc_farewell) == 24, "farewell");
_Static_assert(sizeof(struct pc_jt_hdr) == 256, "jt_hdr");
_Static_assert(sizeof(struct pc_jt_member) == 16, "jt_member");
_Static_assert(sizeof(struct pc_jt_export) == 8, "jt_export");
_Static_assert(sizeof(struct pc_jt_link) == 16, "jt_link");
_Static_assert(sizeof(struct pc_area_hdr) == 192, "area_hdr");
_Static_assert(sizeof(struct pc_rec) == 64, "rec");
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
_Static_assert(offsetof(struct pc_welcome, revoke_ms) == 12, "welcome.revoke_ms");
_Static_assert(offsetof(struct pc_welcome, jt_fd) == 16, "welcome.jt_fd");
_Static_assert(offsetof(struct pc_welcome, coord_tid) == 32, "welcome.coord_tid");
_Static_assert(offsetof(struct pc_publish, export) == 72, "publish.export");
_Static_assert(offsetof(struct pc_attached, owner) == 24, "attached.owner");
_Static_assert(offsetof(struct pc_attached, owner_word) == 36, "attached.owner_word");
_Static_assert(offsetof(struct pc_jt_hdr, members) == 8, "jt_hdr.members");
_Static_assert(offsetof(struct pc_jt_hdr, size) == 24, "jt_hdr.size");
_Static_assert(offsetof(struct pc_jt_hdr, seg_size) == 28, "jt_hdr.seg_size");
_Static_assert(offsetof(struct pc_jt_hdr, member_off) == 32, "jt_hdr.member_off");
_Static_assert(offsetof(struct pc_jt_hdr, head_off) == 36, "jt_hdr.head_off");
_Static_assert(offsetof(struct pc_jt_hdr, link_off) == 40, "jt_hdr.link_off");
_Static_assert(offsetof(struct pc_jt_hdr, seg_off) == 44, "jt_hdr.seg_off");
_Static_assert(offsetof(struct pc_jt_hdr, lock) == 64, "jt_hdr.lock");
_Static_assert(offsetof(struct pc_jt_hdr, coord_tid) == 128, "jt_hdr.coord_tid");
_Static_assert(offsetof(struct pc_jt_member, pid) == 4, "jt_member.pid");
_Static_assert(offsetof(struct pc_jt_export, reason) == 4, "jt_export.reason");
_Static_assert(offsetof(struct pc_jt_link, gen) == 4, "jt_link.gen");
_Static_assert(offsetof(struct pc_jt_link, who) == 8, "jt_link.who");
_Static_assert(offsetof(struct pc_jt_link, next) == 12, "jt_link.next");
_Static_assert(offsetof(struct pc_hello, area_fd) == 128, "hello.area_fd");
_Static_assert(offsetof(struct pc_hello, area_size) == 132, "hello.area_size");
_Static_assert(offsetof(struct pc_attach, name) == 16, "attach.name");
_Static_assert(offsetof(struct pc_farewell, connected) == 8, "farewell.connected");
_Static_assert(offsetof(struct pc_farewell, last) == 12, "farewell.last");
_Static_assert(offsetof(struct pc_farewell, slow_calls) == 16, "farewell.slow_calls");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire is little-endian");

#endif
