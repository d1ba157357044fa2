#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../policy.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"

static int pc_orig_madvise(void *addr, size_t len, int advice)
{
	if (PC_CHAINED(madvise))
		return PC_CHAIN_CALL(madvise, addr, len, advice);
	return (int)syscall(SYS_madvise, addr, len, advice); /* real even in the stub build */
}

struct args { void *addr; size_t len; int advice; };
static long real(void *p)
{
	struct args *a = p;
	return pc_orig_madvise(a->addr, a->len, a->advice);
}

/* Only advice that drops or may move pages is worth a look: the rest (WILLNEED,
 * SEQUENTIAL, HUGEPAGE, DONTFORK...) leave a registration's pages where they are. */
__attribute__((noinline, cold)) static int slow(void *addr, size_t len, int advice, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MADVISE, .start = s, .end = e, .arg = advice, .len = len };
	struct args a = { addr, len, advice };
	return (int)pc_slow_call(&ev, real, &a, -1);
}

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer build only: an exiting thread drops its own stack's pages
 * (glibc's advise_stack_range: MADV_DONTNEED up to about 16 KiB below its
 * stack pointer) after TSan has finished with the thread, when any pthread
 * call crashes inside TSan. Such a call goes straight through there; the
 * pages stay mapped, and an unmap of the stack later is seen from another
 * thread. The real shim sees it like any other. */
static int exiting_thread_stack(uintptr_t e, int advice)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return advice == MADV_DONTNEED && e <= sp && sp - e < (64u << 10);
}
#else
#define exiting_thread_stack(e, advice) 0
#endif

PC_EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t s, e;
	if (PC_UNLIKELY(PC_GUARDED())) {
		pc_note_guarded();
		return pc_orig_madvise(addr, len, advice);
	}
	if (PC_LIKELY(!pc_advice_drops(advice)))
		return pc_orig_madvise(addr, len, advice);
	s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (exiting_thread_stack(e, advice))
		return pc_orig_madvise(addr, len, advice);
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_madvise(addr, len, advice);
	return slow(addr, len, advice, s, e);
}
