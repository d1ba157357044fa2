/* Counters, and the once-only messages that go with them. */
#include <stdlib.h>
#include "config.h"
#include "log.h"
#include "stats.h"

struct pc_counters pc_counters;

void pc_note_timeout(const char *what)
{
	__atomic_fetch_add(&pc_counters.timeouts, 1, __ATOMIC_RELAXED);
	if (pc_cfg.abort_on_timeout) {
		pc_log("coordinator did not answer within PINCOH_TIMEOUT_MS; aborting (PINCOH_ON_TIMEOUT=abort):", what, pc_cfg.timeout_ms);
		abort();
	}
	if (!__atomic_exchange_n(&pc_counters.degraded, 1, __ATOMIC_RELAXED))
		pc_log("coordinator did not answer within PINCOH_TIMEOUT_MS; proceeding, this process is degraded:", what, pc_cfg.timeout_ms);
}

void pc_note_lost(void)
{
	if (!__atomic_exchange_n(&pc_counters.degraded, 1, __ATOMIC_RELAXED))
		pc_log("lost the coordinator; registrations stay coherent within this process only", NULL, -1);
}
