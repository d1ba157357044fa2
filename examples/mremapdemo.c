/* mremapdemo: what mremap does to a registration.
 *
 * Under the default policy (`pincoh run --mremap invalidate`) growing a
 * registered buffer with MREMAP_MAYMOVE invalidates the registration. Under
 * `--mremap follow` it moves with the buffer, and pincoh_query tells where.
 */
#include <string.h>
#include <sys/mman.h>
#include "common.h"

static int fired;
static void on_invalidate(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)ctx;
	fired++;
	printf("  invalidated key %llu at %p (+%zu), reason %s\n", (unsigned long long)key, addr, len,
	       reason == PINCOH_REASON_MREMAP ? "mremap" : reason == PINCOH_REASON_EXIT ? "exit" : "other");
}

int main(int argc, char **argv)
{
	(void)argc;
	require_pincoh(argv[0]);
	int rank = rank_or_zero();
	size_t len = 1u << 16;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* a neighbour right after the buffer forces the grow to move it */
	mmap(buf + len, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	uint64_t key;
	pincoh_on_invalidate(on_invalidate, NULL);
	if (pincoh_register(buf, len, PINCOH_READ | PINCOH_WRITE, &key) < 0) {
		fprintf(stderr, "mremapdemo: cannot register\n");
		return 1;
	}
	strcpy(buf, "payload");
	char *moved = mremap(buf, len, 4 * len, MREMAP_MAYMOVE);
	if (moved == MAP_FAILED) {
		perror("mremap");
		return 1;
	}
	void *at;
	size_t qlen;
	int valid = pincoh_is_valid(key);
	printf("rank %d: grew %p to %p (%s), data \"%s\"\n", rank, (void *)buf, (void *)moved, moved == buf ? "in place" : "moved", moved);
	if (valid == 1 && pincoh_query(key, &at, &qlen) == 0)
		printf("rank %d: registration followed: now %p (+%zu)\n", rank, at, qlen);
	else
		printf("rank %d: registration invalidated (%d callback%s); re-register the new buffer\n", rank, fired, fired == 1 ? "" : "s");
	return 0;
}
