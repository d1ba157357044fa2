/* static: a program linked statically against nothing but libc. LD_PRELOAD
 * never reaches it; pincoh run must say so and change nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(void)
{
	char *p = malloc(8 << 20);
	p[0] = 1;
	free(p);
	void *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("static: mmap %s, munmap %d\n", q == MAP_FAILED ? "failed" : "ok", munmap(q, 4096));
	return 5;
}
