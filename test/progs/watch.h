/* The invalidation callback the test programs share: after
 * pincoh_on_invalidate(on_inval, NULL), `fired` says whether the registration
 * whose key is in `watched` was invalidated. Include after pincoh.h. */
#ifndef WATCH_H
#define WATCH_H

static volatile int fired;
static uint64_t watched;

static void on_inval(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)addr, (void)len, (void)reason, (void)ctx;
	if (key == watched)
		fired = 1;
}

#endif
