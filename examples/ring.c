/* ring: each rank exports a receive buffer, attaches to its right neighbour's,
 * and puts a message around the ring, iteration after iteration; every byte
 * is checked on arrival. Double-buffered by parity, so one barrier an
 * iteration is enough.
 *
 *   npx pincoh run -n 4 -- examples/bin/ring [ITERATIONS]
 */
#include <string.h>
#include <sys/mman.h>
#include "common.h"

#define MSG 4096

static unsigned char byte_of(int from, int it, unsigned i) { return (unsigned char)(from * 31 + it * 7 + i); }

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 500, bad = 0;
	require_pincoh(argv[0]);
	int rank = rank_or_zero(), size = pincoh_size();
	int right = (rank + 1) % size, left = (rank + size - 1) % size;
	unsigned char *recv = mmap(NULL, 2 * MSG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), msg[MSG];
	uint64_t key, h;
	char name[64];

	check(pincoh_register(recv, 2 * MSG, PINCOH_READ | PINCOH_WRITE, &key), "register");
	snprintf(name, sizeof name, "ring/%d", rank);
	check(pincoh_publish(name, key), "publish");
	snprintf(name, sizeof name, "ring/%d", right);
	check(pincoh_attach(name, 10000, &h), "attach");
	check(pincoh_barrier(10000), "barrier");

	for (int it = 0; it < iters; it++) {
		size_t slot = (size_t)(it & 1) * MSG;
		for (unsigned i = 0; i < MSG; i++)
			msg[i] = byte_of(rank, it, i);
		check(pincoh_put(h, slot, msg, MSG), "put");
		check(pincoh_barrier(10000), "barrier");
		for (unsigned i = 0; i < MSG; i++)
			if (recv[slot + i] != byte_of(left, it, i)) {
				bad++;
				break;
			}
	}
	check(pincoh_barrier(10000), "barrier"); /* nobody puts into a buffer already gone */
	printf("rank %d of %d: %d iterations from rank %d, %d bad\n", rank, size, iters, left, bad);
	return bad != 0;
}
