/* stats.c: counters, and the once-only messages that go with them */
#ifndef PC_STATS_H
#define PC_STATS_H

#include <stdint.h>

struct pc_counters { uint64_t slow_calls, invalidations, timeouts; int degraded; };
extern struct pc_counters pc_counters;
void pc_note_timeout(const char *what);
void pc_note_lost(void);

#endif
