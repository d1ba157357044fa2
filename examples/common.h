/* Shared by the examples: the pincoh API resolved weakly, so a program started
 * without the shim says so instead of failing to load. */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H
#define PINCOH_WEAK
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void require_pincoh(const char *prog)
{
	if (!pincoh_register) {
		fprintf(stderr, "%s: libpincoh.so is not loaded; run me as `npx pincoh run -- %s`\n", prog, prog);
		exit(2);
	}
}

/* rc < 0: a pincoh error; say which call and stop */
static inline void check(int rc, const char *what)
{
	if (rc < 0 && what) {
		fprintf(stderr, "rank %d: %s: %s\n", pincoh_rank ? pincoh_rank() : -1, what, strerror(-rc));
		exit(1);
	}
}

static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

static inline int rank_or_zero(void)
{
	int r = pincoh_rank ? pincoh_rank() : -1;
	return r < 0 ? 0 : r;
}
#endif
