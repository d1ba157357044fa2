#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include "../proto.h"
#include "../shim.h"
#include "real.h"

static void *pc_orig_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	if (PC_CHAINED(mremap))
		return PC_CHAIN_CALL(mremap, old, old_len, new_len, flags, new_addr);
	return (void *)PC_SYSCALL(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static void *pc_dispatch_remap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, struct pc_event *ev)
{
	struct pc_hits h;
	int saved = errno, err;
	void *rc;
	pc_guard++;
	pc_slow_before(ev, &h);
	errno = saved;
	rc = pc_orig_mremap(old, old_len, new_len, flags, new_addr);
	err = rc == MAP_FAILED ? errno : 0;
	pc_slow_after(ev, &h, (long)rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

/* Variadic like glibc's: the fifth argument is read only with MREMAP_FIXED,
 * exactly when glibc 2.36 reads it, so the kernel sees the same arguments. */
PC_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	struct pc_event ev = { .op = PC_OP_MREMAP, .arg = flags, .len = old_len, .new_len = new_len };
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (PC_UNLIKELY(pc_guard)) {
		pc_note_guarded();
		return pc_orig_mremap(old, old_len, new_len, flags, new_addr);
	}
	ev.start = pc_page_start((uintptr_t)old);
	ev.end = pc_page_end((uintptr_t)old, old_len);
	if (flags & MREMAP_FIXED) {
		ev.dest = pc_page_start((uintptr_t)new_addr);
		ev.dest_end = pc_page_end((uintptr_t)new_addr, new_len);
	}
	if (PC_LIKELY(!pc_table_hit(ev.start, ev.end) && !(ev.dest_end && pc_table_hit(ev.dest, ev.dest_end))))
		return pc_orig_mremap(old, old_len, new_len, flags, new_addr);
	return pc_dispatch_remap(old, old_len, new_len, flags, new_addr, &ev);
}
