/* The shared area (proto.h): a memfd mapped MAP_SHARED here and in the
 * coordinator, holding the event ring.
 *
 * Events go into the ring with no system call: the coordinator drains it on
 * its own (a timer, and before every frame of ours, so a frame never
 * overtakes an event written before it). Only a full ring waits: a SYNC
 * makes the coordinator drain it now. One producer at a time: every event is
 * written under the table lock, which also puts them in the order of the
 * table's changes.
 *
 * A reconnect makes a new area; the old one stays mapped (256 KiB): a thread
 * may be writing an event in it at that moment. A forked child unmaps its
 * copy in fork's child handler. It is not MADV_DONTFORK: a child made by a raw clone system call
 * (no fork handlers) would then crash on its first event; instead it writes
 * into its parent's ring (docs/limits.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "area.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "stats.h"

static struct pc_area_hdr *_Atomic ring;          /* where events go; NULL: no coordinator */
static struct pc_area_hdr *newest;                /* under the table lock */
static _Atomic uint32_t next_call;

static struct pc_rec *slot_at(struct pc_area_hdr *a, uint32_t pos)
{
	return (struct pc_rec *)((char *)a + PC_AREA_RING_OFF) + (pos & (PC_RING_SLOTS - 1));
}

/* A new area, not yet the one events go to: pc_area_install does that once
 * the coordinator has mapped it. fd stays open for the HELLO. NULL with *err
 * the reason (EMFILE, ENOMEM, EPERM from a seccomp filter...). */
struct pc_area_hdr *pc_area_create(int *fd, int *err)
{
	long f = syscall(SYS_memfd_create, "pincoh-area", MFD_CLOEXEC | MFD_ALLOW_SEALING), p = -1;
	struct pc_area_hdr *a;
	*err = -errno;
	if (f < 0)
		return NULL;
	/* sealed at its size: the coordinator maps it too, and a file that
	 * shrank under its mapping would kill it with SIGBUS */
	if (syscall(SYS_ftruncate, f, (long)PC_AREA_BYTES) == 0 &&
	    syscall(SYS_fcntl, f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
		p = syscall(SYS_mmap, 0, PC_AREA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (p < 0 && p > -4096) {
		*err = -errno;
		syscall(SYS_close, f);
		return NULL;
	}
	a = (struct pc_area_hdr *)p;
	a->magic = PC_AREA_MAGIC, a->version = PC_PROTO_VERSION;
	a->ring_slots = PC_RING_SLOTS;
	a->ring_off = PC_AREA_RING_OFF, a->size = PC_AREA_BYTES;
	*fd = (int)f;
	return a;
}

void pc_area_destroy(struct pc_area_hdr *a)
{
	syscall(SYS_munmap, a, PC_AREA_BYTES);
}

/* Under the table lock: from now on events go to a. */
void pc_area_install(struct pc_area_hdr *a)
{
	newest = a;
	atomic_store_explicit(&ring, a, memory_order_release);
}

void pc_area_drop(void)
{
	atomic_store_explicit(&ring, NULL, memory_order_release);
}

/* The child of fork has no area: the copy of the parent's goes (the older
 * ones of earlier connections stay mapped, untouched). */
void pc_area_reset_child(void)
{
	if (newest)
		syscall(SYS_munmap, newest, PC_AREA_BYTES);
	atomic_store(&ring, NULL);
	newest = NULL;
}

uint32_t pc_next_call(void)
{
	uint32_t c = atomic_fetch_add_explicit(&next_call, 1, memory_order_relaxed) + 1;
	return c ? c : atomic_fetch_add_explicit(&next_call, 1, memory_order_relaxed) + 1; /* 0 means none */
}

int pc_sync(uint32_t call)
{
	struct pc_sync s = { .call = call };
	int32_t status = 0;
	int rc = pc_request(PC_T_SYNC, &s, sizeof s, &status, NULL, 0, -1);
	return rc < 0 ? rc : status;
}

/* Under the table lock. A full ring asks the coordinator to drain it, once.
 * A coordinator that does not (silent past the timeout, or answering without
 * draining) is given up on, as if lost: dropping events would leave it with a
 * wrong picture for good, while a lost connection makes it drop this process
 * (revoking its exports) and us re-announce everything to the next one. */
static void put(const struct pc_rec *r)
{
	struct pc_area_hdr *a = atomic_load_explicit(&ring, memory_order_acquire);
	for (int synced = 0; a; synced = 1) {
		uint32_t head = __atomic_load_n(&a->head, __ATOMIC_RELAXED);
		uint32_t tail = __atomic_load_n(&a->tail, __ATOMIC_ACQUIRE);
		int rc;
		if (head - tail < PC_RING_SLOTS) {
			memcpy(slot_at(a, head), r, sizeof *r);
			__atomic_store_n(&a->head, head + 1, __ATOMIC_RELEASE);
			return;
		}
		rc = synced ? -EPROTO : pc_sync(0);
		if (rc < 0) {
			__atomic_fetch_add(&a->dropped, 1, __ATOMIC_RELAXED);
			if (rc == -ENOTCONN)
				return; /* gone already: the next one hears of everything we hold */
			if (rc == -ETIMEDOUT)
				pc_note_timeout("SYNC (a full event ring)");
			pc_log("the coordinator does not drain this process's events; disconnecting from it", NULL, -1);
			pc_conn_abandon();
			return;
		}
		a = atomic_load_explicit(&ring, memory_order_acquire);
	}
}

void pc_emit(uint16_t type, uint16_t reason, uint32_t call, uint32_t flags, uint64_t key, uint64_t addr, uint64_t len)
{
	struct pc_rec r = { .type = type, .reason = reason, .call = call, .flags = flags, .key = key, .addr = addr, .len = len };
	put(&r);
}

void pc_emit_call(const struct pc_event *ev, uint32_t call, uint32_t flags, uint32_t ns, long result)
{
	struct pc_rec r = { .type = PC_R_CALL, .reason = (uint16_t)ev->reason, .call = call, .flags = flags, .ns = ns,
			    .addr = ev->start, .len = ev->len, .result = result, .arg = (uint64_t)ev->arg, .arg2 = ev->new_len };
	put(&r);
}

void pc_emit_revoked(const struct pc_hit *x, uint32_t call, const struct pc_revoked *r)
{
	struct pc_rec rec = { .type = PC_R_REVOKED, .reason = (uint16_t)x->reason, .call = call,
			      .ns = r->ns > UINT32_MAX ? UINT32_MAX : (uint32_t)r->ns, .key = x->key, .addr = x->export,
			      .len = x->xgen, .result = r->linked, .arg = r->inflight, .arg2 = r->stuck };
	put(&rec);
}

void pc_emit_bye(int why)
{
	struct pc_rec r = { .type = PC_R_BYE, .arg = (uint64_t)why };
	put(&r);
}

int pc_area_live(void)
{
	return atomic_load_explicit(&ring, memory_order_relaxed) != NULL;
}

void pc_emit_fork(pid_t child)
{
	struct pc_rec r = { .type = PC_R_FORK, .result = child };
	put(&r);
}
