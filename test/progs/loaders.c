/* loaders: registrations against calls from places a plain LD_PRELOAD can
 * miss. usage: loaders early|dlopen|deepbind|signal|sigstress
 *   early     a thread started by a library's constructor before the shim's
 *             (libearly.so, linked) unmaps a registered buffer
 *   dlopen    a library dlopen'd later unmaps one, and frees a malloc'd one
 *   deepbind  the same library opened with RTLD_DEEPBIND: its references bind
 *             to libc first, past the shim's symbols
 *   signal    a signal handler unmaps a registered buffer
 *   sigstress a timer signal's handler mprotects the main thread's registered
 *             page, 2,000 times, while that thread registers, mprotects and
 *             unmaps in a loop (inside the shim or not when interrupted)
 * Each case prints whether the invalidation arrived before the call returned. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <dlfcn.h>
#include <pincoh.h>
#include "watch.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

extern int early_started_unpatched;
void early_unmap(void *p, size_t len);

static char *sig_buf;
static volatile sig_atomic_t sig_seen, sig_count;

static char *registered(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fired = 0;
	if (p == MAP_FAILED || pincoh_register(p, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
		exit(3);
	return p;
}

static void report(const char *what)
{
	printf("%s: fired %d valid %d\n", what, fired, pincoh_is_valid(watched));
}

static void unmap_in_handler(int sig)
{
	(void)sig;
	munmap(sig_buf, 4096);
	sig_seen = fired; /* the callback ran inside the handler's munmap */
}

/* sigstress: the main thread's current registered page, made read-only from
 * the handler, interrupting the main thread anywhere: in the shim or not */
static char *volatile current;

static void protect_in_handler(int sig)
{
	char *p = current;
	(void)sig;
	if (p)
		mprotect(p, 4096, PROT_READ);
	sig_count++;
}

static void *open_lib(int flags)
{
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
	char *slash;
	if (n <= 0)
		exit(4);
	path[n] = 0;
	slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, "libdlunmap.so");
	void *h = dlopen(path, RTLD_NOW | flags);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		exit(4);
	}
	return h;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "early";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!pincoh_register) {
		printf("needs the shim\n");
		return 2;
	}
	pincoh_on_invalidate(on_inval, NULL);
	if (!strcmp(mode, "early")) {
		char *p = registered(8192);
		early_unmap(p, 8192);
		printf("early thread started before the patch %d; ", early_started_unpatched);
		report("munmap from it");
	} else if (!strcmp(mode, "dlopen") || !strcmp(mode, "deepbind")) {
		void *h = open_lib(!strcmp(mode, "deepbind") ? RTLD_DEEPBIND : 0);
		int (*dl_unmap)(void *, size_t) = (int (*)(void *, size_t))dlsym(h, "dl_unmap");
		void (*dl_free)(void *) = (void (*)(void *))dlsym(h, "dl_free");
		char *p = registered(8192);
		dl_unmap(p, 8192);
		report("munmap from the library");
		size_t len = 8 << 20;
		p = malloc(len);
		memset(p, 1, len);
		fired = 0;
		if (pincoh_register(p, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			return 3;
		dl_free(p);
		report("free from the library");
	} else if (!strcmp(mode, "signal")) {
		sig_buf = registered(4096);
		signal(SIGUSR1, unmap_in_handler);
		raise(SIGUSR1);
		printf("in the handler: fired %d; ", sig_seen);
		report("after it");
	} else {
		struct itimerval it = { { 0, 200 }, { 0, 200 } };
		sig_buf = registered(4096);
		signal(SIGALRM, protect_in_handler);
		setitimer(ITIMER_REAL, &it, NULL);
		int rounds = 0;
		while (sig_count < 2000) {
			char *q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			uint64_t k;
			pincoh_register(q, 8192, PINCOH_READ | PINCOH_WRITE, &k);
			current = q;
			mprotect(q + 4096, 4096, PROT_READ);
			current = NULL;
			munmap(q, 8192);
			rounds++;
		}
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_REAL, &off, NULL);
		printf("sigstress: %d handler calls, %s main-thread rounds, no deadlock\n", (int)sig_count, rounds > 100 ? "over 100" : "few");
	}
	return 0;
}
