/* libc calls munmap, mremap, madvise and mmap internally (free, realloc,
 * malloc_trim, arena trimming) through hidden aliases of the same functions,
 * never through the PLT, so LD_PRELOAD alone misses them. On x86_64 we
 * overwrite the entry of libc's functions with a jump to our hooks (as UCX's
 * ucm does): the internal callers then land in our hooks too. Our hooks make
 * the real calls with syscall(), never through libc's function, so nothing
 * needs the overwritten bytes back.
 *
 *   49 BB imm64    movabs $hook, %r11    (r11: scratch, never an argument)
 *   41 FF E3       jmp *%r11
 *
 * Done once, in the constructor, before the program's threads usually exist,
 * and never undone. An entry that already starts with a jump belongs to
 * another interposer (UCX's ucm, a sanitizer): we leave it and say so. If the
 * text cannot be made writable, or this is not x86_64, the fallback is a
 * malloc that never gives memory back (mallopt), and we say so. A self-check
 * calls through each patched entry and counts that it arrived. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "shim.h"

int pc_libc_mode;     /* PINCOH_LIBC_NONE, _PATCHED or _NORELEASE */
int pc_selfcheck_hits; /* hooks count arrivals while the guard says PC_SELFCHECK */

#define PATCH_LEN 13

int munmap(void *, size_t);
int madvise(void *, size_t, int);
void *mremap(void *, size_t, size_t, int, ...);
void *mmap(void *, size_t, int, int, int, off_t);

#if defined(__x86_64__)
static int already_jumps(const unsigned char *p)
{
	return p[0] == 0xE9 || p[0] == 0xEB || (p[0] == 0xFF && p[1] == 0x25) || (p[0] == 0x48 && p[1] == 0xB8) ||
	       (p[0] == 0x49 && p[1] == 0xBB);
}

/* 0: patched; <0: left alone (why in *why). */
static int patch_one(const char *name, void *hook, const char **why)
{
	void *addr = dlsym(RTLD_NEXT, name);
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	unsigned char *p, code[PATCH_LEN] = { 0x49, 0xBB, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xFF, 0xE3 };
	size_t skip = 0;
	uintptr_t page, end;
	if (!addr || addr == hook) {
		*why = "not found in libc";
		return -1;
	}
	p = addr;
	if (p[0] == 0xF3 && p[1] == 0x0F && p[2] == 0x1E && p[3] == 0xFA)
		skip = 4; /* keep endbr64 */
	if (already_jumps(p + skip)) {
		*why = "already patched by another interposer";
		return -1;
	}
	if (dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size && sym->st_size < skip + PATCH_LEN) {
		*why = "function too small to patch";
		return -1;
	}
	memcpy(code + 2, &hook, sizeof hook);
	page = (uintptr_t)(p + skip) & ~(pc_page_size - 1);
	end = ((uintptr_t)(p + skip + PATCH_LEN) + pc_page_size - 1) & ~(pc_page_size - 1);
	if (syscall(SYS_mprotect, page, end - page, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
		*why = "libc text cannot be made writable";
		return -1;
	}
	memcpy(p + skip, code, PATCH_LEN);
	syscall(SYS_mprotect, page, end - page, PROT_READ | PROT_EXEC);
	return 0;
}
#endif

static int selfcheck(void *(*real_mmap)(void *, size_t, int, int, int, off_t),
		     int (*real_munmap)(void *, size_t), int (*real_madvise)(void *, size_t, int),
		     void *(*real_mremap)(void *, size_t, size_t, int, ...))
{
	int before = pc_selfcheck_hits;
	pc_guard = PC_SELFCHECK;
	/* harmless calls: each fails at once in the kernel (EINVAL) */
	real_munmap(NULL, 0);
	real_madvise((void *)1, 0, 0);
	real_mremap((void *)1, 0, 0, 0);
	real_mmap(NULL, 0, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	pc_guard = 0;
	return pc_selfcheck_hits - before;
}

static void no_release(void)
{
	/* every allocation from the heap, never trimmed: free and realloc give
	 * nothing back, so no registration on malloc'd memory goes stale there */
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_TRIM_THRESHOLD, -1);
	pc_libc_mode = PINCOH_LIBC_NORELEASE;
}

void pc_patch_init(void)
{
	const char *why = "this architecture has no code patching";
	const char *mode = getenv("PINCOH_LIBC");
#ifdef PC_STUB_SYSCALLS
	return; /* the bench-only build's hooks never enter the kernel: libc must keep its own */
#endif
	if (mode && !strcmp(mode, "off"))
		return;
	if (mode && !strcmp(mode, "norelease")) {
		no_release();
		return;
	}
#if defined(__x86_64__)
	void *real_mmap = dlsym(RTLD_NEXT, "mmap"), *real_munmap = dlsym(RTLD_NEXT, "munmap");
	void *real_madvise = dlsym(RTLD_NEXT, "madvise"), *real_mremap = dlsym(RTLD_NEXT, "mremap");
	if (real_mmap && real_munmap && real_madvise && real_mremap && patch_one("munmap", (void *)munmap, &why) == 0 &&
	    patch_one("mremap", (void *)mremap, &why) == 0 && patch_one("madvise", (void *)madvise, &why) == 0 &&
	    patch_one("mmap", (void *)mmap, &why) == 0) {
		if (selfcheck(real_mmap, real_munmap, real_madvise, real_mremap) == 4) {
			pc_libc_mode = PINCOH_LIBC_PATCHED;
			return;
		}
		why = "the self-check did not reach the hooks";
	}
#endif
	pc_log("cannot see libc's internal munmap/mremap/madvise (", why, -1);
	pc_log("falling back to a malloc that never releases memory (PINCOH_LIBC=norelease)", NULL, -1);
	no_release();
}
