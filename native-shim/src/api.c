/* The C API of pincoh.h. Errors are negative errno; errno is never touched. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "api.h"
#include "attach.h"
#include "callbacks.h"
#include "config.h"
#include "conn.h"
#include "jobtable.h"
#include "log.h"
#include "patch.h"
#include "proto.h"
#include "runtime.h"
#include "session.h"
#include "slowpath.h"
#include "stats.h"
#include "table.h"

/* Registrations end below 2^53: the coordinator's numbers are exact up to there. */
#define PC_ADDR_LIMIT (1ull << 53)

/* No round trip: the registration is ours, and the coordinator reads of it
 * in the ring. Only the first call of a process connects. */
PC_EXPORT int pincoh_register(void *addr, size_t len, unsigned flags, uint64_t *key)
{
	uintptr_t a = (uintptr_t)addr;
	int saved = errno, rc;

	if (!key || len == 0 || a + len < a || (uint64_t)a + len >= PC_ADDR_LIMIT || (flags & ~(PINCOH_READ | PINCOH_WRITE)) || !flags)
		return -EINVAL;
	pc_patch_recheck(); /* another interposer may have written over our libc patches unseen */
	PC_ENTER();
	rc = pc_session_ensure();
	if (rc == 0)
		rc = pc_table_add(a, a + len, flags, pc_max_regs(), key);
	PC_LEAVE();
	errno = saved;
	return rc;
}

/* A published registration's attachers are revoked here first, in place:
 * waiting only for a put of theirs already in flight. */
PC_EXPORT int pincoh_deregister(uint64_t key)
{
	int saved = errno, rc;
	struct pc_hit gone;
	PC_ENTER();
	rc = pc_table_remove(key, &gone);
	if (rc == 0 && gone.export)
		pc_revoke_hits(&gone, 1, 0, 1);
	PC_LEAVE();
	errno = saved;
	return rc;
}

/* Every API function raises the guard while it may hold a pincoh lock: a
 * signal handler that interrupts it and unmaps registered memory then goes
 * straight to the kernel instead of waiting forever on that lock. */
PC_EXPORT int pincoh_is_valid(uint64_t key)
{
	int v;
	PC_ENTER();
	v = pc_table_valid(key);
	PC_LEAVE();
	return v == 1 && atomic_load(&pc_unsynced) ? PINCOH_VALID_UNSYNCED : v;
}

PC_EXPORT int pincoh_query(uint64_t key, void **addr, size_t *len)
{
	uintptr_t s, e;
	int rc;
	PC_ENTER();
	rc = pc_table_query(key, &s, &e);
	PC_LEAVE();
	if (rc == 0) {
		if (addr) *addr = (void *)s;
		if (len) *len = e - s;
	}
	return rc;
}

PC_EXPORT int pincoh_on_invalidate(pincoh_invalidate_fn fn, void *ctx)
{
	pc_callbacks_set(fn, ctx);
	return 0;
}

/* Under Yama ptrace_scope 1 only a process's ancestors may use
 * process_vm_writev on it, and attachers are rarely the owner's ancestors.
 * An owner that publishes lets any process of its uid in, once; scope 2 and 3
 * cannot be relaxed from here, and put/get then fail with -EPERM. */
static void allow_attachers(void)
{
	static int done;
	char c = 0;
	int fd;
	if (__atomic_exchange_n(&done, 1, __ATOMIC_RELAXED))
		return;
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* no Yama: ordinary ptrace rules (same uid) apply */
	if (syscall(SYS_read, fd, &c, 1) == 1 && c == '1')
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	syscall(SYS_close, fd);
}

/* Nothing here listens to the socket, so a coordinator that died while we
 * did not talk to it is found by the next request, which fails: that request
 * reconnects (re-announcing what we hold) and is made once more. */
static int retry(int rc, int was_up, int *tries)
{
	return rc == -ENOTCONN && was_up && !pc_conn_up() && (*tries)++ == 0;
}

/* The coordinator waits up to timeout_ms (at most an hour); we wait that plus our bound. */
static int wait_ms(int timeout_ms)
{
	return (timeout_ms < 3600000 ? timeout_ms : 3600000) + pc_cfg.timeout_ms;
}

static int name_ok(const char *name)
{
	size_t n = name ? strnlen(name, PC_NAME_MAX) : 0;
	return n > 0 && n < PC_NAME_MAX;
}

/* The registration's export in jt: the one it has (published under another
 * name already), or a new one, made live (*made = 1). */
static int claim_export(uint64_t key, struct pc_jt *jt, struct pc_publish *p, int *made)
{
	uint32_t export, xgen;
	struct pc_hit x = { .jt = jt };
	int rc = pc_jt_export_alloc(jt, &export, &xgen);
	if (rc < 0)
		return rc;
	x.export = export, x.xgen = xgen;
	rc = pc_table_claim_export(key, &x);
	if (rc != 0) { /* it had one (1), or is gone (-ENOENT): ours goes unused, nobody knows it */
		pc_jt_export_kill(jt, export, xgen, PINCOH_REASON_DEREGISTER);
		pc_jt_export_release(jt, export);
	}
	if (rc < 0)
		return rc;
	if (rc == 1 && x.jt != jt)
		return -ENOTCONN; /* an export of the old coordinator's table, not revoked yet: try again */
	p->export = x.export, p->xgen = x.xgen, *made = rc == 0;
	return 0;
}

/* A publish that did not go through: the export dies again, unless an
 * invalidation of the registration took it meanwhile (then that revoked it). */
static void unpublish(uint64_t key, const struct pc_publish *p, struct pc_jt *jt)
{
	struct pc_revoked r;
	if (pc_table_set_export(key, 0, 0, NULL) == 0 && pc_jt_export_kill(jt, p->export, p->xgen, PINCOH_REASON_DEREGISTER)) {
		pc_jt_revoke(jt, p->export, p->xgen, &r);
		pc_jt_export_release(jt, p->export);
	}
}

/* The export word is made live (ours to write) and the registration marked
 * as published before the coordinator hears of it: from the moment anyone
 * may attach, invalidating it revokes them. */
PC_EXPORT int pincoh_publish(const char *name, uint64_t key)
{
	struct pc_publish p = { .key = key };
	int saved = errno, rc, was_up, tries = 0;
	int32_t status = 0, made;
	struct pc_jt *jt;
	if (!name_ok(name))
		return -EINVAL;
	strncpy(p.name, name, sizeof p.name - 1);
	PC_ENTER(); /* before the table lock: a signal handler landing there must not wait on it */
	if (pc_table_valid(key) != 1) {
		PC_LEAVE();
		return -ENOENT;
	}
	allow_attachers();
	do {
		was_up = pc_conn_up();
		rc = pc_session_ensure();
		jt = pc_jt_current();
		made = 0;
		if (rc == 0)
			rc = claim_export(key, jt, &p, &made);
		if (rc == 0) {
			rc = pc_request(PC_T_PUBLISH, &p, sizeof p, &status, NULL, 0, -1);
			if (made && (rc < 0 || status < 0))
				unpublish(key, &p, jt); /* refused (or no answer): nobody can attach */
		}
	} while (retry(rc, was_up, &tries));
	PC_LEAVE();
	errno = saved;
	return rc < 0 ? rc : status;
}

PC_EXPORT int pincoh_attach(const char *name, int timeout_ms, uint64_t *handle)
{
	struct pc_attach a = { .timeout_ms = timeout_ms };
	struct pc_attached got;
	struct pc_jt *jt;
	int saved = errno, rc, was_up, tries = 0;
	int32_t status = 0;
	uint64_t h;
	if (!name_ok(name) || !handle || timeout_ms < 0)
		return -EINVAL;
	strncpy(a.name, name, sizeof a.name - 1);
	PC_ENTER();
	do {
		was_up = pc_conn_up();
		rc = pc_session_ensure();
		if (rc == 0)
			rc = pc_attach_alloc(&h);
		if (rc == 0) {
			a.handle = h;
			/* the coordinator waits up to timeout_ms for the name; we wait that, plus our bound */
			rc = pc_request(PC_T_ATTACH, &a, sizeof a, &status, &got, sizeof got, wait_ms(timeout_ms));
			jt = pc_jt_current();
			if (rc == 0 && status == 0 && (!jt || !pc_jt_valid_target(jt, got.owner, got.export))) {
				struct pc_detach d = { .handle = h };
				pc_log("the coordinator answered an attach with an export outside the job table; detaching", NULL, -1);
				pc_notify(PC_T_DETACH, &d, sizeof d);
				rc = -EPROTO;
			}
			if (rc == 0 && status == 0) {
				pc_attach_set(h, jt, &got);
				*handle = h;
			} else {
				pc_attach_free(h);
				rc = rc < 0 ? rc : status;
			}
		}
	} while (retry(rc, was_up, &tries));
	PC_LEAVE();
	errno = saved;
	return rc;
}

PC_EXPORT int pincoh_detach(uint64_t handle)
{
	struct pc_detach d = { .handle = handle };
	int saved = errno;
	if (pincoh_handle_info(handle, NULL, NULL, NULL, NULL) < 0)
		return -EBADF;
	pc_attach_free(handle);
	PC_ENTER();
	pc_notify(PC_T_DETACH, &d, sizeof d);
	PC_LEAVE();
	errno = saved;
	return 0;
}

PC_EXPORT int pincoh_barrier(int timeout_ms)
{
	struct pc_barrier b = { .timeout_ms = timeout_ms };
	int saved = errno, rc, was_up, tries = 0;
	int32_t status = 0;
	if (timeout_ms < 0)
		return -EINVAL;
	PC_ENTER();
	do {
		was_up = pc_conn_up();
		rc = pc_session_ensure();
		if (rc == 0)
			rc = pc_request(PC_T_BARRIER, &b, sizeof b, &status, NULL, 0, wait_ms(timeout_ms));
	} while (retry(rc, was_up, &tries));
	PC_LEAVE();
	errno = saved;
	return rc < 0 ? rc : status;
}

PC_EXPORT int pincoh_rank(void) { return pc_cfg.rank; }
PC_EXPORT int pincoh_size(void) { return pc_cfg.size; }

PC_EXPORT int pincoh_get_stats(struct pincoh_stats *out)
{
	if (!out)
		return -EINVAL;
	out->slow_calls = __atomic_load_n(&pc_counters.slow_calls, __ATOMIC_RELAXED);
	out->invalidations = __atomic_load_n(&pc_counters.invalidations, __ATOMIC_RELAXED);
	out->timeouts = __atomic_load_n(&pc_counters.timeouts, __ATOMIC_RELAXED);
	out->degraded = __atomic_load_n(&pc_counters.degraded, __ATOMIC_RELAXED);
	out->connected = pc_conn_up();
	out->libc = pc_libc_mode;
	out->chained = __atomic_load_n(&pc_chained, __ATOMIC_RELAXED);
	return 0;
}

/* ---- For bindings whose callbacks may run in one thread only ----
 *
 * A Node program's callback (koffi) runs in its JS thread: koffi queues a
 * call made from any other thread and blocks that thread until the JS event
 * loop runs it, and a call at exit, after V8 is gone, crashes (both seen in
 * test/binding.e2e.test.ts). The callback runs inside munmap, free, exit,
 * signal handlers, with malloc's locks held: blocking there can deadlock. So
 * the binding installs this native callback instead. It copies each
 * invalidation into a bounded lock-free ring (many producers, any thread,
 * signal handlers too: no lock, no malloc), and pokes a descriptor the
 * binding made (a socketpair whose other end Node watches) so the JS thread
 * drains it soon. Not part of pincoh.h: the C API stays the callback. */
#define PC_Q_SLOTS 4096u
struct pc_qrec { uint64_t key, addr, len; int32_t reason, pad; };
struct pc_qcell { _Atomic uint32_t seq; struct pc_qrec r; };
static struct pc_qcell q_cell[PC_Q_SLOTS]; /* cell i free for position p when seq == p */
static _Atomic uint32_t q_enq, q_deq;
static _Atomic uint64_t q_lost;
static int q_fd = -1;                 /* the binding's end to poke, or -1 */
static dev_t q_dev;
static ino_t q_ino;

static void q_push(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	uint32_t pos = atomic_load_explicit(&q_enq, memory_order_relaxed);
	int saved = errno;
	struct stat st;
	(void)ctx;
	for (;;) {
		uint32_t seq = atomic_load_explicit(&q_cell[pos % PC_Q_SLOTS].seq, memory_order_acquire);
		int32_t dif = (int32_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q_enq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (dif < 0) {
			atomic_fetch_add_explicit(&q_lost, 1, memory_order_relaxed); /* full: counted, said by the binding */
			return;
		} else {
			pos = atomic_load_explicit(&q_enq, memory_order_relaxed);
		}
	}
	q_cell[pos % PC_Q_SLOTS].r = (struct pc_qrec){ .key = key, .addr = (uintptr_t)addr, .len = len, .reason = reason };
	atomic_store_explicit(&q_cell[pos % PC_Q_SLOTS].seq, pos + 1, memory_order_release);
	/* one byte, never blocking, never SIGPIPE; only to the socket the binding
	 * gave us (a program may have closed or reused the number since) */
	int fd = __atomic_load_n(&q_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == q_dev && st.st_ino == q_ino)
		syscall(SYS_sendto, fd, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
	errno = saved;
}

/* Installs the queue as the invalidation callback; wake_fd: a socket to poke
 * (one byte per invalidation, dropped when its buffer is full), or -1. */
PC_EXPORT int pincoh_binding_queue(int wake_fd)
{
	static int ready;
	struct stat st;
	int saved = errno;
	if (!__atomic_exchange_n(&ready, 1, __ATOMIC_ACQ_REL)) /* before any producer can run: the callback is not ours yet */
		for (uint32_t i = 0; i < PC_Q_SLOTS; i++)
			atomic_store_explicit(&q_cell[i].seq, i, memory_order_relaxed);
	if (wake_fd >= 0) {
		if (syscall(SYS_fstat, wake_fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
			errno = saved;
			return -EBADF;
		}
		q_dev = st.st_dev, q_ino = st.st_ino;
	}
	__atomic_store_n(&q_fd, wake_fd, __ATOMIC_RELEASE);
	errno = saved;
	return pincoh_on_invalidate(q_push, NULL);
}

/* Copies up to max queued invalidations, oldest first, into out (32 bytes
 * each: key, addr, len as u64, reason as i32, 4 bytes of padding); *lost:
 * how many the full queue dropped since the last call. One consumer at a
 * time (the binding's JS thread). Returns how many. */
PC_EXPORT int pincoh_binding_drain(void *out, int max, uint64_t *lost)
{
	struct pc_qrec *o = out;
	int n = 0;
	if (!out || max < 0)
		return -EINVAL;
	while (n < max) {
		uint32_t pos = atomic_load_explicit(&q_deq, memory_order_relaxed);
		struct pc_qcell *c = &q_cell[pos % PC_Q_SLOTS];
		if ((int32_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - (pos + 1)) < 0)
			break; /* empty, or its producer has not finished writing it */
		o[n++] = c->r;
		atomic_store_explicit(&c->seq, pos + PC_Q_SLOTS, memory_order_release);
		atomic_store_explicit(&q_deq, pos + 1, memory_order_relaxed);
	}
	if (lost)
		*lost = atomic_exchange_explicit(&q_lost, 0, memory_order_relaxed);
	return n;
}
