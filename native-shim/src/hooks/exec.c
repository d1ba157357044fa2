/* The exec family: the new image replaces the whole address space. Every
 * registration goes, and every export is revoked, before the real call. If
 * the exec then fails, they are gone all the same (docs/limits.md). Each
 * variant calls libc's own of the same name, so PATH search and the rest stay
 * libc's. A vfork child execs without touching its parent's table (pc_foreign). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include "../runtime.h"
#include "../slowpath.h"

#define REAL(name, type) \
	static type real_##name; \
	if (!PC_NEXT(real_##name, #name)) { \
		errno = ENOSYS; \
		return -1; \
	}

typedef int (*execve_t)(const char *, char *const[], char *const[]);
typedef int (*execv_t)(const char *, char *const[]);
typedef int (*fexecve_t)(int, char *const[], char *const[]);

PC_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve, execve_t);
	pc_slow_everything(1);
	return real_execve(path, argv, envp);
}

PC_EXPORT int execv(const char *path, char *const argv[])
{
	REAL(execv, execv_t);
	pc_slow_everything(1);
	return real_execv(path, argv);
}

PC_EXPORT int execvp(const char *file, char *const argv[])
{
	REAL(execvp, execv_t);
	pc_slow_everything(1);
	return real_execvp(file, argv);
}

PC_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execvpe, execve_t);
	pc_slow_everything(1);
	return real_execvpe(file, argv, envp);
}

PC_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve, fexecve_t);
	pc_slow_everything(1);
	return real_fexecve(fd, argv, envp);
}

/* The l variants gather their arguments into an array on the stack and go through the v ones. */
#define GATHER(first, ap, argv, extra) \
	size_t n = 1; \
	va_list count; \
	va_copy(count, ap); \
	while (va_arg(count, char *)) \
		n++; \
	va_end(count); \
	char *argv[n + 1]; \
	argv[0] = (char *)first; \
	for (size_t i = 1; i <= n; i++) \
		argv[i] = i < n ? va_arg(ap, char *) : NULL; \
	(void)va_arg(ap, char *); /* the terminating NULL */ \
	extra

PC_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv, );
	va_end(ap);
	return execv(path, argv);
}

PC_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv, );
	va_end(ap);
	return execvp(file, argv);
}

PC_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	GATHER(arg, ap, argv, char *const *envp = va_arg(ap, char *const *););
	va_end(ap);
	return execve(path, argv, envp);
}
