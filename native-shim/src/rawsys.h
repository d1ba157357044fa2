/* A system call made inline: no call into libc's syscall(), no errno. The
 * put path uses it: every call, return and branch after a system call costs
 * more than it looks on these machines (the predictors start cold after the
 * kernel), and a put makes one per call. Returns the result or -errno. */
#ifndef PC_RAWSYS_H
#define PC_RAWSYS_H
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline long pc_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	__asm__ __volatile__("syscall"
			     : "=a"(ret)
			     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			     : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
	__asm__ __volatile__("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#else
	int saved = errno;
	long ret = syscall(nr, a, b, c, d, e, f);
	if (ret < 0)
		ret = -errno;
	errno = saved;
	return ret;
#endif
}

#endif
