/* fork goes through libc's own fork, so atfork handlers and libc's locks stay
 * right; the shim's fork handlers (atfork.c) keep its locks and give the child an
 * empty table. The hook only tells the coordinator who the child is. clone
 * without CLONE_VM is treated as a fork (below). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../area.h"
#include "../atfork.h"
#include "../runtime.h"
#include "../session.h"
#include "../table.h"
#include "hooks.h"

static pid_t (*pc_orig_fork)(void);

void pc_fork_resolve(void)
{
	PC_NEXT(pc_orig_fork, "fork");
}

/* --fork dontfork: what ibv_fork_init does. Registered pages are marked
 * MADV_DONTFORK for the fork, so the child has no mapping there at all (a
 * touch is SIGSEGV, not a silent copy), and MADV_DOFORK again in the parent. */
static void mark(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, void *advice)
{
	(void)key, (void)flags;
	uintptr_t s = pc_page_start(start);
	syscall(SYS_madvise, s, pc_page_end(end, 0) - s, *(int *)advice);
}

/* Around a call that copies the address space: the child's pages per
 * --fork dontfork, and an event naming the child (the parent's events
 * stay the parent's: the child has no copy of the ring). */
static pid_t forklike(pid_t (*call)(void *), void *ctx)
{
	pid_t pid;
	int err, keep_out = 0, advice;
	if (!PC_GUARDED() && pc_fork_dontfork() && pc_table_count() && !pc_foreign()) {
		keep_out = 1;
		advice = MADV_DONTFORK;
		PC_ENTER();
		pc_table_foreach(mark, &advice);
		PC_LEAVE();
	}
	pid = call(ctx);
	err = errno;
	if (keep_out && pid != 0) {
		advice = MADV_DOFORK;
		PC_ENTER();
		pc_table_foreach(mark, &advice);
		PC_LEAVE();
	}
	if (pid > 0 && !PC_GUARDED() && pc_table_count() && !pc_foreign()) {
		PC_ENTER();
		pc_table_lock();
		pc_emit_fork(pid);
		pc_table_unlock();
		PC_LEAVE();
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
	if (!PC_NEXT(pc_orig_fork, "fork")) {
		errno = ENOSYS;
		return -1;
	}
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
	 * any other thread the child started would keep it alive. */
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
	if (!PC_NEXT(pc_orig_clone, "clone")) {
		errno = ENOSYS;
		return -1;
	}
	if ((flags & CLONE_VM) || !fn || PC_GUARDED())
		return pc_orig_clone(fn, stack, flags, arg, c.ptid, c.tls, c.ctid);
	return forklike(call_clone, &c);
}
