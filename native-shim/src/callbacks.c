/* The program's invalidation callback: set by pincoh_on_invalidate (api.c),
 * run for a hooked call's invalidations (slowpath.c) and for an attacher's
 * dead handle (attach.c). The function and its context are read and written
 * together under cb_mu, which guards them alone and is held for nothing
 * else (no other lock is taken under it); the callback itself runs with no
 * pincoh lock held. */
#include <pthread.h>
#include "../include/pincoh.h"
#include "callbacks.h"
#include "runtime.h"

static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pincoh_invalidate_fn cb_fn; /* under cb_mu */
static void *cb_ctx;

void pc_callbacks_set(pincoh_invalidate_fn fn, void *ctx)
{
	PC_ENTER();
	pthread_mutex_lock(&cb_mu);
	cb_fn = fn;
	cb_ctx = ctx;
	pthread_mutex_unlock(&cb_mu);
	PC_LEAVE();
}

/* Runs with no pincoh lock held and the guard lifted, so the callback may call
 * pincoh_* and even munmap other registered memory. */
void pc_run_callbacks(const struct pc_hit *inval, size_t n)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	uint16_t depth = pc_guard.why.depth;
	if (!n)
		return;
	PC_ENTER();
	pthread_mutex_lock(&cb_mu);
	fn = cb_fn, ctx = cb_ctx;
	pthread_mutex_unlock(&cb_mu);
	PC_LEAVE();
	if (!fn)
		return;
	pc_guard.why.depth = 0;
	for (size_t i = 0; i < n; i++)
		fn(inval[i].key, (void *)inval[i].start, inval[i].end - inval[i].start, inval[i].reason, ctx);
	pc_guard.why.depth = depth;
}

/* An attacher's handle died: its callback runs in the thread that found out. */
void pc_notify_revoked(uint64_t handle, void *addr, size_t len)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	PC_ENTER();
	pthread_mutex_lock(&cb_mu);
	fn = cb_fn, ctx = cb_ctx;
	pthread_mutex_unlock(&cb_mu);
	PC_LEAVE();
	if (fn)
		fn(handle, addr, len, PINCOH_REASON_REVOKED, ctx);
}

/* Around fork: a child must not inherit cb_mu held by another thread. */
void pc_callbacks_atfork_prepare(void) { pthread_mutex_lock(&cb_mu); }
void pc_callbacks_atfork_parent(void) { pthread_mutex_unlock(&cb_mu); }
void pc_callbacks_atfork_child(void) { pthread_mutex_init(&cb_mu, NULL); }
