#include <errno.h>
#include <sys/mman.h>
#include "../proto.h"
#include "../shim.h"
#include "real.h"

static int pc_orig_munmap(void *addr, size_t len)
{
	if (PC_CHAINED(munmap))
		return PC_CHAIN_CALL(munmap, addr, len);
	return (int)PC_SYSCALL(SYS_munmap, addr, len);
}

static int pc_dispatch_unmap(void *addr, size_t len, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .op = PC_OP_MUNMAP, .start = s, .end = e };
	struct pc_hits h;
	int saved = errno, rc, err;
	pc_guard++;
	pc_slow_before(&ev, &h);
	errno = saved;
	rc = pc_orig_munmap(addr, len);
	err = rc < 0 ? errno : 0;
	pc_slow_after(&ev, &h, rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

PC_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_UNLIKELY(pc_guard)) {
		pc_note_guarded();
		return pc_orig_munmap(addr, len);
	}
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_munmap(addr, len);
	return pc_dispatch_unmap(addr, len, s, e);
}
