/* libc calls munmap, mremap, madvise, mmap and sbrk internally (free, realloc,
 * malloc_trim, heap trimming) through hidden aliases of the same functions,
 * never through the PLT, so LD_PRELOAD alone misses them. On x86_64 and
 * aarch64 we overwrite the entry of libc's functions with a jump to our hooks
 * (as UCX's ucm does; the machine code is in arch-*.c): the internal callers
 * then land in our hooks too. Our hooks make the real calls with syscall()
 * (sbrk: a copy of libc's, hooks/brk.c), never through libc's function, so
 * nothing needs the overwritten bytes back.
 *
 * Done once, in the constructor, before the program's threads usually exist,
 * and never undone. If the text cannot be made writable, or the architecture
 * has no patch, the fallback is a malloc that never gives memory back
 * (mallopt), and we say so. A self-check calls through each patched entry and
 * counts that it arrived.
 *
 * Another interposer (UCX's ucm, Open MPI's patcher) patches the same entries
 * the same way. Whoever comes second must not cut the other out, so we chain:
 * - it patched first (its library is a dependency of the program): we follow
 *   its jump, put ours in its place, and our hooks' real call becomes a call
 *   to its hook (pc_chain), which then makes the real call itself;
 * - it patches after us (dlopen'd later, as MPI_Init does): it writes its jump
 *   over ours between two mprotects of libc's text, and those go through our
 *   mprotect hook, which calls pc_patch_recheck: we chain as above. The check
 *   also runs before each registration, for a writer that did not mprotect.
 * A chained call runs with pc_guard.why.chaining set, so if the other hook calls
 * back into libc's entry, that nested call goes straight to the kernel. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "arch.h"
#include "log.h"
#include "patch.h"
#include "runtime.h"

int pc_libc_mode;     /* PINCOH_LIBC_NONE, _PATCHED or _NORELEASE */
struct pc_chain pc_chain;
int pc_chained;       /* entries whose real call goes through another interposer */
uintptr_t pc_patch_lo, pc_patch_hi; /* libc text pages holding our patches */
void **pc_curbrk;     /* libc's __curbrk, once libc's sbrk jumps to hooks/brk.c's */

#if PC_PATCH_LEN
static struct pc_patch_entry *entries; /* init.c's, from pc_patch_init on */
static size_t n_entries;
static pthread_mutex_t patch_mu = PTHREAD_MUTEX_INITIALIZER;

static int write_jump(unsigned char *at, void *hook)
{
	uintptr_t page = (uintptr_t)at & ~(pc_page_size - 1);
	uintptr_t end = ((uintptr_t)(at + PC_PATCH_LEN) + pc_page_size - 1) & ~(pc_page_size - 1);
	if (syscall(SYS_mprotect, page, end - page, PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
		return -1;
	pc_arch_write_jump(at, hook);
	syscall(SYS_mprotect, page, end - page, PROT_READ | PROT_EXEC);
	if (!pc_patch_lo || page < pc_patch_lo)
		__atomic_store_n(&pc_patch_lo, page, __ATOMIC_RELAXED);
	if (end > pc_patch_hi)
		__atomic_store_n(&pc_patch_hi, end, __ATOMIC_RELAXED);
	return 0;
}

/* Names the other interposer on stderr, once per library: whoever debugs a
 * registration cache wants to know who else is in libc's entries. */
static void say_chained(void *target)
{
	static void *said;
	Dl_info info;
	if (!dladdr(target, &info) || !info.dli_fname)
		info.dli_fname = "an unknown library", info.dli_fbase = NULL;
	if (said == info.dli_fbase && said)
		return;
	said = info.dli_fbase;
	pc_log("libc internals: chained to another interposer's hooks in", info.dli_fname, -1);
}

/* Puts our jump at e->at over another interposer's, calling its hook after ours. */
static int chain_over(struct pc_patch_entry *e, const char **why)
{
	void *target = pc_arch_jump_target(e->at);
	if (!target) {
		*why = "patched by another interposer in a form we cannot follow";
		return -1;
	}
	if (target == e->hook)
		return 0;
	if (*e->next == NULL)
		__atomic_fetch_add(&pc_chained, 1, __ATOMIC_RELAXED);
	__atomic_store_n(e->next, target, __ATOMIC_RELEASE); /* before the jump that needs it */
	if (write_jump(e->at, e->hook) != 0) {
		*why = "libc text cannot be made writable";
		return -1;
	}
	say_chained(target);
	return 0;
}

/* 0: patched (or chained); <0: left alone (why in *why). */
static int patch_one(struct pc_patch_entry *e, const char **why)
{
	void *addr = dlsym(RTLD_NEXT, e->name);
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	unsigned char *p;
	size_t skip = 0;
	if (!addr || addr == e->hook) {
		*why = "not found in libc";
		return -1;
	}
	p = addr;
	skip = pc_arch_keep(p);
	if (dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size && sym->st_size < skip + PC_PATCH_LEN) {
		*why = "function too small to patch";
		return -1;
	}
	e->at = p + skip;
	if (pc_arch_jumps(e->at))
		return chain_over(e, why);
	if (write_jump(e->at, e->hook) != 0) {
		e->at = NULL;
		*why = "libc text cannot be made writable";
		return -1;
	}
	return 0;
}

void pc_patch_recheck(void)
{
	const char *why = NULL;
	int saved = errno;
	size_t i;
	if (pc_libc_mode != PINCOH_LIBC_PATCHED)
		return;
	for (i = 0; i < n_entries; i++)
		if (entries[i].at && pc_arch_jump_target(entries[i].at) != entries[i].hook)
			break;
	if (i == n_entries)
		return; /* all ours, the usual case: no lock */
	pthread_mutex_lock(&patch_mu);
	for (; i < n_entries; i++) {
		struct pc_patch_entry *e = &entries[i];
		if (e->at && pc_arch_jump_target(e->at) != e->hook && chain_over(e, &why) != 0) {
			pc_log("libc internals: another interposer replaced our patch on", e->name, -1);
			pc_log("  and cannot be chained:", why, -1);
			e->at = NULL; /* said once; that entry is the other's now */
		}
	}
	pthread_mutex_unlock(&patch_mu);
	errno = saved;
}

static int selfcheck(void *(*real_mmap)(void *, size_t, int, int, int, off_t),
		     int (*real_munmap)(void *, size_t), int (*real_madvise)(void *, size_t, int),
		     void *(*real_mremap)(void *, size_t, size_t, int, ...), void *(*real_sbrk)(intptr_t))
{
	int before = pc_selfcheck_hits;
	pc_guard.why.selfcheck = 1;
	/* harmless calls: each fails at once in the kernel (EINVAL) */
	real_munmap(NULL, 0);
	real_madvise((void *)1, 0, 0);
	real_mremap((void *)1, 0, 0, 0);
	real_mmap(NULL, 0, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	real_sbrk(0);
	pc_guard.why.selfcheck = 0;
	return pc_selfcheck_hits - before;
}
#else
void pc_patch_recheck(void)
{
}
#endif

static void no_release(void)
{
	/* every allocation from the heap, never trimmed: free and realloc give
	 * nothing back, so no registration on malloc'd memory goes stale there */
	mallopt(M_MMAP_MAX, 0);
	/* INT_MAX, not -1: glibc adds to this threshold when it decides whether a
	 * thread arena's heap can go, and SIZE_MAX would wrap to "yes" */
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
	pc_libc_mode = PINCOH_LIBC_NORELEASE;
}

/* An explicit malloc_trim gives pages back whatever the threshold says: in the
 * no-release mode it does nothing (as it may: it reports 0, nothing released). */
PC_EXPORT int malloc_trim(size_t pad)
{
	static int (*real)(size_t);
	if (pc_libc_mode == PINCOH_LIBC_NORELEASE)
		return 0;
	return PC_NEXT(real, "malloc_trim") ? real(pad) : 0;
}

void pc_patch_init(struct pc_patch_entry *list, size_t n)
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
#if PC_PATCH_LEN
	void *real_mmap = dlsym(RTLD_NEXT, "mmap"), *real_munmap = dlsym(RTLD_NEXT, "munmap");
	void *real_madvise = dlsym(RTLD_NEXT, "madvise"), *real_mremap = dlsym(RTLD_NEXT, "mremap");
	void *real_sbrk = dlsym(RTLD_NEXT, "sbrk");
	int ok = real_mmap && real_munmap && real_madvise && real_mremap && real_sbrk;
	/* our sbrk must keep libc's cached break, once libc's own is out of reach */
	pc_curbrk = dlsym(RTLD_NEXT, "__curbrk");
	if (!pc_curbrk)
		ok = 0, why = "libc's __curbrk not found";
	pthread_mutex_lock(&patch_mu);
	entries = list, n_entries = n;
	for (size_t i = 0; ok && i < n_entries; i++)
		ok = patch_one(&entries[i], &why) == 0;
	pthread_mutex_unlock(&patch_mu);
	if (ok) {
		if (selfcheck(real_mmap, real_munmap, real_madvise, real_mremap, real_sbrk) == (int)n_entries) {
			pc_libc_mode = PINCOH_LIBC_PATCHED;
			return;
		}
		why = "the self-check did not reach the hooks";
	}
#endif
	pc_log("cannot see libc's internal munmap/mremap/madvise/mmap/sbrk:", why, -1);
	pc_log("falling back to a malloc that never releases memory (PINCOH_LIBC=norelease)", NULL, -1);
	no_release();
}
