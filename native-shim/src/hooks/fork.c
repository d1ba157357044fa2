/* fork goes through libc's own fork, so atfork handlers and libc's locks stay
 * right; init.c's atfork handlers keep the shim's locks and give the child an
 * empty table. The hook only tells the coordinator who the child is. clone
 * without CLONE_VM is treated as a fork (below). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
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

/* Around a call that copies the address space: the child's pages per
 * --fork dontfork, and the coordinator told who the child is. */
static pid_t forklike(pid_t (*call)(void *), void *ctx)
{
	pid_t pid;
	int err, keep_out = 0, advice;
	if (!pc_guard && pc_fork_dontfork() && pc_table_count() && !pc_foreign()) {
		keep_out = 1;
		advice = MADV_DONTFORK;
		pc_guard++;
		pc_table_foreach(mark, &advice);
		pc_guard--;
	}
	pid = call(ctx);
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

static pid_t call_fork(void *ctx)
{
	(void)ctx;
	return pc_orig_fork();
}

PC_EXPORT pid_t fork(void)
{
	if (PC_UNLIKELY(!pc_orig_fork))
		pc_fork_resolve();
	return forklike(call_fork, NULL);
}

/* clone without CLONE_VM copies the address space as fork does, but glibc
 * runs no atfork handlers for it: we run the shim's own around it, so the
 * child starts with an empty table and no connection, as after fork. The
 * child's side runs first thing in the child, before the caller's function.
 * With CLONE_VM (a thread, or vfork's sharing) it passes through untouched. */
struct clone_call {
	int (*fn)(void *);
	void *stack, *arg, *ptid, *tls, *ctid;
	int flags;
};
static int (*pc_orig_clone)(int (*)(void *), void *, int, void *, ...);

static int clone_child(void *p)
{
	struct clone_call *c = p; /* our copy of the parent's stack */
	pc_atfork_child();
	/* glibc ends the child with exit(2) of this thread alone when fn returns:
	 * our listener thread, if the child connected, would keep it alive. */
	_exit(c->fn(c->arg));
}

static pid_t call_clone(void *p)
{
	struct clone_call *c = p;
	pid_t pid;
	pc_atfork_prepare();
	pid = pc_orig_clone(clone_child, c->stack, c->flags, c, c->ptid, c->tls, c->ctid);
	pc_atfork_parent(); /* the child never returns here */
	return pid;
}

PC_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	struct clone_call c = { .fn = fn, .stack = stack, .arg = arg, .flags = flags };
	va_list ap;
	/* as glibc's wrapper, read all three: the kernel looks only at those the flags name */
	va_start(ap, arg);
	c.ptid = va_arg(ap, void *);
	c.tls = va_arg(ap, void *);
	c.ctid = va_arg(ap, void *);
	va_end(ap);
	if (PC_UNLIKELY(!pc_orig_clone))
		pc_orig_clone = (int (*)(int (*)(void *), void *, int, void *, ...))dlsym(RTLD_NEXT, "clone");
	if (!pc_orig_clone) {
		errno = ENOSYS;
		return -1;
	}
	if ((flags & CLONE_VM) || !fn || pc_guard)
		return pc_orig_clone(fn, stack, flags, arg, c.ptid, c.tls, c.ctid);
	return forklike(call_clone, &c);
}
