/* The job table (proto.h) as this process sees it: the whole of it mapped
 * read-only, this member's segment read-write, so a stray write of this
 * process can reach no other member's words.
 *
 * As an owner, this process revokes its attachers itself, in its own call:
 * it marks the export word dead, then walks the links the coordinator keeps
 * for that export and waits only for a put already in flight (bounded; past
 * the bound the put is handed to the coordinator, which ends its process).
 * As an attacher, a put checks three words with plain loads after counting
 * itself in flight. Nobody waits for the coordinator, and no thread of ours
 * watches anything: the coordinator's death shows in one word the kernel
 * itself writes (a robust futex, FUTEX_OWNER_DIED).
 *
 * A table is never unmapped while the process lives (a put of another
 * thread may be reading it); a reconnect maps the new job's table beside it,
 * up to PC_JT_KEEP of them in a process's life. A forked child unmaps them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "config.h"
#include "conn.h"
#include "jobtable.h"
#include "log.h"
#include "proto.h"
#include "runtime.h"
#include "stats.h"

#define PC_JT_KEEP 64
#define GEN_MASK 0x0fffffffu

static struct pc_jt keep[PC_JT_KEEP];
static unsigned kept;                        /* under the session lock (connect), or in a fork child */
static struct pc_jt *_Atomic current;        /* the table of the current connection, or NULL */

/* Which export slots of the current table are ours, and the last generation
 * each was given: private, never in the table (a stray write there must not
 * hand out a slot twice). */
static _Atomic uint8_t xused[PC_JT_EXPORTS];
static uint32_t xgens[PC_JT_EXPORTS];

static inline uint32_t ld(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_SEQ_CST); }
static inline const uint32_t *at(const struct pc_jt *jt, uint32_t off) { return (const uint32_t *)(jt->base + off); }

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec t = { 0, 0 };
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* "/proc/PID/fd/FD" without snprintf (no malloc, no stdio) */
static void fd_path(char *buf, int pid, int fd)
{
	char *p = buf;
	const char *parts[3] = { "/proc/", "/fd/", "" };
	int nums[2] = { pid, fd };
	for (int k = 0; k < 3; k++) {
		for (const char *s = parts[k]; *s; s++)
			*p++ = *s;
		if (k < 2) {
			char tmp[12];
			int n = 0;
			unsigned u = (unsigned)nums[k];
			do tmp[n++] = (char)('0' + u % 10); while ((u /= 10));
			while (n)
				*p++ = tmp[--n];
		}
	}
	*p = 0;
}

static int sane(const struct pc_jt_hdr *h, uint32_t size, uint32_t member)
{
	uint64_t segs = (uint64_t)h->seg_off + (uint64_t)h->members * h->seg_size;
	return h->magic == PC_JT_MAGIC && h->version == PC_PROTO_VERSION && h->size == size &&
	       h->members == PC_JT_MEMBERS && h->exports == PC_JT_EXPORTS && h->handles == PC_HANDLE_SLOTS &&
	       h->links == PC_JT_LINKS && member < h->members && h->seg_size >= PC_JT_SEG_BYTES &&
	       h->seg_size % pc_page_size == 0 && h->seg_off % pc_page_size == 0 &&
	       h->member_off >= PC_JT_HDR_BYTES && (uint64_t)h->member_off + h->members * 16ull <= size &&
	       (uint64_t)h->head_off + (uint64_t)h->members * h->exports * 4 <= size &&
	       (uint64_t)h->link_off + (uint64_t)h->links * 16 <= size && segs <= size;
}

static void unmap(struct pc_jt *jt)
{
	if (jt->seg)
		syscall(SYS_munmap, jt->seg, jt->seg_size);
	if (jt->base)
		syscall(SYS_munmap, jt->base, jt->size);
	jt->seg = NULL, jt->base = NULL;
}

int pc_jt_open(int coord_pid, const struct pc_welcome *w, struct pc_jt **out)
{
	struct pc_jt *jt;
	char path[48];
	struct stat st;
	long ro, rw, seals, p;
	int rc = -EPROTO;

	*out = NULL;
	if (w->jt_fd < 0)
		return -ENOENT;
	if (kept >= PC_JT_KEEP)
		return -ENOSPC;
	jt = &keep[kept];
	memset(jt, 0, sizeof *jt);
	fd_path(path, coord_pid, w->jt_fd);
	/* read-only for the whole: even mprotect cannot make it writable here */
	ro = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (ro < 0)
		return -errno;
	seals = syscall(SYS_fcntl, ro, F_GET_SEALS);
	/* sealed at its size: a file that shrank under the mapping would be a SIGBUS */
	if (syscall(SYS_fstat, ro, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != (off_t)w->jt_size || seals < 0 ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL) || w->jt_size < PC_JT_HDR_BYTES)
		goto out;
	p = syscall(SYS_mmap, 0, (size_t)w->jt_size, PROT_READ, MAP_SHARED, ro, 0);
	if (p < 0 && p > -4096) {
		rc = -errno;
		goto out;
	}
	jt->base = (const char *)p;
	jt->size = w->jt_size;
	{
		const struct pc_jt_hdr *h = (const void *)jt->base;
		if (!sane(h, w->jt_size, w->member))
			goto out;
		jt->members = h->members, jt->exports = h->exports, jt->handles = h->handles, jt->links = h->links;
		jt->seg_size = h->seg_size, jt->member_off = h->member_off, jt->head_off = h->head_off;
		jt->link_off = h->link_off, jt->seg_off = h->seg_off;
	}
	rw = syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rw < 0) {
		rc = -errno;
		goto out;
	}
	p = syscall(SYS_mmap, 0, (size_t)jt->seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, rw,
		    (long)jt->seg_off + (long)w->member * jt->seg_size);
	rc = p < 0 && p > -4096 ? -errno : 0;
	syscall(SYS_close, rw);
	if (rc < 0)
		goto out;
	jt->seg = (char *)p;
	jt->member = w->member, jt->member_word = w->member_word;
	jt->coord_tid = (uint32_t)w->coord_tid;
	jt->revoke_ms = w->revoke_ms ? w->revoke_ms : (uint32_t)pc_cfg.timeout_ms;
	kept++;
	*out = jt;
out:
	syscall(SYS_close, ro);
	if (rc < 0)
		unmap(jt);
	return rc;
}

/* From the next publish on, exports are made in jt (under the table lock:
 * the exports of the one before were revoked already). */
void pc_jt_install(struct pc_jt *jt)
{
	for (int i = 0; i < PC_JT_EXPORTS; i++)
		atomic_store_explicit(&xused[i], 0, memory_order_relaxed);
	atomic_store_explicit(&current, jt, memory_order_release);
}

struct pc_jt *pc_jt_current(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}

/* A forked child shares the parent's table pages: it must never write them. */
void pc_jt_reset_child(void)
{
	for (unsigned i = 0; i < kept; i++)
		unmap(&keep[i]);
	kept = 0;
	atomic_store(&current, NULL);
}

/* ---- words ---- */

static inline struct pc_jt_export *my_export(const struct pc_jt *jt, uint32_t x)
{
	return (struct pc_jt_export *)(jt->seg + PC_JT_SEG_EXPORTS_OFF) + x;
}

static inline const uint32_t *export_word(const struct pc_jt *jt, uint32_t owner, uint32_t x)
{
	return at(jt, jt->seg_off + owner * jt->seg_size + PC_JT_SEG_EXPORTS_OFF + x * 8);
}

static inline const uint32_t *inflight_word(const struct pc_jt *jt, uint32_t member, uint32_t slot)
{
	return at(jt, jt->seg_off + member * jt->seg_size + PC_JT_SEG_INFLIGHT_OFF + slot * 4);
}

static inline const struct pc_jt_member *member_rec(const struct pc_jt *jt, uint32_t m)
{
	return (const struct pc_jt_member *)(jt->base + jt->member_off) + m;
}

static _Atomic uint32_t *inflight(struct pc_jt *jt, uint32_t slot)
{
	return (_Atomic uint32_t *)(jt->seg + PC_JT_SEG_INFLIGHT_OFF) + slot;
}

int pc_jt_valid_target(const struct pc_jt *jt, uint32_t owner, uint32_t export)
{
	return owner < jt->members && export >= 1 && export <= jt->exports;
}

/* The words a put checks, after it counted itself in flight, and what they
 * must hold: the coordinator lives (the kernel wrote nothing in its robust
 * futex word), we are still a member in good standing, the owner still holds
 * its slot, and its export is the live generation we attached to. */
void pc_jt_watch(struct pc_jt *jt, const struct pc_attached *a, uint32_t slot, struct pc_watch *w)
{
	const struct pc_jt_hdr *h = (const void *)jt->base;
	w->word[0] = &h->lock[0], w->want[0] = jt->coord_tid;
	w->word[1] = &member_rec(jt, jt->member)->state, w->want[1] = jt->member_word;
	w->word[2] = &member_rec(jt, a->owner)->state, w->want[2] = a->owner_word;
	w->word[3] = export_word(jt, a->owner, a->export - 1), w->want[3] = a->xgen << 4 | PC_X_LIVE;
	w->inflight = inflight(jt, slot);
}

/* ---- the owner's side ---- */

int pc_jt_export_alloc(struct pc_jt *jt, uint32_t *export, uint32_t *xgen)
{
	if (!jt)
		return -ENOTCONN;
	for (uint32_t i = 0; i < jt->exports; i++) {
		uint8_t no = 0;
		if (atomic_load_explicit(&xused[i], memory_order_relaxed) ||
		    !atomic_compare_exchange_strong(&xused[i], &no, 1))
			continue;
		xgens[i] = (xgens[i] + 1) & GEN_MASK;
		if (!xgens[i])
			xgens[i] = 1;
		__atomic_store_n(&my_export(jt, i)->reason, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&my_export(jt, i)->state, xgens[i] << 4 | PC_X_LIVE, __ATOMIC_SEQ_CST);
		*export = i + 1, *xgen = xgens[i];
		return 0;
	}
	return -ENOSPC;
}

/* A new generation of the same export: handles on the old one stay dead. */
uint32_t pc_jt_export_rearm(struct pc_jt *jt, uint32_t export)
{
	uint32_t i = export - 1;
	xgens[i] = (xgens[i] + 1) & GEN_MASK;
	if (!xgens[i])
		xgens[i] = 1;
	__atomic_store_n(&my_export(jt, i)->state, xgens[i] << 4 | PC_X_LIVE, __ATOMIC_SEQ_CST);
	return xgens[i];
}

/* The slot may be given out again (its word stays dead until then). Only in
 * the current table: an old one's slots are never reused. */
void pc_jt_export_release(struct pc_jt *jt, uint32_t export)
{
	if (jt == pc_jt_current() && export >= 1 && export <= PC_JT_EXPORTS)
		atomic_store_explicit(&xused[export - 1], 0, memory_order_release);
}

/* Marks the export dead, sequentially consistent (an exchange: a full
 * barrier, so the link walk that follows reads nothing older). 1 if it was
 * live at that generation: then this caller revokes its attachers. */
int pc_jt_export_kill(struct pc_jt *jt, uint32_t export, uint32_t xgen, int reason)
{
	struct pc_jt_export *e = my_export(jt, export - 1);
	__atomic_store_n(&e->reason, (uint32_t)reason, __ATOMIC_RELAXED);
	return __atomic_exchange_n(&e->state, xgen << 4 | PC_X_DEAD, __ATOMIC_SEQ_CST) == (xgen << 4 | PC_X_LIVE);
}

/* Is the attacher's process gone (so nothing of it can be in flight)? Its
 * member record says so once the coordinator knows; failing that, the
 * kernel does (a zombie still answers kill 0: the coordinator marks it). */
static int attacher_gone(const struct pc_jt *jt, uint32_t m, int32_t pid)
{
	const struct pc_jt_member *r = member_rec(jt, m);
	uint32_t st = ld(&r->state) & 15;
	int saved = errno, gone;
	if (st == PC_M_GONE || st == PC_M_FREE || ld(&r->pid) != (uint32_t)pid)
		return 1;
	gone = pid > 0 && syscall(SYS_kill, pid, 0) != 0 && errno == ESRCH;
	errno = saved;
	return gone;
}

/* A put of attacher (m, slot) is in flight on the export we just marked
 * dead: it was checked before our mark, so it may still land. Wait for it,
 * bounded by the revoke bound; then hand it to the coordinator, which ends
 * its process and answers. Off the fast path: system calls are fine here. */
__attribute__((noinline, cold)) static void wait_put(struct pc_jt *jt, uint32_t m, uint32_t slot, uint32_t export, uint32_t xgen,
						     struct pc_revoked *r)
{
	const uint32_t *w = inflight_word(jt, m, slot);
	int32_t pid = (int32_t)ld(&member_rec(jt, m)->pid);
	uint64_t t0 = now_ns(), bound = (uint64_t)jt->revoke_ms * 1000000u, last_check = t0;
	struct pc_stuck st = { .member = m, .slot = slot, .export = export, .xgen = xgen };
	int32_t status = -1;
	int rc;

	r->inflight++;
	for (unsigned spins = 0; ld(w) != 0; spins++) {
		uint64_t now;
		if (spins < 256) {
			cpu_relax();
			continue;
		}
		syscall(SYS_sched_yield);
		now = now_ns();
		if (now - last_check > 1000000u) { /* once a millisecond: is it still there at all? */
			last_check = now;
			if (attacher_gone(jt, m, pid))
				return;
		}
		if (now - t0 > bound)
			break;
	}
	if (ld(w) == 0)
		return;
	/* stopped or hung inside pincoh_put: nothing but ending it keeps invariant 1 */
	r->stuck++;
	rc = pc_request(PC_T_STUCK, &st, sizeof st, &status, NULL, 0, -1);
	if ((rc == 0 && status == 0) || ld(w) == 0 || attacher_gone(jt, m, pid))
		return;
	r->unanswered++;
	pc_note_timeout("a put in flight on a revoked export (the coordinator did not end it)");
}

/* After pc_jt_export_kill: every attacher linked to the export, and the puts
 * of theirs in flight, waited for. With no put in flight: no system call. */
void pc_jt_revoke(struct pc_jt *jt, uint32_t export, uint32_t xgen, struct pc_revoked *r)
{
	uint32_t x = export - 1, tag = jt->member << 16 | x;
	uint32_t i = ld(at(jt, jt->head_off + (jt->member * jt->exports + x) * 4));
	uint64_t t0 = now_ns();
	memset(r, 0, sizeof *r);
	/* Links are only ever added at the head, and reused only once their
	 * export died, so a walk never leaves its list. Bounded all the same,
	 * and checked link by link: the coordinator's bug must not hang us. */
	for (uint32_t n = 0; i != 0 && n < jt->links; n++) {
		const struct pc_jt_link *l;
		uint32_t who;
		if (i > jt->links)
			break;
		l = (const struct pc_jt_link *)(jt->base + jt->link_off) + (i - 1);
		who = ld(&l->who);
		if (ld(&l->owner_export) != tag || ld(&l->gen) != xgen) {
			static int said;
			if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
				pc_log("the job table's links of an export are not that export's; revoked what was linked", NULL, -1);
			break;
		}
		if (who != PC_LINK_NONE) {
			uint32_t m = who >> 16, slot = who & 0xffff;
			r->linked++;
			if (m < jt->members && slot < jt->handles && ld(inflight_word(jt, m, slot)) != 0)
				wait_put(jt, m, slot, export, xgen, r);
		}
		i = ld(&l->next);
	}
	r->ns = now_ns() - t0;
}
