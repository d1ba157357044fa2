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

/* Another interposer writing over our libc patches makes the text writable,
 * writes, and makes it read-only again: after that last call we chain to it. */
static int pc_text_reprotect(void *addr, size_t len, int prot)
{
	int rc = pc_orig_mprotect(addr, len, prot);
	if (rc == 0 && !(prot & PROT_WRITE))
		pc_patch_recheck();
	return rc;
}

PC_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	uintptr_t s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_UNLIKELY(s < __atomic_load_n(&pc_patch_hi, __ATOMIC_RELAXED) && e > __atomic_load_n(&pc_patch_lo, __ATOMIC_RELAXED)) && !pc_guard)
		return pc_text_reprotect(addr, len, prot);
	if (PC_LIKELY(pc_guard || !pc_table_hit(s, e)))
		return pc_orig_mprotect(addr, len, prot);
	return pc_dispatch_protect(addr, len, prot, s, e);
}
