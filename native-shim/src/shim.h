/* libpincoh's map: its modules in layers, and every module's header.
 * Helpers return -errno; only the exported hooks touch errno, and only to
 * keep the real call's value.
 *
 * Layers, top to bottom. A module calls modules on its own line or lower
 * ones, never higher, and no calls go round in a circle: test/layers.test.ts
 * checks both from the object files' symbols (build/obj). hooks/ is every
 * module in that directory (one row each in hooks/hooktable.h for those over
 * mappings), arch-* both architectures'. A module that must tell a higher
 * one something calls what it was handed: session.c init.c's
 * pc_session_ops, patch.c the hooks init.c lists, conn.c the on_lost
 * session.c gives it with each connection. Else only init.c wires.
 *
 *   init                   the constructor, the wiring
 *   api hooks/             the entry points: pincoh.h's functions, libc's replaced ones
 *   slowpath atfork        a hooked call over registrations; the fork handlers
 *   attach                 handles on others' exports, put/get
 *   table                  this process's registrations (its lock orders the ring's events)
 *   session                connecting, the coordinator's settings
 *   area jobtable          the event ring; the job's shared table (revoke in place)
 *   conn patch callbacks   the socket; libc's entries patched; the program's callback
 *   arch-* policy stats    machine code; what a call does to a registration; counters
 *   config                 the environment
 *   log                    stderr
 *   runtime                pc_guard, pc_pid, pc_page_size, pc_next
 */
#ifndef PC_SHIM_H
#define PC_SHIM_H

#include "runtime.h"
#include "log.h"
#include "config.h"
#include "event.h"
#include "policy.h"
#include "stats.h"
#include "arch.h"
#include "patch.h"
#include "conn.h"
#include "area.h"
#include "jobtable.h"
#include "session.h"
#include "table.h"
#include "callbacks.h"
#include "attach.h"
#include "atfork.h"
#include "slowpath.h"
#include "api.h"
#include "hooks/hooks.h"

#endif
