/* fakepatch: another interposer, written here, that patches libc's munmap
 * entry after the shim did, in one of the jump forms the shim says it follows,
 * and writes with a raw mprotect (no hook sees it): only the check at
 * pincoh_register can find it. Then a free() of a registered 8 MiB buffer
 * must reach both: pincoh (fired) and this interposer (seen). r10 is a form
 * the shim does not follow: it must say so and leave the other's patch working.
 * usage: fakepatch rel32|rip|rax|r11|r10       (x86_64 only) */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <dlfcn.h>
#include <pincoh.h>
#include "watch.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int seen;
static char *watch_at;

/* The other interposer's hook: notes the call, then makes it itself. */
static int other_munmap(void *addr, size_t len)
{
	if ((char *)addr <= watch_at && watch_at < (char *)addr + len)
		seen = 1;
	return (int)syscall(SYS_munmap, addr, len);
}

/* movabs $other_munmap, %r11; jmp *%r11: a stub within reach of a rel32 jump. */
static unsigned char *stub_near(unsigned char *entry)
{
	for (uintptr_t d = 1 << 24; d < (1u << 31); d <<= 1) {
		uintptr_t want = ((uintptr_t)entry - d) & ~(uintptr_t)4095;
		unsigned char *s = mmap((void *)want, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (s == MAP_FAILED)
			continue;
		void *hook = (void *)other_munmap;
		s[0] = 0x49, s[1] = 0xBB, memcpy(s + 2, &hook, 8), s[10] = 0x41, s[11] = 0xFF, s[12] = 0xE3;
		return s;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *form = argc > 1 ? argv[1] : "rel32";
	void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_NOW);
	unsigned char *entry = libc ? dlsym(libc, "munmap") : NULL, code[16];
	void *hook = (void *)other_munmap;
	size_t n = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!entry || !pincoh_register)
		return 2;
	if (entry[0] == 0xF3 && entry[1] == 0x0F && entry[2] == 0x1E && entry[3] == 0xFA)
		entry += 4; /* endbr64 stays */
	if (!strcmp(form, "rel32")) {
		unsigned char *stub = stub_near(entry);
		int32_t d = (int32_t)(stub - (entry + 5));
		if (!stub)
			return 4;
		code[0] = 0xE9, memcpy(code + 1, &d, 4), n = 5;
	} else if (!strcmp(form, "rip")) { /* jmp *0(%rip); .quad hook */
		code[0] = 0xFF, code[1] = 0x25, memset(code + 2, 0, 4), memcpy(code + 6, &hook, 8), n = 14;
	} else if (!strcmp(form, "rax")) { /* movabs %rax; jmp *%rax */
		code[0] = 0x48, code[1] = 0xB8, memcpy(code + 2, &hook, 8), code[10] = 0xFF, code[11] = 0xE0, n = 12;
	} else if (!strcmp(form, "r10")) { /* movabs %r10; jmp *%r10: a form the shim does not follow */
		code[0] = 0x49, code[1] = 0xBA, memcpy(code + 2, &hook, 8), code[10] = 0x41, code[11] = 0xFF, code[12] = 0xE2, n = 13;
	} else { /* movabs %r11; jmp *%r11 */
		code[0] = 0x49, code[1] = 0xBB, memcpy(code + 2, &hook, 8), code[10] = 0x41, code[11] = 0xFF, code[12] = 0xE3, n = 13;
	}
	uintptr_t page = (uintptr_t)entry & ~(uintptr_t)4095;
	syscall(SYS_mprotect, page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC);
	memcpy(entry, code, n);
	syscall(SYS_mprotect, page, 8192, PROT_READ | PROT_EXEC);

	size_t len = 8 << 20;
	char *p = malloc(len);
	memset(p, 1, len);
	watch_at = p + 4096;
	pincoh_on_invalidate(on_inval, NULL);
	if (pincoh_register(p, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
		return 3;
	free(p);
	struct pincoh_stats s;
	pincoh_get_stats(&s);
	printf("%s: fired %d seen %d chained %d\n", form, fired, seen, s.chained);
	return 0;
}
