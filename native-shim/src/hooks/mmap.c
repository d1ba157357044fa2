#define _GNU_SOURCE
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"

/* Always real, even in the bench-only stub build: programs need their mappings. */
static void *pc_orig_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (PC_CHAINED(mmap))
		return PC_CHAIN_CALL(mmap, addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

struct args { void *addr; size_t len; int prot, flags, fd; off_t off; };
static long real(void *p)
{
	struct args *a = p;
	return (long)pc_orig_mmap(a->addr, a->len, a->prot, a->flags, a->fd, a->off);
}

/* Only MAP_FIXED replaces memory (MAP_FIXED_NOREPLACE fails instead), so any
 * other mmap goes straight through without a look at the table. */
__attribute__((noinline, cold)) static void *slow(void *addr, size_t len, int prot, int flags, int fd, off_t off, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .reason = PINCOH_REASON_MMAP, .start = s, .end = e, .arg = flags, .len = len };
	struct args a = { addr, len, prot, flags, fd, off };
	return (void *)pc_slow_call(&ev, real, &a, (long)MAP_FAILED);
}

PC_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t s, e;
	if (PC_UNLIKELY(PC_GUARDED())) {
		pc_note_guarded();
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	}
	if (PC_LIKELY(!(flags & MAP_FIXED) || (flags & MAP_FIXED_NOREPLACE) == MAP_FIXED_NOREPLACE))
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	return slow(addr, len, prot, flags, fd, off, s, e);
}

/* On 64-bit glibc mmap64 is the same call under another name. */
PC_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));
