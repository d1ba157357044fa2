/* The runtime's globals (runtime.h): set by init.c, read everywhere. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "runtime.h"

PC_TLS union pc_guard pc_guard;
int pc_selfcheck_hits;
pid_t pc_pid;
uintptr_t pc_page_size = 4096;
int pc_interposed;

/* libc's own definition of a function we replace */
void *pc_next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}
