/* A hooked call that overlaps a registration: tell the coordinator and wait
 * for its ACK (other processes let go first), apply the policy to our own
 * table, run the owner's callbacks; after the real call, report DONE. */
#include <errno.h>
#include "proto.h"
#include "shim.h"

void pc_slow_before(const struct pc_event *ev, struct pc_hits *h)
{
	uint64_t seq = 0;
	int timed_out = 0;
	if (pc_foreign()) {
		/* a vfork or clone child: the table and the connection are its parent's */
		h->n_inval = h->n_follow = 0, h->big = NULL, h->begin_seq = 0, h->timed_out = 0;
		h->inval = h->follow = h->local, h->cap = 0;
		return;
	}
	__atomic_fetch_add(&pc_counters.slow_calls, 1, __ATOMIC_RELAXED);
	if (pc_conn_up()) {
		struct pc_begin b = { .op = (uint32_t)ev->op, .arg = (uint32_t)ev->arg, .addr = ev->start,
				      .len = ev->op == PC_OP_MREMAP ? ev->len : ev->end - ev->start,
				      .new_len = ev->new_len, .new_addr = ev->dest };
		int32_t status;
		if (pc_request(PC_T_BEGIN, &b, sizeof b, &status, &seq, NULL, 0) == -ETIMEDOUT) {
			pc_note_timeout("BEGIN");
			timed_out = 1;
		}
	}
	pc_table_apply(ev, pc_mremap_follow(), h);
	h->begin_seq = seq;
	h->timed_out = timed_out;
	__atomic_fetch_add(&pc_counters.invalidations, h->n_inval, __ATOMIC_RELAXED);
	pc_run_callbacks(h);
}

/* The process is about to exit or exec: its whole address space goes. Tell
 * the coordinator (which revokes every export first), wait, and run the
 * callbacks; nothing follows, so DONE goes at once. */
void pc_slow_everything(int why)
{
	struct pc_event ev = { .op = PC_OP_EXIT, .start = 0, .end = UINTPTR_MAX, .arg = why };
	struct pc_hits h;
	int saved = errno;
	if (pc_guard || !pc_table_count() || pc_foreign())
		return;
	pc_guard++;
	pc_slow_before(&ev, &h);
	pc_slow_after(&ev, &h, 0, 0);
	pc_guard--;
	errno = saved;
}

/* result: what the real call returned; err: its errno if it failed, else 0 */
void pc_slow_after(const struct pc_event *ev, struct pc_hits *h, long result, int err)
{
	if (ev->op == PC_OP_MREMAP && h->n_follow && !err)
		pc_table_move(h, ev->start, (uintptr_t)result);
	if (h->begin_seq && pc_conn_up()) {
		struct pc_done d = { .op = (uint32_t)ev->op, .flags = h->timed_out ? PC_DONE_TIMED_OUT : 0,
				     .result = err ? -err : result, .begin_seq = h->begin_seq };
		pc_notify(PC_T_DONE, &d, sizeof d);
	}
	pc_hits_release(h);
}
