/* brk and sbrk: lowering the break gives the pages above it back. Both go
 * through libc's own functions (found with dlsym), which keep glibc's cached
 * break right; only a shrink over registered memory leaves the fast path, and
 * only then is the current break asked for. libc's malloc moves the break
 * itself, past these hooks (README, limits). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include "../proto.h"
#include "../shim.h"

static void *(*pc_orig_sbrk)(intptr_t);
static int (*pc_orig_brk)(void *);

static int resolve(void)
{
	if (!pc_orig_sbrk)
		pc_orig_sbrk = (void *(*)(intptr_t))dlsym(RTLD_NEXT, "sbrk");
	if (!pc_orig_brk)
		pc_orig_brk = (int (*)(void *))dlsym(RTLD_NEXT, "brk");
	return pc_orig_sbrk && pc_orig_brk;
}

/* The break moves from `from` down to `to`: what lies between goes. */
static void pc_dispatch_shrink(uintptr_t to, uintptr_t from, struct pc_event *ev, struct pc_hits *h)
{
	ev->op = PC_OP_MUNMAP;
	ev->start = pc_page_end(to, 0);   /* the page holding `to` stays */
	ev->end = pc_page_end(from, 0);
	pc_slow_before(ev, h);
}

PC_EXPORT int brk(void *addr)
{
	struct pc_event ev = { 0 };
	struct pc_hits h;
	int rc, err, saved = errno, shrank = 0;
	if (!resolve()) {
		errno = ENOSYS;
		return -1;
	}
	if (!pc_guard && pc_table_count()) {
		uintptr_t cur = (uintptr_t)pc_orig_sbrk(0);
		if ((uintptr_t)addr < cur && pc_table_hit(pc_page_end((uintptr_t)addr, 0), pc_page_end(cur, 0))) {
			pc_guard++;
			pc_dispatch_shrink((uintptr_t)addr, cur, &ev, &h);
			shrank = 1;
		}
	}
	errno = saved;
	rc = pc_orig_brk(addr);
	if (!shrank)
		return rc;
	err = rc < 0 ? errno : 0;
	pc_slow_after(&ev, &h, rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

PC_EXPORT void *sbrk(intptr_t incr)
{
	struct pc_event ev = { 0 };
	struct pc_hits h;
	void *rc;
	int err, saved = errno, shrank = 0;
	if (!resolve()) {
		errno = ENOSYS;
		return (void *)-1;
	}
	if (incr < 0 && !pc_guard && pc_table_count()) {
		uintptr_t cur = (uintptr_t)pc_orig_sbrk(0);
		if (pc_table_hit(pc_page_end(cur + (uintptr_t)incr, 0), pc_page_end(cur, 0))) {
			pc_guard++;
			pc_dispatch_shrink(cur + (uintptr_t)incr, cur, &ev, &h);
			shrank = 1;
		}
	}
	errno = saved;
	rc = pc_orig_sbrk(incr);
	if (!shrank)
		return rc;
	err = rc == (void *)-1 ? errno : 0;
	pc_slow_after(&ev, &h, 0, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}
