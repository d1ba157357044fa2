/* A hooked call whose range overlaps a registration: the one way it runs.
 *
 * The shim decides (the policy, applied to its own table) and records what
 * happened as events in the ring. If published memory is involved, this
 * process revokes every attachment to it itself, in the job table, and waits
 * only for a put already in flight (jobtable.c): no round trip, no other
 * process has to run. Then the owner's callbacks, the real call, and the
 * event that closes the call. */
#include <errno.h>
#include <time.h>
#include "../include/pincoh.h"
#include "area.h"
#include "callbacks.h"
#include "conn.h"
#include "jobtable.h"
#include "proto.h"
#include "runtime.h"
#include "session.h"
#include "slowpath.h"
#include "stats.h"
#include "table.h"

/* Monotonic nanoseconds: the vDSO, no system call where the clock allows it. */
static uint64_t now_ns(void)
{
	struct timespec t = { 0, 0 }; /* a clock refused (seccomp, no vDSO) times the call as 0 */
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Revokes the attachers of every published hit, in place, and says so in
 * the ring (REVOKED, after the INVAL, MOVING or DEREG the table wrote).
 * release: the export slot goes too (the registration is no longer
 * published); else it is re-armed after the call (it follows an mremap). */
uint32_t pc_revoke_hits(const struct pc_hit *hits, size_t n, uint32_t call, int release)
{
	int coherent = pc_coherence();
	uint32_t flags = 0;
	for (size_t i = 0; i < n; i++) {
		const struct pc_hit *x = &hits[i];
		struct pc_revoked r = { 0, 0, 0, 0, 0 };
		if (!x->export || !x->jt)
			continue;
		/* under --no-coherence nothing is revoked, and the export stays
		 * live for good (its slot is never given out again): the hazard, shown */
		if (!coherent)
			continue;
		if (pc_jt_export_kill(x->jt, x->export, x->xgen, x->reason))
			pc_jt_revoke(x->jt, x->export, x->xgen, &r);
		pc_table_lock();
		pc_emit_revoked(x, call, &r);
		if (release)
			pc_jt_export_release(x->jt, x->export);
		pc_table_unlock();
		if (r.stuck)
			flags |= PC_CALL_WAITED; /* it had to hand a put to the coordinator */
		if (r.unanswered)
			flags |= PC_CALL_TIMED_OUT; /* ...which did not end it in time */
	}
	return flags;
}

/* Published registrations that followed an mremap: attachable again, at a
 * new generation of their export (their old handles stay dead). */
static void rearm(const struct pc_hits *h)
{
	for (size_t i = 0; i < h->n_follow; i++) {
		const struct pc_hit *f = &h->follow[i];
		uint32_t gen;
		if (!f->export || !f->jt || !pc_coherence())
			continue;
		gen = pc_jt_export_rearm(f->jt, f->export);
		if (pc_table_set_export(f->key, f->export, gen, f->jt) < 0) {
			pc_jt_export_kill(f->jt, f->export, gen, PINCOH_REASON_DEREGISTER);
			continue; /* deregistered meanwhile: nobody could attach to the new generation yet */
		}
		pc_table_lock();
		pc_emit(PC_R_REARM, 0, h->call, 0, f->key, f->export, gen);
		pc_table_unlock();
	}
}

long pc_slow_call(struct pc_event *ev, pc_real_fn real, void *args, long failed)
{
	struct pc_hits h;
	int saved = errno, err;
	uint32_t flags = 0;
	uint64_t t0 = now_ns(), spent;
	long rc;

	/* No getpid() here to tell a vfork child from its parent: this path makes
	 * no system call of its own (the clock is the vDSO's). A vfork child shares the parent's memory, so
	 * the parent's table is the right one to change; only its wait for the
	 * coordinator is skipped (pc_request refuses foreign callers). */
	PC_ENTER();
	__atomic_fetch_add(&pc_counters.slow_calls, 1, __ATOMIC_RELAXED);
	pc_table_apply(ev, pc_mremap_follow(), pc_next_call(), &h);
	if (h.published) {
		flags |= pc_revoke_hits(h.inval, h.n_inval, h.call, 1);
		flags |= pc_revoke_hits(h.follow, h.n_follow, h.call, 0);
	}
	/* --audit: the coordinator reads /proc/PID/maps while the process still exists */
	if (ev->reason == PINCOH_REASON_EXIT && pc_sync_exit() && pc_conn_up()) {
		int s = pc_sync(h.call);
		flags |= PC_CALL_WAITED;
		if (s == -ETIMEDOUT) {
			pc_note_timeout("SYNC");
			flags |= PC_CALL_TIMED_OUT;
		}
	}
	__atomic_fetch_add(&pc_counters.invalidations, h.n_inval, __ATOMIC_RELAXED);
	pc_run_callbacks(h.inval, h.n_inval);
	spent = now_ns() - t0; /* pincoh's part of the call: the real call's own time is not ours */
	errno = saved;
	rc = real(args);
	err = rc == failed ? errno : 0;
	if (h.n_follow && !err)
		pc_table_move(&h, ev->start, (uintptr_t)rc);
	if (h.published && h.n_follow)
		rearm(&h);
	pc_table_lock();
	pc_emit_call(ev, h.call, flags, spent > UINT32_MAX ? UINT32_MAX : (uint32_t)spent, err ? -err : rc);
	pc_table_unlock();
	pc_hits_release(&h);
	PC_LEAVE();
	errno = err ? err : saved;
	return rc;
}

static long nothing(void *args)
{
	(void)args;
	return 0;
}

/* The process is about to exit or exec: its whole address space goes. Every
 * registration is invalidated (callbacks run); published ones are revoked
 * from their attachers here before we go on, while our pid is still ours.
 * Then a BYE event: a connection that closes without one was killed or crashed. */
void pc_slow_everything(int why)
{
	struct pc_event ev = { .reason = PINCOH_REASON_EXIT, .start = 0, .end = UINTPTR_MAX, .arg = why };
	if (PC_GUARDED() || (!pc_table_count() && !pc_area_live()) || pc_foreign())
		return;
	if (pc_table_count())
		pc_slow_call(&ev, nothing, NULL, -1);
	PC_ENTER();
	pc_table_lock();
	pc_emit_bye(why);
	pc_table_unlock();
	PC_LEAVE();
}
