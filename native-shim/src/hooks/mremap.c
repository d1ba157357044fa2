/* mremap: the calls of its row of hooktable.h; its entry is its own: variadic,
 * and with MREMAP_FIXED a second range, the destination. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"
#include "hooktable.h"

/* Variadic like glibc's: the fifth argument is read only with MREMAP_FIXED,
 * exactly when glibc 2.36 reads it, so the kernel sees the same arguments. */
PC_HOOK_mremap(PC_DEFINE_CALLS)

PC_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	uintptr_t s, e, ds = 0, de = 0;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (PC_UNLIKELY(PC_GUARDED())) {
		pc_note_guarded();
		return pc_orig_mremap(old, old_len, new_len, flags, new_addr);
	}
	s = pc_page_start((uintptr_t)old), e = pc_page_end((uintptr_t)old, old_len);
	if (flags & MREMAP_FIXED)
		ds = pc_page_start((uintptr_t)new_addr), de = pc_page_end((uintptr_t)new_addr, new_len);
	if (PC_LIKELY(!pc_table_hit(s, e) && !(de && pc_table_hit(ds, de))))
		return pc_orig_mremap(old, old_len, new_len, flags, new_addr);
	return mremap_slow(old, old_len, new_len, flags, new_addr, s, e, ds, de);
}
