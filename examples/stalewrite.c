/* stalewrite: the corruption pincoh prevents, shown and then prevented.
 *
 * Ranks 1..N-1 (1 to 16 of them) attach to rank 0's exported buffer and put
 * a pattern into it in a tight loop, each into its own 4 KiB. Rank 0, round
 * after round, waits until every pattern arrives, then replaces the buffer
 * with a new one at the same address (munmap and mmap MAP_FIXED, or mremap
 * it away, or mprotect it to PROT_NONE and back), fills it with a canary and
 * watches for a while. If any put lands after the change, the canary is
 * gone: a stale write.
 *
 *   npx pincoh run -n 2 -- examples/bin/stalewrite [munmap|mremap|mprotect] [ROUNDS]
 *   npx pincoh run -n 17 -- examples/bin/stalewrite ...                  # 16 attachers
 *   npx pincoh run -n 2 --no-coherence -- examples/bin/stalewrite ...   # the bug
 *
 * Exits 3 when a canary was overwritten.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "common.h"

#define LEN (64u << 10)
#define PUT (4u << 10)
#define PATTERN 0xAB
#define CANARY 0x5C

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void name_of(char *out, size_t n, int round) { snprintf(out, n, "stale/%d", round); }

static int owner(const char *mode, int rounds)
{
	char *a = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *spare = mmap(NULL, LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int corrupted = 0, waited_out = 0;
	char name[64];
	for (int round = 0; round < rounds; round++) {
		uint64_t key;
		memset(a, 0, LEN);
		check(pincoh_register(a, LEN, PINCOH_READ | PINCOH_WRITE, &key), "register");
		name_of(name, sizeof name, round);
		check(pincoh_publish(name, key), "publish");
		/* wait until every attacher's puts arrive: they are writing now. Bounded
		 * (a rank may be gone), but far past any scheduling delay: a round an
		 * attacher missed is one it cannot find stale */
		double until = now_ms() + 30000;
		int arrived = 0;
		while (!arrived && now_ms() < until) {
			arrived = 1;
			for (int r = 1; r < pincoh_size(); r++)
				arrived &= ((volatile char *)a)[(r - 1) * PUT] == (char)PATTERN;
		}
		waited_out += !arrived;

		if (!strcmp(mode, "mremap")) {
			/* move the pages away (the registration goes with the policy), reuse the address */
			if (mremap(a, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, spare) == MAP_FAILED)
				die("mremap");
			if (mmap(a, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a)
				die("mmap");
		} else if (!strcmp(mode, "mprotect")) {
			/* PROT_NONE takes the registration's permissions away; then the memory is reused */
			mprotect(a, LEN, PROT_NONE);
			mprotect(a, LEN, PROT_READ | PROT_WRITE);
		} else {
			munmap(a, LEN);
			if (mmap(a, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != a)
				die("mmap");
		}
		memset(a, CANARY, LEN);
		double hold = now_ms() + 2;
		while (now_ms() < hold)
			;
		for (unsigned i = 0; i < (unsigned)(pincoh_size() - 1) * PUT; i++)
			if (((volatile char *)a)[i] != (char)CANARY) {
				corrupted++;
				break;
			}
	}
	/* tell the attacher we are done: a small registration published as "stale/done" */
	char *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t done_key;
	check(pincoh_register(flag, 4096, PINCOH_READ, &done_key), "register");
	check(pincoh_publish("stale/done", done_key), "publish");
	pincoh_barrier(30000);
	printf("stalewrite %s: %d rounds, %d attacher%s, canary overwritten in %d (attachers late in %d)\n", mode, rounds,
	       pincoh_size() - 1, pincoh_size() > 2 ? "s" : "", corrupted, waited_out);
	if (corrupted)
		printf("stalewrite: STALE WRITES: a put landed in memory that was no longer the exported buffer\n");
	return corrupted ? 3 : 0;
}

static int attacher(void)
{
	char buf[PUT], name[64];
	unsigned long puts = 0, stale = 0;
	uint64_t done;
	memset(buf, PATTERN, sizeof buf);
	for (int round = 0;; round++) {
		uint64_t h;
		int rc = -ETIMEDOUT;
		name_of(name, sizeof name, round);
		/* the next round's buffer, or the owner's word that it is done; a
		 * later round if the owner went on without us (it waits 30 s) */
		for (int tries = 0; tries < 600 && rc == -ETIMEDOUT; tries++) {
			rc = pincoh_attach(name, 100, &h);
			if (rc == -ETIMEDOUT && pincoh_attach("stale/done", 0, &done) == 0)
				goto out;
			for (int ahead = 1; ahead <= 8 && rc == -ETIMEDOUT; ahead++) {
				char later[64];
				name_of(later, sizeof later, round + ahead);
				rc = pincoh_attach(later, 0, &h);
				if (rc == 0) {
					fprintf(stderr, "rank %d: round %d was over before I attached (the owner waited 30 s for my puts); going on with round %d\n",
						pincoh_rank(), round, round + ahead);
					round += ahead;
				}
			}
		}
		if (rc == -ETIMEDOUT) {
			fprintf(stderr, "rank %d: the owner published neither round %d's buffer (%s) nor stale/done within 60 s: it is stuck or gone\n",
				pincoh_rank(), round, name);
			return 1;
		}
		check(rc, "attach");
		for (;;) {
			rc = pincoh_put(h, (size_t)(pincoh_rank() - 1) * PUT, buf, sizeof buf);
			if (rc == 0)
				puts++;
			if (rc == -ESTALE) {
				stale++;
				break;
			}
			if ((puts & 255) == 0 && pincoh_attach("stale/done", 0, &done) == 0)
				goto out;
		}
		pincoh_detach(h);
	}
out:
	pincoh_barrier(30000);
	printf("stalewrite attacher: %lu puts, %lu handles found stale\n", puts, stale);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = "munmap";
	int rounds = 200;
	require_pincoh(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] >= '0' && argv[i][0] <= '9')
			rounds = atoi(argv[i]);
		else
			mode = argv[i];
	}
	if (strcmp(mode, "munmap") && strcmp(mode, "mremap") && strcmp(mode, "mprotect")) {
		fprintf(stderr, "stalewrite: mode is munmap, mremap or mprotect\n");
		return 2;
	}
	if (pincoh_size() < 2 || pincoh_size() > 17) {
		fprintf(stderr, "stalewrite: run with 2 to 17 ranks (1 to 16 attachers): npx pincoh run -n 2 -- %s\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return pincoh_rank() == 0 ? owner(mode, rounds) : attacher();
}
