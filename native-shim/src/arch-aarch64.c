/* aarch64: the patch is
 *   58000050       ldr x16, #8           (x16: IP0, the linker's own scratch at calls)
 *   d61f0200       br x16
 *   imm64          the hook's address
 * A `bti c` at the entry is kept, so indirect calls into the function still
 * land on one; a `paciasp` is not (our hook returns with a plain ret). The
 * jumps we follow: this form (also with x17), and movz/movk of an address into
 * a register then br to it (UCX's ucm). Others are said and left alone. */
#if defined(__aarch64__)
#include <stdint.h>
#include <string.h>
#include "arch.h"

#define LDR_X16_8 0x58000050u
#define LDR_X17_8 0x58000051u
#define BR_X16 0xd61f0200u
#define BR_X17 0xd61f0220u
#define BTI_C 0xd503245fu

static uint32_t insn(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

size_t pc_arch_keep(const unsigned char *p)
{
	return insn(p) == BTI_C ? 4 : 0;
}

int pc_arch_jumps(const unsigned char *p)
{
	uint32_t i = insn(p);
	uint32_t movz = i & 0xff80001fu; /* movz into x15-x17, as other trampolines load an address */
	return (i & 0xfc000000u) == 0x14000000u /* b */ || i == LDR_X16_8 || i == LDR_X17_8 || movz == 0xd280000fu ||
	       movz == 0xd2800010u || movz == 0xd2800011u;
}

/* movz xR, #imm, lsl #48; movk xR, ... lsl #32; ... lsl #16; ... #imm; br xR
 * (UCX's ucm, with x15), in any order of the shifts: the address it builds. */
static void *movz_movk_br(const unsigned char *p)
{
	uint32_t first = insn(p), rd = first & 31;
	uint64_t a = 0;
	int seen = 0;
	if ((first & 0xff800000u) != 0xd2800000u) /* movz, 64-bit */
		return NULL;
	for (int i = 0; i < 4; i++) {
		uint32_t in = insn(p + 4 * i), hw = (in >> 21) & 3;
		if ((in & 0xff800000u) != (i ? 0xf2800000u : 0xd2800000u) || (in & 31) != rd || (seen & (1 << hw)))
			return NULL;
		seen |= 1 << hw;
		a |= (uint64_t)((in >> 5) & 0xffff) << (16 * hw);
	}
	return insn(p + 16) == (0xd61f0000u | rd << 5) ? (void *)a : NULL;
}

void *pc_arch_jump_target(const unsigned char *p)
{
	uint64_t a;
	if ((insn(p) == LDR_X16_8 && insn(p + 4) == BR_X16) || (insn(p) == LDR_X17_8 && insn(p + 4) == BR_X17)) {
		memcpy(&a, p + 8, 8);
		return (void *)a;
	}
	return movz_movk_br(p);
}

/* The first instruction becomes a branch to itself, so a thread arriving now
 * waits there; then the rest; then the first, each store made visible to
 * instruction fetch. Entries are 4-byte aligned: the stores are atomic. */
void pc_arch_write_jump(unsigned char *at, void *hook)
{
	uint32_t code[4] = { LDR_X16_8, BR_X16, 0, 0 };
	memcpy(&code[2], &hook, sizeof hook);
	__atomic_store_n((uint32_t *)at, 0x14000000u /* b . */, __ATOMIC_SEQ_CST);
	__builtin___clear_cache((char *)at, (char *)at + 4);
	memcpy(at + 4, (char *)code + 4, PC_PATCH_LEN - 4);
	__builtin___clear_cache((char *)at + 4, (char *)at + PC_PATCH_LEN);
	__atomic_store_n((uint32_t *)at, code[0], __ATOMIC_SEQ_CST);
	__builtin___clear_cache((char *)at, (char *)at + 4);
}
#endif
