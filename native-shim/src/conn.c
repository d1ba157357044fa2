/* The socket to the coordinator: frames out, replies in.
 *
 * No thread of ours sits on it. A thread that waits for a reply reads for
 * every waiter: one reader at a time, the others wait on a condition and take
 * over when it leaves (leader and followers). The coordinator sends nothing
 * unasked but an ERROR before it cuts us off, so nothing is missed while
 * nobody reads. Every wait is bounded: sends by SO_SNDTIMEO, replies by the
 * caller's deadline.
 *
 * Locks: send_mu (writing, and the descriptor's life), wait_mu (the waiters);
 * never both at once except in the fork handlers, in that order. A lost
 * connection is shut down at once, and its descriptor closed only when the
 * reader that may be polling it has let go.
 *
 * The descriptor is ours only while its number still names our socket: a
 * program may close it (closefrom) or dup2 its own over it, as shells and
 * daemons do. Before every use (a send, a poll, a read, a shutdown, a close)
 * one fstat compares it with the socket we made; a number that names
 * something else now is the program's, and the connection is lost without
 * touching it. The window between that check and the use is the one left. The
 * socket is also moved to a high number (256 or more, where the limit allows)
 * that programs are unlikely to reuse.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "config.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "runtime.h"

#define PC_WAITERS 64

struct waiter {
	uint64_t seq;
	unsigned gen;                /* the connection it was sent on */
	int busy, done, lost;
	int32_t status;
	char extra[PC_REPLY_EXTRA];  /* a REPLY's payload beyond its status */
};

static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cv;            /* any waiter's news: a reply, a free slot, the reader left */
static struct waiter waiters[PC_WAITERS];
static uint64_t next_seq;                 /* under wait_mu */
static int reading;                       /* under wait_mu: a waiter is reading for everyone */

/* under send_mu */
static int cur_fd = -1, cur_refs;         /* the connection (1 ref) plus its reader */
static int old_fd = -1, old_refs;         /* a lost connection's, until its reader lets go */
static dev_t cur_dev, old_dev;            /* which socket each number named when it was ours */
static ino_t cur_ino, old_ino;
static int losing;                        /* lost(): the cleanup runs; no new connection until it is done */
static void (*on_lost)(void);
static _Atomic unsigned gen;              /* which connection; a new one, or a loss, moves it on */
static _Atomic int up;

/* the reader's, one at a time: a frame may arrive in pieces across readers */
static char rx[PC_FRAME_MAX];
static size_t rx_have;
static unsigned rx_gen;

static void init_cond(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&wait_cv, &a);
	pthread_condattr_destroy(&a);
}

__attribute__((constructor(101))) static void conn_init(void) { init_cond(); }

int pc_conn_up(void) { return atomic_load_explicit(&up, memory_order_acquire); }

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

static int ms_until(const struct timespec *dl)
{
	struct timespec t;
	long ms;
	clock_gettime(CLOCK_MONOTONIC, &t);
	ms = (dl->tv_sec - t.tv_sec) * 1000 + (dl->tv_nsec - t.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > 0x7fffffff ? 0x7fffffff : (int)ms;
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

static size_t frame(char *buf, int type, int flags, uint64_t seq, const void *payload, size_t len)
{
	struct pc_hdr h = { .len = (uint32_t)(PC_HDR_SIZE + len), .type = (uint16_t)type, .flags = (uint16_t)flags, .seq = seq };
	memcpy(buf, &h, sizeof h);
	memcpy(buf + PC_HDR_SIZE, payload, len);
	return PC_HDR_SIZE + len;
}

static void lost(unsigned g);

/* ---- the descriptor's life ---- */

/* Does fd still name the socket (dev, ino)? One fstat; errno kept. */
static int ours(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	int saved = errno, ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
	errno = saved;
	return ok;
}

/* Closes fd only if it is still ours; otherwise it is the program's now. */
static void close_if_ours(int fd, dev_t dev, ino_t ino)
{
	if (ours(fd, dev, ino))
		syscall(SYS_close, fd);
}

/* The connection's descriptor with a reference, or -1 (gone, or not ours any more: then lost). */
static int get_fd(unsigned g)
{
	int fd = -1, stolen = 0;
	pthread_mutex_lock(&send_mu);
	if (atomic_load(&gen) == g && cur_fd >= 0) {
		if (ours(cur_fd, cur_dev, cur_ino))
			fd = cur_fd, cur_refs++;
		else
			stolen = 1;
	}
	pthread_mutex_unlock(&send_mu);
	if (stolen) {
		pc_log("the program closed or reused this process's connection descriptor; reconnecting at the next pincoh call", NULL, -1);
		lost(g);
	}
	return fd;
}

static void put_fd(int fd)
{
	pthread_mutex_lock(&send_mu);
	if (fd == cur_fd)
		cur_refs--; /* the connection's own ref keeps it open */
	else if (fd == old_fd && --old_refs == 0) {
		close_if_ours(old_fd, old_dev, old_ino);
		old_fd = -1;
	}
	pthread_mutex_unlock(&send_mu);
}

/* Connection g is over (EOF, an error, a half-sent frame, a bad frame).
 * Its waiters and the session's state are settled before its descriptor is
 * let go, so no new connection can exist yet for the cleanup to hit. */
static void lost(unsigned g)
{
	void (*cb)(void);
	pthread_mutex_lock(&send_mu);
	if (atomic_load(&gen) != g || cur_fd < 0 || losing) {
		pthread_mutex_unlock(&send_mu);
		return;
	}
	losing = 1;
	if (ours(cur_fd, cur_dev, cur_ino))
		syscall(SYS_shutdown, cur_fd, SHUT_RDWR); /* wakes whoever polls it */
	atomic_store(&up, 0);
	cb = on_lost;
	pthread_mutex_unlock(&send_mu);

	pthread_mutex_lock(&wait_mu);
	for (int i = 0; i < PC_WAITERS; i++)
		if (waiters[i].busy && !waiters[i].done && waiters[i].gen == g)
			waiters[i].done = 1, waiters[i].lost = 1;
	pthread_cond_broadcast(&wait_cv);
	pthread_mutex_unlock(&wait_mu);
	if (cb)
		cb();

	pthread_mutex_lock(&send_mu);
	atomic_fetch_add(&gen, 1);
	if (--cur_refs == 0)
		close_if_ours(cur_fd, cur_dev, cur_ino);
	else
		old_fd = cur_fd, old_refs = cur_refs, old_dev = cur_dev, old_ino = cur_ino;
	cur_fd = -1, cur_refs = 0;
	losing = 0;
	pthread_mutex_unlock(&send_mu);
}

static struct timespec abandoned; /* under send_mu: when we last gave up on a coordinator */

/* Gives up on the connection (a coordinator that stopped draining our events). */
void pc_conn_abandon(void)
{
	pthread_mutex_lock(&send_mu);
	clock_gettime(CLOCK_MONOTONIC, &abandoned);
	pthread_mutex_unlock(&send_mu);
	lost(atomic_load(&gen));
}

/* A coordinator given up on is not tried again for PINCOH_TIMEOUT_MS: with
 * more registrations than its ring holds, every new connection would fill it
 * again and wait out the timeout once more. */
int pc_conn_backing_off(void)
{
	struct timespec now;
	long ms;
	pthread_mutex_lock(&send_mu);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - abandoned.tv_sec) * 1000 + (now.tv_nsec - abandoned.tv_nsec) / 1000000;
	pthread_mutex_unlock(&send_mu);
	return abandoned.tv_sec && ms < pc_cfg.timeout_ms;
}

static int send_frame(unsigned g, int type, int flags, uint64_t seq, const void *payload, size_t len)
{
	char buf[PC_HDR_SIZE + 128];
	size_t n = frame(buf, type, flags, seq, payload, len);
	int rc = -ENOTCONN;
	pthread_mutex_lock(&send_mu);
	if (atomic_load(&gen) == g && cur_fd >= 0) {
		if (ours(cur_fd, cur_dev, cur_ino))
			rc = write_all(cur_fd, buf, n);
		else
			pc_log("the program closed or reused this process's connection descriptor; reconnecting at the next pincoh call", NULL, -1);
	}
	pthread_mutex_unlock(&send_mu);
	if (rc < 0)
		lost(g); /* a half-sent frame ruins the stream as surely as a closed one */
	return rc;
}

/* ---- connecting ---- */

/* fd moved to 256 or above, where the limit allows: programs reuse low numbers. */
static int high(int fd)
{
	struct rlimit r;
	long moved;
	if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &r) != 0 || r.rlim_cur <= 512)
		return fd;
	moved = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 256);
	if (moved < 0)
		return fd;
	syscall(SYS_close, fd);
	return (int)moved;
}

/* *cause: the system's own errno when it fails (ENOENT, ECONNREFUSED...), for the message */
int pc_conn_dial(const char *path, int *cause)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = pc_cfg.timeout_ms / 1000, .tv_usec = (pc_cfg.timeout_ms % 1000) * 1000 };
	long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err;
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	if (fd < 0)
		return -(*cause = errno); /* EMFILE, ENFILE, ENOMEM, EPERM (a seccomp filter)...: the caller's answer */
	/* before connect: a coordinator whose backlog is full makes connect wait, bounded by it too */
	syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (syscall(SYS_connect, fd, &a, sizeof a) < 0) {
		err = *cause = errno;
		syscall(SYS_close, fd);
		/* nobody there: no coordinator; anything else (EACCES, EPERM...) says itself */
		return err == ENOENT || err == ECONNREFUSED || err == ENOTDIR || err == EAGAIN ? -ENOTCONN : -err;
	}
	return high((int)fd);
}

/* The coordinator's pid: the kernel's word for who listens at the other end. */
int pc_conn_peer_pid(int fd)
{
	struct ucred c;
	socklen_t len = sizeof c;
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
		return -errno;
	return c.pid > 0 ? c.pid : -ESRCH;
}

/* One frame out, then exactly one back into buf (its header in *h), on a
 * socket no other thread knows yet; each wait bounded by ms. */
static int exchange(int fd, int type, const void *payload, size_t len, char *buf, size_t size, struct pc_hdr *h, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	if (write_all(fd, buf, frame(buf, type, 0, 0, payload, len)) < 0)
		return -ENOTCONN;
	while (got < PC_HDR_SIZE || got < h->len) {
		long n;
		if (poll(&p, 1, ms) <= 0)
			return -ETIMEDOUT;
		n = syscall(SYS_read, fd, buf + got, got < PC_HDR_SIZE ? PC_HDR_SIZE - got : h->len - got);
		if (n <= 0)
			return -ENOTCONN;
		got += (size_t)n;
		if (got == PC_HDR_SIZE) {
			memcpy(h, buf, sizeof *h);
			if (h->len < PC_HDR_SIZE || h->len > size)
				return -EPROTO;
		}
	}
	return 0;
}

/* HELLO, then exactly one frame back (WELCOME or ERROR), bounded by ms. */
int pc_conn_handshake(int fd, const void *hello, size_t len, void *welcome, size_t welcome_len, int ms)
{
	char buf[PC_HDR_SIZE + 512];
	struct pc_hdr h;
	int rc = exchange(fd, PC_T_HELLO, hello, len, buf, sizeof buf, &h, ms);

	if (rc < 0)
		return rc;
	if (h.type == PC_T_ERROR && h.len > PC_HDR_SIZE + sizeof(struct pc_error)) {
		struct pc_error e;
		memcpy(&e, buf + PC_HDR_SIZE, sizeof e);
		buf[h.len < sizeof buf ? h.len : sizeof buf - 1] = 0;
		pc_log("coordinator refused this process:", buf + PC_HDR_SIZE + sizeof(struct pc_error), -1);
		return e.code < 0 && e.code > -4096 ? e.code : -EACCES; /* its reason, e.g. -EACCES for a uid */
	}
	if (h.type != PC_T_WELCOME || h.len < PC_HDR_SIZE + welcome_len)
		return -EPROTO;
	memcpy(welcome, buf + PC_HDR_SIZE, welcome_len);
	return 0;
}

/* FAREWELL; with wait, then its answer: any frame, or the coordinator hanging
 * up (one that knows no FAREWELL cuts us off). -ETIMEDOUT after ms. */
int pc_conn_farewell(int fd, const void *farewell, size_t len, int wait, int ms)
{
	char buf[PC_HDR_SIZE + 512];
	struct pc_hdr h;
	if (!wait) /* what we wrote is read after we close */
		return write_all(fd, buf, frame(buf, PC_T_FAREWELL, PC_F_NOREPLY, 0, farewell, len));
	return exchange(fd, PC_T_FAREWELL, farewell, len, buf, sizeof buf, &h, ms) == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* fd becomes the connection. -EBUSY while a lost one's descriptor is still held. */
int pc_conn_install(int fd, void (*lost_cb)(void))
{
	int rc = 0;
	pthread_mutex_lock(&send_mu);
	if (old_fd >= 0 || cur_fd >= 0 || losing)
		rc = -EBUSY;
	else {
		struct stat st;
		if (fstat(fd, &st) != 0)
			rc = -ENOTCONN;
		else {
			cur_fd = fd, cur_refs = 1, cur_dev = st.st_dev, cur_ino = st.st_ino;
			on_lost = lost_cb;
			atomic_fetch_add(&gen, 1);
			atomic_store(&up, 1);
		}
	}
	pthread_mutex_unlock(&send_mu);
	return rc;
}

/* ---- reading, for every waiter ---- */

static void complete(uint64_t seq, int32_t status, const char *extra, size_t extra_len)
{
	pthread_mutex_lock(&wait_mu);
	for (int i = 0; i < PC_WAITERS; i++) {
		struct waiter *w = &waiters[i];
		if (w->busy && !w->done && w->seq == seq) {
			w->done = 1, w->status = status;
			memset(w->extra, 0, sizeof w->extra);
			memcpy(w->extra, extra, extra_len < sizeof w->extra ? extra_len : sizeof w->extra);
			pthread_cond_broadcast(&wait_cv);
			break;
		}
	}
	pthread_mutex_unlock(&wait_mu);
}

/* One whole frame at rx; 0, or -EPROTO if it cannot be from a coordinator. */
static int handle(const struct pc_hdr *h, const char *payload)
{
	size_t len = h->len - PC_HDR_SIZE;
	if (h->type == PC_T_REPLY && len >= sizeof(struct pc_reply)) {
		struct pc_reply r;
		memcpy(&r, payload, sizeof r);
		complete(h->seq, r.status, payload + sizeof r, len - sizeof r);
		return 0;
	}
	if (h->type == PC_T_ERROR && len > sizeof(struct pc_error)) {
		char msg[256];
		size_t n = len - sizeof(struct pc_error) < sizeof msg - 1 ? len - sizeof(struct pc_error) : sizeof msg - 1;
		memcpy(msg, payload + sizeof(struct pc_error), n);
		msg[n] = 0;
		pc_log("coordinator says:", msg, -1);
		return 0;
	}
	pc_log("coordinator sent an unexpected frame type; disconnecting", NULL, h->type);
	return -EPROTO;
}

/* Reads what is there (waiting until dl), handling each whole frame. 0 after
 * some progress, -ETIMEDOUT, or -ENOTCONN once connection g is over. */
static int read_some(unsigned g, const struct timespec *dl)
{
	int fd = get_fd(g), rc = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long n;
	if (fd < 0)
		return -ENOTCONN;
	if (rx_gen != g)
		rx_gen = g, rx_have = 0; /* a new connection starts a new stream */
	n = poll(&p, 1, ms_until(dl));
	if (n == 0)
		rc = -ETIMEDOUT;
	else if (n > 0) {
		n = syscall(SYS_recvfrom, fd, rx + rx_have, sizeof rx - rx_have, MSG_DONTWAIT, NULL, NULL);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			rc = -ENOTCONN;
		else if (n > 0)
			rx_have += (size_t)n;
	}
	while (rc == 0 && rx_have >= PC_HDR_SIZE) {
		struct pc_hdr h;
		memcpy(&h, rx, sizeof h);
		if (h.len < PC_HDR_SIZE || h.len > sizeof rx) {
			pc_log("coordinator sent a frame of bad length; disconnecting", NULL, (long)h.len);
			rc = -ENOTCONN;
		} else if (rx_have < h.len)
			break;
		else {
			if (handle(&h, rx + PC_HDR_SIZE) < 0)
				rc = -ENOTCONN;
			memmove(rx, rx + h.len, rx_have - h.len);
			rx_have -= h.len;
		}
	}
	put_fd(fd);
	if (rc == -ENOTCONN)
		lost(g);
	return rc;
}

/* ---- requests ---- */

int pc_request(int type, const void *payload, size_t len, int32_t *status, void *extra, size_t extra_len, int ms)
{
	struct timespec dl = deadline_in(ms < 0 ? pc_cfg.timeout_ms : ms);
	struct waiter *w = NULL;
	unsigned g = atomic_load(&gen);
	int rc = 0;

	if (!pc_conn_up() || pc_foreign())
		return -ENOTCONN;
	pthread_mutex_lock(&wait_mu);
	while (!w) {
		for (int i = 0; i < PC_WAITERS && !w; i++)
			if (!waiters[i].busy)
				w = &waiters[i];
		if (!w && pthread_cond_timedwait(&wait_cv, &wait_mu, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&wait_mu);
			return -ETIMEDOUT;
		}
	}
	w->busy = 1, w->done = 0, w->lost = 0, w->seq = ++next_seq, w->gen = g;
	pthread_mutex_unlock(&wait_mu);

	rc = send_frame(g, type, 0, w->seq, payload, len);

	pthread_mutex_lock(&wait_mu);
	while (rc == 0 && !w->done) {
		if (!reading) {
			int r;
			reading = 1;
			pthread_mutex_unlock(&wait_mu);
			r = read_some(g, &dl);
			pthread_mutex_lock(&wait_mu);
			reading = 0;
			pthread_cond_broadcast(&wait_cv); /* another waiter may read now */
			if (r < 0 && !w->done)
				rc = r;
		} else if (pthread_cond_timedwait(&wait_cv, &wait_mu, &dl) == ETIMEDOUT && !w->done)
			rc = -ETIMEDOUT;
	}
	if (rc == 0 && w->lost)
		rc = -ENOTCONN;
	if (rc == 0 && status)
		*status = w->status;
	if (rc == 0 && extra)
		memcpy(extra, w->extra, extra_len < sizeof w->extra ? extra_len : sizeof w->extra);
	w->busy = 0;
	pthread_cond_broadcast(&wait_cv);
	pthread_mutex_unlock(&wait_mu);
	return rc;
}

int pc_notify(int type, const void *payload, size_t len)
{
	uint64_t seq;
	if (!pc_conn_up() || pc_foreign())
		return -ENOTCONN;
	pthread_mutex_lock(&wait_mu);
	seq = ++next_seq;
	pthread_mutex_unlock(&wait_mu);
	return send_frame(atomic_load(&gen), type, PC_F_NOREPLY, seq, payload, len);
}

/* ---- fork ---- */

void pc_conn_atfork_prepare(void)
{
	pthread_mutex_lock(&send_mu);
	pthread_mutex_lock(&wait_mu);
}

void pc_conn_atfork_parent(void)
{
	pthread_mutex_unlock(&wait_mu);
	pthread_mutex_unlock(&send_mu);
}

/* The child has one thread: the parent's connection stays the parent's (we
 * close our copies of its descriptors), and the child connects afresh. */
void pc_conn_atfork_child(void)
{
	pthread_mutex_init(&send_mu, NULL);
	pthread_mutex_init(&wait_mu, NULL);
	init_cond();
	memset(waiters, 0, sizeof waiters);
	reading = 0, losing = 0, rx_have = 0;
	abandoned.tv_sec = 0, abandoned.tv_nsec = 0;
	close_if_ours(cur_fd, cur_dev, cur_ino);
	close_if_ours(old_fd, old_dev, old_ino);
	cur_fd = old_fd = -1, cur_refs = old_refs = 0;
	atomic_store(&up, 0);
	atomic_fetch_add(&gen, 1);
}
