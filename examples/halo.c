/* halo: a halo exchange whose receive buffers are freed and reallocated every
 * few iterations, the registration-cache pattern of real MPI codes. Each
 * rank receives from both neighbours into its buffer (left half from the
 * left, right half from the right). Every REALLOC iterations a rank unmaps
 * its buffer, maps a new one (often at the same address), registers and
 * publishes it under a new generation; its neighbours' handles go stale
 * (-ESTALE) and they attach to the new one. No put ever lands in a freed
 * buffer, and every byte is checked.
 *
 *   npx pincoh run -n 4 -- examples/bin/halo [ITERATIONS] [REALLOC]
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include "common.h"

#define HALF 8192

static unsigned char byte_of(int from, int it, unsigned i) { return (unsigned char)(from * 13 + it * 5 + i * 3); }

struct nbr { int rank; uint64_t h; int gen; };

/* A handle on the neighbour's buffer of generation gen, attaching anew if needed. */
static uint64_t handle_for(struct nbr *n, int gen, int *reattached)
{
	char name[64];
	if (n->gen == gen)
		return n->h;
	if (n->gen >= 0)
		pincoh_detach(n->h);
	snprintf(name, sizeof name, "halo/%d/%d", n->rank, gen);
	check(pincoh_attach(name, 10000, &n->h), "attach");
	n->gen = gen;
	(*reattached)++;
	return n->h;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 200, every = argc > 2 ? atoi(argv[2]) : 10;
	require_pincoh(argv[0]);
	int rank = rank_or_zero(), size = pincoh_size(), bad = 0, reattached = 0, stale_seen = 0, same_addr = 0;
	struct nbr left = { (rank + size - 1) % size, 0, -1 }, right = { (rank + 1) % size, 0, -1 };
	unsigned char *buf = NULL, msg[HALF];
	uint64_t key = 0;
	char name[64];

	if (every < 1)
		every = 1;
	for (int it = 0; it < iters; it++) {
		int gen = it / every;
		if (it % every == 0) {
			/* free the old buffer and allocate a new one: pincoh revokes the neighbours' handles */
			unsigned char *old = buf;
			if (old)
				munmap(old, 2 * HALF);
			buf = mmap(NULL, 2 * HALF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			same_addr += buf == old;
			check(pincoh_register(buf, 2 * HALF, PINCOH_READ | PINCOH_WRITE, &key), "register");
			snprintf(name, sizeof name, "halo/%d/%d", rank, gen);
			check(pincoh_publish(name, key), "publish");
		}
		check(pincoh_barrier(10000), "barrier");
		/* the handles of the last generation must be dead by now */
		if (it % every == 0 && left.gen >= 0) {
			int rc = pincoh_put(left.h, HALF, msg, 1);
			stale_seen += rc == -ESTALE;
			if (rc != -ESTALE)
				bad++; /* a put into a freed buffer went through */
		}
		for (unsigned i = 0; i < HALF; i++)
			msg[i] = byte_of(rank, it, i);
		/* my data goes into the right half of my left neighbour and the left half of my right one */
		check(pincoh_put(handle_for(&left, gen, &reattached), HALF, msg, HALF), "put left");
		check(pincoh_put(handle_for(&right, gen, &reattached), 0, msg, HALF), "put right");
		check(pincoh_barrier(10000), "barrier");
		for (unsigned i = 0; i < HALF; i++)
			if (buf[i] != byte_of(left.rank, it, i) || buf[HALF + i] != byte_of(right.rank, it, i)) {
				bad++;
				break;
			}
	}
	check(pincoh_barrier(10000), "barrier");
	printf("rank %d of %d: %d iterations, buffer reallocated %d times (%d at the same address), "
	       "stale handles caught %d, re-attached %d, %d bad\n",
	       rank, size, iters, (iters + every - 1) / every, same_addr, stale_seen, reattached, bad);
	return bad != 0;
}
