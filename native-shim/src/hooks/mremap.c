#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"

static void *pc_orig_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	if (PC_CHAINED(mremap))
		return PC_CHAIN_CALL(mremap, old, old_len, new_len, flags, new_addr);
	return (void *)PC_SYSCALL(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

struct args { void *old; size_t old_len, new_len; int flags; void *new_addr; };
static long real(void *p)
{
	struct args *a = p;
	return (long)pc_orig_mremap(a->old, a->old_len, a->new_len, a->flags, a->new_addr);
}

/* Variadic like glibc's: the fifth argument is read only with MREMAP_FIXED,
 * exactly when glibc 2.36 reads it, so the kernel sees the same arguments. */
__attribute__((noinline, cold)) static void *slow(void *old, size_t old_len, size_t new_len, int flags, void *new_addr,
						    uintptr_t s, uintptr_t e, uintptr_t ds, uintptr_t de)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MREMAP, .start = s, .end = e, .arg = flags, .len = old_len,
			       .new_len = new_len, .dest = ds, .dest_end = de };
	struct args a = { old, old_len, new_len, flags, new_addr };
	return (void *)pc_slow_call(&ev, real, &a, (long)MAP_FAILED);
}

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
	return slow(old, old_len, new_len, flags, new_addr, s, e, ds, de);
}
