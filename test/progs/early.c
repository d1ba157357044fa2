/* libearly.so: a library whose constructor starts a thread before the shim's
 * constructor runs (the program links it, so it is initialised first). The
 * thread notes whether libc's munmap was already patched when it started, then
 * unmaps whatever the program hands it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>

int early_started_unpatched = -1;
static void *_Atomic target;
static size_t target_len;
static _Atomic int done;

static void *worker(void *arg)
{
	(void)arg;
	while (!target)
		sched_yield();
	munmap(target, target_len);
	done = 1;
	return NULL;
}

/* Called by the program: the early thread unmaps [p, p+len) and we wait for it. */
void early_unmap(void *p, size_t len)
{
	target_len = len;
	target = p;
	while (!done)
		sched_yield();
}

__attribute__((constructor)) static void early_init(void)
{
	pthread_t t;
	const unsigned char *entry = dlsym(RTLD_NEXT, "munmap");
	early_started_unpatched = entry && !(entry[0] == 0x49 || (entry[0] == 0xF3 && entry[4] == 0x49));
	pthread_create(&t, NULL, worker, NULL);
	pthread_detach(t);
}
