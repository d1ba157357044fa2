/* What a hooked call does to one registration it overlaps. A pure function,
 * mirrored by src/coherence/policy.ts; test/policy.test.ts feeds both the
 * same random cases (through native-shim/build/policy-check) and compares. */
#include <sys/mman.h>
#include "../include/pincoh.h"
#include "proto.h"
#include "shim.h"

static int overlaps(uintptr_t a, uintptr_t b, uintptr_t rs, uintptr_t re)
{
	return a < re && rs < b;
}

int pc_policy(const struct pc_event *ev, uintptr_t rs, uintptr_t re, unsigned rflags, int mremap_follow)
{
	switch (ev->op) {
	case PC_OP_MUNMAP:
		return overlaps(ev->start, ev->end, rs, re) ? PC_ACT_INVALIDATE : PC_ACT_KEEP;
	case PC_OP_MPROTECT: {
		int need = 0;
		if (!overlaps(ev->start, ev->end, rs, re))
			return PC_ACT_KEEP;
		if (rflags & PINCOH_READ)
			need |= PROT_READ;
		if (rflags & PINCOH_WRITE)
			need |= PROT_WRITE;
		return (ev->arg & need) == need ? PC_ACT_KEEP : PC_ACT_INVALIDATE;
	}
	case PC_OP_MREMAP: {
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
