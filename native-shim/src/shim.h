/* Internal interfaces of libpincoh. Helpers return -errno; only the exported
 * hooks touch errno, and only to keep the real call's value. */
#ifndef PC_SHIM_H
#define PC_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define PC_EXPORT __attribute__((visibility("default")))
#define PC_TLS __thread __attribute__((tls_model("initial-exec")))
#define PC_LIKELY(x) __builtin_expect(!!(x), 1)
#define PC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Nonzero while the shim itself runs on this thread: hooks go straight to the kernel. */
extern PC_TLS int pc_guard;
/* The guard's value during patch.c's self-check: hooks count that they were reached. */
#define PC_SELFCHECK 0x5e1f
extern int pc_selfcheck_hits;
extern int pc_libc_mode;
void pc_patch_init(void);
/* patch.c: another interposer's hooks on libc's entries, called as our real
 * call (NULL: straight to the kernel). While one runs, pc_guard holds
 * PC_CHAINING, so a call it makes back into libc goes to the kernel. */
struct pc_chain {
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, void *);
	int (*madvise)(void *, size_t, int);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	void *(*sbrk)(intptr_t);
};
extern struct pc_chain pc_chain;
extern int pc_chained;
#define PC_CHAINING 0x100000
#define PC_CHAIN_CALL(fn, ...)                                                \
	({                                                                    \
		__typeof__(pc_chain.fn) f_ = __atomic_load_n(&pc_chain.fn, __ATOMIC_ACQUIRE); \
		__typeof__(f_(__VA_ARGS__)) r_;                               \
		pc_guard += PC_CHAINING;                                      \
		r_ = f_(__VA_ARGS__);                                         \
		pc_guard -= PC_CHAINING;                                      \
		r_;                                                           \
	})
#define PC_CHAINED(fn) (PC_UNLIKELY(__atomic_load_n(&pc_chain.fn, __ATOMIC_RELAXED) != NULL) && !(pc_guard & PC_CHAINING))
/* An mprotect over these pages may be another interposer writing over our
 * patches (written once per patch, read with relaxed loads). */
extern uintptr_t pc_patch_lo, pc_patch_hi;
/* libc's cached break (__curbrk), once libc's sbrk jumps to our hook */
extern void **pc_curbrk;
void pc_patch_recheck(void);
static inline void pc_note_guarded(void)
{
	if (PC_UNLIKELY(pc_guard == PC_SELFCHECK))
		pc_selfcheck_hits++;
}

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
void pc_config_load(void);

/* log.c: one write(2) per message, no malloc, no stdio */
void pc_log(const char *msg, const char *detail, long num);

/* A hooked call as the policy sees it; ranges are page-rounded [start, end). */
struct pc_event {
	int op;                  /* PC_OP_* */
	uintptr_t start, end;    /* the range the call changes */
	int arg;                 /* mprotect: prot; mremap: flags */
	size_t len, new_len;     /* mremap: old and new length as given */
	uintptr_t dest, dest_end;/* mremap with MREMAP_FIXED: the destination, else 0,0 */
};

/* policy.c: what the event does to one overlapping registration */
#define PC_ACT_KEEP 0
#define PC_ACT_INVALIDATE 1
#define PC_ACT_FOLLOW 2
int pc_policy(const struct pc_event *ev, uintptr_t rs, uintptr_t re, unsigned rflags, int mremap_follow);
int pc_advice_drops(int advice);

/* table.c: this process's registrations */
#define PC_MAX_REGS (1u << 20)
int pc_table_hit(uintptr_t start, uintptr_t end);  /* lock-free; 1 if anything overlaps */
int pc_table_add(uintptr_t start, uintptr_t end, unsigned flags, uint64_t *key);
int pc_table_remove(uint64_t key);                   /* 0 or -ENOENT */
int pc_table_valid(uint64_t key);                    /* 1, 0 or -EINVAL */
int pc_table_query(uint64_t key, uintptr_t *start, uintptr_t *end);
size_t pc_table_count(void);
/* Calls fn for every registration, in chunks copied out under the lock (fn runs unlocked). */
void pc_table_foreach(void (*fn)(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, int last, void *ctx), void *ctx);
void pc_table_lock(void);
void pc_table_unlock(void);
void pc_table_reset_child(void);                     /* after fork, in the child */

/* Applies ev to the table under its lock. Invalidated entries are removed and
 * copied to out (callbacks run later, unlocked); FOLLOW entries are kept and
 * copied to follow. Returns counts through the pointers. */
struct pc_hit { uint64_t key; uintptr_t start, end; int reason; };
struct pc_hits {
	struct pc_hit *inval, *follow;
	size_t n_inval, n_follow, cap;
	struct pc_hit local[32];  /* room for small calls without a mapping */
	void *big; size_t big_bytes;
	uint64_t begin_seq;       /* the BEGIN sent for this call, 0 if none */
	int timed_out;
};
void pc_table_apply(const struct pc_event *ev, int mremap_follow, struct pc_hits *h);
/* Moves FOLLOW entries by delta once mremap succeeded. */
void pc_table_move(const struct pc_hits *h, uintptr_t old_start, uintptr_t new_start);
void pc_hits_release(struct pc_hits *h);

/* conn.c: the coordinator connection */
int pc_conn_ensure(void);                            /* 0, -ENOTCONN, -EPROTO, or the coordinator's refusal */
extern _Atomic int pc_unsynced;                      /* lost a coordinator; not re-announced yet */
void pc_reannounce(void);
int pc_conn_up(void);
/* extra: room for a REPLY's payload beyond its status (NULL if none wanted).
 * From the listener thread (an attacher's callback) it fails with -EDEADLK. */
int pc_request(int type, const void *payload, size_t len, int32_t *status, uint64_t *seq, void *extra, size_t extra_len);
/* like pc_request, with its own bound: ms < 0 means PINCOH_TIMEOUT_MS */
int pc_request_ms(int type, const void *payload, size_t len, int32_t *status, void *extra, size_t extra_len, int ms);
int pc_notify(int type, const void *payload, size_t len);
int pc_mremap_follow(void);
int pc_fork_dontfork(void);
void pc_conn_atfork_prepare(void);
void pc_conn_atfork_parent(void);
void pc_conn_atfork_child(void);

/* attach.c: handles on other processes' exports */
#define PC_MAX_ATTACH 4096
int pc_attach_alloc(uint64_t *handle, uint64_t *state_addr);
void pc_attach_set(uint64_t handle, int32_t pid, uintptr_t addr, size_t len, unsigned flags);
void pc_attach_free(uint64_t handle);
PC_EXPORT int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live);
int pc_attach_revoke(uint64_t handle, int32_t *pid, uintptr_t *addr, size_t *len);
void pc_attach_kill_all(void);
void pc_attach_reset_child(void);

/* slowpath.c: BEGIN -> ACK -> local policy + callbacks; then DONE */
void pc_slow_everything(int why); /* exit (0) or exec (1): every registration goes, exports revoked first */
void pc_slow_before(const struct pc_event *ev, struct pc_hits *h);
void pc_slow_after(const struct pc_event *ev, struct pc_hits *h, long result, int err);

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
