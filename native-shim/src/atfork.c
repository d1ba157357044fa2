/* The shim's fork handlers: init.c installs them with pthread_atfork, and
 * hooks/fork.c runs them around clone without CLONE_VM. */
#include <sys/syscall.h>
#include <unistd.h>
#include "area.h"
#include "atfork.h"
#include "attach.h"
#include "callbacks.h"
#include "conn.h"
#include "jobtable.h"
#include "runtime.h"
#include "session.h"
#include "stats.h"
#include "table.h"

/* In the order they nest: the session (a connect takes the table lock), the
 * table (a thread holding it may wait for the coordinator: a full ring), then
 * the connection's own, then the callback's (taken under none). */
void pc_atfork_prepare(void)
{
	pc_session_atfork_prepare();
	pc_table_lock();
	pc_conn_atfork_prepare();
	pc_callbacks_atfork_prepare();
}

void pc_atfork_parent(void)
{
	pc_callbacks_atfork_parent();
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
	pc_callbacks_atfork_child();
	pc_session_atfork_child();
	pc_counters.degraded = 0;
}
