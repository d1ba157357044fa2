/* fdreuse: a program that reuses file descriptor numbers, as shells, daemons
 * and launchers do, over the shim's own connection.
 *
 *   fdreuse dup2     after registering, dup2()s its own socketpair over the
 *                    shim's socket, talks through it, and keeps using pincoh
 *   fdreuse closeall closes every descriptor >= 3 (as closefrom does), then
 *                    keeps using pincoh
 *   fdreuse watch    an attacher dup2()s over its connection: the coordinator
 *                    sees it close and expels it (no thread of pincoh's watches);
 *                    the next put is -ESTALE
 *
 * Its own messages must come through byte for byte (the shim must not read or
 * write them), nothing may hang, and pincoh must go on after reconnecting:
 * register, publish, and a munmap of published memory. Prints one line per
 * step; exits 1 on a mismatch. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* the descriptor that is a socket (the shim's connection: the only one here) */
static int find_socket(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	int found = -1;
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, target, sizeof target - 1);
		if (l > 0 && (target[l] = 0, !strncmp(target, "socket:", 7)))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

/* 1000 messages each way through the pair, every byte checked */
static int talk(int mine, int other)
{
	char out[64], in[64];
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(out, sizeof out, "message %d from the program", i);
		if (write(other, out, (size_t)n) != n || read(mine, in, (size_t)n) != n || memcmp(in, out, (size_t)n))
			return -1;
		if (write(mine, out, (size_t)n) != n || read(other, in, (size_t)n) != n || memcmp(in, out, (size_t)n))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "dup2";
	char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t k1, k2, k3;
	int rc, sv[2], fd;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("reg %d\n", pincoh_register(m, 4096, PINCOH_READ | PINCOH_WRITE, &k1));
	fd = find_socket();
	printf("shim socket %s\n", fd >= 0 ? "found" : "missing");
	if (!strcmp(how, "watch")) {
		uint64_t h;
		int x = 1;
		printf("pub %d\n", pincoh_publish("self", k1));
		printf("att %d\n", pincoh_attach("self", 1000, &h));
		printf("put %d\n", pincoh_put(h, 0, &x, sizeof x));
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		if (dup2(sv[0], find_socket()) < 0)
			return 2;
		usleep(1500 * 1000);
		printf("put %d\n", pincoh_put(h, 0, &x, sizeof x));
		printf("talk %d\n", talk(fd, sv[1]));
		return 0;
	}
	if (!strcmp(how, "dup2")) {
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		if (dup2(sv[0], fd) != fd)
			return 2;
		close(sv[0]);
		/* the program talks through "its" descriptor; then pincoh works, then it talks again */
		printf("talk %d\n", talk(fd, sv[1]));
	} else {
		for (int i = 3; i < 1024; i++)
			close(i);
	}
	rc = pincoh_register(m + 8192, 4096, PINCOH_READ | PINCOH_WRITE, &k2);
	printf("reg %d\n", rc);
	printf("pub %d\n", pincoh_publish("fdreuse", k2));
	printf("reg %d\n", pincoh_register(m + 16384, 4096, PINCOH_READ, &k3));
	printf("munmap %d\n", munmap(m + 8192, 4096)); /* published: waits for the coordinator */
	printf("valid %d %d\n", pincoh_is_valid(k2), pincoh_is_valid(k3));
	if (!strcmp(how, "dup2")) {
		printf("talk %d\n", talk(fd, sv[1]));
		/* nothing of the shim's may be waiting in the program's socket */
		fcntl(fd, F_SETFL, O_NONBLOCK);
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		char junk[16];
		printf("left over %zd %zd\n", read(fd, junk, sizeof junk), read(sv[1], junk, sizeof junk));
	}
	struct pincoh_stats s;
	pincoh_get_stats(&s);
	printf("connected %d\n", s.connected);
	return 0;
}
