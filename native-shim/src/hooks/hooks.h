/* hooks/: libc's functions, replaced. What the constructor (init.c) calls. */
#ifndef PC_HOOKS_H
#define PC_HOOKS_H

void pc_fork_resolve(void);
void pc_free_resolve(void);
void pc_exit_init(void);                             /* atexit: pc_slow_everything last */

#endif
