/* The one connection to the coordinator.
 *
 * Opened lazily by the first pincoh_* call that needs it, never by a hook. A
 * listener thread (signals blocked, guard set) reads every frame and wakes the
 * waiting thread by seq. Every wait is bounded by PINCOH_TIMEOUT_MS: sends by
 * SO_SNDTIMEO, replies by a timed condition wait. Locks are taken in the order
 * conn_mu -> send_mu -> wait_mu, and none is held while waiting for a reply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "proto.h"
#include "shim.h"

#define PC_WAITERS 64

struct waiter {
	uint64_t seq;
	int busy, done, lost;
	int32_t status;
	char extra[PC_REPLY_EXTRA];  /* a REPLY's payload beyond its status */
	pthread_cond_t cv;
};

static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv;
static struct waiter waiters[PC_WAITERS];
static uint64_t next_seq;                 /* under wait_mu */
static int sock = -1;                     /* under send_mu */
static _Atomic int up;
static int was_up;                        /* under conn_mu: a connection existed before */
static int follow;                        /* from WELCOME */
static int dontfork;                      /* from WELCOME */
_Atomic int pc_unsynced;                  /* registrations the coordinator has not heard of */
static PC_TLS int on_listener;            /* this thread is the listener */

static void init_conds(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&slot_cv, &a);
	for (int i = 0; i < PC_WAITERS; i++)
		pthread_cond_init(&waiters[i].cv, &a);
	pthread_condattr_destroy(&a);
}

__attribute__((constructor(101))) static void conn_init(void) { init_conds(); }

int pc_conn_up(void) { return atomic_load_explicit(&up, memory_order_acquire); }
int pc_mremap_follow(void) { return follow; }
int pc_fork_dontfork(void) { return dontfork; }

static struct timespec deadline_in(int ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L)
		t.tv_sec++, t.tv_nsec -= 1000000000L;
	return t;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		long n = syscall(SYS_sendto, fd, p, len, MSG_NOSIGNAL, NULL, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -ENOTCONN;
		p += n, len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		long n = syscall(SYS_read, fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ENOTCONN;
		p += n, len -= (size_t)n;
	}
	return 0;
}

static size_t frame(char *buf, int type, int flags, uint64_t seq, const void *payload, size_t len)
{
	struct pc_hdr h = { .len = (uint32_t)(PC_HDR_SIZE + len), .type = (uint16_t)type, .flags = (uint16_t)flags, .seq = seq };
	memcpy(buf, &h, sizeof h);
	memcpy(buf + PC_HDR_SIZE, payload, len);
	return PC_HDR_SIZE + len;
}

static int send_frame(int type, int flags, uint64_t seq, const void *payload, size_t len)
{
	char buf[PC_HDR_SIZE + 128];
	size_t n = frame(buf, type, flags, seq, payload, len);
	int rc;
	pthread_mutex_lock(&send_mu);
	rc = sock < 0 ? -ENOTCONN : write_all(sock, buf, n);
	if (rc == -ETIMEDOUT)  /* a half-sent frame ruins the stream: let the listener close it */
		syscall(SYS_shutdown, sock, SHUT_RDWR);
	pthread_mutex_unlock(&send_mu);
	return rc;
}

/* ---- the listener ---- */

static void complete(uint64_t seq, int32_t status, const char *extra, size_t extra_len, int lost)
{
	pthread_mutex_lock(&wait_mu);
	for (int i = 0; i < PC_WAITERS; i++) {
		struct waiter *w = &waiters[i];
		if (w->busy && !w->done && (lost || w->seq == seq)) {
			w->done = 1, w->lost = lost, w->status = status;
			memset(w->extra, 0, sizeof w->extra);
			memcpy(w->extra, extra, extra_len < sizeof w->extra ? extra_len : sizeof w->extra);
			pthread_cond_signal(&w->cv);
		}
	}
	pthread_mutex_unlock(&wait_mu);
}

static void lost(int fd)
{
	pthread_mutex_lock(&send_mu);
	if (sock == fd) {
		sock = -1;
		atomic_store(&up, 0);
		syscall(SYS_close, fd);
	}
	pthread_mutex_unlock(&send_mu);
	/* everything a woken caller may look at is settled before it wakes */
	pc_attach_kill_all(); /* nobody can revoke them any more */
	if (pc_table_count())
		atomic_store(&pc_unsynced, 1);
	pc_note_lost();
	complete(0, -ENOTCONN, NULL, 0, 1);
}

/* REVOKE: the handle dies (puts in flight finish first), then the ACK, then
 * the attacher's callback, which cannot delay the owner that way. */
static void serve_revoke(uint64_t seq, const char *buf)
{
	struct pc_revoke r;
	struct pc_revoked ack;
	int32_t pid;
	uintptr_t addr;
	size_t len;
	int rc;
	memcpy(&r, buf, sizeof r);
	rc = pc_attach_revoke(r.handle, &pid, &addr, &len);
	ack.handle = r.handle;
	send_frame(PC_T_REVOKED, PC_F_NOREPLY, seq, &ack, sizeof ack); /* known or not: it is dead */
	if (rc == 0)
		pc_notify_revoked(r.handle, (void *)addr, len);
}

static void *listener(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char buf[PC_FRAME_MAX]; /* one listener at a time: the old one is gone before a reconnect */
	pc_guard = 1;
	on_listener = 1;
	for (;;) {
		struct pc_hdr h;
		if (read_all(fd, &h, sizeof h) < 0)
			break;
		if (h.len < PC_HDR_SIZE || h.len > PC_FRAME_MAX) {
			pc_log("coordinator sent a frame of bad length; disconnecting", NULL, (long)h.len);
			break;
		}
		if (read_all(fd, buf, h.len - PC_HDR_SIZE) < 0)
			break;
		if (h.type == PC_T_REPLY && h.len >= PC_HDR_SIZE + sizeof(struct pc_reply)) {
			struct pc_reply r;
			memcpy(&r, buf, sizeof r);
			complete(h.seq, r.status, buf + sizeof r, h.len - PC_HDR_SIZE - sizeof r, 0);
		} else if (h.type == PC_T_REVOKE && h.len >= PC_HDR_SIZE + sizeof(struct pc_revoke)) {
			serve_revoke(h.seq, buf);
		} else if (h.type == PC_T_ERROR && h.len >= PC_HDR_SIZE + sizeof(struct pc_error)) {
			buf[h.len - PC_HDR_SIZE < sizeof buf ? h.len - PC_HDR_SIZE : sizeof buf - 1] = 0;
			pc_log("coordinator says:", buf + sizeof(struct pc_error), -1);
		} else {
			pc_log("coordinator sent an unexpected frame type; disconnecting", NULL, h.type);
			break;
		}
	}
	lost(fd);
	return NULL;
}

static int start_listener(int fd)
{
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;
	int rc;
	sigfillset(&all);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);  /* born muted: inherits the full mask */
	rc = pthread_create(&t, &a, listener, (void *)(intptr_t)fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	return -rc;
}

/* ---- connecting ---- */

static int handshake(int fd)
{
	struct pc_hello hello = { .version = PC_PROTO_VERSION, .pid = (int32_t)getpid(), .ppid = (int32_t)getppid(),
				  .rank = pc_cfg.rank, .size = pc_cfg.size, .page_size = (uint32_t)pc_page_size };
	memcpy(hello.job, pc_cfg.job, sizeof hello.job);
	hello.libc = (uint32_t)pc_libc_mode;
	hello.chained = (uint32_t)__atomic_load_n(&pc_chained, __ATOMIC_RELAXED); /* libc entries shared with another interposer */
	char buf[PC_HDR_SIZE + 256];
	struct pc_hdr h;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	strncpy(hello.argv0, program_invocation_short_name, sizeof hello.argv0 - 1);
	if (write_all(fd, buf, frame(buf, PC_T_HELLO, 0, 0, &hello, sizeof hello)) < 0)
		return -ENOTCONN;
	/* Read exactly one frame, bounded by the timeout. */
	while (got < PC_HDR_SIZE || got < ((struct pc_hdr *)buf)->len) {
		long n;
		size_t want = got < PC_HDR_SIZE ? PC_HDR_SIZE - got : ((struct pc_hdr *)buf)->len - got;
		if (poll(&p, 1, pc_cfg.timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = syscall(SYS_read, fd, buf + got, want);
		if (n <= 0)
			return -ENOTCONN;
		got += (size_t)n;
		if (got == PC_HDR_SIZE) {
			memcpy(&h, buf, sizeof h);
			if (h.len < PC_HDR_SIZE || h.len > sizeof buf)
				return -EPROTO;
		}
	}
	memcpy(&h, buf, sizeof h);
	if (h.type == PC_T_ERROR && h.len > PC_HDR_SIZE + sizeof(struct pc_error)) {
		struct pc_error e;
		memcpy(&e, buf + PC_HDR_SIZE, sizeof e);
		buf[h.len < sizeof buf ? h.len : sizeof buf - 1] = 0;
		pc_log("coordinator refused this process:", buf + PC_HDR_SIZE + sizeof(struct pc_error), -1);
		return e.code < 0 && e.code > -4096 ? e.code : -EACCES; /* its reason, e.g. -EACCES for a uid */
	}
	if (h.type != PC_T_WELCOME || h.len < PC_HDR_SIZE + sizeof(struct pc_welcome))
		return -EPROTO;
	struct pc_welcome w;
	memcpy(&w, buf + PC_HDR_SIZE, sizeof w);
	if (w.version != PC_PROTO_VERSION) {
		pc_log("the coordinator at PINCOH_SOCKET speaks another protocol version than this shim's", NULL, PC_PROTO_VERSION);
		return -EPROTO;
	}
	follow = (w.flags & PC_W_MREMAP_FOLLOW) != 0;
	dontfork = (w.flags & PC_W_FORK_DONTFORK) != 0;
	return 0;
}

static int open_connection(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = pc_cfg.timeout_ms / 1000, .tv_usec = (pc_cfg.timeout_ms % 1000) * 1000 };
	int fd, rc;

	memcpy(a.sun_path, pc_cfg.socket_path, sizeof a.sun_path);
	fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -ENOTCONN;
	if (syscall(SYS_connect, fd, &a, sizeof a) < 0) {
		syscall(SYS_close, fd);
		return -ENOTCONN;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	rc = handshake(fd);
	if (rc == 0) {
		pthread_mutex_lock(&send_mu);
		sock = fd;
		atomic_store(&up, 1);
		pthread_mutex_unlock(&send_mu);
		rc = start_listener(fd);
		if (rc == 0)
			return 0;
		pthread_mutex_lock(&send_mu);
		sock = -1;
		atomic_store(&up, 0);
		pthread_mutex_unlock(&send_mu);
	}
	syscall(SYS_close, fd);
	return rc == -ETIMEDOUT ? -ENOTCONN : rc;
}

int pc_conn_ensure(void)
{
	int rc = 0;
	if (pc_conn_up())
		return pc_foreign() ? -ENOTCONN : 0;
	if (!pc_cfg.socket_path[0] || pc_foreign())
		return -ENOTCONN;
	pthread_mutex_lock(&conn_mu);
	if (!pc_conn_up()) {
		rc = open_connection();
		/* a new coordinator after a lost one: tell it what we hold */
		if (rc == 0 && was_up)
			pc_reannounce();
		if (rc == 0)
			was_up = 1;
	}
	pthread_mutex_unlock(&conn_mu);
	return rc;
}

/* ---- requests ---- */

static int request(int type, const void *payload, size_t len, int32_t *status, uint64_t *seq, void *extra,
		   size_t extra_len, int ms)
{
	struct timespec dl = deadline_in(ms);
	struct waiter *w = NULL;
	int rc = 0;

	if (on_listener)
		return -EDEADLK; /* only the listener could read the answer */
	if (!pc_conn_up() || pc_foreign())
		return -ENOTCONN;
	pthread_mutex_lock(&wait_mu);
	while (!w) {
		for (int i = 0; i < PC_WAITERS && !w; i++)
			if (!waiters[i].busy)
				w = &waiters[i];
		if (!w && pthread_cond_timedwait(&slot_cv, &wait_mu, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&wait_mu);
			return -ETIMEDOUT;
		}
	}
	w->busy = 1, w->done = 0, w->lost = 0, w->seq = ++next_seq;
	if (seq)
		*seq = w->seq;
	pthread_mutex_unlock(&wait_mu);

	rc = send_frame(type, 0, w->seq, payload, len);

	pthread_mutex_lock(&wait_mu);
	while (rc == 0 && !w->done)
		if (pthread_cond_timedwait(&w->cv, &wait_mu, &dl) == ETIMEDOUT && !w->done)
			rc = -ETIMEDOUT;
	if (rc == 0)
		rc = w->lost ? -ENOTCONN : 0;
	if (rc == 0 && status)
		*status = w->status;
	if (rc == 0 && extra)
		memcpy(extra, w->extra, extra_len < sizeof w->extra ? extra_len : sizeof w->extra);
	w->busy = 0;
	pthread_cond_signal(&slot_cv);
	pthread_mutex_unlock(&wait_mu);
	return rc;
}

int pc_request(int type, const void *payload, size_t len, int32_t *status, uint64_t *seq, void *extra, size_t extra_len)
{
	return request(type, payload, len, status, seq, extra, extra_len, pc_cfg.timeout_ms);
}

int pc_request_ms(int type, const void *payload, size_t len, int32_t *status, void *extra, size_t extra_len, int ms)
{
	return request(type, payload, len, status, NULL, extra, extra_len, ms < 0 ? pc_cfg.timeout_ms : ms);
}

int pc_notify(int type, const void *payload, size_t len)
{
	uint64_t seq;
	if (pc_foreign())
		return -ENOTCONN;
	pthread_mutex_lock(&wait_mu);
	seq = ++next_seq;
	pthread_mutex_unlock(&wait_mu);
	return send_frame(type, PC_F_NOREPLY, seq, payload, len);
}

/* ---- fork ---- */

void pc_conn_atfork_prepare(void)
{
	pthread_mutex_lock(&conn_mu);
	pthread_mutex_lock(&send_mu);
	pthread_mutex_lock(&wait_mu);
}

void pc_conn_atfork_parent(void)
{
	pthread_mutex_unlock(&wait_mu);
	pthread_mutex_unlock(&send_mu);
	pthread_mutex_unlock(&conn_mu);
}

/* The child has one thread and no listener: drop the parent's connection
 * (the parent keeps it) and connect afresh on the first need. */
void pc_conn_atfork_child(void)
{
	pthread_mutex_init(&conn_mu, NULL);
	pthread_mutex_init(&send_mu, NULL);
	pthread_mutex_init(&wait_mu, NULL);
	memset(waiters, 0, sizeof waiters);
	was_up = 0;
	atomic_store(&pc_unsynced, 0);
	init_conds();
	if (sock >= 0)
		syscall(SYS_close, sock);
	sock = -1;
	atomic_store(&up, 0);
}
