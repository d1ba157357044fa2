/* The C API of pincoh.h. Errors are negative errno; errno is never touched. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "proto.h"
#include "shim.h"

static pincoh_invalidate_fn cb_fn; /* under the table lock */
static void *cb_ctx;

PC_EXPORT int pincoh_register(void *addr, size_t len, unsigned flags, uint64_t *key)
{
	uintptr_t a = (uintptr_t)addr;
	int saved = errno, rc;
	uint64_t k;
	int32_t status = 0;

	if (!key || len == 0 || a + len < a || (flags & ~(PINCOH_READ | PINCOH_WRITE)) || !flags)
		return -EINVAL;
	pc_patch_recheck(); /* another interposer may have written over our libc patches unseen */
	pc_guard++;
	rc = pc_conn_ensure();
	if (rc == 0)
		rc = pc_table_add(a, a + len, flags, &k);
	if (rc == 0) {
		/* In our table first: a concurrent munmap of this range already takes the slow path. */
		struct pc_register r = { .key = k, .addr = a, .len = len, .flags = flags };
		int sent = pc_request(PC_T_REGISTER, &r, sizeof r, &status, NULL, NULL, 0);
		if (sent == -ETIMEDOUT)
			pc_note_timeout("REGISTER");  /* keep it: the coordinator will see it late or never */
		else if (sent < 0 || status < 0) {
			pc_table_remove(k);
			rc = sent < 0 ? sent : status;
		}
		if (rc == 0)
			*key = k;
	}
	pc_guard--;
	errno = saved;
	return rc;
}

PC_EXPORT int pincoh_deregister(uint64_t key)
{
	int saved = errno, rc;
	int32_t status;
	pc_guard++;
	rc = pc_table_remove(key);
	if (rc == 0 && pc_conn_up()) {
		struct pc_deregister d = { .key = key };
		if (pc_request(PC_T_DEREGISTER, &d, sizeof d, &status, NULL, NULL, 0) == -ETIMEDOUT)
			pc_note_timeout("DEREGISTER");
	}
	pc_guard--;
	errno = saved;
	return rc;
}

/* Every API function raises the guard while it may hold a pincoh lock: a
 * signal handler that interrupts it and unmaps registered memory then goes
 * straight to the kernel instead of waiting forever on that lock. */
PC_EXPORT int pincoh_is_valid(uint64_t key)
{
	int v;
	pc_guard++;
	v = pc_table_valid(key);
	pc_guard--;
	return v == 1 && atomic_load(&pc_unsynced) ? PINCOH_VALID_UNSYNCED : v;
}

/* Re-announce one registration to a new coordinator: all but the last without
 * waiting; the last one's reply means the coordinator has processed them all. */
static void reannounce_one(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, int last, void *ctx)
{
	struct pc_register r = { .key = key, .addr = start, .len = end - start, .flags = flags };
	int32_t status;
	(void)ctx;
	if (last)
		pc_request(PC_T_REGISTER, &r, sizeof r, &status, NULL, NULL, 0);
	else
		pc_notify(PC_T_REGISTER, &r, sizeof r);
}

void pc_reannounce(void)
{
	if (pc_table_count())
		pc_table_foreach(reannounce_one, NULL);
	atomic_store(&pc_unsynced, 0);
	pc_log("reconnected to the coordinator and re-announced registrations:", NULL, (long)pc_table_count());
}

PC_EXPORT int pincoh_query(uint64_t key, void **addr, size_t *len)
{
	uintptr_t s, e;
	int rc;
	pc_guard++;
	rc = pc_table_query(key, &s, &e);
	pc_guard--;
	if (rc == 0) {
		if (addr) *addr = (void *)s;
		if (len) *len = e - s;
	}
	return rc;
}

PC_EXPORT int pincoh_on_invalidate(pincoh_invalidate_fn fn, void *ctx)
{
	pc_guard++;
	pc_table_lock();
	cb_fn = fn;
	cb_ctx = ctx;
	pc_table_unlock();
	pc_guard--;
	return 0;
}

/* Runs with no pincoh lock held and the guard lifted, so the callback may call
 * pincoh_* and even munmap other registered memory. */
void pc_run_callbacks(const struct pc_hits *h)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	int guard = pc_guard;
	if (!h->n_inval)
		return;
	pc_guard++;
	pc_table_lock();
	fn = cb_fn, ctx = cb_ctx;
	pc_table_unlock();
	pc_guard--;
	if (!fn)
		return;
	pc_guard = 0;
	for (size_t i = 0; i < h->n_inval; i++)
		fn(h->inval[i].key, (void *)h->inval[i].start, h->inval[i].end - h->inval[i].start, h->inval[i].reason, ctx);
	pc_guard = guard;
}

/* An attacher's handle died: its callback runs on the listener thread. */
void pc_notify_revoked(uint64_t handle, void *addr, size_t len)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	pc_table_lock();
	fn = cb_fn, ctx = cb_ctx;
	pc_table_unlock();
	if (fn)
		fn(handle, addr, len, PINCOH_REASON_REVOKED, ctx);
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

static int name_ok(const char *name)
{
	size_t n = name ? strnlen(name, PC_NAME_MAX) : 0;
	return n > 0 && n < PC_NAME_MAX;
}

PC_EXPORT int pincoh_publish(const char *name, uint64_t key)
{
	struct pc_publish p = { .key = key };
	int saved = errno, rc;
	int32_t status = 0;
	if (!name_ok(name))
		return -EINVAL;
	if (pc_table_valid(key) != 1)
		return -ENOENT;
	strncpy(p.name, name, sizeof p.name - 1);
	pc_guard++;
	allow_attachers();
	rc = pc_conn_ensure();
	if (rc == 0)
		rc = pc_request(PC_T_PUBLISH, &p, sizeof p, &status, NULL, NULL, 0);
	pc_guard--;
	errno = saved;
	return rc < 0 ? rc : status;
}

PC_EXPORT int pincoh_attach(const char *name, int timeout_ms, uint64_t *handle)
{
	struct pc_attach a = { .timeout_ms = timeout_ms };
	struct pc_attached got;
	int saved = errno, rc;
	int32_t status = 0;
	uint64_t h;
	if (!name_ok(name) || !handle || timeout_ms < 0)
		return -EINVAL;
	strncpy(a.name, name, sizeof a.name - 1);
	pc_guard++;
	rc = pc_conn_ensure();
	if (rc == 0)
		rc = pc_attach_alloc(&h, &a.state_addr);
	if (rc == 0) {
		a.handle = h;
		/* the coordinator waits up to timeout_ms for the name; we wait that, plus our bound */
		rc = pc_request_ms(PC_T_ATTACH, &a, sizeof a, &status, &got, sizeof got, timeout_ms + pc_cfg.timeout_ms);
		if (rc == 0 && status == 0) {
			pc_attach_set(h, got.pid, (uintptr_t)got.addr, (size_t)got.len, got.flags);
			*handle = h;
		} else {
			pc_attach_free(h);
			rc = rc < 0 ? rc : status;
		}
	}
	pc_guard--;
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
	pc_guard++;
	pc_notify(PC_T_DETACH, &d, sizeof d);
	pc_guard--;
	errno = saved;
	return 0;
}

PC_EXPORT int pincoh_barrier(int timeout_ms)
{
	struct pc_barrier b = { .timeout_ms = timeout_ms };
	int saved = errno, rc;
	int32_t status = 0;
	if (timeout_ms < 0)
		return -EINVAL;
	pc_guard++;
	rc = pc_conn_ensure();
	if (rc == 0)
		rc = pc_request_ms(PC_T_BARRIER, &b, sizeof b, &status, NULL, 0, timeout_ms + pc_cfg.timeout_ms);
	pc_guard--;
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
