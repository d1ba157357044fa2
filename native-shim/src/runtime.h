/* The runtime: what every module of the shim may read, defined in runtime.c
 * and set by init.c (the constructor) and atfork.c (fork's child). It calls nothing. */
#ifndef PC_RUNTIME_H
#define PC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define PC_EXPORT __attribute__((visibility("default")))
#define PC_TLS __thread __attribute__((tls_model("initial-exec")))
#define PC_LIKELY(x) __builtin_expect(!!(x), 1)
#define PC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The most registrations a process holds (table.c's capacity; WELCOME may say fewer). */
#define PC_MAX_REGS (1u << 20)

/* Why this thread's hooked calls must go straight to the kernel, each reason
 * apart, in one word so a hook tests all of them with one load:
 * depth      the shim itself runs here (its locks may be held);
 * chaining   another interposer's hook runs here, called as our real call:
 *            its own calls back into libc must not loop through us;
 * selfcheck  patch.c is calling through its patches to see them arrive. */
union pc_guard {
	struct { uint16_t depth; uint8_t chaining; uint8_t selfcheck; } why;
	uint32_t any;
};
extern PC_TLS union pc_guard pc_guard;
#define PC_GUARDED() (pc_guard.any != 0)
#define PC_ENTER() ((void)pc_guard.why.depth++)
#define PC_LEAVE() ((void)pc_guard.why.depth--)
extern int pc_selfcheck_hits; /* hooks count arrivals while the guard says selfcheck */
static inline void pc_note_guarded(void)
{
	if (PC_UNLIKELY(pc_guard.why.selfcheck))
		pc_selfcheck_hits++;
}

/* Resolves libc's own `name` once (dlsym RTLD_NEXT) into a static of the caller. */
#define PC_NEXT(var, name) \
	(PC_LIKELY(var != NULL) ? var : (var = (__typeof__(var))pc_next(name)))
void *pc_next(const char *name);

/* Our pid, as of the constructor or fork's child handler. A process whose
 * getpid() differs was made without those handlers (vfork, clone without
 * CLONE_VM): it holds the parent's table and connection, so it must not act
 * on them. Checked on the slow path and by requests only. */
extern pid_t pc_pid;
static inline int pc_foreign(void) { return (pid_t)syscall(SYS_getpid) != pc_pid; }

/* 1 when this library was loaded before libc (LD_PRELOAD, or linked in):
 * then the program's calls reach our hooks. A library dlopen'ed later (koffi,
 * in a Node program started without the shim) comes after libc, and its
 * hooks see nothing: it stays inert, and pincoh calls return -ENOTCONN. */
extern int pc_interposed;

/* The kernel acts on whole pages: munmap(a, 1) unmaps a's page. */
extern uintptr_t pc_page_size;
static inline uintptr_t pc_page_end(uintptr_t start, size_t len)
{
	uintptr_t end = start + len;
	if (end < start || end > UINTPTR_MAX - pc_page_size)
		return UINTPTR_MAX;  /* wraps: whatever the kernel makes of it, treat as everything */
	return (end + pc_page_size - 1) & ~(pc_page_size - 1);
}
static inline uintptr_t pc_page_start(uintptr_t a) { return a & ~(pc_page_size - 1); }

#endif
