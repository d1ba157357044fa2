/* The program's invalidation callback: set by pincoh_on_invalidate (api.c),
 * run for a hooked call's invalidations (slowpath.c) and for an attacher's
 * dead handle (attach.c). The pointer is read and written under the table
 * lock; the callback itself runs with no pincoh lock held. */
#include "../include/pincoh.h"
#include "callbacks.h"
#include "runtime.h"
#include "table.h"

static pincoh_invalidate_fn cb_fn; /* under the table lock */
static void *cb_ctx;

void pc_callbacks_set(pincoh_invalidate_fn fn, void *ctx)
{
	PC_ENTER();
	pc_table_lock();
	cb_fn = fn;
	cb_ctx = ctx;
	pc_table_unlock();
	PC_LEAVE();
}

/* Runs with no pincoh lock held and the guard lifted, so the callback may call
 * pincoh_* and even munmap other registered memory. */
void pc_run_callbacks(const struct pc_hits *h)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	uint16_t depth = pc_guard.why.depth;
	if (!h->n_inval)
		return;
	PC_ENTER();
	pc_table_lock();
	fn = cb_fn, ctx = cb_ctx;
	pc_table_unlock();
	PC_LEAVE();
	if (!fn)
		return;
	pc_guard.why.depth = 0;
	for (size_t i = 0; i < h->n_inval; i++)
		fn(h->inval[i].key, (void *)h->inval[i].start, h->inval[i].end - h->inval[i].start, h->inval[i].reason, ctx);
	pc_guard.why.depth = depth;
}

/* An attacher's handle died: its callback runs in the thread that found out. */
void pc_notify_revoked(uint64_t handle, void *addr, size_t len)
{
	pincoh_invalidate_fn fn;
	void *ctx;
	PC_ENTER();
	pc_table_lock();
	fn = cb_fn, ctx = cb_ctx;
	pc_table_unlock();
	PC_LEAVE();
	if (fn)
		fn(handle, addr, len, PINCOH_REASON_REVOKED, ctx);
}
