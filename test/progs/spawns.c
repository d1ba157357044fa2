/* spawns: the ways to start a program for which glibc runs no atfork
 * handlers (system, popen, posix_spawn, vfork + exec), again and again while 8
 * threads keep the shim busy. A deadlock hangs it (the test bounds it); the
 * parent's registration must stay valid throughout, and a vfork child's munmap
 * of its own fresh mapping must not touch the parent's table.
 * usage: spawns [ROUNDS] */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <pincoh.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int stop;

static void *busy(void *arg)
{
	(void)arg;
	while (!stop) {
		char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t k;
		pincoh_register(b, 8192, PINCOH_READ | PINCOH_WRITE, &k);
		mprotect(b, 4096, PROT_READ);
		munmap(b, 8192);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 30;
	volatile int bad = 0; /* survives vfork */
	pthread_t t[8];
	char *mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t key;
	if (pincoh_register(mine, 4096, PINCOH_READ | PINCOH_WRITE, &key) != 0)
		return 3;
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, busy, NULL);
	for (int r = 0; r < rounds; r++) {
		char line[16] = "";
		bad += system("true") != 0;
		FILE *p = popen("echo popen", "r");
		if (!p || !fgets(line, sizeof line, p) || strcmp(line, "popen\n"))
			bad++;
		if (p)
			pclose(p);
		pid_t pid;
		char *args[] = { "true", NULL };
		int st;
		if (posix_spawnp(&pid, "true", NULL, NULL, args, environ) != 0 || waitpid(pid, &st, 0) != pid || st != 0)
			bad++;
		pid = vfork();
		if (pid == 0) {
			execlp("true", "true", (char *)NULL);
			_exit(127);
		}
		if (waitpid(pid, &st, 0) != pid || st != 0)
			bad++;
		if (pincoh_is_valid(key) != 1)
			bad++;
	}
	stop = 1;
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("spawns %d bad %d valid %d\n", rounds, bad, pincoh_is_valid(key));
	return bad != 0;
}
