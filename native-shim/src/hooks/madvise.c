#include <errno.h>
#include <sys/mman.h>
#include "../proto.h"
#include "../shim.h"
#include <sys/syscall.h>
#include <unistd.h>

static int pc_orig_madvise(void *addr, size_t len, int advice)
{
	if (PC_CHAINED(madvise))
		return PC_CHAIN_CALL(madvise, addr, len, advice);
	return (int)syscall(SYS_madvise, addr, len, advice); /* real even in the stub build */
}

static int pc_dispatch_advise(void *addr, size_t len, int advice, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .op = PC_OP_MADVISE, .start = s, .end = e, .arg = advice };
	struct pc_hits h;
	int saved = errno, rc, err;
	pc_guard++;
	pc_slow_before(&ev, &h);
	errno = saved;
	rc = pc_orig_madvise(addr, len, advice);
	err = rc < 0 ? errno : 0;
	pc_slow_after(&ev, &h, rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

/* Only advice that drops or may move pages is worth a look: the rest (WILLNEED,
 * SEQUENTIAL, HUGEPAGE, DONTFORK...) leave a registration's pages where they are. */
PC_EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t s, e;
	if (PC_UNLIKELY(pc_guard)) {
		pc_note_guarded();
		return pc_orig_madvise(addr, len, advice);
	}
	if (PC_LIKELY(!pc_advice_drops(advice)))
		return pc_orig_madvise(addr, len, advice);
	s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_madvise(addr, len, advice);
	return pc_dispatch_advise(addr, len, advice, s, e);
}
