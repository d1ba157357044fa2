/* The shim's vocabulary, shared by every layer: types only, no module.
 * reason is a PINCOH_REASON_*: the one numbering of "why", from pincoh.h
 * through the ring to the trace. */
#ifndef PC_EVENT_H
#define PC_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* A hooked call as the policy sees it; ranges are page-rounded [start, end). */
struct pc_event {
	int reason;
	uintptr_t start, end;    /* the range the call changes */
	long arg;                /* mprotect: prot; mremap, mmap: flags; madvise: advice; exit: 0, exec: 1 */
	size_t len, new_len;     /* the length given; mremap: the new length */
	uintptr_t dest, dest_end;/* mremap with MREMAP_FIXED: the destination, else 0,0 */
};

/* One registration a call changed. export: its export slot in the job table
 * + 1 while published (0: not published), xgen: that export's generation,
 * jt: the job table the export is in. */
struct pc_jt;
struct pc_hit { uint64_t key; uintptr_t start, end; int reason; uint32_t export, xgen; struct pc_jt *jt; };

/* What revoking one export found: attachments linked, puts waited for, puts
 * handed to the coordinator, and of those the ones it did not end in time. */
struct pc_revoked { uint32_t linked, inflight, stuck, unanswered; uint64_t ns; };

#endif
