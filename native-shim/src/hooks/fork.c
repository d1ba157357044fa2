/* fork goes through libc's own fork, so atfork handlers and libc's locks stay
 * right; init.c's atfork handlers keep the shim's locks and give the child an
 * empty table. The hook only tells the coordinator who the child is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>
#include "../proto.h"
#include "../shim.h"

static pid_t (*pc_orig_fork)(void);

void pc_fork_resolve(void)
{
	pc_orig_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
}

PC_EXPORT pid_t fork(void)
{
	pid_t pid;
	int err;
	if (PC_UNLIKELY(!pc_orig_fork))
		pc_fork_resolve();
	pid = pc_orig_fork();
	err = errno;
	if (pid > 0 && !pc_guard && pc_table_count() && pc_conn_up()) {
		struct pc_fork f = { .child = pid };
		pc_guard++;
		pc_notify(PC_T_FORK, &f, sizeof f);
		pc_guard--;
	}
	errno = err;
	return pid;
}
