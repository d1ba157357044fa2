/* forkstress: fork again and again while 8 threads keep the shim busy
 * (registering, unmapping, reprotecting). A deadlock in the fork handlers
 * hangs this program; the test bounds it. Each child registers over its own
 * new connection and must not see the parent's registrations.
 * usage: forkstress [FORKS] */
#define _GNU_SOURCE
#define PINCOH_WEAK /* resolved from the preloaded shim */
#include <pincoh.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;
static uint64_t parent_key;

static void *busy(void *arg)
{
	(void)arg;
	while (!stop) {
		char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t k;
		pincoh_register(b, 8192, PINCOH_READ, &k);
		mprotect(b, 4096, PROT_NONE);
		munmap(b, 8192);
		void *p = malloc(1 << 16);
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 100, bad = 0;
	pthread_t t[8];
	char *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pincoh_register(mine, 4096, PINCOH_READ, &parent_key) != 0)
		return 3;
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, busy, NULL);
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			uint64_t k;
			char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			int inherited = pincoh_is_valid(parent_key) == 1;
			int rc = pincoh_register(b, 4096, PINCOH_READ, &k);
			munmap(b, 4096);
			_exit(inherited ? 10 : rc != 0 ? 11 : pincoh_is_valid(k) != 0 ? 12 : 0);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "child %d: status %d\n", i, st);
			bad++;
		}
	}
	stop = 1;
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("forks %d bad %d parent-valid %d\n", forks, bad, pincoh_is_valid(parent_key));
	return bad || pincoh_is_valid(parent_key) != 1;
}
