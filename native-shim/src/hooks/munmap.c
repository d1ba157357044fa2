#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"

static int pc_orig_munmap(void *addr, size_t len)
{
	if (PC_CHAINED(munmap))
		return PC_CHAIN_CALL(munmap, addr, len);
	return (int)PC_SYSCALL(SYS_munmap, addr, len);
}

struct args { void *addr; size_t len; };
static long real(void *p)
{
	struct args *a = p;
	return pc_orig_munmap(a->addr, a->len);
}

/* The event and arguments are built here, off the fast path. */
__attribute__((noinline, cold)) static int slow(void *addr, size_t len, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MUNMAP, .start = s, .end = e, .len = len };
	struct args a = { addr, len };
	return (int)pc_slow_call(&ev, real, &a, -1);
}

PC_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t s, e;
	if (PC_UNLIKELY(PC_GUARDED())) {
		pc_note_guarded();
		return pc_orig_munmap(addr, len);
	}
	s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_munmap(addr, len);
	return slow(addr, len, s, e);
}
