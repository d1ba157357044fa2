/* Start-up: configuration, fork handlers. Nothing here connects: a process
 * that never registers never talks to the coordinator. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

PC_TLS union pc_guard pc_guard;
pid_t pc_pid;
uintptr_t pc_page_size = 4096;

void pc_fork_resolve(void);
void pc_free_resolve(void);
void pc_exit_init(void);

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
	pc_conn_atfork_child();
	pc_session_atfork_child();
	pc_counters.degraded = 0;
}

__attribute__((constructor(102))) static void pc_init(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0)
		pc_page_size = (uintptr_t)ps;
	pc_pid = (pid_t)syscall(SYS_getpid);
	pc_config_load();
	pc_fork_resolve();
	pc_free_resolve();
	pc_exit_init();
	pc_patch_init();
	pthread_atfork(pc_atfork_prepare, pc_atfork_parent, pc_atfork_child);
}
