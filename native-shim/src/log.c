/* A logger that is safe inside malloc's locks and signal handlers: one
 * fixed buffer on the stack, one write(2), errno kept (a closed stderr fails
 * the write, and the program must not see that). */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "log.h"

int pc_log_quiet;

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
	char buf[512];
	size_t cap = sizeof buf - 1, at = 0;
	int saved = errno;
	if (pc_log_quiet)
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
	errno = saved;
}

/* "pincoh[pid]: NAME is not a whole number from LO to HI; using DEF" */
void pc_log_bad_int(const char *name, long lo, long hi, long def)
{
	char msg[160];
	size_t cap = sizeof msg - 1, at = 0;
	at = put(msg, at, cap, name);
	at = put(msg, at, cap, " is not a whole number from ");
	at = put_num(msg, at, cap, lo);
	at = put(msg, at, cap, " to ");
	at = put_num(msg, at, cap, hi);
	at = put(msg, at, cap, "; using ");
	at = put_num(msg, at, cap, def);
	msg[at] = 0;
	pc_log(msg, NULL, -1);
}

/* The errno names a connection attempt can end with, for messages (no
 * strerrorname_np: glibc 2.32 and later only, and no locale either way). */
const char *pc_errno_name(int e)
{
	switch (e) {
	case ENOENT: return "ENOENT (nothing at that path)";
	case ECONNREFUSED: return "ECONNREFUSED (nothing listens there, or it is not a socket)";
	case ENOTDIR: return "ENOTDIR (a path component is not a directory)";
	case EACCES: return "EACCES (permission denied)";
	case EPERM: return "EPERM (not permitted)";
	case EMFILE: return "EMFILE (no descriptor left)";
	case ENFILE: return "ENFILE (no descriptor left in the system)";
	case ENOMEM: return "ENOMEM";
	case EAGAIN: return "EAGAIN (the coordinator's backlog is full)";
	case ETIMEDOUT: return "ETIMEDOUT (no answer within PINCOH_TIMEOUT_MS)";
	case ENOTSOCK: return "ENOTSOCK (not a socket)";
	case EPROTOTYPE: return "EPROTOTYPE (not a stream socket)";
	case ECONNRESET: return "ECONNRESET (the coordinator hung up)";
	case ENOTCONN: return "ENOTCONN (the coordinator hung up)";
	case EPROTO: return "EPROTO (another protocol version)";
	case ELOOP: return "ELOOP";
	default: return NULL;
	}
}
