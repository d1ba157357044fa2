/* pincoh-exec: `pincoh exec` without starting Node in every rank.
 *
 *   pincoh-exec [options] -- CMD [ARGS...]      (the options of `pincoh exec`)
 *
 * It finds or makes the job's directory and takes the job's lock, as `pincoh
 * exec` does. If the node's coordinator for the job listens (every rank but the
 * first on a node: the others wait on the lock while the first starts it), it
 * announces the rank, lets go of the lock, sets the environment and becomes
 * CMD: an execve and a few system calls. If none listens, this rank starts it,
 * as `pincoh exec` does, the lock held meanwhile (the other ranks wait on it):
 * `node PINCOH_CLI serve ...`, detached, its output to the node's log, and
 * waits for it to listen; one Node start. If it was given an option for the
 * coordinator, or anything of that fails, it becomes `node PINCOH_CLI exec`
 * with the same arguments instead, handing over the lock it holds
 * (PINCOH_EXEC_LOCK_FD), which does it all again and says what is wrong.
 * Anything it does not read itself also goes to `pincoh exec`, which says what
 * is wrong: an option or a launcher it does not know, a job name longer than 31
 * bytes (hashed there), a shim that is missing, --help.
 *
 * What it reads as the TypeScript does (src/job/launcher.ts: the launchers'
 * variables; src/job/jobdir.ts: the job's directory; src/job/launch.ts: the
 * rank's environment) is held to it by test/exec-native.test.ts, which runs
 * both side by side. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PINCOH_CLI_DEFAULT
#error "build with -DPINCOH_CLI_DEFAULT=\"/path/to/bin/pincoh.js\" (the Makefile does)"
#endif
#ifndef PINCOH_SHIM_DEFAULT
#error "build with -DPINCOH_SHIM_DEFAULT=\"/path/to/libpincoh.so\" (the Makefile does)"
#endif

#define JOB_MAX 31     /* PINCOH_JOB as jobName makes it, unhashed */
#define TAKEN_TRIES 16 /* jobdir.ts: names past those other users took */
#define LOCK_WAIT_MS 30000

static char **args_all; /* our argv, handed to `pincoh exec` as it is */

/* Becomes `node PINCOH_CLI exec ARGS...`: the TypeScript does the rest. lock:
 * the job's lock, held, handed over (-1: none). */
static __attribute__((noreturn)) void by_node_with(int lock)
{
	const char *node = getenv("PINCOH_NODE"), *cli = getenv("PINCOH_CLI");
	int n = 0;
	while (args_all[n])
		n++;
	char **argv = calloc((size_t)n + 3, sizeof *argv);
	if (!argv) {
		fputs("pincoh-exec: out of memory\n", stderr);
		exit(2);
	}
	argv[0] = (char *)(node && *node ? node : "node");
	argv[1] = (char *)(cli && *cli ? cli : PINCOH_CLI_DEFAULT);
	argv[2] = "exec";
	for (int i = 1; i < n; i++)
		argv[i + 2] = args_all[i];
	if (lock >= 0) {
		char v[16];
		snprintf(v, sizeof v, "%d", lock);
		if (fcntl(lock, F_SETFD, 0) == 0) /* open across the exec: the lock stays held */
			setenv("PINCOH_EXEC_LOCK_FD", v, 1);
	}
	execvp(argv[0], argv);
	fprintf(stderr, "pincoh: cannot run %s to start this node's coordinator: %s; set PINCOH_NODE to Node's path [PINCOH_ERR_COORDINATOR]\n",
		argv[0], strerror(errno));
	exit(2);
}

/* A whole decimal number (no sign, no blanks), as launcher.ts's int() takes it. */
static __attribute__((noreturn)) void by_node(void) { by_node_with(-1); }

static int whole(const char *s, long *out)
{
	char *end;
	if (!s || !*s || strlen(s) > 9)
		return 0;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '9')
			return 0;
	*out = strtol(s, &end, 10);
	return 1;
}

static int env_whole(const char *name, long *out) { return whole(getenv(name), out); }

struct place {
	long rank, size, local_rank, local_size;
	const char *job;
	char job_slurm[64], job_hydra[64];
};

static int start_time_of(int pid, char *out, size_t cap);

/* launcher.ts's hydraProxyJob: Hydra's proxy (one per node per job), our parent, names the job. */
static const char *hydra_proxy_job(char *out, size_t cap)
{
	char path[64], comm[32], since[32];
	int ppid = (int)getppid(), fd;
	ssize_t n;
	snprintf(path, sizeof path, "/proc/%d/comm", ppid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, comm, sizeof comm - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	if (strcmp(comm, "hydra_pmi_proxy") != 0 || !start_time_of(ppid, since, sizeof since))
		return NULL;
	snprintf(out, cap, "hydra-%d-%s", ppid, since);
	return out;
}

/* Digits at *p (at least one, at most 9), moved past; -1 if none. */
static long digits(const char **p)
{
	long v = 0;
	int n = 0;
	for (; **p >= '0' && **p <= '9' && n < 10; (*p)++, n++)
		v = v * 10 + (**p - '0');
	return n == 0 || n > 9 ? -1 : v;
}

/* SLURM_STEP_TASKS_PER_NODE ("2(x3),1") at node index `node`, as launcher.ts's
 * slurmTasksOn reads it: each part N or N(xM), parts split by ','. */
static int slurm_tasks_on(const char *spec, long node, long *out)
{
	long at = 0;
	const char *p = spec;
	while (*p) {
		long tasks = digits(&p), count = 1;
		if (tasks < 0)
			return 0;
		if (p[0] == '(' && p[1] == 'x') {
			p += 2;
			count = digits(&p);
			if (count < 0 || *p != ')')
				return 0;
			p++;
		}
		if (*p != ',' && *p != 0)
			return 0; /* a part that is not N or N(xM) */
		if (node < at + count) {
			*out = tasks;
			return 1;
		}
		at += count;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* launcher.ts's placementFrom; 0 where it would throw (then `pincoh exec` says why). */
static int placement(struct place *pl)
{
	const char *own = getenv("PINCOH_JOB");
	const char *job = NULL;
	int ok;
	if (getenv("OMPI_COMM_WORLD_RANK")) {
		ok = env_whole("OMPI_COMM_WORLD_RANK", &pl->rank) && env_whole("OMPI_COMM_WORLD_SIZE", &pl->size) &&
		     env_whole("OMPI_COMM_WORLD_LOCAL_RANK", &pl->local_rank) && env_whole("OMPI_COMM_WORLD_LOCAL_SIZE", &pl->local_size);
		job = getenv("OMPI_MCA_ess_base_jobid") ? getenv("OMPI_MCA_ess_base_jobid") : getenv("PMIX_NAMESPACE");
	} else if (getenv("SLURM_PROCID")) {
		long node;
		const char *spec = getenv("SLURM_STEP_TASKS_PER_NODE") ? getenv("SLURM_STEP_TASKS_PER_NODE") : getenv("SLURM_TASKS_PER_NODE");
		ok = env_whole("SLURM_PROCID", &pl->rank) && env_whole("SLURM_NTASKS", &pl->size) && env_whole("SLURM_LOCALID", &pl->local_rank) &&
		     env_whole("SLURM_NODEID", &node) && spec && *spec && slurm_tasks_on(spec, node, &pl->local_size);
		if (getenv("SLURM_JOB_ID")) {
			snprintf(pl->job_slurm, sizeof pl->job_slurm, "%s.%s", getenv("SLURM_JOB_ID"), getenv("SLURM_STEP_ID") ? getenv("SLURM_STEP_ID") : "0");
			job = pl->job_slurm;
		}
	} else if (getenv("PMI_RANK")) {
		ok = env_whole("PMI_RANK", &pl->rank) && env_whole("PMI_SIZE", &pl->size) && env_whole("MPI_LOCALRANKID", &pl->local_rank) &&
		     env_whole("MPI_LOCALNRANKS", &pl->local_size);
		job = getenv("PMI_KVSNAME") ? getenv("PMI_KVSNAME") : hydra_proxy_job(pl->job_hydra, sizeof pl->job_hydra);
	} else if (getenv("PMIX_RANK")) {
		ok = env_whole("PMIX_RANK", &pl->rank) && env_whole("PINCOH_LOCAL_RANK", &pl->local_rank) && env_whole("PINCOH_LOCAL_SIZE", &pl->local_size);
		if (!env_whole("PMIX_SIZE", &pl->size))
			pl->size = 0;
		job = getenv("PMIX_NAMESPACE");
	} else
		return 0;
	pl->job = own && *own ? own : job;
	if (!ok || !pl->job || !*pl->job)
		return 0;
	return pl->local_rank < pl->local_size && !(pl->size > 0 && pl->rank >= pl->size) && pl->local_size >= 1;
}

/* launcher.ts's jobName for a name it keeps as it is: 0 for one it would hash. */
static int job_name(const char *job, char *out)
{
	size_t n = strlen(job);
	if (n > JOB_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = job[i];
		if ((unsigned char)c >= 0x80)
			return 0; /* jobName cleans UTF-16 units, not bytes: pincoh exec names it */
		int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		out[i] = keep ? c : '_';
	}
	out[n] = 0;
	return 1;
}

/* Absolute, and as path.join leaves it: no empty, '.' or '..' part, no trailing '/'. */
static int plain_path(const char *p)
{
	size_t l = strlen(p);
	if (p[0] != '/' || (l > 1 && p[l - 1] == '/') || strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../"))
		return 0;
	return !(l >= 2 && strcmp(p + l - 2, "/.") == 0) && !(l >= 3 && strcmp(p + l - 3, "/..") == 0);
}

/* A directory ours alone: 0700 and no more, our uid, not a link. -1: nothing there. */
static int private_dir(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return -1;
	return S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 077) == 0;
}

/* jobdir.ts's jobDir: the job's directory that exists, in XDG_RUNTIME_DIR
 * (when set, absolute, private and not TMPDIR) or TMPDIR; else made in the
 * first of those, under the first of its names nobody else took. */
static int job_dir(const char *job, char *out, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR"), *bases[2];
	char tmpdir[PATH_MAX];
	int nb = 0;
	/* os.tmpdir(): TMPDIR, TMP or TEMP, else /tmp; one trailing slash dropped */
	const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
			: getenv("TMP") && *getenv("TMP")     ? getenv("TMP")
			: getenv("TEMP") && *getenv("TEMP")   ? getenv("TEMP")
							       : "/tmp";
	if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s", tmp) >= sizeof tmpdir)
		return 0;
	size_t l = strlen(tmpdir);
	if (l > 1 && tmpdir[l - 1] == '/')
		tmpdir[l - 1] = 0;
	/* a path path.join would rewrite (// . .. a trailing /): pincoh exec's, as it makes it */
	if (!plain_path(tmpdir) || (xdg && *xdg && !plain_path(xdg)))
		return 0;
	if (xdg && xdg[0] == '/' && private_dir(xdg) == 1 && strcmp(xdg, tmpdir) != 0)
		bases[nb++] = xdg;
	bases[nb++] = tmpdir;
	for (int b = 0; b < nb; b++)
		for (int i = 0; i < TAKEN_TRIES; i++) {
			int r, n;
			if (i == 0)
				n = snprintf(out, cap, "%s/pincoh-%u-%s", bases[b], (unsigned)getuid(), job);
			else
				n = snprintf(out, cap, "%s/pincoh-%u-%s+%d", bases[b], (unsigned)getuid(), job, i);
			if (n < 0 || (size_t)n >= cap)
				return 0;
			r = private_dir(out);
			if (r == 1)
				return 1;
			if (r < 0)
				break;
		}
	for (int i = 0; i < TAKEN_TRIES; i++) {
		int n = i == 0 ? snprintf(out, cap, "%s/pincoh-%u-%s", bases[0], (unsigned)getuid(), job)
			       : snprintf(out, cap, "%s/pincoh-%u-%s+%d", bases[0], (unsigned)getuid(), job, i);
		if (n < 0 || (size_t)n >= cap || (mkdir(out, 0700) != 0 && errno != EEXIST))
			return 0;
		if (private_dir(out) == 1)
			return 1;
	}
	return 0; /* pincoh exec says which names are taken */
}

/* socket-path.ts's isLive: only "nothing there" is no. */
static int live(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, rc, err;
	if (strlen(path) >= sizeof a.sun_path)
		return 0;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	err = errno;
	close(fd);
	return rc == 0 || !(err == ECONNREFUSED || err == ENOENT || err == ENOTSOCK || err == ENOTDIR);
}

/* Our start time, field 22 of /proc/self/stat (ended.ts's runningSince). */
static int start_time_of(int pid, char *out, size_t cap)
{
	char buf[1024], path[64], *p;
	int fd;
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
	else
		strcpy(path, "/proc/self/stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p += 2; /* field 3 on */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	size_t len = strcspn(p, " ");
	if (len == 0 || len >= cap)
		return 0;
	memcpy(out, p, len);
	out[len] = 0;
	return 1;
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* The job's lock, held, as jobdir.ts's holdLock takes it (the directory made
 * if need be, and again if its coordinator removed it meanwhile); -1: not to be
 * had here (pincoh exec says why). Past 30 s waiting: the same error as there. */
static int hold_lock(const char *job, char *dir, size_t cap)
{
	char lock[PATH_MAX + 32];
	long end = now_ms() + LOCK_WAIT_MS;
	for (int tries = 0; tries < 100; tries++) {
		struct stat a, b;
		int fd;
		if (!job_dir(job, dir, cap))
			return -1;
		snprintf(lock, sizeof lock, "%s/lock", dir);
		fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* removed between mkdir and open: again */
			return -1;
		}
		while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			if (now_ms() > end) {
				fprintf(stderr, "pincoh: waited 30 s for %s: another rank holds it and does not let go [PINCOH_ERR_COORDINATOR]\n", lock);
				exit(2);
			}
			usleep(10000);
		}
		if (fstat(fd, &a) == 0 && stat(lock, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd); /* locked a file the coordinator had just removed: again */
	}
	return -1;
}

/* With the lock held: this rank announced (rank-L: pid and start time). */
static int announce(const char *dir, long local_rank)
{
	char file[PATH_MAX + 32], line[96], since[32];
	int out, ok;
	if (!start_time_of(0, since, sizeof since))
		return 0;
	snprintf(file, sizeof file, "%s/rank-%ld", dir, local_rank);
	snprintf(line, sizeof line, "%d %s\n", (int)getpid(), since);
	/* as announceRank writes it; read under the same lock, so never half-written */
	out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return 0;
	ok = write(out, line, strlen(line)) == (ssize_t)strlen(line);
	return close(out) == 0 && ok;
}

/* dir, and those above it, made if missing (mkdir -p), as exec.ts makes --output-dir. */
static int make_dirs(char *dir)
{
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		int ok = mkdir(dir, 0777) == 0 || errno == EEXIST;
		*p = c;
		if (!ok || !c)
			return ok;
	}
}

/* Starts the node's coordinator for the job as exec.ts does, this rank holding
 * the job's lock: `node CLI serve` in a session of its own, its output to the
 * node's log (OUT/pincoh-HOST-JOB.log), then waits until it listens on sock. 0:
 * it listens; -1: it could not (pincoh exec, started next, says why). */
static int start_coordinator(const char *sock, const char *job, long local_size, const char *out_dir, int trace)
{
	char out[PATH_MAX], host[256], base[PATH_MAX + 320], log[PATH_MAX + 330], trace_path[PATH_MAX + 340], ranks[24];
	const char *node = getenv("PINCOH_NODE"), *cli = getenv("PINCOH_CLI");
	long end = now_ms() + 20000; /* as exec.ts waits */
	int fd, status;
	pid_t pid;

	if (out_dir && *out_dir != '/') {
		if (!getcwd(out, sizeof out) || strlen(out) + strlen(out_dir) + 2 > sizeof out)
			return -1;
		strcat(strcat(out, "/"), out_dir);
	} else if (!(out_dir ? snprintf(out, sizeof out, "%s", out_dir) < (int)sizeof out : getcwd(out, sizeof out) != NULL))
		return -1;
	if (out_dir && !make_dirs(out))
		return -1;
	if (gethostname(host, sizeof host) != 0)
		return -1;
	host[sizeof host - 1] = 0;
	snprintf(base, sizeof base, "%s/pincoh-%s-%s", out, host, job);
	snprintf(log, sizeof log, "%s.log", base);
	snprintf(trace_path, sizeof trace_path, "%s.trace.jsonl", base);
	snprintf(ranks, sizeof ranks, "%ld", local_size);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	char *argv[] = { (char *)(node && *node ? node : "node"), (char *)(cli && *cli ? cli : PINCOH_CLI_DEFAULT), "serve", "--socket", (char *)sock,
			 "--log", log, "--until-ranks", ranks, trace ? "--trace" : NULL, trace_path, NULL };
	pid = fork();
	if (pid == 0) {
		/* nothing of the launcher's (PMI_FD, its pipes: a launcher may wait for their end; signals it blocked) */
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || syscall(SYS_close_range, 3, ~0U, 0) != 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fd);
	if (pid < 0)
		return -1;
	while (!live(sock)) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1; /* it ended: pincoh exec tries again and says what happens */
		if (now_ms() > end) {
			kill(-pid, SIGKILL); /* never two starting at once */
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(10000);
	}
	return 0;
}

/* Is there a file of that name in a directory on PATH (launch.ts's cannotRun)? */
static int on_path(const char *file)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX + NAME_MAX + 2];
	for (const char *p = path ? path : ""; ; p++) {
		size_t n = strcspn(p, ":");
		if (snprintf(dir, sizeof dir, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", file) < (int)sizeof dir && access(dir, F_OK) == 0)
			return 1;
		p += n;
		if (!*p)
			return 0;
	}
}

/* launch.ts's preloadWith: sanitizer runtimes first (they must load first), then the shim, then the rest. */
static char *preload_with(const char *shim, const char *existing)
{
	size_t cap = strlen(shim) + (existing ? strlen(existing) : 0) + 2;
	char *out = calloc(cap, 1), *copy = strdup(existing ? existing : ""), *tok, *save;
	if (!out || !copy)
		return NULL;
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1) {
			if (*out)
				strcat(out, ":");
			strcat(out, shim);
			continue;
		}
		strcpy(copy, existing ? existing : "");
		for (tok = strtok_r(copy, ": \t\n\r\v\f", &save); tok; tok = strtok_r(NULL, ": \t\n\r\v\f", &save)) {
			int san = 0;
			const char *s = strstr(tok, "lib");
			for (; s && !san; s = strstr(s + 1, "lib")) {
				const char *k = s + 3;
				static const char *const kinds[] = { "a", "t", "ub", "hwa", "l" };
				for (unsigned i = 0; i < sizeof kinds / sizeof *kinds && !san; i++) {
					size_t kl = strlen(kinds[i]);
					san = strncmp(k, kinds[i], kl) == 0 && strncmp(k + kl, "san", 3) == 0 && (k[kl + 3] == '.' || k[kl + 3] == '-');
				}
			}
			if ((pass == 0) != san)
				continue;
			if (*out)
				strcat(out, ":");
			strcat(out, tok);
		}
	}
	free(copy);
	return out;
}

int main(int argc, char **argv)
{
	struct place pl = { 0 };
	char job[JOB_MAX + 1], dir[PATH_MAX], sock[PATH_MAX + 8], num[24];
	const char *timeout = NULL, *shim, *out_dir = NULL;
	int cmd = 0, lock, trace = 0, for_coordinator = 0;
	long timeout_ms = 0;
	args_all = argv;
	unsetenv("PINCOH_EXEC_LOCK_FD"); /* only ever ours to set, for our own lock */

	/* the options of `pincoh exec`: only --timeout-ms matters to a rank; the
	 * others are the starter's, already applied if its coordinator listens */
	for (int i = 1; i < argc && !cmd; i++) {
		const char *a = argv[i];
		static const char *const valued[] = { "--output-dir", "--idle-exit-ms", "--metrics", "--mremap", "--fork", "--free",
						      "--max-frame", "--max-registrations", "--max-attachments", "--max-names", "--max-pending" };
		int known = 0;
		if (!strcmp(a, "--")) {
			cmd = i + 1;
			break;
		}
		if (a[0] != '-') {
			cmd = i;
			break;
		}
		if (!strcmp(a, "--trace")) {
			trace = 1;
			continue;
		}
		if (!strcmp(a, "--no-coherence")) {
			for_coordinator = 1;
			continue;
		}
		if (!strcmp(a, "--timeout-ms") && i + 1 < argc) {
			timeout = argv[++i];
			continue;
		}
		for (unsigned k = 0; k < sizeof valued / sizeof *valued; k++)
			if (!strcmp(a, valued[k]) && i + 1 < argc && argv[i + 1][0] != '-') {
				/* its value is the starter's to check: the coordinator listens with it */
				if (!strcmp(a, "--output-dir"))
					out_dir = argv[i + 1];
				else
					for_coordinator = 1;
				i++;
				known = 1;
			}
		if (!known)
			by_node(); /* --help, a typo, an --opt=value: `pincoh exec` says */
	}
	if (!cmd || cmd >= argc)
		by_node();
	if (timeout && (!whole(timeout, &timeout_ms) || timeout_ms < 1 || timeout_ms > 3600000))
		by_node();
	shim = getenv("PINCOH_SHIM") ? getenv("PINCOH_SHIM") : PINCOH_SHIM_DEFAULT; /* set but empty: pincoh exec says so */
	if (access(shim, R_OK) != 0 || !placement(&pl) || !job_name(pl.job, job))
		by_node();
	lock = hold_lock(job, dir, sizeof dir);
	if (lock < 0)
		by_node();
	snprintf(sock, sizeof sock, "%s/c.sock", dir);
	if (!out_dir && getenv("PINCOH_OUTPUT_DIR") && *getenv("PINCOH_OUTPUT_DIR"))
		out_dir = getenv("PINCOH_OUTPUT_DIR");
	/* this rank starts it, the lock held: the others wait; options for the coordinator: pincoh exec checks them */
	if (!live(sock) && (for_coordinator || start_coordinator(sock, job, pl.local_size, out_dir, trace) != 0))
		by_node_with(lock);
	if (!announce(dir, pl.local_rank))
		by_node_with(lock); /* pincoh exec announces it (and says what fails) */
	close(lock);

	char *preload = preload_with(shim, getenv("LD_PRELOAD"));
	if (!preload) {
		fputs("pincoh-exec: out of memory\n", stderr);
		return 2;
	}
	setenv("LD_PRELOAD", preload, 1);
	setenv("PINCOH_SOCKET", sock, 1);
	snprintf(num, sizeof num, "%ld", pl.local_rank);
	setenv("PINCOH_RANK", num, 1);
	snprintf(num, sizeof num, "%ld", pl.local_size);
	setenv("PINCOH_SIZE", num, 1);
	setenv("PINCOH_JOB", job, 1);
	snprintf(num, sizeof num, "%ld", pl.rank);
	setenv("PINCOH_GLOBAL_RANK", num, 1);
	snprintf(num, sizeof num, "%ld", pl.size);
	setenv("PINCOH_GLOBAL_SIZE", num, 1);
	snprintf(num, sizeof num, "%ld", (long)getpid()); /* CMD runs as this pid: it says farewell at exit */
	setenv("PINCOH_RANK_PID", num, 1);
	if (timeout) {
		snprintf(num, sizeof num, "%ld", timeout_ms); /* 0050 is 50, as there */
		setenv("PINCOH_TIMEOUT_MS", num, 1);
	}
	execvp(argv[cmd], argv + cmd);
	int err = errno;
	if (err == EACCES && !strchr(argv[cmd], '/') && !on_path(argv[cmd]))
		err = ENOENT; /* only a directory on PATH it may not search: a shell says "not found" (launch.ts's cannotRun) */
	fprintf(stderr, "pincoh: cannot run %s: %s [PINCOH_ERR_EXEC]\n", argv[cmd],
		err == ENOENT ? "not found" : err == EACCES ? "permission denied" : strerrorname_np(err) ? strerrorname_np(err) : strerror(err));
	return err == ENOENT ? 127 : 126; /* as a shell says */
}
