/* soak: one rank of the soak test (test/soak/). usage: soak NREG SECONDS
 *
 * Keeps NREG registrations, each on its own 2-page mapping. Slots 0-3 are
 * published as "soak/<rank>/<slot>", and both neighbour ranks attach to them
 * and put into them all the time. Until SECONDS pass, it picks a registration
 * and changes it: munmap and map again at the same address, mremap it larger,
 * mprotect it read-only and back, or forks. After each change the old key
 * must be invalid (else: a missed invalidation), and it registers again.
 *
 * A published slot that changed gets a canary and stays unpublished for a
 * while; a put that lands in it meanwhile is a stale write. At the end it
 * prints one JSON line and "waiting", and exits when the runner (which audits
 * the coordinator against /proc/PID/maps meanwhile) sends a line. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <errno.h>
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define LEN (2 * PAGE)
#define PUBLISHED 4
#define CANARY 0x5C
#define QUARANTINE 64 /* operations a changed published slot waits, under canary, before it is published again */

struct reg { char *addr; size_t len; uint64_t key; int quarantine; };
static struct reg *regs;
static long nreg;
static int rank, size;
static unsigned long ops, missed, stale_writes, nputs, estale, reattach, forks;

struct nbr { uint64_t h; int live; char name[64]; };
static struct nbr nbrs[2 * PUBLISHED];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void need(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "soak rank %d: %s: %s\n", rank, what, strerror(-rc));
		exit(1);
	}
}

static void enroll(long i)
{
	need(pincoh_register(regs[i].addr, regs[i].len, PINCOH_READ | PINCOH_WRITE, &regs[i].key), "register");
	if (i < PUBLISHED) {
		char name[64];
		snprintf(name, sizeof name, "soak/%d/%ld", rank, i);
		need(pincoh_publish(name, regs[i].key), "publish");
	}
}

static void attach_all(void)
{
	for (int k = 0; k < 2 * PUBLISHED; k++) {
		struct nbr *n = &nbrs[k];
		if (n->live)
			continue;
		if (pincoh_attach(n->name, n->h ? 0 : 30000, &n->h) == 0) { /* first time: wait for it */
			n->live = 1;
			reattach++;
		}
	}
}

static void put_some(unsigned *seed)
{
	unsigned char stamp[64];
	memset(stamp, (unsigned char)(rank + 1), sizeof stamp);
	for (int j = 0; j < 4; j++) {
		struct nbr *n = &nbrs[rand_r(seed) % (2 * PUBLISHED)];
		if (!n->live)
			continue;
		int rc = pincoh_put(n->h, (size_t)(rand_r(seed) % (LEN / 64)) * 64, stamp, sizeof stamp);
		if (rc == 0)
			nputs++;
		else if (rc == -ESTALE) {
			estale++;
			pincoh_detach(n->h);
			n->live = 0;
		}
	}
}

/* A quarantined published slot: its canary must be intact before it goes public again. */
static void release(long i)
{
	for (size_t b = 0; b < regs[i].len; b++)
		if ((unsigned char)regs[i].addr[b] != CANARY) {
			stale_writes++;
			break;
		}
	regs[i].quarantine = 0;
	enroll(i);
}

static void change(long i, unsigned *seed)
{
	uint64_t old = regs[i].key;
	int op = i < PUBLISHED ? rand_r(seed) % 2 : rand_r(seed) % 4;
	switch (op) {
	case 0: /* munmap, and map again at the same address */
		munmap(regs[i].addr, regs[i].len);
		if (mmap(regs[i].addr, regs[i].len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != regs[i].addr)
			exit(2);
		break;
	case 1: /* read-only (the registration needs write), then back */
		mprotect(regs[i].addr, regs[i].len, PROT_READ);
		mprotect(regs[i].addr, regs[i].len, PROT_READ | PROT_WRITE);
		break;
	case 2: { /* grow, moving if need be; shrink back to keep the memory bounded */
		char *n = mremap(regs[i].addr, regs[i].len, 2 * LEN, MREMAP_MAYMOVE);
		if (n == MAP_FAILED)
			exit(3);
		regs[i].addr = mremap(n, 2 * LEN, LEN, 0);
		break;
	}
	default: { /* fork: the child holds nothing, the parent keeps everything */
		pid_t pid = fork();
		if (pid == 0)
			_exit(pincoh_is_valid(old) == 1 ? 1 : 0);
		int st;
		waitpid(pid, &st, 0);
		forks++;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || pincoh_is_valid(old) != 1)
			missed++;
		return;
	}
	}
	if (pincoh_is_valid(old) != 0)
		missed++;
	if (i < PUBLISHED) {
		memset(regs[i].addr, CANARY, regs[i].len);
		regs[i].quarantine = QUARANTINE;
	} else
		enroll(i);
}

int main(int argc, char **argv)
{
	nreg = argc > 1 ? atol(argv[1]) : 1000;
	double seconds = argc > 2 ? atof(argv[2]) : 10, end;
	unsigned seed;
	if (!pincoh_register) {
		fprintf(stderr, "soak: run under the shim\n");
		return 2;
	}
	rank = pincoh_rank() < 0 ? 0 : pincoh_rank();
	size = pincoh_size();
	seed = (unsigned)rank * 2654435761u + 1;
	if (nreg < PUBLISHED)
		nreg = PUBLISHED;
	regs = calloc((size_t)nreg, sizeof *regs);
	for (long i = 0; i < nreg; i++) {
		regs[i].addr = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		regs[i].len = LEN;
		enroll(i);
	}
	for (int k = 0; k < 2 * PUBLISHED; k++)
		snprintf(nbrs[k].name, sizeof nbrs[k].name, "soak/%d/%d", (rank + (k < PUBLISHED ? 1 : size - 1)) % size, k % PUBLISHED);
	attach_all();
	for (end = now() + seconds; now() < end;) {
		for (int j = 0; j < 64; j++, ops++) {
			long i = rand_r(&seed) % nreg;
			for (long q = 0; q < PUBLISHED; q++)
				if (regs[q].quarantine && --regs[q].quarantine == 0)
					release(q);
			if (!regs[i].quarantine)
				change(i, &seed);
			put_some(&seed);
		}
		attach_all();
	}
	for (long q = 0; q < PUBLISHED; q++)
		if (regs[q].quarantine)
			release(q);
	struct pincoh_stats s;
	pincoh_get_stats(&s);
	printf("{\"rank\":%d,\"ops\":%lu,\"missed\":%lu,\"stale_writes\":%lu,\"puts\":%lu,\"estale\":%lu,\"reattach\":%lu,"
	       "\"forks\":%lu,\"timeouts\":%llu,\"degraded\":%d}\n",
	       rank, ops, missed, stale_writes, nputs, estale, reattach, forks, (unsigned long long)s.timeouts, s.degraded);
	printf("waiting\n");
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 4;
	return 0;
}
