/* bench: the measurements behind `npm run bench` (bench/run.ts drives it).
 *
 *   bench hook NREGS ITERS   under libpincoh-stub.so (real calls stubbed out):
 *                            ns per munmap/mprotect/mremap on unregistered memory
 *                            with NREGS registrations, and a plain indirect call;
 *                            the same page again and again, then (_spread) 64
 *                            pages between registrations by turns, and
 *                            (_outside) 64 pages past all of them by turns
 *   bench loop ITERS NREGS   mmap+munmap 4 KiB and mprotect loops, ns per iteration
 *                            (run bare and under libpincoh.so; NREGS registrations
 *                            elsewhere when the shim is there)
 *   bench unshared ITERS     munmap of a registered (never published) 64 KiB buffer
 *                            and of an unregistered one, interleaved: medians (ns)
 *   bench pair ITERS         pincoh_register + pincoh_deregister of unshared memory (ns per pair)
 *   bench regs N ORDER [ADDR]  registers N 4 KiB pages of one mapping (in address
 *                            order ADDR: asc, desc or random; asc by default), then
 *                            deregisters them all in ORDER: oldest, newest or random
 *                            first; ns per register and per deregister (the
 *                            coordinator drains the ring between batches, untimed)
 *   bench prot ITERS NREGS   an mprotect loop before this process connects, then
 *                            after it registered NREGS (ns per call, both)
 *   bench load SECONDS       invalidations per second of unshared registrations
 *                            (register + mprotect PROT_NONE + back, in a loop);
 *                            bare (no shim): the same mprotect pairs
 *   bench revoke ROUNDS [US] [stop|coordstop]  rank 0: p50/p99 of a munmap of a 64 KiB
 *                            registration the other ranks are attached to, and of an
 *                            unshared registered 64 KiB buffer, in turns in the same
 *                            round, US µs after the barrier that saw them attach;
 *                            other ranks: attach each round; with stop, every
 *                            attacher is stopped (SIGSTOP) first; with coordstop,
 *                            the coordinator (pincoh run: rank 0's parent)
 *   bench attprot ITERS      rank 1: an mprotect loop before attaching to rank 0's
 *                            export and after: ns per call
 *   bench put                rank 0 exports 1 MiB; rank 1 times puts of 4 KiB, 64 KiB
 *                            and 1 MiB against raw process_vm_writev to the same place
 *   bench spawn N CMD...     runs CMD N times, one after another (fork, execvp, wait4):
 *                            each run's wall time (µs) and the largest peak RSS (KiB)
 */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	/* and 64 such pages, each between other registrations, asked by turns:
	 * no two calls in a row read the same filter word or tree leaf */
	char *ts[64], *to[64];
	double best[7] = { 1e18, 1e18, 1e18, 1e18, 1e18, 1e18, 1e18 };
	/* and 64 pages past every registration, by turns */
	char *far = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (long k = 0; k < 64; k++) {
		ts[k] = r ? r + (2 * (long)(((uint64_t)k * 2654435761u) % (uint64_t)nregs) + 1) * 4096 : t + (k & 3) * 4096;
		to[k] = r && far < r ? far - (k + 1) * 4096 : far + 64 * 4096 + k * 4096;
	}
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
		for (long i = 0; i < iters; i++)
			indirect(ts[i & 63], 4096);
		double t5 = now_ns();
		for (long i = 0; i < iters; i++)
			munmap(ts[i & 63], 4096);
		double t6 = now_ns();
		for (long i = 0; i < iters; i++)
			munmap(to[i & 63], 4096);
		double t7 = now_ns();
		double d[7] = { t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6 };
		for (int k = 0; k < 7; k++)
			if (d[k] / iters < best[k])
				best[k] = d[k] / iters;
	}
	printf("{\"nregs\":%ld,\"call\":%.2f,\"munmap\":%.2f,\"mprotect\":%.2f,\"mremap\":%.2f,\"call_spread\":%.2f,\"munmap_spread\":%.2f,\"munmap_outside\":%.2f}\n",
	       nregs, best[0], best[1], best[2], best[3], best[4], best[5], best[6]);
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

static double median_of(double *s, long n)
{
	qsort(s, n, sizeof *s, cmp);
	return s[n / 2];
}

static char *touched(size_t len)
{
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t o = 0; o < len; o += 4096)
		m[o] = 1;
	return m;
}

/* The cost a registration cache pays: a munmap of a registered buffer nobody
 * else holds, against the same munmap of an unregistered one, interleaved
 * (and in alternating order) so drift hits both alike. */
static void unshared(long iters)
{
	double *reg = malloc(sizeof(double) * iters), *plain = malloc(sizeof(double) * iters);
	for (long i = 0; i < iters; i++) {
		char *a = touched(65536), *b = touched(65536);
		uint64_t k;
		if (pincoh_register(a, 65536, PINCOH_READ | PINCOH_WRITE, &k) != 0)
			exit(1);
		for (int j = 0; j < 2; j++) {
			int registered = (j == 0) == (i & 1);
			double t0 = now_ns();
			munmap(registered ? a : b, 65536);
			(registered ? reg : plain)[i] = now_ns() - t0;
		}
	}
	printf("{\"registered\":%.0f,\"unregistered\":%.0f}\n", median_of(reg, iters), median_of(plain, iters));
}

static void pair(long iters)
{
	char *m = touched(4096);
	uint64_t k;
	double best = 1e18;
	if (pincoh_register(m, 4096, PINCOH_READ, &k) != 0 || pincoh_deregister(k) != 0) /* connects */
		exit(1);
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			if (pincoh_register(m, 4096, PINCOH_READ, &k) != 0 || pincoh_deregister(k) != 0)
				exit(1);
		double t = (now_ns() - t0) / iters;
		if (t < best)
			best = t;
	}
	printf("{\"pair\":%.1f}\n", best);
}

static void need(int rc, const char *what);

/* A fixed shuffle (xorshift64), the same in every run. */
static void shuffle(long *v, long n, uint64_t seed)
{
	for (long i = n - 1; i > 0; i--) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		long j = (long)(seed % (uint64_t)(i + 1)), t = v[i];
		v[i] = v[j], v[j] = t;
	}
}

/* What a registration cache's table costs: N registrations of neighbouring
 * pages, then every one deregistered, in the order the cache evicts in. */
static void regs(long n, const char *order, const char *addr)
{
	size_t page = 4096;
	long *slot = malloc(sizeof(long) * n), *by_age = malloc(sizeof(long) * n);
	uint64_t *keys = malloc(sizeof(uint64_t) * n), k;
	char *m = mmap(NULL, (n + 1) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (n <= 0 || !slot || !by_age || !keys || m == MAP_FAILED || (strcmp(order, "oldest") && strcmp(order, "newest") && strcmp(order, "random")) ||
	    (strcmp(addr, "asc") && strcmp(addr, "desc") && strcmp(addr, "random"))) {
		fprintf(stderr, "bench: regs N oldest|newest|random [asc|desc|random]\n");
		exit(2);
	}
	/* connects, on a page of its own */
	need(pincoh_register(m + n * page, page, PINCOH_READ, &k), "register");
	need(pincoh_deregister(k), "deregister");
	for (long i = 0; i < n; i++)
		slot[i] = !strcmp(addr, "desc") ? n - 1 - i : i, by_age[i] = i;
	if (!strcmp(addr, "random"))
		shuffle(slot, n, 0x9E3779B97F4A7C15ull);
	if (!strcmp(order, "newest"))
		for (long i = 0; i < n; i++)
			by_age[i] = n - 1 - i;
	else if (!strcmp(order, "random"))
		shuffle(by_age, n, 0xD1B54A32D192ED03ull);
	/* Each change is an event in the ring, which holds 4096: in batches of
	 * 1,000, with the coordinator made to drain it in between (a barrier of
	 * one, untimed), the figures are the shim's and not the coordinator's. */
	double reg = 0, dereg = 0;
	for (long i = 0; i < n;) {
		double t0 = now_ns();
		for (long e = i + 1000 < n ? i + 1000 : n; i < e; i++)
			need(pincoh_register(m + slot[i] * page, page, PINCOH_READ | PINCOH_WRITE, &keys[i]), "register");
		reg += now_ns() - t0;
		need(pincoh_barrier(60000), "barrier");
	}
	for (long i = 0; i < n;) {
		double t0 = now_ns();
		for (long e = i + 1000 < n ? i + 1000 : n; i < e; i++)
			need(pincoh_deregister(keys[by_age[i]]), "deregister");
		dereg += now_ns() - t0;
		need(pincoh_barrier(60000), "barrier");
	}
	printf("{\"n\":%ld,\"order\":\"%s\",\"addr\":\"%s\",\"register\":%.1f,\"deregister\":%.1f}\n", n, order, addr,
	       reg / n, dereg / n);
}

/* mprotect on a page between PROT_NONE guards: it never merges with a neighbour */
static double prot_loop(long iters)
{
	static char *p;
	if (!p) {
		char *g = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		p = g + 4096;
		mprotect(p, 4096, PROT_READ | PROT_WRITE);
	}
	double best = 1e18;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			mprotect(p, 4096, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE);
		double t = (now_ns() - t0) / iters;
		if (t < best)
			best = t;
	}
	return best;
}

static void prot(long iters, long nregs)
{
	double before = prot_loop(iters), after;
	register_many(nregs < 1 ? 1 : nregs);
	after = prot_loop(iters);
	printf("{\"before\":%.1f,\"after\":%.1f}\n", before, after);
}

static void load(double seconds)
{
	long n = 0;
	double end = now_ns() + seconds * 1e9;
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	while (now_ns() < end) {
		uint64_t k;
		for (int i = 0; i < 64; i++, n++) {
			if (pincoh_register && pincoh_register(m, 4096, PINCOH_READ, &k) != 0)
				exit(1);
			mprotect(m, 4096, PROT_NONE); /* invalidates: 3 events, no round trip */
			mprotect(m, 4096, PROT_READ | PROT_WRITE);
		}
	}
	printf("{\"invalidations\":%ld,\"seconds\":%.3f}\n", n, seconds);
}

static void need(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "bench: %s: %s\n", what, strerror(-rc));
		exit(1);
	}
}

/* Is process pid stopped (state T in /proc/PID/stat)? */
static int stopped(int pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[2] == 'T';
}

/* 64 KiB, touched (the munmap frees real pages), registered */
static char *touched_registered(uint64_t *k)
{
	char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(m, 1, 65536);
	need(pincoh_register(m, 65536, PINCOH_READ | PINCOH_WRITE, k), "register");
	return m;
}

static void revoke_latency(long rounds, long settle_us, int stop, int coordstop)
{
	char name[64];
	int n = pincoh_size();
	if (pincoh_rank() == 0) {
		double *s = malloc(sizeof(double) * rounds), *u = malloc(sizeof(double) * rounds), *q = malloc(sizeof(double) * rounds);
		int *pids = (int *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t pk;
		long stale = 0;
		/* the attachers put their pids here, to be waited for once stopped */
		need(pincoh_register(pids, 4096, PINCOH_READ | PINCOH_WRITE, &pk), "register");
		need(pincoh_publish("rv/pids", pk), "publish");
		for (long r = 0; r < rounds; r++) {
			uint64_t k, ku;
			char *m = touched_registered(&k), *un = touched_registered(&ku);
			snprintf(name, sizeof name, "rv/%ld", r);
			need(pincoh_publish(name, k), "publish");
			need(pincoh_barrier(60000), "barrier"); /* everyone attached */
			for (int i = 1; stop && i < n; i++)
				while (!stopped(pids[i]))
					usleep(100);
			if (coordstop) {
				kill(getppid(), SIGSTOP);
				while (!stopped(getppid()))
					usleep(100);
			}
			if (settle_us)
				usleep((useconds_t)settle_us); /* let the barrier's wake-ups settle: time the revoke alone */
			for (int turn = 0; turn < 2; turn++) { /* in turns: which goes first alternates by round */
				int published = (turn + (int)r) % 2;
				double t0 = now_ns();
				munmap(published ? m : un, 65536);
				(published ? s : u)[r] = now_ns() - t0;
			}
			q[r] = s[r] / u[r];
			if (coordstop)
				kill(getppid(), SIGCONT);
			for (int i = 1; stop && i < n; i++)
				kill(pids[i], SIGCONT);
			need(pincoh_barrier(60000), "barrier"); /* everyone saw its handle die */
		}
		need(pincoh_barrier(60000), "barrier"); /* every attacher has put its count */
		for (int i = 1; i < n; i++)
			stale += pids[512 + i];
		qsort(s, rounds, sizeof *s, cmp);
		qsort(u, rounds, sizeof *u, cmp);
		qsort(q, rounds, sizeof *q, cmp);
		printf("{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f,\"unshared_p50\":%.0f,\"unshared_p99\":%.0f,\"ratio\":%.3f,\"stale\":%ld}\n", s[rounds / 2],
		       s[rounds * 99 / 100], s[rounds - 1], u[rounds / 2], u[rounds * 99 / 100], q[rounds / 2], stale);
	} else {
		uint64_t ph;
		int me = getpid(), seen = 0;
		need(pincoh_attach("rv/pids", 60000, &ph), "attach");
		need(pincoh_put(ph, (size_t)pincoh_rank() * sizeof me, &me, sizeof me), "put");
		for (long r = 0; r < rounds; r++) {
			uint64_t h;
			int x = 0;
			snprintf(name, sizeof name, "rv/%ld", r);
			need(pincoh_attach(name, 60000, &h), "attach");
			need(pincoh_barrier(60000), "barrier");
			if (stop)
				raise(SIGSTOP);
			need(pincoh_barrier(60000), "barrier"); /* the owner's munmap has returned */
			seen += pincoh_put(h, 0, &x, sizeof x) == -ESTALE;
			pincoh_detach(h);
		}
		need(pincoh_put(ph, (size_t)(512 + pincoh_rank()) * sizeof seen, &seen, sizeof seen), "put");
		need(pincoh_barrier(60000), "barrier");
	}
}

static void attprot(long iters)
{
	uint64_t k, h;
	if (pincoh_rank() == 0) {
		char *m = touched(4096);
		need(pincoh_register(m, 4096, PINCOH_READ | PINCOH_WRITE, &k), "register");
		need(pincoh_publish("ap", k), "publish");
		need(pincoh_barrier(600000), "barrier");
		return;
	}
	char *m = touched(4096);
	need(pincoh_register(m, 4096, PINCOH_READ, &k), "register"); /* connected, registered: the owner's case */
	double before = prot_loop(iters);
	need(pincoh_attach("ap", 60000, &h), "attach");
	double after = prot_loop(iters);
	printf("{\"before\":%.1f,\"after\":%.1f}\n", before, after);
	need(pincoh_barrier(600000), "barrier");
}

static void put_bandwidth(void)
{
	size_t sizes[] = { 4096, 65536, 1 << 20 };
	uint64_t k, h;
	if (pincoh_rank() == 0) {
		char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(m, 1, 1 << 20);
		need(pincoh_register(m, 1 << 20, PINCOH_READ | PINCOH_WRITE, &k), "register");
		need(pincoh_publish("bw", k), "publish");
		need(pincoh_barrier(600000), "barrier"); /* until rank 1 is done */
		return;
	}
	char *src = malloc(1 << 20);
	void *dst;
	int pid;
	memset(src, 2, 1 << 20);
	need(pincoh_attach("bw", 60000, &h), "attach");
	need(pincoh_handle_info(h, &pid, &dst, NULL, NULL), "handle_info");
	printf("[");
	for (int i = 0; i < 3; i++) {
		size_t len = sizes[i];
		long iters = (long)((256u << 20) / len);
		double best_raw = 1e18, best_put = 1e18;
		for (int rep = 0; rep < 5; rep++) {
			struct iovec l = { src, len }, r = { dst, len };
			double t0 = now_ns();
			for (long j = 0; j < iters; j++)
				if (syscall(SYS_process_vm_writev, pid, &l, 1UL, &r, 1UL, 0UL) != (long)len)
					exit(1);
			double t1 = now_ns();
			for (long j = 0; j < iters; j++)
				need(pincoh_put(h, 0, src, len), "put");
			double t2 = now_ns();
			if (t1 - t0 < best_raw) best_raw = t1 - t0;
			if (t2 - t1 < best_put) best_put = t2 - t1;
		}
		/* bytes per ns = GB/s */
		printf("%s{\"size\":%zu,\"raw\":%.3f,\"put\":%.3f}", i ? "," : "", len, (double)len * iters / best_raw,
		       (double)len * iters / best_put);
	}
	printf("]\n");
	need(pincoh_barrier(60000), "barrier");
}

/* What starting a program costs, as a launcher's daemon pays it: wall time
 * from fork to its reaping, and its peak RSS (ru_maxrss: the largest of the
 * images it ran, the wrapper's and CMD's). */
static void spawn_runs(long n, char **cmd)
{
	long max_rss = 0;
	printf("{\"us\": [");
	for (long i = 0; i < n; i++) {
		struct rusage ru;
		int status;
		double t0 = now_ns();
		pid_t pid = fork();
		if (pid == 0) {
			execvp(cmd[0], cmd);
			_exit(127);
		}
		if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "bench spawn: %s did not exit 0\n", cmd[0]);
			exit(1);
		}
		printf("%s%.1f", i ? ", " : "", (now_ns() - t0) / 1000);
		if (ru.ru_maxrss > max_rss)
			max_rss = ru.ru_maxrss;
	}
	printf("], \"max_rss_kib\": %ld}\n", max_rss);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "hook"))
		hook(atol(argv[2]), atol(argv[3]));
	else if (argc >= 4 && !strcmp(argv[1], "loop"))
		loop(atol(argv[2]), atol(argv[3]));
	else if (argc >= 3 && !strcmp(argv[1], "unshared"))
		unshared(atol(argv[2]));
	else if (argc >= 3 && !strcmp(argv[1], "pair"))
		pair(atol(argv[2]));
	else if (argc >= 4 && !strcmp(argv[1], "regs"))
		regs(atol(argv[2]), argv[3], argc > 4 ? argv[4] : "asc");
	else if (argc >= 4 && !strcmp(argv[1], "prot"))
		prot(atol(argv[2]), atol(argv[3]));
	else if (argc >= 3 && !strcmp(argv[1], "attprot"))
		attprot(atol(argv[2]));
	else if (argc >= 3 && !strcmp(argv[1], "load"))
		load(atof(argv[2]));
	else if (argc >= 3 && !strcmp(argv[1], "revoke"))
		revoke_latency(atol(argv[2]), argc > 3 ? atol(argv[3]) : 0, argc > 4 && !strcmp(argv[4], "stop"), argc > 4 && !strcmp(argv[4], "coordstop"));
	else if (argc >= 2 && !strcmp(argv[1], "put"))
		put_bandwidth();
	else if (argc >= 4 && !strcmp(argv[1], "spawn"))
		spawn_runs(atol(argv[2]), argv + 3);
	else {
		fprintf(stderr, "usage: bench hook NREGS ITERS | loop ITERS NREGS | unshared ITERS | pair ITERS | regs N ORDER [ADDR] | prot ITERS NREGS | load SECONDS | revoke ROUNDS [US] [stop|coordstop] | attprot ITERS | put | spawn N CMD...\n");
		return 2;
	}
	return 0;
}
