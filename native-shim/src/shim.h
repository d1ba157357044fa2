/* Internal interfaces of libpincoh. Helpers return -errno; only the exported
 * hooks touch errno, and only to keep the real call's value.
 *
 * Who calls whom (never the other way):
 *   hooks/ api.c -> slowpath.c -> table.c -> area.c -> conn.c
 *   slowpath.c, api.c -> jobtable.c (revoke in place; STUCK) -> conn.c
 *   session.c (connect, reconnect, fork) -> area.c, table.c, jobtable.c, attach.c, conn.c
 *   attach.c -> jobtable.c, area.c, conn.c
 * (issue 17 lists where the code still breaks this order.)
 * conn.c tells session.c of a lost connection through the callback it is given. */
#ifndef PC_SHIM_H
#define PC_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include "proto.h"

#define PC_EXPORT __attribute__((visibility("default")))
#define PC_TLS __thread __attribute__((tls_model("initial-exec")))
#define PC_LIKELY(x) __builtin_expect(!!(x), 1)
#define PC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Why this thread's hooked calls must go straight to the kernel, each reason
 * apart, in one word so a hook tests all of them with one load:
 * depth      the shim itself runs here (its locks may be held);
 * chaining   another interposer's hook runs here, called as our real call:
 *            its own calls back into libc must not loop through us;
 * selfcheck  patch.c is calling through its patches to see them arrive. */
union pc_guard {
	struct { uint16_t depth; uint8_t chaining; uint8_t selfcheck; } why;
	uint32_t any;
};
extern PC_TLS union pc_guard pc_guard;
#define PC_GUARDED() (pc_guard.any != 0)
#define PC_ENTER() ((void)pc_guard.why.depth++)
#define PC_LEAVE() ((void)pc_guard.why.depth--)
extern int pc_selfcheck_hits;
static inline void pc_note_guarded(void)
{
	if (PC_UNLIKELY(pc_guard.why.selfcheck))
		pc_selfcheck_hits++;
}

/* Resolves libc's own `name` once (dlsym RTLD_NEXT) into a static of the caller. */
#define PC_NEXT(var, name) \
	(PC_LIKELY(var != NULL) ? var : (var = (__typeof__(var))pc_next(name)))
void *pc_next(const char *name);

extern int pc_libc_mode;
void pc_patch_init(void);
/* patch.c: another interposer's hooks on libc's entries, called as our real
 * call (NULL: straight to the kernel). */
struct pc_chain {
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, void *);
	int (*madvise)(void *, size_t, int);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	void *(*sbrk)(intptr_t);
};
extern struct pc_chain pc_chain;
extern int pc_chained;
#define PC_CHAIN_CALL(fn, ...)                                                \
	({                                                                    \
		__typeof__(pc_chain.fn) f_ = __atomic_load_n(&pc_chain.fn, __ATOMIC_ACQUIRE); \
		__typeof__(f_(__VA_ARGS__)) r_;                               \
		pc_guard.why.chaining++;                                      \
		r_ = f_(__VA_ARGS__);                                         \
		pc_guard.why.chaining--;                                      \
		r_;                                                           \
	})
#define PC_CHAINED(fn) (PC_UNLIKELY(__atomic_load_n(&pc_chain.fn, __ATOMIC_RELAXED) != NULL) && !pc_guard.why.chaining)
/* An mprotect over these pages may be another interposer writing over our
 * patches (written once per patch, read with relaxed loads). */
extern uintptr_t pc_patch_lo, pc_patch_hi;
/* libc's cached break (__curbrk), once libc's sbrk jumps to our hook */
extern void **pc_curbrk;
void pc_patch_recheck(void);

/* Our pid, as of the constructor or fork's child handler. A process whose
 * getpid() differs was made without those handlers (vfork, clone without
 * CLONE_VM): it holds the parent's table and connection, so it must not act
 * on them. Checked on the slow path and by requests only. */
extern pid_t pc_pid;
static inline int pc_foreign(void) { return (pid_t)syscall(SYS_getpid) != pc_pid; }

/* config.c: read once from the environment by the constructor */
struct pc_config {
	char socket_path[108];   /* sun_path size; empty: no coordinator */
	int timeout_ms;          /* PINCOH_TIMEOUT_MS, default 2000 */
	int abort_on_timeout;    /* PINCOH_ON_TIMEOUT=abort */
	int rank, size;          /* PINCOH_RANK, PINCOH_SIZE */
	int quiet;               /* PINCOH_QUIET=1: no stderr messages */
	char job[32];            /* PINCOH_JOB: names and barriers are scoped to it */
};
extern struct pc_config pc_cfg;
void pc_config_load(int say);   /* say 0: bad values are replaced silently (a library not preloaded) */

/* init.c: 1 when this library was loaded before libc (LD_PRELOAD, or linked
 * in): then the program's calls reach our hooks. A library dlopen'ed later
 * (koffi, in a Node program started without the shim) comes after libc, and
 * its hooks see nothing: it stays inert, and pincoh calls return -ENOTCONN. */
extern int pc_interposed;

/* log.c: one write(2) per message, no malloc, no stdio */
void pc_log(const char *msg, const char *detail, long num);
void pc_log_bad_int(const char *name, long lo, long hi, long def);
const char *pc_errno_name(int e);  /* "ENOENT (...)" for the errors of a connection attempt, else NULL */

/* A hooked call as the policy sees it; ranges are page-rounded [start, end).
 * reason is the call's PINCOH_REASON_*: the one numbering of "why", from
 * pincoh.h through the ring to the trace. */
struct pc_event {
	int reason;
	uintptr_t start, end;    /* the range the call changes */
	long arg;                /* mprotect: prot; mremap, mmap: flags; madvise: advice; exit: 0, exec: 1 */
	size_t len, new_len;     /* the length given; mremap: the new length */
	uintptr_t dest, dest_end;/* mremap with MREMAP_FIXED: the destination, else 0,0 */
};

/* policy.c: what the event does to one overlapping registration */
#define PC_ACT_KEEP 0
#define PC_ACT_INVALIDATE 1
#define PC_ACT_FOLLOW 2
int pc_policy(const struct pc_event *ev, uintptr_t rs, uintptr_t re, unsigned rflags, int mremap_follow);
int pc_advice_drops(int advice);

/* table.c: this process's registrations. Every change is also an event in
 * the ring (area.c), written under the table's lock, so the coordinator sees
 * them in the order they happened. */
#define PC_MAX_REGS (1u << 20)
/* One registration a call changed. export: its export slot in the job table
 * + 1 while published (0: not published), xgen: that export's generation. */
struct pc_jt;
struct pc_hit { uint64_t key; uintptr_t start, end; int reason; uint32_t export, xgen; struct pc_jt *jt; };
int pc_table_hit(uintptr_t start, uintptr_t end);  /* lock-free; 1 if anything overlaps */
int pc_table_add(uintptr_t start, uintptr_t end, unsigned flags, size_t limit, uint64_t *key);
int pc_table_remove(uint64_t key, struct pc_hit *gone); /* 0 (gone: what it was) or -ENOENT */
int pc_table_valid(uint64_t key);                    /* 1, 0 or -EINVAL */
int pc_table_query(uint64_t key, uintptr_t *start, uintptr_t *end);
/* 0 or -ENOENT; export 0: not published. jt: the job table the export is in. */
int pc_table_set_export(uint64_t key, uint32_t export, uint32_t xgen, struct pc_jt *jt);
int pc_table_claim_export(uint64_t key, struct pc_hit *io); /* 1: it had one (io filled), 0: io's taken, -ENOENT */
/* Under the table lock: every export is handed to fn, then forgotten (a new coordinator). */
void pc_table_unpublish_all_locked(void (*fn)(const struct pc_hit *h, void *ctx), void *ctx);
void pc_table_announce_locked(void);                 /* under the lock: a REG event for each registration */
size_t pc_table_count(void);
/* Calls fn for every registration, in chunks copied out under the lock (fn runs unlocked). */
void pc_table_foreach(void (*fn)(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, void *ctx), void *ctx);
void pc_table_lock(void);
void pc_table_unlock(void);
void pc_table_reset_child(void);                     /* after fork, in the child */

/* What one call did to the table. Invalidated entries are removed and copied
 * to inval (callbacks run later, unlocked); FOLLOW entries are kept and copied
 * to follow. */
struct pc_hits {
	struct pc_hit *inval, *follow;
	size_t n_inval, n_follow, cap;
	struct pc_hit local[32];  /* room for small calls without a mapping */
	void *big; size_t big_bytes;
	uint32_t call;            /* the call's number in the ring's events */
	int published;            /* a hit was published: revoke its attachers in place */
};
void pc_table_apply(const struct pc_event *ev, int mremap_follow, uint32_t call, struct pc_hits *h);
/* Moves FOLLOW entries by delta once mremap succeeded. */
void pc_table_move(const struct pc_hits *h, uintptr_t old_start, uintptr_t new_start);
void pc_hits_release(struct pc_hits *h);

/* jobtable.c: the job's shared table (proto.h), mapped read-only but for our own segment */
struct pc_jt {
	const char *base;       /* the whole table, read-only */
	char *seg;              /* this member's segment, read-write */
	uint32_t size, members, exports, handles, links, seg_size;
	uint32_t member_off, head_off, link_off, seg_off;
	uint32_t member, member_word, coord_tid, revoke_ms;
};
/* What revoking one export found: attachments linked, puts waited for, puts handed to the coordinator, and of those the ones it did not end in time. */
struct pc_revoked { uint32_t linked, inflight, stuck, unanswered; uint64_t ns; };
int pc_jt_open(int coord_pid, const struct pc_welcome *w, struct pc_jt **out); /* maps it; -errno */
void pc_jt_install(struct pc_jt *jt);                /* under the table lock */
struct pc_jt *pc_jt_current(void);
void pc_jt_reset_child(void);
int pc_jt_export_alloc(struct pc_jt *jt, uint32_t *export, uint32_t *xgen); /* LIVE now */
uint32_t pc_jt_export_rearm(struct pc_jt *jt, uint32_t export);
void pc_jt_export_release(struct pc_jt *jt, uint32_t export);
int pc_jt_export_kill(struct pc_jt *jt, uint32_t export, uint32_t xgen, int reason); /* 1: it was live */
void pc_jt_revoke(struct pc_jt *jt, uint32_t export, uint32_t xgen, struct pc_revoked *r);
int pc_jt_valid_target(const struct pc_jt *jt, uint32_t owner, uint32_t export);
/* What a put checks after counting itself in flight: these words hold these values (plain loads, no branch but one). */
struct pc_watch { const uint32_t *word[4]; uint32_t want[4]; _Atomic uint32_t *inflight; };
void pc_jt_watch(struct pc_jt *jt, const struct pc_attached *a, uint32_t slot, struct pc_watch *w);
static inline int pc_jt_watched_live(const struct pc_watch *w)
{
	uint32_t diff = 0;
	for (int i = 0; i < 4; i++)
		diff |= __atomic_load_n(w->word[i], __ATOMIC_SEQ_CST) ^ w->want[i];
	return diff == 0;
}

/* area.c: the shared area (proto.h) and its event ring */
/* A new area, not yet where events go; *fd stays open for the HELLO. NULL: *err says why. */
struct pc_area_hdr *pc_area_create(int *fd, int *err);
void pc_area_destroy(struct pc_area_hdr *a);
void pc_area_install(struct pc_area_hdr *a);         /* under the table lock: events go there from now on */
void pc_area_drop(void);                             /* the connection is gone: stop writing events */
void pc_area_reset_child(void);
/* Events. The caller holds the table lock (one producer at a time). */
void pc_emit(uint16_t type, uint16_t reason, uint32_t call, uint32_t flags, uint64_t key, uint64_t addr, uint64_t len);
void pc_emit_call(const struct pc_event *ev, uint32_t call, uint32_t flags, uint32_t ns, long result);
void pc_emit_fork(pid_t child);
void pc_emit_bye(int why);                           /* exit 0, exec 1 */
void pc_emit_revoked(const struct pc_hit *x, uint32_t call, const struct pc_revoked *r);
int pc_area_live(void);                              /* events have somewhere to go */
uint32_t pc_next_call(void);
/* Asks the coordinator to drain this process's events now (a full ring; exit under --audit). */
int pc_sync(uint32_t call);

/* conn.c: the socket to the coordinator, and requests over it. No thread
 * reads it: a thread waiting for a reply reads for everyone waiting. */
int pc_conn_up(void);
int pc_conn_dial(const char *path, int *cause);      /* a connected socket, or -errno (*cause: the system's errno) */
int pc_conn_install(int fd, void (*lost_cb)(void));  /* fd becomes the connection; lost_cb hears of its loss */
/* extra: room for a REPLY's payload beyond its status (NULL if none wanted);
 * ms < 0: PINCOH_TIMEOUT_MS */
int pc_request(int type, const void *payload, size_t len, int32_t *status, void *extra, size_t extra_len, int ms);
int pc_notify(int type, const void *payload, size_t len);
/* the handshake, on a socket no other thread knows yet */
int pc_conn_handshake(int fd, const void *hello, size_t len, void *welcome, size_t welcome_len, int timeout_ms);
int pc_conn_peer_pid(int fd);                        /* the coordinator's pid (SO_PEERCRED), or -errno */
void pc_conn_abandon(void);                          /* give up on the connection: as if it was lost */
int pc_conn_backing_off(void);                       /* 1 for PINCOH_TIMEOUT_MS after an abandon */
void pc_conn_atfork_prepare(void);
void pc_conn_atfork_parent(void);
void pc_conn_atfork_child(void);

/* session.c: connecting, the coordinator's settings, losing and finding it again */
int pc_session_ensure(void);                         /* 0, -ENOTCONN, -EPROTO, or the coordinator's refusal */
extern _Atomic int pc_unsynced;                      /* lost a coordinator; not re-announced yet */
int pc_mremap_follow(void);
int pc_fork_dontfork(void);
int pc_sync_exit(void);
int pc_coherence(void);                              /* 0 under --no-coherence: owners revoke nothing */
extern uint32_t pc_welcome_flags;
/* --free invalidate: one relaxed load, on every free() */
static inline int pc_free_invalidates(void) { return (__atomic_load_n(&pc_welcome_flags, __ATOMIC_RELAXED) & PC_W_FREE_INVALIDATE) != 0; }
size_t pc_max_regs(void);
void pc_session_atfork_prepare(void);
void pc_session_atfork_parent(void);
void pc_session_atfork_child(void);

/* attach.c: handles on other processes' exports */
#define PC_MAX_ATTACH PC_HANDLE_SLOTS
int pc_attach_alloc(uint64_t *handle);
void pc_attach_set(uint64_t handle, struct pc_jt *jt, const struct pc_attached *a);
void pc_attach_free(uint64_t handle);
void pc_attach_kill_all(void);                       /* the connection is gone: every handle dies here */
void pc_attach_reset_child(void);
PC_EXPORT int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live);

/* slowpath.c: the one way a hooked call that touches registrations runs */
typedef long (*pc_real_fn)(void *args);
/* Decides (policy, own table), waits for the coordinator only if published
 * memory is involved, runs the callbacks, makes the real call, records it.
 * failed: the real call's failure value (-1 or MAP_FAILED). Keeps errno. */
long pc_slow_call(struct pc_event *ev, pc_real_fn real, void *args, long failed);
void pc_slow_everything(int why); /* exit (0) or exec (1): every registration goes, exports revoked first */
/* Revokes, in place, the attachers of the published ones among hits; returns PC_CALL_* flags. */
uint32_t pc_revoke_hits(const struct pc_hit *hits, size_t n, uint32_t call, int release);

/* hooks/: resolving libc's own functions, from the constructor */
void pc_fork_resolve(void);
void pc_free_resolve(void);
void pc_exit_init(void);                             /* atexit: pc_slow_everything last */

/* init.c: the shim's fork handlers, also run around clone without CLONE_VM */
void pc_atfork_prepare(void);
void pc_atfork_parent(void);
void pc_atfork_child(void);

/* stats.c */
struct pc_counters { uint64_t slow_calls, invalidations, timeouts; int degraded; };
extern struct pc_counters pc_counters;
void pc_note_timeout(const char *what);
void pc_note_lost(void);

/* api.c */
void pc_run_callbacks(const struct pc_hits *h);
void pc_notify_revoked(uint64_t handle, void *addr, size_t len);
/* for the Node binding, not in pincoh.h: invalidations queued for one thread to drain */
PC_EXPORT int pincoh_binding_queue(int wake_fd);
PC_EXPORT int pincoh_binding_drain(void *out, int max, uint64_t *lost);

/* The kernel acts on whole pages: munmap(a, 1) unmaps a's page. */
extern uintptr_t pc_page_size;
static inline uintptr_t pc_page_end(uintptr_t start, size_t len)
{
	uintptr_t end = start + len;
	if (end < start || end > UINTPTR_MAX - pc_page_size)
		return UINTPTR_MAX;  /* wraps: whatever the kernel makes of it, treat as everything */
	return (end + pc_page_size - 1) & ~(pc_page_size - 1);
}
static inline uintptr_t pc_page_start(uintptr_t a) { return a & ~(pc_page_size - 1); }

#endif
