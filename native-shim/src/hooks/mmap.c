#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include "../proto.h"
#include "../shim.h"
#include <sys/syscall.h>
#include <unistd.h>

/* Always real, even in the bench-only stub build: programs need their mappings. */
static void *pc_orig_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (PC_CHAINED(mmap))
		return PC_CHAIN_CALL(mmap, addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static void *pc_dispatch_map(void *addr, size_t len, int prot, int flags, int fd, off_t off, uintptr_t s, uintptr_t e)
{
	struct pc_event ev = { .op = PC_OP_MMAP_FIXED, .start = s, .end = e, .arg = flags };
	struct pc_hits h;
	int saved = errno, err;
	void *rc;
	pc_guard++;
	pc_slow_before(&ev, &h);
	errno = saved;
	rc = pc_orig_mmap(addr, len, prot, flags, fd, off);
	err = rc == MAP_FAILED ? errno : 0;
	pc_slow_after(&ev, &h, (long)rc, err);
	pc_guard--;
	errno = err ? err : saved;
	return rc;
}

/* Only MAP_FIXED replaces memory (MAP_FIXED_NOREPLACE fails instead), so any
 * other mmap goes straight through without a look at the table. */
PC_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t s, e;
	if (PC_UNLIKELY(pc_guard)) {
		pc_note_guarded();
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	}
	if (PC_LIKELY(!(flags & MAP_FIXED) || (flags & MAP_FIXED_NOREPLACE) == MAP_FIXED_NOREPLACE))
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	s = pc_page_start((uintptr_t)addr), e = pc_page_end((uintptr_t)addr, len);
	if (PC_LIKELY(!pc_table_hit(s, e)))
		return pc_orig_mmap(addr, len, prot, flags, fd, off);
	return pc_dispatch_map(addr, len, prot, flags, fd, off, s, e);
}

/* On 64-bit glibc mmap64 is the same call under another name. */
PC_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));
