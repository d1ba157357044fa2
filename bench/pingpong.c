/* pingpong: the floor of any round trip, which a revoke no longer makes. A C
 * process sends a SYNC frame (24 bytes) over an AF_UNIX stream and waits for
 * a REPLY (24 bytes): to a C echo process (pingpong ITERS), or to a server at
 * SOCKET (pingpong ITERS SOCKET). With GAP_US, it sleeps that long before each round trip, as
 * a process that makes a call now and then does (both sides then wake from
 * sleep: the slow part on a VM). Prints p50/p99 of the round trip in ns.
 * usage: pingpong ITERS [SOCKET|-] [GAP_US] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int full(int fd, char *b, size_t n, int out)
{
	while (n) {
		ssize_t k = out ? write(fd, b, n) : read(fd, b, n);
		if (k <= 0)
			return -1;
		b += k, n -= (size_t)k;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	int sv[2] = { -1, -1 };
	char req[24] = { 24, 0, 0, 0, 5 /* SYNC */ }, rep[24] = { 0 };
	long gap = argc > 3 ? atol(argv[3]) : 0;
	if (argc > 2 && strcmp(argv[2], "-")) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
		sv[0] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(sv[0], (struct sockaddr *)&a, sizeof a) != 0)
			return 1;
	} else {
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		if (fork() == 0) {
			close(sv[0]);
			while (full(sv[1], req, sizeof req, 0) == 0 && full(sv[1], rep, sizeof rep, 1) == 0)
				;
			_exit(0);
		}
		close(sv[1]);
	}
	double *s = malloc(sizeof(double) * iters);
	for (long i = 0; i < iters; i++) {
		if (gap)
			usleep((useconds_t)gap);
		double t0 = now_ns();
		full(sv[0], req, sizeof req, 1);
		full(sv[0], rep, sizeof rep, 0);
		s[i] = now_ns() - t0;
	}
	close(sv[0]);
	if (argc <= 2 || !strcmp(argv[2], "-"))
		wait(NULL);
	qsort(s, iters, sizeof *s, cmp);
	printf("{\"p50\":%.0f,\"p99\":%.0f}\n", s[iters / 2], s[iters * 99 / 100]);
	return 0;
}
