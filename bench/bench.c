/* bench: the measurements behind `npm run bench` (bench/run.ts drives it).
 *
 *   bench hook NREGS ITERS   under libpincoh-stub.so (real calls stubbed out):
 *                            ns per munmap/mprotect/mremap on unregistered memory
 *                            with NREGS registrations, and a plain indirect call
 *   bench loop ITERS NREGS   mmap+munmap 4 KiB and mprotect loops, ns per iteration
 *                            (run bare and under libpincoh.so; NREGS registrations
 *                            elsewhere when the shim is there)
 *   bench slow ITERS         p50/p99 of a munmap that hits a registration
 *   bench load SECONDS       invalidations per second (register + munmap in a loop)
 */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

__attribute__((noinline)) static int null_call(void *a, size_t l)
{
	__asm__ volatile("" ::"r"(a), "r"(l) : "memory");
	return 0;
}
static int (*volatile indirect)(void *, size_t) = null_call;

/* Reserves 2n pages (bare runs too, so both have the same layout) and, under
 * the shim, registers every other page in ascending order: n separate
 * entries, cheap to insert. */
static char *register_many(long n)
{
	size_t page = 4096;
	if (n <= 0)
		return NULL;
	char *r = mmap(NULL, 2 * n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	for (long i = 0; i < n && pincoh_register; i++) {
		uint64_t k;
		if (pincoh_register(r + 2 * i * page, page, PINCOH_READ, &k) != 0) {
			fprintf(stderr, "bench: register %ld failed\n", i);
			exit(1);
		}
	}
	return r;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void hook(long nregs, long iters)
{
	char *r = register_many(nregs);
	/* the worst case: an unregistered page in the middle of the registered
	 * ones, so the search runs its full depth and cannot stop early */
	char *t = r ? r + (nregs | 1) * 4096 : mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double best[4] = { 1e18, 1e18, 1e18, 1e18 };
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			indirect(t, 4096);
		double t1 = now_ns();
		for (long i = 0; i < iters; i++)
			munmap(t, 4096);
		double t2 = now_ns();
		for (long i = 0; i < iters; i++)
			mprotect(t, 4096, PROT_READ);
		double t3 = now_ns();
		for (long i = 0; i < iters; i++)
			mremap(t, 4096, 4096, 0);
		double t4 = now_ns();
		double d[4] = { t1 - t0, t2 - t1, t3 - t2, t4 - t3 };
		for (int k = 0; k < 4; k++)
			if (d[k] / iters < best[k])
				best[k] = d[k] / iters;
	}
	printf("{\"nregs\":%ld,\"call\":%.2f,\"munmap\":%.2f,\"mprotect\":%.2f,\"mremap\":%.2f}\n", nregs, best[0], best[1], best[2], best[3]);
}

static void loop(long iters, long nregs)
{
	register_many(nregs);
	/* the page toggled by mprotect sits between PROT_NONE guards, so it never
	 * merges with a neighbour that happens to differ between runs */
	char *g = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = g + 4096;
	mprotect(p, 4096, PROT_READ | PROT_WRITE);
	double t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(m, 4096);
	}
	double t1 = now_ns();
	for (long i = 0; i < iters; i++)
		mprotect(p, 4096, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE);
	double t2 = now_ns();
	printf("{\"mmap_munmap\":%.1f,\"mprotect\":%.1f}\n", (t1 - t0) / iters, (t2 - t1) / iters);
}

static void slow(long iters)
{
	double *s = malloc(sizeof(double) * iters);
	for (long i = 0; i < iters; i++) {
		char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t k;
		if (pincoh_register(m, 4096, PINCOH_READ, &k) != 0)
			exit(1);
		double t0 = now_ns();
		munmap(m, 4096);
		s[i] = now_ns() - t0;
	}
	qsort(s, iters, sizeof *s, cmp);
	printf("{\"p50\":%.0f,\"p99\":%.0f}\n", s[iters / 2], s[iters * 99 / 100]);
}

static void load(double seconds)
{
	long n = 0;
	double end = now_ns() + seconds * 1e9;
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	while (now_ns() < end) {
		uint64_t k;
		for (int i = 0; i < 64; i++, n++) {
			if (pincoh_register(m, 4096, PINCOH_READ, &k) != 0)
				exit(1);
			mprotect(m, 4096, PROT_NONE); /* invalidates: BEGIN, ACK, DONE */
			mprotect(m, 4096, PROT_READ | PROT_WRITE);
		}
	}
	printf("{\"invalidations\":%ld,\"seconds\":%.3f}\n", n, seconds);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "hook"))
		hook(atol(argv[2]), atol(argv[3]));
	else if (argc >= 4 && !strcmp(argv[1], "loop"))
		loop(atol(argv[2]), atol(argv[3]));
	else if (argc >= 3 && !strcmp(argv[1], "slow"))
		slow(atol(argv[2]));
	else if (argc >= 3 && !strcmp(argv[1], "load"))
		load(atof(argv[2]));
	else {
		fprintf(stderr, "usage: bench hook NREGS ITERS | loop ITERS NREGS | slow ITERS | load SECONDS\n");
		return 2;
	}
	return 0;
}
