/* pincoh.h - keep pinned-memory registrations coherent with the address space.
 *
 * Link nothing: libpincoh.so is preloaded (LD_PRELOAD) and these symbols resolve
 * to it at run time. Every function returns 0 (or a value) on success and a
 * negative errno on failure; none of them touches errno.
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
};

/* Registers [addr, addr+len) and returns its key. -ENOTCONN without a coordinator. */
int pincoh_register(void *addr, size_t len, unsigned flags, uint64_t *key);
/* Drops a registration. -ENOENT if it is not (or no longer) valid. */
int pincoh_deregister(uint64_t key);
/* 1 valid, 0 invalidated or deregistered, -EINVAL for a key never issued here. */
int pincoh_is_valid(uint64_t key);
/* Looks up a valid registration's current range (it moves under --mremap follow). */
int pincoh_query(uint64_t key, void **addr, size_t *len);

/* Called once per invalidated registration, in the thread that made the call,
 * before that call reaches the kernel. It may call pincoh_* functions and free
 * memory; it must not block on a lock held around the munmap/mprotect/mremap. */
typedef void (*pincoh_invalidate_fn)(uint64_t key, void *addr, size_t len, int reason, void *ctx);
int pincoh_on_invalidate(pincoh_invalidate_fn fn, void *ctx);

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
};
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
#endif

#ifdef __cplusplus
}
#endif
#endif
