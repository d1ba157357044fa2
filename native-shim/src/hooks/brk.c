/* brk and sbrk: lowering the break gives the pages above it back. Both go
 * through libc's own functions (found with dlsym), which keep glibc's cached
 * break right; only a shrink over registered memory leaves the fast path, and
 * only then is the current break asked for. libc's malloc trims the main heap
 * with its own sbrk, past the PLT: on x86_64 patch.c makes libc's sbrk jump
 * here too, and then the real sbrk is ours (sbrk_kernel). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include "../proto.h"
#include "../shim.h"

static void *(*pc_orig_sbrk)(intptr_t);
static int (*pc_orig_brk)(void *);
void **pc_curbrk; /* libc's __curbrk, set by patch.c when it patches libc's sbrk */

/* glibc's sbrk, for when its entry jumps to our hook (patch.c): malloc
 * trims the main heap with it, past the PLT. Same checks, same errno, and
 * libc's cached break kept right. */
static void *sbrk_kernel(intptr_t incr)
{
	uintptr_t old, want, got;
	if (!*pc_curbrk)
		*pc_curbrk = (void *)syscall(SYS_brk, 0);
	old = (uintptr_t)*pc_curbrk;
	if (incr == 0)
		return (void *)old;
	if (incr > 0 ? old + (uintptr_t)incr < old : old < -(uintptr_t)incr) {
		errno = ENOMEM;
		return (void *)-1;
	}
	want = old + (uintptr_t)incr;
	got = (uintptr_t)syscall(SYS_brk, want);
	*pc_curbrk = (void *)got;
	if (got < want) {
		errno = ENOMEM;
		return (void *)-1;
	}
	return (void *)old;
}

/* The real sbrk: another interposer's hook, ours, or libc's own function. */
static void *real_sbrk(intptr_t incr)
{
	if (PC_CHAINED(sbrk))
		return PC_CHAIN_CALL(sbrk, incr);
	if (pc_curbrk)
		return sbrk_kernel(incr);
	return pc_orig_sbrk(incr);
}

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
		uintptr_t cur = (uintptr_t)real_sbrk(0);
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
	if (PC_UNLIKELY(pc_guard)) {
		pc_note_guarded();
		return real_sbrk(incr);
	}
	if (incr < 0 && pc_table_count()) {
		uintptr_t cur = (uintptr_t)real_sbrk(0);
		if (pc_table_hit(pc_page_end(cur + (uintptr_t)incr, 0), pc_page_end(cur, 0))) {
			pc_guard++;
			pc_dispatch_shrink(cur + (uintptr_t)incr, cur, &ev, &h);
			shrank = 1;
		}
	}
	errno = saved;
	rc = real_sbrk(incr);
	if (!shrank)
		return rc;
	err = rc == (void *)-1 ? errno : 0;
	pc_slow_after(&ev, &h, 0, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}
