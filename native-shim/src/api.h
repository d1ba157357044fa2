/* api.c: pincoh.h's functions, and these for the Node binding (not in
 * pincoh.h): invalidations queued for its one thread to drain. */
#ifndef PC_API_H
#define PC_API_H

#include <stdint.h>
#include "runtime.h"

PC_EXPORT int pincoh_binding_queue(int wake_fd);
PC_EXPORT int pincoh_binding_drain(void *out, int max, uint64_t *lost);

#endif
