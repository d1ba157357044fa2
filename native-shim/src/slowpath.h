/* slowpath.c: the one way a hooked call that touches registrations runs */
#ifndef PC_SLOWPATH_H
#define PC_SLOWPATH_H

#include <stddef.h>
#include <stdint.h>
#include "event.h"

typedef long (*pc_real_fn)(void *args);
/* Decides (policy, own table), revokes published memory in place, runs the
 * callbacks, makes the real call, records it. failed: the real call's
 * failure value (-1 or MAP_FAILED). Keeps errno. */
long pc_slow_call(struct pc_event *ev, pc_real_fn real, void *args, long failed);
void pc_slow_everything(int why); /* exit (0) or exec (1): every registration goes, exports revoked first */
/* Revokes, in place, the attachers of the published ones among hits; returns PC_CALL_* flags. */
uint32_t pc_revoke_hits(const struct pc_hit *hits, size_t n, uint32_t call, int release);

#endif
