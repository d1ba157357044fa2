/* clones: clone() without CLONE_VM copies the address space like fork, but
 * glibc runs no atfork handlers for it. The child must start as a fork child
 * does: none of the parent's registrations, a connection of its own; and
 * nothing it does may touch the parent's. 8 threads keep the shim busy.
 * usage: clones [ROUNDS]
 * Each child reports: the parent's key as it sees it (not 1: not its own), its
 * own registration's result and validity, and validity after it unmaps that
 * (0: the invalidation reached it). The parent reports its key's validity. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <pincoh.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;
static uint64_t parent_key;
static char *parent_buf;

static void *busy(void *arg)
{
	(void)arg;
	while (!stop) {
		char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t k;
		pincoh_register(b, 8192, PINCOH_READ | PINCOH_WRITE, &k);
		munmap(b, 8192);
	}
	return NULL;
}

static int child(void *arg)
{
	int out = *(int *)arg, inherited = pincoh_is_valid(parent_key), own, valid, after;
	char line[128];
	uint64_t k;
	munmap(parent_buf, 4096); /* its own copy: the parent's registration must not go */
	char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	own = pincoh_register(b, 4096, PINCOH_READ | PINCOH_WRITE, &k);
	valid = pincoh_is_valid(k);
	munmap(b, 4096);
	after = pincoh_is_valid(k);
	int n = snprintf(line, sizeof line, "child inherited %d own %d valid %d after-munmap %d\n", inherited, own, valid, after);
	return write(out, line, (size_t)n) == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 10, st, out = 1;
	size_t stack_len = 1 << 20;
	char *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t[8];
	parent_buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pincoh_register || pincoh_register(parent_buf, 4096, PINCOH_READ | PINCOH_WRITE, &parent_key) != 0)
		return 3;
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, busy, NULL);
	for (int r = 0; r < rounds; r++) {
		pid_t pid = clone(child, stack + stack_len, SIGCHLD, &out);
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			printf("round %d: child failed\n", r);
	}
	stop = 1;
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("parent valid %d\n", pincoh_is_valid(parent_key));
	return 0;
}
