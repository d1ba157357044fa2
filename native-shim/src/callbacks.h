/* callbacks.c: the program's invalidation callback (pincoh_on_invalidate),
 * and running it: always with no pincoh lock held. */
#ifndef PC_CALLBACKS_H
#define PC_CALLBACKS_H

#include <stddef.h>
#include <stdint.h>
#include "../include/pincoh.h"
#include "event.h"

void pc_callbacks_set(pincoh_invalidate_fn fn, void *ctx);
void pc_run_callbacks(const struct pc_hit *inval, size_t n); /* a call's invalidated registrations */
void pc_notify_revoked(uint64_t handle, void *addr, size_t len); /* an attacher's handle died */
void pc_callbacks_atfork_prepare(void);
void pc_callbacks_atfork_parent(void);
void pc_callbacks_atfork_child(void);

#endif
