/* session.c: connecting, the coordinator's settings, losing and finding it again */
#ifndef PC_SESSION_H
#define PC_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include "proto.h"

int pc_session_ensure(void);                         /* 0, -ENOTCONN, -EPROTO, or the coordinator's refusal */
void pc_session_farewell(void);                      /* at exit: pincoh exec's rank tells its coordinator, and waits */
extern _Atomic int pc_unsynced;                      /* lost a coordinator; not re-announced yet */
int pc_mremap_follow(void);
int pc_fork_dontfork(void);
int pc_sync_exit(void);
int pc_coherence(void);                              /* 0 under --no-coherence: owners revoke nothing */
extern uint32_t pc_welcome_flags;
/* --free invalidate: one relaxed load, on every free() */
static inline int pc_free_invalidates(void) { return (__atomic_load_n(&pc_welcome_flags, __ATOMIC_RELAXED) & PC_W_FREE_INVALIDATE) != 0; }
size_t pc_max_regs(void);
void pc_session_atfork_prepare(void);
void pc_session_atfork_parent(void);
void pc_session_atfork_child(void);

/* What a change of coordinator does to the rest of the shim. session.c calls
 * nothing above it: init.c hands it these before anything can connect. */
struct pc_jt;
struct pc_area_hdr;
struct pc_session_ops {
	/* a new coordinator: its job table (NULL: none) and area take over, and it hears of every registration */
	void (*adopt)(struct pc_jt *jt, struct pc_area_hdr *area);
	/* the connection is gone: every handle on others' exports dies (from whichever thread saw it; no lock) */
	void (*lost)(void);
	size_t (*held)(void);                        /* how many registrations this process holds */
};
void pc_session_wire(const struct pc_session_ops *ops);

#endif
