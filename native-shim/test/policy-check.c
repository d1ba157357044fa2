/* Reads "op arg start end len new_len dest dest_end rs re rflags follow" lines
 * (hex numbers) and prints the policy's action for each, so the tests can hold
 * the C policy and the coordinator's TypeScript policy to the same answers. */
#include <stdio.h>
#include "../src/shim.h"

uintptr_t pc_page_size = 4096;

int main(void)
{
	unsigned long v[12];
	while (scanf("%lx %lx %lx %lx %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		     &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]) == 12) {
		struct pc_event ev = { .op = (int)v[0], .arg = (int)v[1], .start = v[2], .end = v[3], .len = v[4],
				       .new_len = v[5], .dest = v[6], .dest_end = v[7] };
		printf("%d\n", pc_policy(&ev, v[8], v[9], (unsigned)v[10], (int)v[11]));
	}
	return 0;
}
