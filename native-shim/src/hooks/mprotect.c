#include <errno.h>
#include <sys/mman.h>
#include "../proto.h"
#include "../shim.h"
#include "real.h"

static int pc_orig_mprotect(void *addr, size_t len, int prot)
{
	return (int)PC_SYSCALL(SYS_mprotect, addr, len, prot);
}

static int pc_dispatch_protect(void *addr, size_t len, int prot, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .op = PC_OP_MPROTECT, .start = s, .end = e, .arg = prot };
	struct pc_hits h;
	int saved = errno, rc, err;
	pc_guard++;
	pc_slow_before(&ev, &h);
	errno = saved;
	rc = pc_orig_mprotect(addr, len, prot);
	err = rc < 0 ? errno : 0;
	pc_slow_after(&ev, &h, rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

PC_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	uintptr_t s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_LIKELY(pc_guard || !pc_table_hit(s, e)))
		return pc_orig_mprotect(addr, len, prot);
	return pc_dispatch_protect(addr, len, prot, s, e);
}
