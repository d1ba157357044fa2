/* The machine code of a patched libc entry, per architecture (arch-*.c).
 * patch.c decides what to patch and when; these only read and write code.
 * PC_PATCH_LEN is 0 where no code patching exists (the no-release fallback). */
#ifndef PC_ARCH_H
#define PC_ARCH_H
#include <stddef.h>

#if defined(__x86_64__)
#define PC_PATCH_LEN 13
#elif defined(__aarch64__)
#define PC_PATCH_LEN 16
#else
#define PC_PATCH_LEN 0
#endif

/* Bytes at the entry to keep (a landing pad: endbr64, bti c). */
size_t pc_arch_keep(const unsigned char *p);
/* Whether the entry already jumps somewhere (another interposer's patch, or ours). */
int pc_arch_jumps(const unsigned char *p);
/* Where such a jump goes; NULL for a form we do not follow. */
void *pc_arch_jump_target(const unsigned char *p);
/* Writes a jump to hook at `at` (writable already). Another thread running
 * the entry meanwhile sees the old code or the new, never half of an
 * instruction. The instruction cache is made to agree. */
void pc_arch_write_jump(unsigned char *at, void *hook);

#endif
