/* patch.c: libc's own entries made to jump to our hooks, chained to another
 * interposer's where it was there first or comes later. The entries (which
 * hook for which function) are init.c's to give. */
#ifndef PC_PATCH_H
#define PC_PATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "hooks/hooktable.h"
#include "runtime.h"

extern int pc_libc_mode;   /* PINCOH_LIBC_NONE, _PATCHED or _NORELEASE */

struct pc_patch_entry {
	const char *name;       /* libc's function */
	void *hook;             /* ours */
	void **next;            /* the pc_chain slot our hook calls when chained */
	unsigned char *at;      /* patch.c's: where our jump is written (after a landing pad), NULL if not ours */
};
void pc_patch_init(struct pc_patch_entry *entries, size_t n);
void pc_patch_recheck(void);

/* Another interposer's hooks on libc's entries, called as our real call
 * (NULL: straight to the kernel). */
struct pc_chain {
	PC_HOOKS(PC_CHAIN_SLOT)                              /* the chained rows of hooks/hooktable.h */
	PC_HOOKS_PATCHED_ONLY(PC_CHAIN_SLOT_PATCHED_ONLY)
};
extern struct pc_chain pc_chain;
extern int pc_chained;     /* entries whose real call goes through another interposer */
#define PC_CHAIN_CALL(fn, ...)                                                \
	({                                                                    \
		__typeof__(pc_chain.fn) f_ = __atomic_load_n(&pc_chain.fn, __ATOMIC_ACQUIRE); \
		__typeof__(f_(__VA_ARGS__)) r_;                               \
		pc_guard.why.chaining++;                                      \
		r_ = f_(__VA_ARGS__);                                         \
		pc_guard.why.chaining--;                                      \
		r_;                                                           \
	})
#define PC_CHAINED(fn) (PC_UNLIKELY(__atomic_load_n(&pc_chain.fn, __ATOMIC_RELAXED) != NULL) && !pc_guard.why.chaining)
/* An mprotect over these pages may be another interposer writing over our
 * patches (written once per patch, read with relaxed loads). */
extern uintptr_t pc_patch_lo, pc_patch_hi;
/* libc's cached break (__curbrk), once libc's sbrk jumps to our hook */
extern void **pc_curbrk;

#endif
