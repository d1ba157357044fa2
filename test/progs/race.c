/* race: 8 threads race munmap/mprotect/mremap on registered and unregistered
 * memory. Every registration a thread's call touches must be invalidated before
 * the call returns (missed), and none it does not touch may be (spurious).
 * usage: race [ROUNDS] */
#define _GNU_SOURCE
#define PINCOH_WEAK /* resolved from the preloaded shim */
#include <pincoh.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define LEN (64u << 10)

static int rounds = 300;
static int bare; /* "race N bare": the same calls with no registrations (runs without a coordinator) */
static unsigned long missed, spurious, ops;

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	/* a registration no call ever touches: must stay valid throughout */
	char *keep = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t keep_key;
	if (!bare && pincoh_register(keep, LEN, PINCOH_READ | PINCOH_WRITE, &keep_key) != 0)
		abort();
	for (int r = 0; r < rounds; r++) {
		char *buf = mmap(NULL, 2 * LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t key = 0;
		int registered = !bare && rand_r(&seed) % 4 != 0;
		/* register the second half; the op always covers it */
		if (registered && pincoh_register(buf + LEN, LEN, PINCOH_READ | PINCOH_WRITE, &key) != 0)
			abort();
		if (bare && r % 50 == 0) { /* and a fork now and then */
			pid_t pid = fork();
			if (pid == 0)
				_exit(0);
			waitpid(pid, NULL, 0);
		}
		switch (rand_r(&seed) % 3) {
		case 0:
			munmap(buf, 2 * LEN);
			break;
		case 1:
			mprotect(buf + LEN / 2, LEN, PROT_READ);
			munmap(buf, 2 * LEN);
			break;
		default: {
			char *n = mremap(buf, 2 * LEN, 4 * LEN, MREMAP_MAYMOVE);
			munmap(n == MAP_FAILED ? buf : n, n == MAP_FAILED ? 2 * LEN : 4 * LEN);
		}
		}
		if (registered && pincoh_is_valid(key) != 0)
			__atomic_fetch_add(&missed, 1, __ATOMIC_RELAXED);
		if (!bare && pincoh_is_valid(keep_key) != 1)
			__atomic_fetch_add(&spurious, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&ops, 1, __ATOMIC_RELAXED);
	}
	munmap(keep, LEN);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];
	if (argc > 1)
		rounds = atoi(argv[1]);
	bare = argc > 2 && !strcmp(argv[2], "bare");
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	struct pincoh_stats s = { 0 };
	if (bare) {
		printf("ops %lu missed %lu spurious %lu\n", ops, missed, spurious);
		return 0;
	}
	pincoh_get_stats(&s);
	printf("ops %lu missed %lu spurious %lu slow %llu timeouts %llu\n", ops, missed, spurious,
	       (unsigned long long)s.slow_calls, (unsigned long long)s.timeouts);
	return missed || spurious;
}
