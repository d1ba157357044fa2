/* jtgarbage: a member of a job that writes garbage into the job table.
 *
 *   jtgarbage SEED WORDS
 *
 * It attaches to "victim" (another member's export) and puts once, publishes
 * a buffer of its own as "g", then writes WORDS random 32-bit words at random
 * places of its own read-write segment of the job table (the only part of it
 * it can write: /proc/self/maps shows the two mappings), and tries a put. It
 * then writes one word into the read-only mapping of the whole table, under
 * a SIGSEGV handler: that must fault. It waits for a line on stdin, puts
 * again, and exits 0. Prints one line per step; what its puts return is its
 * own business (garbage may make them fail), but nothing may crash. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <pincoh.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf back;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(back, 1);
}

/* the job table's mapping with these permissions ("r--s" or "rw-s") */
static char *mapping(const char *perms, size_t *len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	char *found = NULL;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char p[8];
		if (strstr(line, "pincoh-job") && sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3 && !strcmp(p, perms)) {
			found = (char *)lo;
			*len = hi - lo;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* xorshift: a failure replays from its seed */
static uint64_t state;
static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

int main(int argc, char **argv)
{
	uint64_t victim, key;
	size_t seg_len = 0, all_len = 0;
	long words = argc > 2 ? atol(argv[2]) : 1000;
	char *buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[16];
	int x = 7;

	state = argc > 1 ? strtoull(argv[1], NULL, 10) * 2654435761u + 1 : 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!pincoh_register || pincoh_register(buf, 65536, PINCOH_READ | PINCOH_WRITE, &key) != 0)
		return 2;
	printf("att %d\n", pincoh_attach("victim", 5000, &victim));
	printf("put %d\n", pincoh_put(victim, 0, &x, sizeof x));
	printf("pub %d\n", pincoh_publish("g", key));
	char *seg = mapping("rw-s", &seg_len), *all = mapping("r--s", &all_len);
	if (!seg || !all)
		return 3;
	for (long i = 0; i < words; i++) {
		uint32_t *w = (uint32_t *)seg + next() % (seg_len / 4);
		uint64_t r = next();
		/* small numbers, the states' shapes, and anything */
		*w = r % 4 == 0 ? (uint32_t)(r >> 32) % 4 : r % 4 == 1 ? (uint32_t)((r >> 8) << 4 | (r & 3)) : (uint32_t)(r >> 16);
	}
	printf("garbage %ld\n", words);
	printf("put %s\n", pincoh_put(victim, 0, &x, sizeof x) <= 0 ? "done" : "odd");
	signal(SIGSEGV, on_segv);
	if (sigsetjmp(back, 1) == 0) {
		*(volatile uint32_t *)(all + (next() % (all_len / 4)) * 4) = 0xdeadbeef;
		printf("ro written\n");
	} else {
		printf("ro fault\n");
	}
	signal(SIGSEGV, SIG_DFL);
	printf("waiting\n");
	if (!fgets(line, sizeof line, stdin))
		return 4;
	printf("put %s\n", pincoh_put(victim, 0, &x, sizeof x) <= 0 ? "done" : "odd");
	return 0;
}
