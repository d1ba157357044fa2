/* policy.c alone: what each hooked call does to one registration, case by
 * case. Prints each case that disagrees, then "policy: N cases, F failed";
 * exits 1 if any did. POLICY_SRC (-D) compiles another copy of policy.c in
 * (test/policy.test.ts: a mutated one must fail). */
#ifndef POLICY_SRC
#define POLICY_SRC "../../native-shim/src/policy.c"
#endif
#include POLICY_SRC
#include <stdio.h>

#define K PC_ACT_KEEP
#define I PC_ACT_INVALIDATE
#define F PC_ACT_FOLLOW
#define R PINCOH_READ
#define W PINCOH_WRITE
#define P 4096ul
/* a registration of pages 10..12 */
#define RS (10 * P)
#define RE (12 * P)

struct c {
	const char *name;
	struct pc_event ev;
	unsigned rflags;
	int follow, want;
};

#define EV(r, s, e) .ev = { .reason = (r), .start = (s), .end = (e)
static const struct c cases[] = {
	{ "munmap over it", EV(PINCOH_REASON_MUNMAP, 9 * P, 13 * P) }, R | W, 0, I },
	{ "munmap of its last page", EV(PINCOH_REASON_MUNMAP, 11 * P, 12 * P) }, R, 0, I },
	{ "munmap ending where it starts", EV(PINCOH_REASON_MUNMAP, 8 * P, 10 * P) }, R, 0, K },
	{ "munmap starting where it ends", EV(PINCOH_REASON_MUNMAP, 12 * P, 14 * P) }, R, 0, K },
	{ "mmap MAP_FIXED over a page of it", EV(PINCOH_REASON_MMAP, 10 * P, 11 * P) }, R, 0, I },
	{ "mmap elsewhere", EV(PINCOH_REASON_MMAP, 20 * P, 21 * P) }, R, 0, K },
	{ "exit", EV(PINCOH_REASON_EXIT, 0, UINTPTR_MAX) }, R, 0, I },
	{ "free of a chunk holding it", EV(PINCOH_REASON_FREE, 10 * P, 12 * P) }, R, 0, I },
	{ "madvise DONTNEED", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 4 }, R, 0, I },
	{ "madvise FREE", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 8 }, R, 0, I },
	{ "madvise REMOVE", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 9 }, R, 0, I },
	{ "madvise MERGEABLE", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 12 }, R, 0, I },
	{ "madvise PAGEOUT", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 21 }, R, 0, I },
	{ "madvise DONTNEED_LOCKED", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 24 }, R, 0, I },
	{ "madvise WILLNEED", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 3 }, R, 0, K },
	{ "madvise DONTFORK", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 10 }, R, 0, K },
	{ "madvise COLD", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 20 }, R, 0, K },
	{ "madvise HUGEPAGE", EV(PINCOH_REASON_MADVISE, 10 * P, 11 * P), .arg = 14 }, R, 0, K },
	{ "madvise DONTNEED elsewhere", EV(PINCOH_REASON_MADVISE, 20 * P, 21 * P), .arg = 4 }, R, 0, K },
	{ "mprotect read-only, registered rw", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_READ }, R | W, 0, I },
	{ "mprotect rw, registered rw", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_READ | PROT_WRITE }, R | W, 0, K },
	{ "mprotect rwx, registered rw", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_READ | PROT_WRITE | PROT_EXEC }, R | W, 0, K },
	{ "mprotect read-only, registered r", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_READ }, R, 0, K },
	{ "mprotect write-only, registered w", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_WRITE }, W, 0, K },
	{ "mprotect none, registered r", EV(PINCOH_REASON_MPROTECT, 10 * P, 11 * P), .arg = PROT_NONE }, R, 0, I },
	{ "mprotect none elsewhere", EV(PINCOH_REASON_MPROTECT, 12 * P, 13 * P), .arg = PROT_NONE }, R, 0, K },
	{ "mremap, invalidate", EV(PINCOH_REASON_MREMAP, 10 * P, 12 * P), .len = 2 * P, .new_len = 4 * P }, R, 0, I },
	{ "mremap growing, follow", EV(PINCOH_REASON_MREMAP, 10 * P, 12 * P), .len = 2 * P, .new_len = 4 * P }, R, 1, F },
	{ "mremap of a larger mapping holding it, follow", EV(PINCOH_REASON_MREMAP, 8 * P, 16 * P), .len = 8 * P, .new_len = 8 * P }, R, 1, F },
	{ "mremap shrinking past its end, follow", EV(PINCOH_REASON_MREMAP, 10 * P, 12 * P), .len = 2 * P, .new_len = P }, R, 1, I },
	{ "mremap shrinking to its end, follow", EV(PINCOH_REASON_MREMAP, 8 * P, 16 * P), .len = 8 * P, .new_len = 4 * P }, R, 1, F },
	{ "mremap starting inside it, follow", EV(PINCOH_REASON_MREMAP, 11 * P, 13 * P), .len = 2 * P, .new_len = 2 * P }, R, 1, I },
	{ "mremap FIXED onto it, from elsewhere, follow",
	  EV(PINCOH_REASON_MREMAP, 20 * P, 22 * P), .len = 2 * P, .new_len = 2 * P, .dest = 10 * P, .dest_end = 12 * P }, R, 1, I },
	{ "mremap FIXED of it, onto itself, follow",
	  EV(PINCOH_REASON_MREMAP, 10 * P, 12 * P), .len = 2 * P, .new_len = 2 * P, .dest = 11 * P, .dest_end = 13 * P }, R, 1, I },
	{ "mremap elsewhere", EV(PINCOH_REASON_MREMAP, 20 * P, 22 * P), .len = 2 * P, .new_len = 4 * P }, R, 1, K },
	{ "an unknown reason", EV(999, 10 * P, 12 * P) }, R, 1, I },
};

static const char *act(int a)
{
	return a == K ? "keep" : a == I ? "invalidate" : a == F ? "follow" : "?";
}

int main(void)
{
	unsigned n = sizeof cases / sizeof cases[0], failed = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct c *c = &cases[i];
		int got = pc_policy(&c->ev, RS, RE, c->rflags, c->follow);
		if (got != c->want) {
			printf("%s: %s, expected %s\n", c->name, act(got), act(c->want));
			failed++;
		}
	}
	printf("policy: %u cases, %u failed\n", n, failed);
	return failed != 0;
}
