/* Start-up: configuration, fork handlers. Nothing here connects: a process
 * that never registers never talks to the coordinator. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

PC_TLS union pc_guard pc_guard;
pid_t pc_pid;
uintptr_t pc_page_size = 4096;
int pc_interposed;

/* libc's own definition of a function we replace */
void *pc_next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* In the order they nest: the session (a connect takes the table lock), the
 * table (a thread holding it may wait for the coordinator: a full ring), then
 * the connection's own. */
void pc_atfork_prepare(void)
{
	pc_session_atfork_prepare();
	pc_table_lock();
	pc_conn_atfork_prepare();
}

void pc_atfork_parent(void)
{
	pc_conn_atfork_parent();
	pc_table_unlock();
	pc_session_atfork_parent();
}

void pc_atfork_child(void)
{
	pc_pid = (pid_t)syscall(SYS_getpid);
	pc_table_reset_child();
	pc_area_reset_child();
	pc_attach_reset_child();
	pc_jt_reset_child();
	pc_conn_atfork_child();
	pc_session_atfork_child();
	pc_counters.degraded = 0;
}

/* Were we loaded before libc? The link map lists objects in load order:
 * the program, LD_PRELOAD's libraries (a sanitizer runtime, then us), its
 * dependencies, libc. A library dlopen'ed later (koffi in a Node program run
 * without the shim) comes after libc, and the program's calls never reach
 * its hooks. dlsym(RTLD_DEFAULT, "munmap") cannot tell: a sanitizer runtime
 * preloaded before us intercepts munmap too. */
static int loaded_before_libc(void)
{
	Dl_info info;
	struct link_map *me = NULL;
	if (!dladdr1((void *)pc_next, &info, (void **)&me, RTLD_DL_LINKMAP) || !me)
		return 1; /* cannot tell: behave as we always did */
	for (struct link_map *l = me->l_prev; l; l = l->l_prev) {
		const char *base = l->l_name ? strrchr(l->l_name, '/') : NULL;
		base = base ? base + 1 : l->l_name;
		if (base && strncmp(base, "libc.so", 7) == 0)
			return 0;
	}
	return 1;
}

__attribute__((constructor(102))) static void pc_init(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0)
		pc_page_size = (uintptr_t)ps;
	pc_pid = (pid_t)syscall(SYS_getpid);
	pc_interposed = loaded_before_libc();
	/* Not preloaded: nothing we do can be coherent (the program's munmap,
	 * mprotect and fork go past us), so we stay inert and silent: no libc
	 * patch, no malloc fallback, no messages, no handlers. The API answers
	 * -ENOTCONN (session.c), and the Node binding says why. */
	pc_config_load(pc_interposed);
	if (!pc_interposed)
		return;
	pc_fork_resolve();
	pc_free_resolve();
	pc_exit_init();
	/* Without PINCOH_SOCKET (read once, here) this process can never hold a
	 * registration: pincoh_register is -ENOTCONN for its whole life. Patching
	 * libc's text, or on an architecture without the patch making malloc
	 * never give memory back, would then cost the process and buy nothing,
	 * so libc is left alone (stats say PINCOH_LIBC_NONE). */
	if (pc_cfg.socket_path[0])
		pc_patch_init();
	pthread_atfork(pc_atfork_prepare, pc_atfork_parent, pc_atfork_child);
}
