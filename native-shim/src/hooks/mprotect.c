/* mprotect: the calls of its row of hooktable.h; its entry is its own: an
 * mprotect of libc's text over our patches comes first. */
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"
#include "hooktable.h"

PC_HOOK_mprotect(PC_DEFINE_CALLS)

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
	if (PC_UNLIKELY(s < __atomic_load_n(&pc_patch_hi, __ATOMIC_RELAXED) && e > __atomic_load_n(&pc_patch_lo, __ATOMIC_RELAXED)) && !PC_GUARDED())
		return pc_text_reprotect(addr, len, prot);
	if (PC_LIKELY(PC_GUARDED() || !pc_table_hit(s, e)))
		return pc_orig_mprotect(addr, len, prot);
	return mprotect_slow(addr, len, prot, s, e);
}
