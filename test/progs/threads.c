/* threads: many threads at once, under the shim with a coordinator.
 *
 *   threads many N ROUNDS   N threads each register a fresh 64 KiB buffer and
 *                           munmap it, ROUNDS times; each also holds one
 *                           registration nothing touches
 *   threads alive N ROUNDS  N threads parked alive (64 KiB stacks) while the
 *                           main thread does ROUNDS register/munmap rounds
 *   threads exiting ROUNDS  2 threads start and join short-lived threads that
 *                           register their own stack before they return (libc
 *                           then madvises and unmaps or caches those stacks),
 *                           while 4 threads do register/munmap rounds
 *
 * Every munmap must invalidate its registration before it returns, with the
 * callback run in that thread (missed), nothing else may be invalidated
 * (spurious), and every stack registration still valid at the end must still
 * be mapped (stale). Prints "missed M spurious S stale T threads N". */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <errno.h>
#include <pincoh.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LEN (64u << 10)
static _Atomic unsigned long missed, spurious, stale, started;
static __thread volatile uint64_t expect_key; /* volatile: glibc declares munmap __leaf__ (it "never calls back"), but the callback runs inside it */
static __thread volatile int fired;
static int rounds;

static void on_inval(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)addr, (void)len, (void)reason, (void)ctx;
	if (expect_key && key == expect_key)
		fired = 1;
}

static void churn(int n)
{
	char *keep = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t keep_key;
	if (pincoh_register(keep, LEN, PINCOH_READ, &keep_key) != 0)
		abort();
	for (int r = 0; r < n; r++) {
		char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t k;
		if (pincoh_register(m, LEN, PINCOH_READ | PINCOH_WRITE, &k) != 0)
			abort();
		expect_key = k, fired = 0;
		munmap(m, LEN);
		if (!fired || pincoh_is_valid(k) != 0)
			missed++;
		expect_key = 0;
	}
	if (pincoh_is_valid(keep_key) != 1)
		spurious++;
	pincoh_deregister(keep_key);
	munmap(keep, LEN);
}

static void *churner(void *arg)
{
	(void)arg;
	started++;
	churn(rounds);
	return NULL;
}

static pthread_barrier_t parked;
static void *parker(void *arg)
{
	(void)arg;
	started++;
	pthread_barrier_wait(&parked);
	return NULL;
}

/* a short-lived thread: registers its own stack and returns */
static uint64_t stack_keys[4096];
static void *stack[4096];
static size_t stack_len[4096];
static _Atomic int nstacks;
static void *shortlived(void *arg)
{
	pthread_attr_t a;
	int i = nstacks++;
	(void)arg;
	if (i >= 4096 || pthread_getattr_np(pthread_self(), &a))
		return NULL;
	pthread_attr_getstack(&a, &stack[i], &stack_len[i]);
	pthread_attr_destroy(&a);
	if (pincoh_register(stack[i], stack_len[i], PINCOH_READ | PINCOH_WRITE, &stack_keys[i]) != 0)
		stack_keys[i] = 0;
	return NULL;
}

static void *spawner(void *arg)
{
	pthread_attr_t a;
	(void)arg;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, LEN);
	for (int r = 0; r < rounds; r++) {
		pthread_t t;
		if (pthread_create(&t, &a, shortlived, NULL) == 0)
			pthread_join(t, NULL);
		started++;
	}
	pthread_attr_destroy(&a);
	return NULL;
}

static pthread_t *spawn_all(int n, void *(*fn)(void *), size_t stack_size)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	pthread_attr_t a;
	pthread_attr_init(&a);
	if (stack_size)
		pthread_attr_setstacksize(&a, stack_size);
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], &a, fn, NULL) != 0) {
			fprintf(stderr, "threads: pthread_create %d: %s\n", i, strerror(errno));
			exit(2);
		}
	pthread_attr_destroy(&a);
	return t;
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "many";
	int n = argc > 2 ? atoi(argv[2]) : 256;
	rounds = argc > 3 ? atoi(argv[3]) : 20;
	pincoh_on_invalidate(on_inval, NULL);
	if (!strcmp(how, "many")) {
		pthread_t *t = spawn_all(n, churner, LEN);
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
	} else if (!strcmp(how, "alive")) {
		pthread_barrier_init(&parked, NULL, (unsigned)n + 1);
		pthread_t *t = spawn_all(n, parker, LEN);
		while (started < (unsigned long)n)
			usleep(1000);
		churn(rounds);
		pthread_barrier_wait(&parked);
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
	} else if (!strcmp(how, "exiting")) {
		rounds = n; /* threads exiting ROUNDS */
		pthread_t *s = spawn_all(2, spawner, 0), *w = spawn_all(4, churner, LEN);
		for (int i = 0; i < 2; i++)
			pthread_join(s[i], NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(w[i], NULL);
		for (int i = 0; i < nstacks && i < 4096; i++)
			if (stack_keys[i] && pincoh_is_valid(stack_keys[i]) == 1 && msync(stack[i], stack_len[i], MS_ASYNC) != 0)
				stale++; /* still valid, but its memory is gone */
		n = nstacks;
	}
	printf("missed %lu spurious %lu stale %lu threads %d\n", missed, spurious, stale, n);
	return 0;
}
