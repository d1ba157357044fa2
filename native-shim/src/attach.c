/* Attachments: this process's handles on other processes' exported
 * registrations, and the one-sided data path over them.
 *
 * put/get go straight to the owner's memory with process_vm_writev/readv; the
 * coordinator never sees the data. A handle names the owner's export word in
 * the job table (jobtable.c). A put counts itself in flight in its own
 * in-flight word, then checks the owner's export word (and that the
 * coordinator lives and still counts us in); the owner marks its export word
 * dead, then reads our in-flight word: both sequentially consistent, so
 * either the put sees "dead" or the owner sees it in flight and waits for it.
 * The attacher learns at its next put or get (-ESTALE), which also runs its
 * callback, once per handle (or pincoh_progress does).
 *
 * What only this process needs to know of a handle stays here, in private
 * memory: nobody else can make a dead handle live again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "attach.h"
#include "callbacks.h"
#include "config.h"
#include "jobtable.h"
#include "proto.h"
#include "rawsys.h"
#include "runtime.h"

#define GEN_MASK 0x0fffffffu
#define ST_FREE 0
#define ST_PENDING 1 /* allocated, ATTACH not answered yet */
#define ST_LIVE 2
#define ST_DEAD 3    /* detached, or the connection is gone */

struct slot {
	uint32_t gen;
	_Atomic uint32_t state;
	int32_t pid;
	unsigned flags;
	uintptr_t addr;
	size_t len;
	struct pc_watch w;   /* the job table's words a put checks, resolved at attach */
	_Atomic int told;    /* the callback ran for its death */
	struct pc_jt *jt;    /* the job table it was made in */
};

static struct slot slots[PC_MAX_ATTACH];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* allocation only */

static uint64_t handle_of(size_t i) { return ((uint64_t)slots[i].gen << 32) | (i + 1); }

/* The handle's slot, or NULL for a handle never issued or freed. */
static struct slot *lookup(uint64_t handle)
{
	uint64_t i = (handle & 0xffffffffu) - 1;
	if (i >= PC_MAX_ATTACH || slots[i].gen != (uint32_t)(handle >> 32) || !slots[i].gen ||
	    atomic_load(&slots[i].state) == ST_FREE)
		return NULL;
	return &slots[i];
}

static size_t index_of(const struct slot *s) { return (size_t)(s - slots); }

int pc_attach_alloc(uint64_t *handle)
{
	int rc = -ENOSPC;
	if (!pc_jt_current())
		return -ENOTCONN;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		if (atomic_load(&slots[i].state) != ST_FREE)
			continue;
		slots[i].gen = (slots[i].gen + 1) & GEN_MASK;
		if (!slots[i].gen)
			slots[i].gen = 1;
		slots[i].jt = NULL;
		atomic_store(&slots[i].told, 0);
		atomic_store(&slots[i].state, ST_PENDING);
		*handle = handle_of(i);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void pc_attach_set(uint64_t handle, struct pc_jt *jt, const struct pc_attached *a)
{
	struct slot *s = lookup(handle);
	uint32_t pending = ST_PENDING;
	if (!s)
		return;
	s->pid = a->pid, s->addr = (uintptr_t)a->addr, s->len = (size_t)a->len, s->flags = a->flags;
	s->jt = jt;
	pc_jt_watch(jt, a, (uint32_t)index_of(s), &s->w);
	/* a loss that overtook the reply (DEAD already) leaves it dead */
	atomic_compare_exchange_strong(&s->state, &pending, ST_LIVE);
}

static int waited_too_long(long spins)
{
	static PC_TLS struct timespec since;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (spins == 1001)
		since = now;
	return (now.tv_sec - since.tv_sec) * 1000 + (now.tv_nsec - since.tv_nsec) / 1000000 > pc_cfg.timeout_ms;
}

/* Marks the handle dead here and waits for this process's own puts in
 * flight on it (another thread's; or this very thread's, interrupted by a
 * signal whose handler got here: bounded). */
static void kill_slot(struct slot *s)
{
	uint32_t cur = atomic_load(&s->state);
	while ((cur == ST_LIVE || cur == ST_PENDING) && !atomic_compare_exchange_weak(&s->state, &cur, ST_DEAD))
		;
	if (!s->jt)
		return;
	for (long spins = 0; atomic_load(s->w.inflight) > 0; spins++) {
		if (spins > 1000 && waited_too_long(spins))
			break;
		sched_yield();
	}
}

void pc_attach_free(uint64_t handle)
{
	struct slot *s = lookup(handle);
	if (s) {
		kill_slot(s);
		atomic_store(&s->state, ST_FREE);
	}
}

/* The connection is gone: no handle may be used any more, whatever the
 * table says. From whichever thread saw the loss: no lock, no waiting. */
void pc_attach_kill_all(void)
{
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		uint32_t cur = atomic_load(&slots[i].state);
		while ((cur == ST_LIVE || cur == ST_PENDING) && !atomic_compare_exchange_weak(&slots[i].state, &cur, ST_DEAD))
			;
	}
}

/* After fork the child has no attachments: the parent's are the parent's. */
void pc_attach_reset_child(void)
{
	memset(slots, 0, sizeof slots);
	pthread_mutex_init(&mu, NULL);
}

/* Runs the handle's callback once, the first time its death is seen here;
 * 1 if this call ran it. */
static int tell(uint64_t handle, struct slot *s)
{
	int no = 0, saved = errno; /* the callback is the program's: errno stays ours to keep */
	if (!atomic_compare_exchange_strong(&s->told, &no, 1))
		return 0;
	pc_notify_revoked(handle, (void *)s->addr, s->len);
	errno = saved;
	return 1;
}

static int stale(uint64_t handle, struct slot *s)
{
	tell(handle, s);
	return -ESTALE;
}

static int alive(const struct slot *s)
{
	return atomic_load(&s->state) == ST_LIVE && pc_jt_watched_live(&s->w);
}

/* Why a transfer did not start: off the fast path, checked one by one. */
__attribute__((noinline, cold)) static int refused(uint64_t handle, size_t offset, size_t len, int write)
{
	struct slot *s = lookup(handle);
	if (!s)
		return -EBADF;
	if (offset > s->len || len > s->len - offset)
		return -ERANGE; /* checked before anything moves: never a partial write */
	if (!(s->flags & (write ? PINCOH_WRITE : PINCOH_READ)))
		return -EACCES;
	if (atomic_load(&s->state) != ST_LIVE)
		return stale(handle, s);
	return alive(s) ? 0 : stale(handle, s); /* len 0: nothing to move, only the answer */
}

/* One branch for every check before the copy, one for the checks after
 * counting in flight, one after the system call (made inline, so errno is
 * never touched): after each system call the predictors start cold here. */
static inline __attribute__((always_inline)) int transfer(uint64_t handle, size_t offset, void *buf, size_t len, int write)
{
	uint64_t i = (handle & 0xffffffffu) - 1;
	struct slot *s = &slots[i < PC_MAX_ATTACH ? i : 0];
	struct iovec local = { .iov_base = buf, .iov_len = len }, remote;
	long n;
	if (PC_UNLIKELY((i >= PC_MAX_ATTACH) | (s->gen != (uint32_t)(handle >> 32)) |
			(atomic_load_explicit(&s->state, memory_order_relaxed) != ST_LIVE) | (offset > s->len) |
			(len > s->len - offset) | !(s->flags & (write ? PINCOH_WRITE : PINCOH_READ)) | (len == 0)))
		return refused(handle, offset, len, write);
	atomic_fetch_add(s->w.inflight, 1); /* a locked add: a full barrier before the checks */
	if (PC_UNLIKELY(!((atomic_load(&s->state) == ST_LIVE) & pc_jt_watched_live(&s->w)))) {
		atomic_fetch_sub(s->w.inflight, 1);
		return stale(handle, s);
	}
	remote.iov_base = (void *)(s->addr + offset);
	remote.iov_len = len;
	n = pc_raw_syscall6(write ? SYS_process_vm_writev : SYS_process_vm_readv, s->pid, (long)&local, 1, (long)&remote, 1, 0);
	atomic_fetch_sub_explicit(s->w.inflight, 1, memory_order_release);
	if (PC_LIKELY(n == (long)len))
		return 0;
	return n == -ESRCH ? stale(handle, s) : n < 0 ? (int)n : -EFAULT; /* ESRCH: the owner is gone, and its memory with it */
}

PC_EXPORT int pincoh_put(uint64_t handle, size_t offset, const void *src, size_t len)
{
	return transfer(handle, offset, (void *)src, len, 1);
}

PC_EXPORT int pincoh_get(uint64_t handle, size_t offset, void *dst, size_t len)
{
	return transfer(handle, offset, dst, len, 0);
}

/* Runs the callback of every handle that died since: for a program that
 * wants to hear of revocations without putting, from a thread of its own. */
PC_EXPORT int pincoh_progress(void)
{
	int n = 0, saved = errno;
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		uint32_t st = atomic_load(&slots[i].state);
		if ((st == ST_LIVE && !alive(&slots[i])) || (st == ST_DEAD && slots[i].jt))
			n += tell(handle_of(i), &slots[i]);
	}
	errno = saved;
	return n;
}

PC_EXPORT int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live)
{
	struct slot *s = lookup(handle);
	if (!s)
		return -EBADF;
	if (owner_pid) *owner_pid = s->pid;
	if (addr) *addr = (void *)s->addr;
	if (len) *len = s->len;
	if (live) *live = alive(s);
	return 0;
}
