/* The session with the coordinator: connecting (lazily, from an API call,
 * never from a hook: a hook may run inside malloc's locks), what WELCOME
 * says, losing the coordinator, and telling a new one what we hold. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "area.h"
#include "config.h"
#include "conn.h"
#include "jobtable.h"
#include "log.h"
#include "patch.h"
#include "proto.h"
#include "runtime.h"
#include "session.h"
#include "stats.h"

static pthread_mutex_t session_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pc_welcome settings;        /* the last WELCOME */
uint32_t pc_welcome_flags;                /* its flags, for the inline check of session.h */
static int was_up;                        /* under session_mu: a coordinator was here before */
_Atomic int pc_unsynced;                  /* registrations a lost coordinator knew, no new one yet */
/* The connection is up and the new coordinator has heard of everything (set
 * last in connect_once, under session_mu): until then API calls wait there. */
static _Atomic int ready;
static struct pc_session_ops ops;         /* init.c's, from the constructor on */

void pc_session_wire(const struct pc_session_ops *o) { ops = *o; }

static unsigned flag(unsigned f) { return __atomic_load_n(&settings.flags, __ATOMIC_RELAXED) & f; }
int pc_mremap_follow(void) { return flag(PC_W_MREMAP_FOLLOW) != 0; }
int pc_fork_dontfork(void) { return flag(PC_W_FORK_DONTFORK) != 0; }
int pc_sync_exit(void) { return flag(PC_W_SYNC_EXIT) != 0; }
int pc_coherence(void) { return flag(PC_W_NO_COHERENCE) == 0; }
size_t pc_max_regs(void)
{
	uint32_t m = __atomic_load_n(&settings.max_regs, __ATOMIC_RELAXED);
	return m && m < PC_MAX_REGS ? m : PC_MAX_REGS;
}

/* From whichever thread saw the loss; it may hold the table lock, so this
 * takes none. Our handles die here: the coordinator that lost us (alive or
 * not) may unlink them at any moment. Our exports stay revocable in place
 * (the table stays mapped) until a new coordinator is found. */
static void on_lost(void)
{
	atomic_store(&ready, 0);
	ops.lost();
	pc_area_drop();
	if (ops.held())
		atomic_store(&pc_unsynced, 1);
	pc_note_lost();
}

/* The first failed attempt of a process that never reached its coordinator
 * names the path and the reason, once: PINCOH_SOCKET=/nowhere would otherwise
 * be silent (every pincoh call -ENOTCONN, the hooks passing calls through).
 * Said here, from an API call that tried, never at start-up: a process that
 * never registers never tries. Under session_mu. */
static void say_unreachable(int cause, int rc)
{
	static int said;
	char msg[400];
	const char *name = pc_errno_name(cause), *ret = pc_errno_name(-rc);
	char *p = msg, *end = msg + sizeof msg - 1;
	if (said || was_up)
		return;
	said = 1;
#define PUT(str) do { for (const char *s_ = (str); *s_ && p < end; ) *p++ = *s_++; } while (0)
	PUT("cannot reach the coordinator at PINCOH_SOCKET=");
	PUT(pc_cfg.socket_path);
	PUT(": ");
	if (name) {
		PUT(name);
	} else {
		char num[16], *q = num + sizeof num;
		unsigned u = (unsigned)cause;
		*--q = 0;
		do *--q = (char)('0' + u % 10); while ((u /= 10) && q > num + 1);
		PUT("errno ");
		PUT(q);
	}
	PUT("; pincoh calls return -");
	if (ret) {
		const char *r = ret;
		while (*r && *r != ' ' && p < end) *p++ = *r++; /* the name alone */
	} else {
		PUT("errno");
	}
	PUT(" and the hooks pass every call through until it can be reached");
#undef PUT
	*p = 0;
	pc_log(msg, NULL, -1);
}

/* Says once that sharing is off for this process, and why. */
static void say_no_table(int rc)
{
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		pc_log("cannot map the job's table from the coordinator (publish and attach will fail with -ENOTCONN); errno", NULL, -rc);
}

static int connect_once(void)
{
	struct pc_hello hello = { .version = PC_PROTO_VERSION, .pid = (int32_t)getpid(), .ppid = (int32_t)getppid(),
				  .rank = pc_cfg.rank, .size = pc_cfg.size, .page_size = (uint32_t)pc_page_size,
				  .libc = (uint32_t)pc_libc_mode, .area_size = PC_AREA_BYTES };
	struct pc_welcome w;
	struct pc_area_hdr *area;
	struct pc_jt *jt = NULL;
	int fd, afd, rc, cause = 0;

	memcpy(hello.job, pc_cfg.job, sizeof hello.job);
	strncpy(hello.argv0, program_invocation_short_name, sizeof hello.argv0 - 1);
	hello.chained = (uint32_t)__atomic_load_n(&pc_chained, __ATOMIC_RELAXED); /* libc entries shared with another interposer */
	fd = pc_conn_dial(pc_cfg.socket_path, &cause);
	if (fd < 0) {
		say_unreachable(cause, fd);
		return fd;
	}
	area = pc_area_create(&afd, &rc);
	if (!area) {
		syscall(SYS_close, fd);
		return rc;
	}
	hello.area_fd = afd;
	/* the coordinator maps the area through our descriptor before it answers */
	rc = pc_conn_handshake(fd, &hello, sizeof hello, &w, sizeof w, pc_cfg.timeout_ms);
	syscall(SYS_close, afd);
	if (rc == 0 && w.version != PC_PROTO_VERSION) {
		pc_log("the coordinator at PINCOH_SOCKET speaks another protocol version than this shim's", NULL, PC_PROTO_VERSION);
		rc = -EPROTO;
	}
	if (rc == 0 && w.jt_fd >= 0) {
		int coord = pc_conn_peer_pid(fd), jrc = coord < 0 ? coord : pc_jt_open(coord, &w, &jt);
		if (jrc < 0)
			say_no_table(jrc); /* registering stays coherent; only sharing is refused */
	}
	if (rc == 0)
		rc = pc_conn_install(fd, on_lost);
	if (rc < 0) {
		syscall(SYS_close, fd);
		pc_area_destroy(area);
		if (rc == -ETIMEDOUT || rc == -ENOTCONN) /* no answer, or it hung up (a refusal says itself) */
			say_unreachable(-rc, -ENOTCONN);
		return rc == -ETIMEDOUT || rc == -EBUSY ? -ENOTCONN : rc;
	}
	__atomic_store_n(&settings.flags, w.flags, __ATOMIC_RELAXED);
	__atomic_store_n(&pc_welcome_flags, w.flags, __ATOMIC_RELAXED);
	__atomic_store_n(&settings.max_regs, w.max_regs, __ATOMIC_RELAXED);
	/* From here events go to the new area, and the new coordinator hears of
	 * everything we hold first (the old one's exports revoked in place). */
	ops.adopt(jt, area);
	if (atomic_exchange(&pc_unsynced, 0) || was_up)
		pc_log("reconnected to the coordinator and re-announced registrations:", NULL, (long)ops.held());
	was_up = 1;
	atomic_store(&ready, pc_conn_up()); /* not if it was lost again meanwhile */
	return 0;
}

int pc_session_ensure(void)
{
	int rc = 0;
	if (PC_LIKELY(atomic_load_explicit(&ready, memory_order_acquire)))
		return 0; /* no getpid(): registering makes no system call */
	if (!pc_interposed) {
		static int said;
		if (pc_cfg.socket_path[0] && !__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
			pc_log("libpincoh.so was loaded with dlopen, not preloaded: its hooks see none of this process's calls, so pincoh calls return -ENOTCONN (run the program under pincoh run, or with LD_PRELOAD)", NULL, -1);
		return -ENOTCONN;
	}
	if (!pc_cfg.socket_path[0] || pc_foreign() || pc_conn_backing_off())
		return -ENOTCONN;
	pthread_mutex_lock(&session_mu);
	if (!atomic_load(&ready))
		rc = pc_conn_up() ? -ENOTCONN : connect_once(); /* up, not ready: lost during its own connect */
	pthread_mutex_unlock(&session_mu);
	return rc;
}

/* Marks this rank gone in `left`, beside the socket in the job's directory (a
 * byte per local rank, so a rank run twice counts once): 1 if every one of
 * the job's PINCOH_SIZE ranks on the node has now left. Past 4,096 ranks a
 * node, nobody is last. */
static int last_to_leave(void)
{
	unsigned char left[4096];
	char path[sizeof pc_cfg.socket_path + 8];
	char *slash;
	long got = 0, n = 0;
	int fd;

	if (pc_cfg.rank < 0 || pc_cfg.rank >= pc_cfg.size || pc_cfg.size > (int)sizeof left)
		return 0;
	strcpy(path, pc_cfg.socket_path);
	slash = strrchr(path, '/');
	if (!slash)
		return 0;
	strcpy(slash + 1, "left");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX) == 0 && pwrite(fd, "1", 1, pc_cfg.rank) == 1)
		got = pread(fd, left, (size_t)pc_cfg.size, 0);
	syscall(SYS_close, fd); /* and the lock with it */
	for (long i = 0; i < got; i++)
		n += left[i] == '1'; /* a rank not gone yet is a hole (NUL) or past the end */
	return n == pc_cfg.size;
}

/* pincoh exec's rank (PINCOH_RANK_PID: the pid it runs as) at its exit tells
 * its node's coordinator what the shim did in it, on a socket of its own
 * (connected or never). The job's last rank on the node to leave waits,
 * bounded by PINCOH_TIMEOUT_MS, for the answer, which the coordinator gives
 * once the node's log has its summary: so when the launcher sees its last rank
 * end, that log is whole. The others only write and go: no round trip to Node
 * in every rank's exit. A child of the rank has another pid and says nothing;
 * a rank killed by a signal says nothing either (the coordinator sees its pid
 * gone, later; with one such rank nobody is last, and the log is whole a poll
 * of the coordinator's later). */
void pc_session_farewell(void)
{
	static int said;
	struct pc_farewell f = { .libc = (uint32_t)pc_libc_mode, .chained = (uint32_t)__atomic_load_n(&pc_chained, __ATOMIC_RELAXED),
				 .connected = (uint32_t)was_up, .slow_calls = __atomic_load_n(&pc_counters.slow_calls, __ATOMIC_RELAXED) };
	int fd, cause, saved = errno;

	/* the pid first: a vfork child shares `said` with its parent */
	if (!pc_cfg.rank_pid || !pc_cfg.socket_path[0] || pc_cfg.rank_pid != (int)syscall(SYS_getpid) || __atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		return;
	fd = pc_conn_dial(pc_cfg.socket_path, &cause);
	if (fd >= 0) {
		/* counted out only with someone to tell */
		f.last = (uint32_t)last_to_leave();
		if (pc_conn_farewell(fd, &f, sizeof f, (int)f.last, pc_cfg.timeout_ms) == -ETIMEDOUT)
			pc_log("this rank's coordinator did not answer its farewell within PINCOH_TIMEOUT_MS; the node's log may lack the job's summary for a while", NULL, -1);
		syscall(SYS_close, fd);
	}
	errno = saved;
}

/* Held across fork: a connect in progress holds descriptors and a mapping
 * the child would inherit and nobody would close. */
void pc_session_atfork_prepare(void) { pthread_mutex_lock(&session_mu); }
void pc_session_atfork_parent(void) { pthread_mutex_unlock(&session_mu); }

/* The child of fork has no session: it connects afresh on its first need. */
void pc_session_atfork_child(void)
{
	pthread_mutex_init(&session_mu, NULL);
	atomic_store(&ready, 0);
	settings.flags = 0, settings.max_regs = 0;
	pc_welcome_flags = 0;
	was_up = 0;
	atomic_store(&pc_unsynced, 0);
}
