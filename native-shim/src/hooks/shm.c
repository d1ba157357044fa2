/* System V shared memory: shmdt unmaps a whole segment, and shmat with
 * SHM_REMAP replaces what was mapped at the address. shmdt is given only an
 * address, so shmat records which segment it attached where (no system call);
 * the segment's size is asked for (one shmctl) only when registrations exist.
 * Up to 256 segments at once are known; past that a shmdt is not seen
 * (docs/limits.md). Both go through libc's own functions. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/shm.h>
#include "../../include/pincoh.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"

#define SEGS 256
static struct { uintptr_t addr; int id; } segs[SEGS];
static pthread_mutex_t segs_mu = PTHREAD_MUTEX_INITIALIZER;

static void *(*pc_orig_shmat)(int, const void *, int);
static int (*pc_orig_shmdt)(const void *);

static size_t seg_size(int id)
{
	struct shmid_ds ds;
	int saved = errno; /* our shmctl must not change what the caller sees */
	size_t len = shmctl(id, IPC_STAT, &ds) == 0 ? ds.shm_segsz : 0;
	errno = saved;
	return len;
}

static void remember(uintptr_t addr, int id)
{
	pthread_mutex_lock(&segs_mu);
	for (int i = 0; i < SEGS; i++)
		if (!segs[i].addr) {
			segs[i].addr = addr, segs[i].id = id;
			break;
		}
	pthread_mutex_unlock(&segs_mu);
}

/* The id of the segment attached at addr, forgetting it when `forget`; -1 if unknown. */
static int recall(uintptr_t addr, int forget)
{
	int id = -1;
	pthread_mutex_lock(&segs_mu);
	for (int i = 0; i < SEGS; i++)
		if (segs[i].addr == addr) {
			id = segs[i].id;
			if (forget)
				segs[i].addr = 0;
			break;
		}
	pthread_mutex_unlock(&segs_mu);
	return id;
}

/* The size to check, only worth a system call when something is registered. */
static size_t size_if_registered(int id)
{
	return id >= 0 && !PC_GUARDED() && pc_table_count() ? seg_size(id) : 0;
}

/* Runs real() the slow way when [addr, addr+len) overlaps a registration. */
static long guarded(uintptr_t addr, size_t len, pc_real_fn real, void *arg, long failed)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MUNMAP, .start = pc_page_start(addr), .end = pc_page_end(addr, len), .len = len };
	if (PC_GUARDED() || !len || !pc_table_hit(ev.start, ev.end))
		return real(arg);
	return pc_slow_call(&ev, real, arg, failed);
}

struct at_args { int id; const void *addr; int flags; };
static long do_shmat(void *p)
{
	struct at_args *a = p;
	return (long)pc_orig_shmat(a->id, a->addr, a->flags);
}

static long do_shmdt(void *p) { return pc_orig_shmdt(p); }

PC_EXPORT void *shmat(int id, const void *addr, int flags)
{
	struct at_args a = { id, addr, flags };
	void *rc;
	if (!PC_NEXT(pc_orig_shmat, "shmat")) {
		errno = ENOSYS;
		return (void *)-1;
	}
	if (addr && (flags & SHM_REMAP)) /* replaces what is there, like MAP_FIXED */
		rc = (void *)guarded((uintptr_t)addr, size_if_registered(id), do_shmat, &a, -1);
	else
		rc = pc_orig_shmat(id, addr, flags);
	if (rc != (void *)-1)
		remember((uintptr_t)rc, id);
	return rc;
}

PC_EXPORT int shmdt(const void *addr)
{
	if (!PC_NEXT(pc_orig_shmdt, "shmdt")) {
		errno = ENOSYS;
		return -1;
	}
	int rc = (int)guarded((uintptr_t)addr, size_if_registered(recall((uintptr_t)addr, 0)), do_shmdt, (void *)addr, -1);
	if (rc == 0)
		recall((uintptr_t)addr, 1);
	return rc;
}
