/* Attachments: this process's handles on other processes' exported
 * registrations, and the one-sided data path over them.
 *
 * put/get go straight to the owner's memory with process_vm_writev/readv; the
 * coordinator never sees the data. Each handle has a state word in the shared
 * area (proto.h, struct pc_handle_word) that the coordinator marks dead
 * itself when the owner's memory is about to change: nobody here needs to
 * run for that, and a stopped or descheduled attacher delays nobody. A put
 * counts itself in flight and then checks the state; the coordinator marks
 * the state dead and then waits for the in-flight count to drain: both
 * sequentially consistent, so either the put sees "dead" or the coordinator
 * waits for it. The attacher learns at its next put or get (-ESTALE), which
 * also runs its callback, once per handle (or pincoh_progress does).
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
#include "proto.h"
#include "shim.h"

#define GEN_MASK 0x0fffffffu

/* What only this process needs to know of a handle. */
struct slot {
	uint32_t gen;
	_Atomic int told;   /* the callback ran for its death */
	int32_t pid;
	uintptr_t addr;
	size_t len;
	unsigned flags;
};

static struct slot slots[PC_MAX_ATTACH];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* allocation only */

static uint32_t word(uint32_t gen, uint32_t st) { return gen << 4 | st; }

static uint64_t handle_of(size_t i) { return ((uint64_t)slots[i].gen << 32) | (i + 1); }

/* The handle's slot and shared word, or NULL for a handle never issued or freed. */
static struct slot *lookup(uint64_t handle, struct pc_handle_word **w)
{
	uint64_t i = (handle & 0xffffffffu) - 1;
	struct pc_handle_word *words = pc_area_handles();
	if (!words || i >= PC_MAX_ATTACH || slots[i].gen != (uint32_t)(handle >> 32) || !slots[i].gen)
		return NULL;
	*w = &words[i];
	if ((atomic_load((_Atomic uint32_t *)&(*w)->state) & 15) == PC_H_FREE)
		return NULL;
	return &slots[i];
}

int pc_attach_alloc(uint64_t *handle)
{
	struct pc_handle_word *words = pc_area_handles();
	int rc = -ENOSPC;
	if (!words)
		return -ENOTCONN;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		_Atomic uint32_t *st = (_Atomic uint32_t *)&words[i].state;
		if ((atomic_load(st) & 15) != PC_H_FREE)
			continue;
		slots[i].gen = (slots[i].gen + 1) & GEN_MASK;
		if (!slots[i].gen)
			slots[i].gen = 1;
		atomic_store(&slots[i].told, 0);
		atomic_store((_Atomic uint32_t *)&words[i].inflight, 0);
		atomic_store(st, word(slots[i].gen, PC_H_PENDING));
		*handle = handle_of(i);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void pc_attach_set(uint64_t handle, int32_t pid, uintptr_t addr, size_t len, unsigned flags)
{
	struct pc_handle_word *w;
	struct slot *s = lookup(handle, &w);
	uint32_t pending;
	if (!s)
		return;
	s->pid = pid, s->addr = addr, s->len = len, s->flags = flags;
	/* a revoke that overtook the reply (DEAD already) leaves it dead */
	pending = word(s->gen, PC_H_PENDING);
	atomic_compare_exchange_strong((_Atomic uint32_t *)&w->state, &pending, word(s->gen, PC_H_LIVE));
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

/* Marks the handle dead here (the coordinator would do the same) and waits
 * for puts/gets in flight on it to finish. */
static void kill_word(struct pc_handle_word *w, uint32_t gen)
{
	_Atomic uint32_t *st = (_Atomic uint32_t *)&w->state;
	uint32_t cur = atomic_load(st);
	while ((cur >> 4) == gen && ((cur & 15) == PC_H_LIVE || (cur & 15) == PC_H_PENDING))
		if (atomic_compare_exchange_weak(st, &cur, word(gen, PC_H_DEAD)))
			break;
	/* one process_vm_writev at most, bounded by its size; unless it is this
	 * very thread's, interrupted by a signal whose handler got here: bounded */
	for (long spins = 0; atomic_load((_Atomic uint32_t *)&w->inflight) > 0; spins++) {
		if (spins > 1000 && waited_too_long(spins))
			break;
		sched_yield();
	}
}

void pc_attach_free(uint64_t handle)
{
	struct pc_handle_word *w;
	struct slot *s = lookup(handle, &w);
	if (s) {
		kill_word(w, s->gen);
		atomic_store((_Atomic uint32_t *)&w->state, word(s->gen, PC_H_FREE));
	}
}

void pc_attach_kill_all(void)
{
	struct pc_handle_word *words = pc_area_handles();
	for (size_t i = 0; words && i < PC_MAX_ATTACH; i++)
		if (slots[i].gen)
			kill_word(&words[i], slots[i].gen);
}

void pc_attach_move(struct pc_handle_word *from, struct pc_handle_word *to)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < PC_MAX_ATTACH; i++)
		to[i].state = atomic_load((_Atomic uint32_t *)&from[i].state);
	pthread_mutex_unlock(&mu);
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
	int no = 0;
	if (!atomic_compare_exchange_strong(&s->told, &no, 1))
		return 0;
	pc_notify_revoked(handle, (void *)s->addr, s->len);
	return 1;
}

static int stale(uint64_t handle, struct slot *s)
{
	tell(handle, s);
	return -ESTALE;
}

static int transfer(uint64_t handle, size_t offset, void *buf, size_t len, int write)
{
	struct pc_handle_word *w;
	struct slot *s = lookup(handle, &w);
	struct iovec local = { .iov_base = buf, .iov_len = len }, remote;
	_Atomic uint32_t *inflight;
	uint32_t live;
	long n;
	int err;
	if (!s)
		return -EBADF;
	if (offset > s->len || len > s->len - offset)
		return -ERANGE; /* checked before anything moves: never a partial write */
	if (!(s->flags & (write ? PINCOH_WRITE : PINCOH_READ)))
		return -EACCES;
	live = word(s->gen, PC_H_LIVE);
	inflight = (_Atomic uint32_t *)&w->inflight;
	if (len == 0)
		return atomic_load((_Atomic uint32_t *)&w->state) == live ? 0 : stale(handle, s);
	atomic_fetch_add(inflight, 1);
	if (atomic_load((_Atomic uint32_t *)&w->state) != live) {
		atomic_fetch_sub(inflight, 1);
		return stale(handle, s);
	}
	remote.iov_base = (void *)(s->addr + offset);
	remote.iov_len = len;
	n = syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, s->pid, &local, 1UL, &remote, 1UL, 0UL);
	err = n < 0 ? errno : 0;
	atomic_fetch_sub(inflight, 1);
	if (n < 0)
		return -err;
	return (size_t)n == len ? 0 : -EFAULT;
}

PC_EXPORT int pincoh_put(uint64_t handle, size_t offset, const void *src, size_t len)
{
	int saved = errno, rc = transfer(handle, offset, (void *)src, len, 1);
	errno = saved;
	return rc;
}

PC_EXPORT int pincoh_get(uint64_t handle, size_t offset, void *dst, size_t len)
{
	int saved = errno, rc = transfer(handle, offset, dst, len, 0);
	errno = saved;
	return rc;
}

/* Runs the callback of every handle that died since: for a program that
 * wants to hear of revocations without putting, from a thread of its own. */
PC_EXPORT int pincoh_progress(void)
{
	struct pc_handle_word *words = pc_area_handles();
	int n = 0, saved = errno;
	for (size_t i = 0; words && i < PC_MAX_ATTACH; i++) {
		uint32_t st = atomic_load((_Atomic uint32_t *)&words[i].state);
		if (slots[i].gen && st == word(slots[i].gen, PC_H_DEAD))
			n += tell(handle_of(i), &slots[i]);
	}
	errno = saved;
	return n;
}

PC_EXPORT int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live)
{
	struct pc_handle_word *w;
	struct slot *s = lookup(handle, &w);
	if (!s)
		return -EBADF;
	if (owner_pid) *owner_pid = s->pid;
	if (addr) *addr = (void *)s->addr;
	if (len) *len = s->len;
	if (live) *live = atomic_load((_Atomic uint32_t *)&w->state) == word(s->gen, PC_H_LIVE);
	return 0;
}
