/* libdlunmap.so: a library the program dlopens later; it unmaps and frees
 * through its own references to libc's functions. */
#include <stdlib.h>
#include <sys/mman.h>

int dl_unmap(void *p, size_t len) { return munmap(p, len); }
void dl_free(void *p) { free(p); }
