/* The real calls. Straight to the kernel: exact, and usable before any
 * constructor ran. A bench-only build (-DPC_STUB_SYSCALLS) never enters the
 * kernel for munmap, mprotect and mremap, so bench/ can time the hook's own
 * cost; mmap and madvise stay real there. */
#ifndef PC_REAL_H
#define PC_REAL_H
#include <sys/syscall.h>
#include <unistd.h>

#ifdef PC_STUB_SYSCALLS
#define PC_SYSCALL(...) 0L
#else
#define PC_SYSCALL(...) syscall(__VA_ARGS__)
#endif

#endif
