/* Attachments: this process's handles on other processes' exported
 * registrations, and the one-sided data path over them.
 *
 * put/get go straight to the owner's memory with process_vm_writev/readv; the
 * coordinator never sees the data. A handle dies when the coordinator revokes
 * it (the owner's memory is about to change) or the connection is lost. The
 * race between a put starting and a revoke is closed Dekker-style: a put
 * counts itself in flight and then checks the state; a revoke marks the
 * state dead and then waits for the in-flight count to drain, both seq_cst.
 * The coordinator knows where each state word lives, so it can mark a handle
 * dead itself when this process does not answer (stopped, hung).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "proto.h"
#include "shim.h"

#define FREE 0
#define LIVE 1
#define DEAD 2
#define PENDING 3 /* allocated, ATTACH not answered yet: a REVOKE makes it DEAD */

/* state first: the coordinator writes DEAD at state_addr and reads inflight at +4 */
struct slot {
	_Atomic uint32_t state;
	_Atomic uint32_t inflight;
	uint32_t gen;
	int32_t pid;
	uintptr_t addr;
	size_t len;
	unsigned flags;
};

static struct slot slots[PC_MAX_ATTACH];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* allocation only */

static uint64_t handle_of(size_t i) { return ((uint64_t)slots[i].gen << 32) | (i + 1); }

static struct slot *lookup(uint64_t handle)
{
	uint64_t i = (handle & 0xffffffffu) - 1;
	if (i >= PC_MAX_ATTACH || slots[i].gen != (uint32_t)(handle >> 32))
		return NULL;
	return atomic_load(&slots[i].state) == FREE ? NULL : &slots[i];
}

int pc_attach_alloc(uint64_t *handle, uint64_t *state_addr)
{
	int rc = -ENOSPC;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		if (atomic_load(&slots[i].state) != FREE)
			continue;
		slots[i].gen++;
		atomic_store(&slots[i].inflight, 0);
		atomic_store(&slots[i].state, PENDING);
		*handle = handle_of(i);
		*state_addr = (uintptr_t)&slots[i].state;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void pc_attach_set(uint64_t handle, int32_t pid, uintptr_t addr, size_t len, unsigned flags)
{
	struct slot *s = lookup(handle);
	if (!s)
		return;
	uint32_t pending = PENDING;
	s->pid = pid, s->addr = addr, s->len = len, s->flags = flags;
	/* a REVOKE that overtook this (DEAD already) leaves the handle dead */
	atomic_compare_exchange_strong(&s->state, &pending, LIVE);
}

/* Marks the handle dead and waits for puts/gets in flight on it to finish. */
static void kill_slot(struct slot *s)
{
	atomic_store(&s->state, DEAD);
	while (atomic_load(&s->inflight) > 0)
		sched_yield(); /* one process_vm_writev at most: bounded by its size */
}

void pc_attach_free(uint64_t handle)
{
	struct slot *s = lookup(handle);
	if (s) {
		kill_slot(s);
		atomic_store(&s->state, FREE);
	}
}

int pc_attach_revoke(uint64_t handle, int32_t *pid, uintptr_t *addr, size_t *len)
{
	struct slot *s = lookup(handle);
	uint32_t pending = PENDING;
	if (s && atomic_compare_exchange_strong(&s->state, &pending, DEAD))
		return -ENOENT; /* revoked before its ATTACH was answered: no callback */
	if (!s || atomic_load(&s->state) != LIVE)
		return -ENOENT;
	kill_slot(s);
	*pid = s->pid, *addr = s->addr, *len = s->len;
	return 0;
}

void pc_attach_kill_all(void)
{
	for (size_t i = 0; i < PC_MAX_ATTACH; i++) {
		uint32_t st = atomic_load(&slots[i].state);
		if (st == LIVE || st == PENDING)
			kill_slot(&slots[i]);
	}
}

/* After fork the child has no attachments: the parent's are the parent's. */
void pc_attach_reset_child(void)
{
	for (size_t i = 0; i < PC_MAX_ATTACH; i++)
		atomic_store(&slots[i].state, FREE);
	pthread_mutex_init(&mu, NULL);
}

static int transfer(uint64_t handle, size_t offset, void *buf, size_t len, int write)
{
	struct slot *s = lookup(handle);
	struct iovec local = { .iov_base = buf, .iov_len = len }, remote;
	long n;
	int err;
	if (!s)
		return -EBADF;
	if (offset > s->len || len > s->len - offset)
		return -ERANGE; /* checked before anything moves: never a partial write */
	if (!(s->flags & (write ? PINCOH_WRITE : PINCOH_READ)))
		return -EACCES;
	if (len == 0)
		return atomic_load(&s->state) == LIVE ? 0 : -ESTALE;
	atomic_fetch_add(&s->inflight, 1);
	if (atomic_load(&s->state) != LIVE) {
		atomic_fetch_sub(&s->inflight, 1);
		return -ESTALE;
	}
	remote.iov_base = (void *)(s->addr + offset);
	remote.iov_len = len;
	n = syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, s->pid, &local, 1UL, &remote, 1UL, 0UL);
	err = n < 0 ? errno : 0;
	atomic_fetch_sub(&s->inflight, 1);
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

PC_EXPORT int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live)
{
	struct slot *s = lookup(handle);
	if (!s)
		return -EBADF;
	if (owner_pid) *owner_pid = s->pid;
	if (addr) *addr = (void *)s->addr;
	if (len) *len = s->len;
	if (live) *live = atomic_load(&s->state) == LIVE;
	return 0;
}
