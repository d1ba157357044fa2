/* Shared by the examples: the pincoh API resolved weakly, so a program started
 * without the shim says so instead of failing to load. */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>

#pragma weak pincoh_register
#pragma weak pincoh_deregister
#pragma weak pincoh_is_valid
#pragma weak pincoh_query
#pragma weak pincoh_on_invalidate
#pragma weak pincoh_rank
#pragma weak pincoh_size
#pragma weak pincoh_get_stats

static inline void require_pincoh(const char *prog)
{
	if (!pincoh_register) {
		fprintf(stderr, "%s: libpincoh.so is not loaded; run me as `npx pincoh run -- %s`\n", prog, prog);
		exit(2);
	}
}

static inline int rank_or_zero(void)
{
	int r = pincoh_rank ? pincoh_rank() : -1;
	return r < 0 ? 0 : r;
}
#endif
