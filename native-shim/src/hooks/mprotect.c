#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"

static int pc_orig_mprotect(void *addr, size_t len, int prot)
{
	return (int)PC_SYSCALL(SYS_mprotect, addr, len, prot);
}

struct args { void *addr; size_t len; int prot; };
static long real(void *p)
{
	struct args *a = p;
	return pc_orig_mprotect(a->addr, a->len, a->prot);
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

__attribute__((noinline, cold)) static int slow(void *addr, size_t len, int prot, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MPROTECT, .start = s, .end = e, .arg = prot, .len = len };
	struct args a = { addr, len, prot };
	return (int)pc_slow_call(&ev, real, &a, -1);
}

PC_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	uintptr_t s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_UNLIKELY(s < __atomic_load_n(&pc_patch_hi, __ATOMIC_RELAXED) && e > __atomic_load_n(&pc_patch_lo, __ATOMIC_RELAXED)) && !PC_GUARDED())
		return pc_text_reprotect(addr, len, prot);
	if (PC_LIKELY(PC_GUARDED() || !pc_table_hit(s, e)))
		return pc_orig_mprotect(addr, len, prot);
	return slow(addr, len, prot, s, e);
}
