/* free and realloc, under --free invalidate (WELCOME says): a registration
 * inside a heap chunk goes when the chunk goes back to malloc, which may hand
 * it to someone else at once, though no mapping changed. Without the flag a
 * registration follows the mapping only, as the kernel's mmu_notifier does.
 *
 * The fast path is one load of the flag (and, with it, of the table's count).
 * With registrations, the chunk's extent comes from the allocator's own
 * malloc_usable_size (no system call, no lock) and the table's lock-free
 * search. realloc invalidates before it runs, moved or not: whether it will
 * move cannot be known before, and after, the old chunk may be someone
 * else's already. The real calls are the next definitions (dlsym RTLD_NEXT),
 * so a program's own allocator (jemalloc, tcmalloc) stays in charge. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include "../../include/pincoh.h"
#include "../runtime.h"
#include "../session.h"
#include "../slowpath.h"
#include "../table.h"
#include "hooks.h"

static void (*pc_orig_free)(void *);
static void *(*pc_orig_realloc)(void *, size_t);
static size_t (*pc_usable)(void *);

/* The next definitions, resolved by the constructor or at the first call
 * (another library's constructor may free before ours runs). A free that
 * dlsym itself makes while resolving them is leaked, not given to an
 * allocator that may not be the one it came from: a few bytes, once. */
void *__libc_realloc(void *, size_t);
static PC_TLS int resolving;

void pc_free_resolve(void)
{
	resolving = 1;
	PC_NEXT(pc_orig_free, "free");
	PC_NEXT(pc_orig_realloc, "realloc");
	PC_NEXT(pc_usable, "malloc_usable_size");
	resolving = 0;
}

static void real_free(void *p)
{
	if (PC_UNLIKELY(!pc_orig_free)) {
		if (resolving)
			return;
		pc_free_resolve();
		if (!pc_orig_free)
			return;
	}
	pc_orig_free(p);
}

static void *real_realloc(void *p, size_t n)
{
	if (PC_UNLIKELY(!pc_orig_realloc)) {
		if (resolving)
			return __libc_realloc(p, n); /* dlsym does not realloc; if it ever did, libc's is what it used */
		pc_free_resolve();
		if (!pc_orig_realloc)
			return __libc_realloc(p, n);
	}
	return pc_orig_realloc(p, n);
}

/* Does the chunk at p hold a registration? Only asked under the flag. */
static int chunk_hits(void *p, uintptr_t *s, uintptr_t *e)
{
	size_t n;
	if (!p || !pc_usable || !pc_table_count())
		return 0;
	n = pc_usable(p);
	*s = (uintptr_t)p, *e = (uintptr_t)p + n;
	return n && pc_table_hit(*s, *e);
}

static long call_free(void *p)
{
	real_free(p);
	return 0;
}

struct realloc_args { void *p; size_t n; };
static long call_realloc(void *p)
{
	struct realloc_args *a = p;
	return (long)real_realloc(a->p, a->n);
}

__attribute__((noinline, cold)) static void slow_free(void *p, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_FREE, .start = s, .end = e, .len = e - s };
	pc_slow_call(&ev, call_free, p, -1);
}

__attribute__((noinline, cold)) static void *slow_realloc(void *p, size_t n, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_FREE, .start = s, .end = e, .len = e - s, .arg = 1, .new_len = n };
	struct realloc_args a = { p, n };
	return (void *)pc_slow_call(&ev, call_realloc, &a, 0);
}

PC_EXPORT void free(void *p)
{
	uintptr_t s, e;
	if (PC_LIKELY(!pc_free_invalidates()) || PC_GUARDED() || !chunk_hits(p, &s, &e))
		real_free(p);
	else
		slow_free(p, s, e);
}

PC_EXPORT void *realloc(void *p, size_t n)
{
	uintptr_t s, e;
	if (PC_LIKELY(!pc_free_invalidates()) || PC_GUARDED() || !chunk_hits(p, &s, &e))
		return real_realloc(p, n);
	return slow_realloc(p, n, s, e);
}
