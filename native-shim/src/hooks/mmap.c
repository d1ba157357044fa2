/* mmap: its row of hooktable.h. Only MAP_FIXED replaces memory
 * (MAP_FIXED_NOREPLACE fails instead), so any other mmap goes straight
 * through without a look at the table. The real call is real even in the
 * stub build: programs need their mappings. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "hooktable.h"

PC_HOOK_mmap(PC_DEFINE_CALLS)
PC_HOOK_mmap(PC_DEFINE_ENTRY)

/* On 64-bit glibc mmap64 is the same call under another name. */
PC_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));
