/* ucmchain: pincoh and UCX's ucm in one process, both patching libc's
 * munmap/mremap/madvise/mmap entries. Built twice: ucm-first links libucm, so
 * ucm patches libc before the shim's constructor runs; ucm-late (-DLATE)
 * dlopens it in main, as MPI_Init does, after the shim patched, while two
 * threads keep running through libc's munmap entry (free) as it is rewritten
 * (not with the argument "nochurn": ucm's own writes are not safe against
 * that under qemu-user, shim or no shim).
 * Prints whether ucm's own install succeeded, and whether a free() of a
 * registered 8 MiB buffer reached pincoh (fired) and ucm (ucm) both. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <dlfcn.h>
#include <pincoh.h>
#include "watch.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucm/api/ucm.h>

static volatile int ucm_seen;
static char *watch_at;

static void on_ucm(ucm_event_type_t type, ucm_event_t *ev, void *arg)
{
	char *a = ev->vm_unmapped.address;
	(void)arg;
	if (type == UCM_EVENT_VM_UNMAPPED && a <= watch_at && watch_at < a + ev->vm_unmapped.size)
		ucm_seen = 1;
}

#ifdef LATE
static volatile int stop;

/* Runs through libc's entries (free's munmap) while they are rewritten. */
static void *churn(void *arg)
{
	(void)arg;
	while (!stop) {
		char *p = malloc(40 << 20); /* above the largest mmap threshold: free unmaps it */
		p[0] = 1;
		free(p);
	}
	return NULL;
}
#endif

int main(int argc, char **argv)
{
	ucs_status_t (*set_handler)(int, int, ucm_event_callback_t, void *) = NULL;
#ifdef LATE
	void *ucm;
	pthread_t t[2];
	int threads = argc > 1 && !strcmp(argv[1], "nochurn") ? 0 : 2;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	if (!dlopen("libucs.so.0", RTLD_NOW | RTLD_GLOBAL) || !(ucm = dlopen("libucm.so.0", RTLD_NOW | RTLD_GLOBAL))) {
		printf("ucm missing: %s\n", dlerror());
		return 2;
	}
	set_handler = (ucs_status_t(*)(int, int, ucm_event_callback_t, void *))dlsym(ucm, "ucm_set_event_handler");
#else
	(void)argc, (void)argv;
	set_handler = ucm_set_event_handler;
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ucm status %d\n", (int)set_handler(UCM_EVENT_VM_UNMAPPED, 0, on_ucm, NULL));
#ifdef LATE
	stop = 1;
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
#endif
	size_t len = 8 << 20;
	char *p = malloc(len);
	memset(p, 1, len);
	watch_at = p + 4096;
	if (pincoh_register) {
		pincoh_on_invalidate(on_inval, NULL);
		if (pincoh_register(p, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			return 3;
	}
	free(p);
	if (pincoh_register) {
		struct pincoh_stats s;
		pincoh_get_stats(&s);
		printf("pincoh fired %d libc %d chained %d\n", fired, s.libc, s.chained);
	}
	printf("ucm saw free %d\n", ucm_seen);
	return 0;
}
