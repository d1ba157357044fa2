/* x86_64: the patch is
 *   49 BB imm64    movabs $hook, %r11    (r11: scratch, never an argument)
 *   41 FF E3       jmp *%r11
 * and the jumps we follow are other interposers' usual ones: jmp rel32,
 * jmp *rel32(%rip), movabs + jmp *%rax, and the form above. */
#if defined(__x86_64__)
#include <stdint.h>
#include <string.h>
#include "arch.h"

size_t pc_arch_keep(const unsigned char *p)
{
	return p[0] == 0xF3 && p[1] == 0x0F && p[2] == 0x1E && p[3] == 0xFA ? 4 : 0; /* endbr64 */
}

int pc_arch_jumps(const unsigned char *p)
{
	return p[0] == 0xE9 || p[0] == 0xEB || (p[0] == 0xFF && p[1] == 0x25) || (p[0] == 0x48 && p[1] == 0xB8) ||
	       (p[0] == 0x49 && p[1] == 0xBB);
}

void *pc_arch_jump_target(const unsigned char *p)
{
	int32_t d;
	uint64_t a;
	if (p[0] == 0xE9) { /* jmp rel32 */
		memcpy(&d, p + 1, 4);
		return (void *)(p + 5 + d);
	}
	if (p[0] == 0xFF && p[1] == 0x25) { /* jmp *rel32(%rip) */
		memcpy(&d, p + 2, 4);
		memcpy(&a, p + 6 + d, 8);
		return (void *)a;
	}
	if (p[0] == 0x48 && p[1] == 0xB8 && p[10] == 0xFF && p[11] == 0xE0) { /* movabs %rax; jmp *%rax */
		memcpy(&a, p + 2, 8);
		return (void *)a;
	}
	if (p[0] == 0x49 && p[1] == 0xBB && p[10] == 0x41 && p[11] == 0xFF && p[12] == 0xE3) { /* movabs %r11; jmp *%r11 */
		memcpy(&a, p + 2, 8);
		return (void *)a;
	}
	return NULL;
}

/* One 2-byte store to code: plain asm, since a sanitizer's instrumented atomic
 * would try to keep shadow state for libc's text. */
static void store16(unsigned char *at, uint16_t v)
{
	__asm__ volatile("movw %1, (%0)\n\tmfence" : : "r"(at), "r"(v) : "memory");
}

/* The first two bytes become a jump to itself, so a thread arriving now waits
 * there; then the rest is written; then the head, in one store. Function
 * entries are 16-byte aligned, so both 2-byte stores are atomic. (A thread
 * between the two instructions of a movabs/jmp pair written by someone else
 * could still land in our new bytes: a window of one instruction, only when
 * such a pair is replaced while it runs.) x86 keeps its instruction cache
 * coherent with stores. */
void pc_arch_write_jump(unsigned char *at, void *hook)
{
	unsigned char code[PC_PATCH_LEN] = { 0x49, 0xBB, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xFF, 0xE3 };
	uint16_t head;
	memcpy(code + 2, &hook, sizeof hook);
	memcpy(&head, code, 2);
	if ((uintptr_t)at & 1) {
		memcpy(at, code, PC_PATCH_LEN);
		return;
	}
	store16(at, 0xFEEB); /* EB FE: jmp to itself */
	memcpy(at + 2, code + 2, PC_PATCH_LEN - 2);
	store16(at, head);
}
#endif
