/* atfork.c: the shim's fork handlers (init.c installs them with
 * pthread_atfork; hooks/fork.c runs them around clone without CLONE_VM) */
#ifndef PC_ATFORK_H
#define PC_ATFORK_H

void pc_atfork_prepare(void);
void pc_atfork_parent(void);
void pc_atfork_child(void);

#endif
