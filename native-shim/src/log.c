/* A logger that is safe inside malloc's locks and signal handlers: one
 * fixed buffer on the stack, one write(2). */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "shim.h"

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (s && *s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) && n < sizeof tmp);
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n && at < cap)
		buf[at++] = tmp[--n];
	return at;
}

/* "pincoh[pid]: msg detail num\n"; detail may be NULL, num < 0 omitted unless detail is NULL */
void pc_log(const char *msg, const char *detail, long num)
{
	char buf[256];
	size_t cap = sizeof buf - 1, at = 0;
	if (pc_cfg.quiet)
		return;
	at = put(buf, at, cap, "pincoh[");
	at = put_num(buf, at, cap, (long)syscall(SYS_getpid));
	at = put(buf, at, cap, "]: ");
	at = put(buf, at, cap, msg);
	if (detail) {
		at = put(buf, at, cap, " ");
		at = put(buf, at, cap, detail);
	}
	if (num != -1) {
		at = put(buf, at, cap, " ");
		at = put_num(buf, at, cap, num);
	}
	buf[at++] = '\n';
	syscall(SYS_write, 2, buf, at);
}
