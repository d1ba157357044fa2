/* fork goes through libc's own fork, so atfork handlers and libc's locks stay
 * right; init.c's atfork handlers keep the shim's locks and give the child an
 * empty table. The hook only tells the coordinator who the child is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../proto.h"
#include "../shim.h"

static pid_t (*pc_orig_fork)(void);

void pc_fork_resolve(void)
{
	pc_orig_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
}

/* --fork dontfork: what ibv_fork_init does. Registered pages are marked
 * MADV_DONTFORK for the fork, so the child has no mapping there at all (a
 * touch is SIGSEGV, not a silent copy), and MADV_DOFORK again in the parent. */
static void mark(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, int last, void *advice)
{
	(void)key, (void)flags, (void)last;
	uintptr_t s = pc_page_start(start);
	syscall(SYS_madvise, s, pc_page_end(end, 0) - s, *(int *)advice);
}

PC_EXPORT pid_t fork(void)
{
	pid_t pid;
	int err, keep_out = 0, advice;
	if (PC_UNLIKELY(!pc_orig_fork))
		pc_fork_resolve();
	if (!pc_guard && pc_fork_dontfork() && pc_table_count() && !pc_foreign()) {
		keep_out = 1;
		advice = MADV_DONTFORK;
		pc_guard++;
		pc_table_foreach(mark, &advice);
		pc_guard--;
	}
	pid = pc_orig_fork();
	err = errno;
	if (keep_out && pid != 0) {
		advice = MADV_DOFORK;
		pc_guard++;
		pc_table_foreach(mark, &advice);
		pc_guard--;
	}
	if (pid > 0 && !pc_guard && pc_table_count() && pc_conn_up()) {
		struct pc_fork f = { .child = pid };
		pc_guard++;
		pc_notify(PC_T_FORK, &f, sizeof f);
		pc_guard--;
	}
	errno = err;
	return pid;
}
