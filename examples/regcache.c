/* regcache: the registration-cache hazard of MPI libraries, and its cure.
 *
 * A communication library caches registrations by address, because
 * registering (pinning) is expensive. The application unmaps a buffer and maps
 * a new one, which the kernel often places at the same address. A cache that
 * is not told hands out the old registration for the new buffer: the NIC (or
 * another process) then reads and writes pages that are no longer there.
 *
 * With pincoh, the cache evicts entries from pincoh_on_invalidate. A cache
 * hit is stale when the registration was made for an earlier buffer. Run
 * `regcache --no-invalidate` to see the hazard when the cache is not told.
 *
 * --heap: 4 KiB buffers from malloc, given back with free. free() changes no
 * mapping, so by default pincoh keeps the registration (it follows the
 * mapping, as the kernel's mmu_notifier does) and the cache hands out stale
 * ones; under `pincoh run --free invalidate` free() invalidates them too.
 *
 * usage: regcache [ROUNDS] [--no-invalidate] [--heap]
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "common.h"

#define SLOTS 4
#define BUF (1u << 20)

/* volatile: the callback changes them from inside free() and munmap(), which
 * glibc declares __leaf__ ("calls nothing back"); without it the compiler may
 * keep values it read before the call (docs/c-api.md, The C API). */
struct entry { void *addr; size_t len; uint64_t key; unsigned buffer; volatile int used; };
static struct entry cache[SLOTS];
static volatile unsigned evictions;

static void on_invalidate(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)addr, (void)len, (void)reason, (void)ctx;
	for (int i = 0; i < SLOTS; i++)
		if (cache[i].used && cache[i].key == key) {
			cache[i].used = 0;
			evictions++;
		}
}

/* The cache's lookup: a hit when an entry covers [addr, addr+len). buffer
 * numbers the allocation, so a hit made for an earlier one is known stale. */
static uint64_t get_registration(void *addr, size_t len, unsigned buffer, int *hit, int *stale)
{
	static unsigned next;
	for (int i = 0; i < SLOTS; i++)
		if (cache[i].used && cache[i].addr <= addr && (char *)addr + len <= (char *)cache[i].addr + cache[i].len) {
			*hit = 1;
			*stale = cache[i].buffer != buffer;
			return cache[i].key;
		}
	*hit = 0, *stale = 0;
	struct entry *e = &cache[next++ % SLOTS];
	if (e->used)
		pincoh_deregister(e->key);
	int rc = pincoh_register(addr, len, PINCOH_READ | PINCOH_WRITE, &e->key);
	if (rc < 0) {
		fprintf(stderr, "regcache: pincoh_register: %s\n", strerror(-rc));
		exit(1);
	}
	e->addr = addr, e->len = len, e->buffer = buffer, e->used = 1;
	return e->key;
}

int main(int argc, char **argv)
{
	int rounds = 2000, tell = 1, heap = 0, rank;
	size_t len;
	unsigned hits = 0, misses = 0, stale = 0, same_addr = 0;
	void *prev = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-invalidate") == 0)
			tell = 0;
		else if (strcmp(argv[i], "--heap") == 0)
			heap = 1;
		else
			rounds = atoi(argv[i]);
	}
	require_pincoh(argv[0]);
	rank = rank_or_zero();
	if (tell)
		pincoh_on_invalidate(on_invalidate, NULL);

	len = heap ? 4096 : BUF;
	for (int r = 0; r < rounds; r++) {
		char *buf = heap ? malloc(len) : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int hit, old;
		if (!buf || buf == MAP_FAILED) {
			perror("regcache: allocating");
			return 1;
		}
		same_addr += buf == prev;
		prev = buf;
		memset(buf, r & 0xff, len);
		uint64_t key = get_registration(buf, len, (unsigned)r, &hit, &old);
		hits += hit, misses += !hit;
		if (old || pincoh_is_valid(key) != 1)
			stale++; /* the cache handed out a registration made for a buffer that is gone */
		if (heap)
			free(buf);
		else
			munmap(buf, len);
	}
	printf("rank %d: %d rounds, new buffer at the old address %u times, cache hits %u, misses %u, "
	       "evicted by pincoh %u, stale registrations handed out %u\n",
	       rank, rounds, same_addr, hits, misses, evictions, stale);
	if (stale && tell && heap) {
		printf("rank %d: free() left the registrations valid (they follow the mapping); "
		       "run under pincoh run --free invalidate to have free() invalidate them\n", rank);
		return 1;
	}
	if (stale && tell) {
		printf("rank %d: FAIL: stale registrations despite invalidation\n", rank);
		return 1;
	}
	if (stale)
		printf("rank %d: without invalidation the cache handed out %u stale registrations: "
		       "the bug pincoh exists to prevent\n", rank, stale);
	return 0;
}
