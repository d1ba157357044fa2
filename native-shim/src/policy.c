/* What a hooked call does to one registration it overlaps: decided here, once,
 * and only here. The coordinator reads what happened from the ring. */
#include <sys/mman.h>
#include "../include/pincoh.h"
#include "policy.h"

/* Advice after which the pages a registration pinned are no longer the ones
 * mapped: dropped (DONTNEED, FREE, REMOVE, DONTNEED_LOCKED), reclaimed
 * (PAGEOUT), or open to merging and copy-on-write (MERGEABLE). */
int pc_advice_drops(int advice)
{
	switch (advice) {
	case 4:  /* MADV_DONTNEED */
	case 8:  /* MADV_FREE */
	case 9:  /* MADV_REMOVE */
	case 12: /* MADV_MERGEABLE */
	case 21: /* MADV_PAGEOUT */
	case 24: /* MADV_DONTNEED_LOCKED */
		return 1;
	}
	return 0;
}

static int overlaps(uintptr_t a, uintptr_t b, uintptr_t rs, uintptr_t re)
{
	return a < re && rs < b;
}

int pc_policy(const struct pc_event *ev, uintptr_t rs, uintptr_t re, unsigned rflags, int mremap_follow)
{
	switch (ev->reason) {
	case PINCOH_REASON_MUNMAP:
	case PINCOH_REASON_MMAP:
	case PINCOH_REASON_EXIT:
	case PINCOH_REASON_FREE:
		return overlaps(ev->start, ev->end, rs, re) ? PC_ACT_INVALIDATE : PC_ACT_KEEP;
	case PINCOH_REASON_MADVISE:
		return overlaps(ev->start, ev->end, rs, re) && pc_advice_drops((int)ev->arg) ? PC_ACT_INVALIDATE : PC_ACT_KEEP;
	case PINCOH_REASON_MPROTECT: {
		int need = 0;
		if (!overlaps(ev->start, ev->end, rs, re))
			return PC_ACT_KEEP;
		if (rflags & PINCOH_READ)
			need |= PROT_READ;
		if (rflags & PINCOH_WRITE)
			need |= PROT_WRITE;
		return ((int)ev->arg & need) == need ? PC_ACT_KEEP : PC_ACT_INVALIDATE;
	}
	case PINCOH_REASON_MREMAP: {
		/* The destination of MREMAP_FIXED is unmapped first. */
		if (ev->dest_end && overlaps(ev->dest, ev->dest_end, rs, re))
			return PC_ACT_INVALIDATE;
		if (!overlaps(ev->start, ev->end, rs, re))
			return PC_ACT_KEEP;
		if (mremap_follow) {
			/* Follow only what lies wholly inside the part that survives. */
			uintptr_t keep = ev->new_len < ev->len ? ev->new_len : ev->len;
			if (rs >= ev->start && re - ev->start <= keep)
				return PC_ACT_FOLLOW;
		}
		return PC_ACT_INVALIDATE;
	}
	}
	return PC_ACT_INVALIDATE;
}
