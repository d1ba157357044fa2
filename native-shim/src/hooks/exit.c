/* Exit: an atexit handler registered by our constructor runs last, after the
 * application's own (which may still deregister or use their registrations);
 * _exit and _Exit skip atexit, so they are hooked. Either way the coordinator
 * revokes every export before this process's memory goes, rather than when it
 * notices the closed socket, by which time the pid may be another process's.
 * Last, pincoh exec's rank says farewell (session.c). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include "../runtime.h"
#include "../session.h"
#include "../slowpath.h"
#include "hooks.h"

static void pc_at_exit(void)
{
	pc_slow_everything(0);
	pc_session_farewell();
}

void pc_exit_init(void) { atexit(pc_at_exit); }

PC_EXPORT void _exit(int status)
{
	static void (*real)(int);
	pc_slow_everything(0);
	pc_session_farewell();
	if (PC_NEXT(real, "_exit"))
		real(status);
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

PC_EXPORT void _Exit(int status) { _exit(status); }
