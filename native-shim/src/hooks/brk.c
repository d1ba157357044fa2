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
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"

static void *(*pc_orig_sbrk)(intptr_t);
static int (*pc_orig_brk)(void *);

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
	return PC_NEXT(pc_orig_sbrk, "sbrk") && PC_NEXT(pc_orig_brk, "brk");
}

/* The break moves from `from` down to `to`: what lies between goes, as by
 * munmap. The page holding `to` stays. */
static int shrinks_registered(uintptr_t to, uintptr_t from, struct pc_event *ev)
{
	*ev = (struct pc_event){ .reason = PINCOH_REASON_MUNMAP, .start = pc_page_end(to, 0), .end = pc_page_end(from, 0) };
	ev->len = ev->end - ev->start;
	return to < from && pc_table_hit(ev->start, ev->end);
}

static long real_brk(void *addr) { return pc_orig_brk(addr); }
static long real_sbrk_(void *incr) { return (long)real_sbrk(*(intptr_t *)incr); }

PC_EXPORT int brk(void *addr)
{
	struct pc_event ev;
	if (!resolve()) {
		errno = ENOSYS;
		return -1;
	}
	/* only then is the current break worth asking for */
	if (!PC_GUARDED() && pc_table_count()) {
		int saved = errno;
		uintptr_t cur = (uintptr_t)real_sbrk(0);
		errno = saved;
		if (shrinks_registered((uintptr_t)addr, cur, &ev))
			return (int)pc_slow_call(&ev, real_brk, addr, -1);
	}
	return pc_orig_brk(addr);
}

PC_EXPORT void *sbrk(intptr_t incr)
{
	struct pc_event ev;
	if (!resolve()) {
		errno = ENOSYS;
		return (void *)-1;
	}
	if (PC_UNLIKELY(PC_GUARDED())) {
		pc_note_guarded();
		return real_sbrk(incr);
	}
	if (incr < 0 && pc_table_count()) {
		int saved = errno;
		uintptr_t cur = (uintptr_t)real_sbrk(0);
		errno = saved;
		if (shrinks_registered(cur + (uintptr_t)incr, cur, &ev))
			return (void *)pc_slow_call(&ev, real_sbrk_, &incr, -1);
	}
	return real_sbrk(incr);
}
