/* pincoh.h - keep pinned-memory registrations coherent with the address space.
 *
 * Link it (cc ... $(pkg-config --cflags --libs pincoh)), or define PINCOH_WEAK
 * before including this and link nothing: the symbols then resolve to the
 * preloaded libpincoh.so, and are NULL without it. Every function returns 0
 * (or a value) on success and a negative errno on failure; none of them
 * touches errno.
 */
#ifndef PINCOH_H
#define PINCOH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a registration needs from its pages; losing one of these invalidates it. */
#define PINCOH_READ  1u
#define PINCOH_WRITE 2u

/* Why an invalidation callback fired. */
enum pincoh_reason {
	PINCOH_REASON_MUNMAP = 1,   /* munmap over the range */
	PINCOH_REASON_MPROTECT = 2, /* mprotect removed a permission the registration needs */
	PINCOH_REASON_MREMAP = 3,   /* mremap moved, shrank or replaced the range */
	PINCOH_REASON_REVOKED = 4,  /* (attacher) the owner's memory changed: the handle is dead */
	PINCOH_REASON_MADVISE = 5,  /* madvise dropped or may move the pages (DONTNEED, FREE, REMOVE, PAGEOUT, MERGEABLE) */
	PINCOH_REASON_MMAP = 6,     /* mmap MAP_FIXED replaced the range */
	PINCOH_REASON_EXIT = 7,     /* the process exits or execs: everything goes */
	PINCOH_REASON_DEREGISTER = 8, /* (why a handle was revoked) the owner deregistered it */
	PINCOH_REASON_FREE = 9,     /* free() or realloc() gave the heap chunk back (--free invalidate) */
};

/* Registers [addr, addr+len) and returns its key. No round trip: only a
 * process's first call talks to the coordinator (to connect). -ENOTCONN
 * without a coordinator, -ENOSPC past the coordinator's per-process limit,
 * -EINVAL for a range ending at or past 2^53. */
int pincoh_register(void *addr, size_t len, unsigned flags, uint64_t *key);
/* Drops a registration. -ENOENT if it is not (or no longer) valid. Waits for
 * the coordinator only if the registration was published. */
int pincoh_deregister(uint64_t key);
/* 1 valid, 0 invalidated or deregistered, -EINVAL for a key never issued here.
 * PINCOH_VALID_UNSYNCED (2): valid here, but the coordinator was lost and has
 * not heard of it since; this process re-announces its registrations when it
 * reconnects, at its next pincoh_register/publish/attach/barrier. */
#define PINCOH_VALID_UNSYNCED 2
int pincoh_is_valid(uint64_t key);
/* Looks up a valid registration's current range (it moves under --mremap follow). */
int pincoh_query(uint64_t key, void **addr, size_t *len);

/* Called once per invalidated registration, in the thread that made the call,
 * before that call reaches the kernel. It may call pincoh_* functions and free
 * memory; it must not block on a lock held around the munmap/mprotect/mremap.
 * In an attacher it is also called once per revoked handle (key = the handle,
 * reason PINCOH_REASON_REVOKED), after the handle died: in the thread whose
 * pincoh_put/get found it dead (before that returns -ESTALE), or in
 * pincoh_progress. */
typedef void (*pincoh_invalidate_fn)(uint64_t key, void *addr, size_t len, int reason, void *ctx);
int pincoh_on_invalidate(pincoh_invalidate_fn fn, void *ctx);

/* ---- Sharing registrations between the processes of a job (PINCOH_JOB) ---- */

/* Makes a valid registration attachable under `name` (1 to 63 bytes) in this job.
 * The name goes away when the registration is invalidated or deregistered.
 * -EEXIST if the name is taken, -ENOENT if the key is not valid, -EFAULT if the
 * range is not memory this process has (the coordinator checks, by sampling). */
int pincoh_publish(const char *name, uint64_t key);
/* Attaches to the registration published as `name`, waiting up to timeout_ms
 * for it to be published (-ETIMEDOUT). The handle is this process's own. */
int pincoh_attach(const char *name, int timeout_ms, uint64_t *handle);
/* One-sided copies into / out of the owner's memory (process_vm_writev/readv).
 * Checked before anything moves: -ERANGE out of bounds, -EACCES against the
 * registration's permissions, -EBADF for an unknown handle. -ESTALE once the
 * owner's memory changed (munmap, mremap, mprotect, deregister, exit): attach
 * again to the new publication. Never a partial copy. */
int pincoh_put(uint64_t handle, size_t offset, const void *src, size_t len);
int pincoh_get(uint64_t handle, size_t offset, void *dst, size_t len);
int pincoh_detach(uint64_t handle);
/* Runs the callback for every handle revoked since (once per handle), for a
 * program that wants to hear of revocations without putting: call it from a
 * thread of your own. Returns how many it found. */
int pincoh_progress(void);
/* Waits until every rank of the job (PINCOH_SIZE) has called it. -ETIMEDOUT. */
int pincoh_barrier(int timeout_ms);
/* The owner's pid, where the registration lies in the owner, its length, and
 * whether the handle is alive. Any pointer may be NULL. */
int pincoh_handle_info(uint64_t handle, int *owner_pid, void **addr, size_t *len, int *live);

/* From PINCOH_RANK / PINCOH_SIZE (set by `pincoh run`); -1 and 1 otherwise. */
int pincoh_rank(void);
int pincoh_size(void);

/* Counters for diagnostics. */
struct pincoh_stats {
	uint64_t slow_calls;      /* hooked calls that overlapped a registration */
	uint64_t invalidations;   /* registrations invalidated by this process's calls */
	uint64_t timeouts;        /* waits for the coordinator that hit PINCOH_TIMEOUT_MS */
	int degraded;             /* 1 once a wait timed out or the coordinator vanished */
	int connected;            /* 1 while a coordinator connection is up */
	int libc;                 /* how libc's internal calls are covered: PINCOH_LIBC_* */
	int chained;              /* libc entries whose calls also go through another
	                             interposer's hook (UCX's ucm, Open MPI's patcher) */
};
#define PINCOH_LIBC_NONE 0      /* not covered (PINCOH_LIBC=off) */
#define PINCOH_LIBC_PATCHED 1   /* libc's munmap/mremap/madvise/mmap/sbrk entries jump to the hooks */
#define PINCOH_LIBC_NORELEASE 2 /* malloc never gives memory back (mallopt; malloc_trim does nothing) */
int pincoh_get_stats(struct pincoh_stats *out);

/* Define PINCOH_WEAK before including this header to resolve the API weakly:
 * the program then also runs without the shim, where &pincoh_register == NULL. */
#ifdef PINCOH_WEAK
#pragma weak pincoh_register
#pragma weak pincoh_deregister
#pragma weak pincoh_is_valid
#pragma weak pincoh_query
#pragma weak pincoh_on_invalidate
#pragma weak pincoh_rank
#pragma weak pincoh_size
#pragma weak pincoh_get_stats
#pragma weak pincoh_publish
#pragma weak pincoh_attach
#pragma weak pincoh_put
#pragma weak pincoh_get
#pragma weak pincoh_detach
#pragma weak pincoh_barrier
#pragma weak pincoh_handle_info
#pragma weak pincoh_progress
#endif

#ifdef __cplusplus
}
#endif
#endif
