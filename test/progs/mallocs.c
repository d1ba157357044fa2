/* mallocs: registrations on malloc'd memory against libc's own internal
 * munmap/mremap/madvise (free, realloc, malloc_trim, a thread arena).
 * usage: mallocs free|realloc|trim|arena|top
 * Prints whether the invalidation callback fired inside the libc call, whether
 * the key is still valid afterwards, whether the memory is still mapped and
 * still holds what was written, and how libc's internal calls are covered
 * (stats.libc). A registration still valid over memory not kept is stale. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <malloc.h>
#include <pincoh.h>
#include "watch.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


static int mapped(void *p)
{
	unsigned char v;
	return mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0;
}

static void report(const char *what, void *p)
{
	struct pincoh_stats s;
	pincoh_get_stats(&s);
	/* kept: the registered bytes still hold what was written (a dropped page reads 0) */
	int m = mapped(p), kept = m && ((volatile char *)p)[4096] == 1;
	printf("%s: fired %d valid %d mapped %d kept %d libc %d\n", what, fired, pincoh_is_valid(watched), m, kept, s.libc);
}

static void *arena_thread(void *arg)
{
	(void)arg;
	/* a thread arena: blocks from its own heap, then freed; trim shrinks that heap */
	char *blocks[64];
	for (int i = 0; i < 64; i++)
		blocks[i] = malloc(60 << 10);
	memset(blocks[40], 1, 60 << 10);
	if (pincoh_register(blocks[40], 60 << 10, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
		exit(3);
	for (int i = 1; i < 64; i++)
		free(blocks[i]);
	malloc_trim(0);
	report("arena", blocks[40]);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "free";
	static char out[4096]; /* stdio's buffer off the heap: it would pin the heap's top */
	setvbuf(stdout, out, _IOLBF, sizeof out);
	pincoh_on_invalidate(on_inval, NULL);
	if (!strcmp(mode, "free") || !strcmp(mode, "realloc")) {
		size_t len = 8 << 20; /* above the mmap threshold: its own mapping */
		char *p = malloc(len);
		memset(p, 1, len);
		if (pincoh_register(p, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			return 3;
		volatile uintptr_t at = (uintptr_t)p; /* only the address is looked at afterwards (mincore) */
		if (!strcmp(mode, "free")) {
			free(p);
			report("free", (void *)at);
		} else {
			char *q = realloc(p, 64 << 20);
			report("realloc", (void *)at);
			free(q);
		}
	} else if (!strcmp(mode, "trim")) {
		/* blocks from the main heap; trimming gives their pages back with madvise */
		char *blocks[64];
		for (int i = 0; i < 64; i++)
			blocks[i] = malloc(60 << 10);
		memset(blocks[40], 1, 60 << 10);
		if (pincoh_register(blocks[40] + 8192, 16384, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			return 3;
		for (int i = 1; i < 64; i++)
			free(blocks[i]);
		malloc_trim(0);
		report("trim", blocks[40] + 8192);
	} else if (!strcmp(mode, "top")) {
		/* blocks at the top of the main heap; freeing them lets free() itself
		 * lower the break (libc's own sbrk, past the PLT) */
		char *blocks[64], first[64];
		uint64_t k;
		/* connect first: the listener thread's creation allocates (its TLS
		 * vector), and that block would pin the heap's top */
		if (pincoh_register(first, sizeof first, PINCOH_READ, &k) != 0 || pincoh_deregister(k) != 0)
			return 3;
		struct pincoh_stats st;
		pincoh_get_stats(&st);
		if (st.libc != PINCOH_LIBC_NORELEASE)
			mallopt(M_TRIM_THRESHOLD, 128 << 10); /* glibc's default, kept from moving */
		for (int i = 0; i < 64; i++)
			blocks[i] = malloc(60 << 10);
		memset(blocks[62], 1, 60 << 10);
		if (pincoh_register(blocks[62] + 8192, 16384, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			return 3;
		for (int i = 63; i > 0; i--)
			free(blocks[i]);
		report("top", blocks[62] + 8192);
	} else {
		pthread_t t;
		pthread_create(&t, NULL, arena_thread, NULL);
		pthread_join(t, NULL);
	}
	return 0;
}
