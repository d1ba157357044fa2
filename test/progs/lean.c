/* lean: a process that cannot have what the shim would like to have.
 *
 *   lean nofile    no descriptor left (RLIMIT_NOFILE at the count open)
 *   lean seccomp   a seccomp filter makes socket() fail with EPERM
 *   lean memfd     a seccomp filter makes memfd_create() fail with EPERM
 *   lean connect   a seccomp filter makes connect() fail with EPERM
 *   lean nothread  no memory for another thread's stack (RLIMIT_AS), then attach
 *                  (pincoh starts no thread: it works)
 *   lean mountns   a new mount namespace hides the coordinator's socket, after
 *                  the process lost its connection (it closed every descriptor)
 *
 * In each, the hooked calls must stay exactly transparent (printed as
 * "transparent 1") and pincoh_* calls return a clear negative errno. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pincoh.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *page, *spare;

static void on_inval(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)key, (void)addr, (void)len, (void)ctx;
	printf("cb reason %d\n", reason);
}

/* the same answers as without the shim, on memory mapped beforehand: EINVAL
 * for bad bits, success with errno untouched */
static int transparent(void)
{
	static int n;
	char *p = spare + 4096 * (n++ % 8);
	int ok;
	errno = 777;
	ok = mprotect(p, 4096, 0x7fff0000) == -1 && errno == EINVAL;
	errno = 777;
	ok &= mprotect(p, 4096, PROT_READ) == 0 && errno == 777;
	errno = 777;
	ok &= munmap(p, 4096) == 0 && errno == 777;
	return ok;
}

static int deny(int nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}


int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "nofile";
	uint64_t k, h;
	page = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	spare = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pincoh_on_invalidate(on_inval, NULL);
	if (!strcmp(how, "nofile")) {
		int filler[64], n = 0;
		struct rlimit r, low;
		getrlimit(RLIMIT_NOFILE, &r);
		low = r;
		low.rlim_cur = 64;
		setrlimit(RLIMIT_NOFILE, &low);
		while (n < 64 && (filler[n] = dup(0)) >= 0) /* every descriptor taken */
			n++;
		printf("reg %d\n", pincoh_register(page, 4096, PINCOH_READ, &k));
		printf("transparent %d\n", transparent());
		while (n > 0)
			close(filler[--n]);
		setrlimit(RLIMIT_NOFILE, &r);
		printf("reg %d\n", pincoh_register(page, 4096, PINCOH_READ, &k));
	} else if (!strcmp(how, "seccomp") || !strcmp(how, "memfd") || !strcmp(how, "connect")) {
		if (deny(!strcmp(how, "memfd") ? SYS_memfd_create : !strcmp(how, "connect") ? SYS_connect : SYS_socket))
			return 2;
		printf("reg %d\n", pincoh_register(page, 4096, PINCOH_READ, &k));
		printf("transparent %d\n", transparent());
	} else if (!strcmp(how, "nothread")) {
		struct rlimit r, low;
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		if (!f || fscanf(f, "%lu", &pages) != 1)
			return 2;
		fclose(f);
		printf("reg %d\n", pincoh_register(page, 8192, PINCOH_READ | PINCOH_WRITE, &k));
		printf("pub %d\n", pincoh_publish("lean", k));
		pincoh_on_invalidate(NULL, NULL);
		getrlimit(RLIMIT_AS, &r);
		low = r;
		low.rlim_cur = (pages + 4) * 4096; /* not a thread stack more */
		setrlimit(RLIMIT_AS, &low);
		printf("att %d\n", pincoh_attach("lean", 1000, &h));
		printf("transparent %d\n", transparent());
		setrlimit(RLIMIT_AS, &r);
		printf("att %d\n", pincoh_attach("lean", 1000, &h));
	} else if (!strcmp(how, "mountns")) {
		char dir[256];
		uint64_t k2;
		printf("reg %d\n", pincoh_register(page, 4096, PINCOH_READ, &k));
		for (int fd = 3; fd < 1024; fd++)
			close(fd); /* the connection goes */
		snprintf(dir, sizeof dir, "%s", getenv("PINCOH_SOCKET"));
		*strrchr(dir, '/') = 0;
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("tmpfs", dir, "tmpfs", 0, NULL))
			return 2;
		printf("bar %d\n", pincoh_barrier(100)); /* a request: finds the connection gone, and no socket to reconnect to */
		printf("reg %d\n", pincoh_register(page + 8192, 4096, PINCOH_READ, &k2));
		printf("transparent %d\n", transparent());
		printf("munmap %d\n", munmap(page, 4096)); /* the first registration, still ours: invalidated here */
		printf("valid %d\n", pincoh_is_valid(k));
	}
	return 0;
}
