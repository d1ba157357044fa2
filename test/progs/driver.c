/* driver: runs a script of memory calls given as arguments and prints one line
 * per command, so the tests can compare a run with the shim to a bare run.
 *
 *   map I SIZE                 regions[I] = mmap(SIZE) read-write
 *   malloc I SIZE | free I | realloc I SIZE   regions[I] on the heap; realloc prints
 *                              "realloc ok|fail ERRNO moved|inplace"
 *   reg I OFF LEN r|w|rw       register; prints "reg N rc" (N: index of the key)
 *   dereg N | valid N | query N
 *   unmap I OFF LEN            prints "munmap rc errno"
 *   prot I OFF LEN none|r|rw|rwx|bad
 *   remap I OLDLEN NEWLEN FLAGS [J]   FLAGS: 0 or maymove,fixed,dontunmap joined by +;
 *                              J: the destination region (fixed); regions[I] follows
 *   rawunmap ADDR LEN | rawprot ADDR LEN PROT | rawremap ADDR OLDLEN NEWLEN FLAGS NEWADDR
 *   advise I OFF LEN ADVICE    madvise; prints "madvise rc errno"
 *   sysunmap I OFF LEN | sysprot I OFF LEN PROT   raw syscall(): no hook sees them
 *   _exit CODE
 *   shm SIZE | shmdt            a System V segment as region 14 / detach it
 *   grow N | shrink N | brkdown N   sbrk(N) (region 15 is what it added), sbrk(-N), brk(break - N)
 *   mapfix I OFF LEN | mapnorep I OFF LEN   mmap MAP_FIXED / MAP_FIXED_NOREPLACE over region I
 *   cb                         print every invalidation callback
 *   stats | sleep MS | touch I OFF
 *   clone novm|vm|bad|nofn     clone a child that exits 0; prints "clone child|fail ERRNO status S"
 *   mark                       getpgrp(), a marker for strace
 *   pub NAME N | att NAME MS   publish key N / attach (prints "att H rc", H: handle index)
 *   put H OFF LEN BYTE | get H OFF LEN | det H | bar MS | putloop H N
 *   regmany I N                register N pages of region I, deregister every other one, then
 *                              count the keys still valid and the deregistered ones refused
 *                              (and the registrations that failed, if any)
 *   live H                     is handle H alive (pincoh_handle_info), without putting
 *   progress                   pincoh_progress(): callbacks of handles revoked since
 *   fill I OFF LEN BYTE | peek I OFF
 *   wait                       read a line from stdin (the test says when to go on)
 *   stop                       SIGSTOP myself; prints "continued" after SIGCONT
 *   segv                       die of SIGSEGV, as a crash does
 *   fds | forkfds              count socket fds here / in a forked child
 *   forktouch I OFF            a forked child reads region I at OFF (expects 42); prints how it ended
 *   forkreg I OFF LEN          a forked child registers [OFF, OFF+LEN) of region I and exits
 *   exec CMD ARGS...           the rest of the arguments are a program to exec
 *
 * Before every system call errno is set to 777; the line shows errno after it,
 * so a call that succeeded must still show 777.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#define PINCOH_WEAK
#include <pincoh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *regions[16];
static uint64_t keys[256], handles[256];
static int nkeys, nhandles;

static int key_index(uint64_t key)
{
	for (int i = 0; i < nkeys; i++)
		if (keys[i] == key)
			return i;
	return -1;
}

static void on_inval(uint64_t key, void *addr, size_t len, int reason, void *ctx)
{
	(void)addr, (void)ctx;
	if (reason == PINCOH_REASON_REVOKED) {
		for (int i = 0; i < nhandles; i++)
			if (handles[i] == key)
				printf("cb h%d reason %d len %zu\n", i, reason, len);
		return;
	}
	printf("cb %d reason %d len %zu\n", key_index(key), reason, len);
}

/* open file descriptors that are sockets */
static int child_exit0(void *arg)
{
	(void)arg;
	return 0;
}

/* The threads of this process (/proc/self/status): pincoh must add none. */
static int count_threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static int count_sockets(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	while (d && (e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, target, sizeof target - 1);
		if (l > 0 && (target[l] = 0, !strncmp(target, "socket:", 7)))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int prot_of(const char *s)
{
	if (!strcmp(s, "none")) return PROT_NONE;
	if (!strcmp(s, "r")) return PROT_READ;
	if (!strcmp(s, "rw")) return PROT_READ | PROT_WRITE;
	if (!strcmp(s, "rwx")) return PROT_READ | PROT_WRITE | PROT_EXEC;
	return 0x7fff0000; /* "bad": invalid bits */
}

static int remap_flags(const char *s)
{
	int f = 0;
	if (strstr(s, "maymove")) f |= MREMAP_MAYMOVE;
	if (strstr(s, "fixed")) f |= MREMAP_FIXED;
	if (strstr(s, "dontunmap")) f |= MREMAP_DONTUNMAP;
	if (strstr(s, "bad")) f |= 0x100;
	return f;
}

static unsigned long num(const char *s) { return strtoul(s, NULL, 0); }

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char *c = argv[i];
#define ARG(k) (i + (k) < argc ? argv[i + (k)] : "0")
		if (!strcmp(c, "map")) {
			regions[num(ARG(1))] = mmap(NULL, num(ARG(2)), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			printf("map %lu %s\n", num(ARG(1)), regions[num(ARG(1))] == MAP_FAILED ? "fail" : "ok");
			i += 2;
		} else if (!strcmp(c, "malloc")) {
			regions[num(ARG(1))] = malloc(num(ARG(2)));
			printf("malloc %lu %s\n", num(ARG(1)), regions[num(ARG(1))] ? "ok" : "fail");
			i += 2;
		} else if (!strcmp(c, "free")) {
			errno = 777;
			free(regions[num(ARG(1))]);
			printf("free %d\n", errno);
			i += 1;
		} else if (!strcmp(c, "realloc")) {
			char *old = regions[num(ARG(1))];
			errno = 777;
			char *r = realloc(old, num(ARG(2)));
			printf("realloc %s %d%s\n", r || !num(ARG(2)) ? "ok" : "fail", errno, r && r != old ? " moved" : r ? " inplace" : "");
			if (r || !num(ARG(2)))
				regions[num(ARG(1))] = r;
			i += 2;
		} else if (!strcmp(c, "reg")) {
			const char *f = ARG(4);
			unsigned flags = (strchr(f, 'r') ? PINCOH_READ : 0) | (strchr(f, 'w') ? PINCOH_WRITE : 0);
			if (!pincoh_register) {
				printf("reg - unavailable\n");
			} else {
				int rc = pincoh_register(regions[num(ARG(1))] + num(ARG(2)), num(ARG(3)), flags, &keys[nkeys]);
				printf("reg %d %d\n", rc == 0 ? nkeys : -1, rc);
				if (rc == 0)
					nkeys++;
			}
			i += 4;
		} else if (!strcmp(c, "dereg")) {
			printf("dereg %lu %d\n", num(ARG(1)), pincoh_deregister ? pincoh_deregister(keys[num(ARG(1))]) : -999);
			i += 1;
		} else if (!strcmp(c, "valid")) {
			printf("valid %lu %d\n", num(ARG(1)), pincoh_is_valid ? pincoh_is_valid(keys[num(ARG(1))]) : -999);
			i += 1;
		} else if (!strcmp(c, "query")) {
			void *a = NULL;
			size_t l = 0;
			int rc = pincoh_query ? pincoh_query(keys[num(ARG(1))], &a, &l) : -999;
			printf("query %lu %d %ld %zu\n", num(ARG(1)), rc, rc == 0 ? (long)((char *)a - regions[0]) : 0L, l);
			i += 1;
		} else if (!strcmp(c, "unmap") || !strcmp(c, "rawunmap")) {
			int raw = c[0] == 'r';
			void *a = raw ? (void *)num(ARG(1)) : regions[num(ARG(1))] + num(ARG(2));
			size_t l = num(ARG(raw ? 2 : 3));
			errno = 777;
			int rc = munmap(a, l);
			printf("munmap %d %d\n", rc, errno);
			i += raw ? 2 : 3;
		} else if (!strcmp(c, "prot") || !strcmp(c, "rawprot")) {
			int raw = c[0] == 'r';
			void *a = raw ? (void *)num(ARG(1)) : regions[num(ARG(1))] + num(ARG(2));
			errno = 777;
			int rc = mprotect(a, num(ARG(raw ? 2 : 3)), prot_of(ARG(raw ? 3 : 4)));
			printf("mprotect %d %d\n", rc, errno);
			i += raw ? 3 : 4;
		} else if (!strcmp(c, "remap")) {
			int idx = (int)num(ARG(1)), flags = remap_flags(ARG(4));
			int has_dest = i + 5 < argc && argv[i + 5][0] >= '0' && argv[i + 5][0] <= '9';
			void *dest = has_dest ? regions[num(ARG(5))] : NULL;
			errno = 777;
			void *r = mremap(regions[idx], num(ARG(2)), num(ARG(3)), flags, dest);
			printf("mremap %s %d%s\n", r == MAP_FAILED ? "fail" : "ok", errno,
			       r != MAP_FAILED && r == regions[idx] ? " inplace" : r != MAP_FAILED && r == dest ? " atdest" : "");
			if (r != MAP_FAILED)
				regions[idx] = r;
			i += has_dest ? 5 : 4;
		} else if (!strcmp(c, "sysunmap")) {
			/* a raw system call: no hook sees it, only an audit can */
			printf("sysunmap %ld\n", syscall(SYS_munmap, regions[num(ARG(1))] + num(ARG(2)), num(ARG(3))));
			i += 3;
		} else if (!strcmp(c, "sysprot")) {
			printf("sysprot %ld\n", syscall(SYS_mprotect, regions[num(ARG(1))] + num(ARG(2)), num(ARG(3)), prot_of(ARG(4))));
			i += 4;
		} else if (!strcmp(c, "_exit")) {
			fflush(stdout);
			_exit((int)num(ARG(1)));
		} else if (!strcmp(c, "shm")) {
			/* region 14: a fresh System V segment, removed once detached */
			int id = shmget(IPC_PRIVATE, num(ARG(1)), 0600 | IPC_CREAT);
			regions[14] = shmat(id, NULL, 0);
			shmctl(id, IPC_RMID, NULL);
			printf("shm %s\n", regions[14] == (void *)-1 ? "fail" : "ok");
			i += 1;
		} else if (!strcmp(c, "shmdt")) {
			errno = 777;
			int rc = shmdt(regions[14]);
			printf("shmdt %d %d\n", rc, errno);
		} else if (!strcmp(c, "grow")) {
			/* region 15 is the memory sbrk just added */
			void *p = sbrk((intptr_t)num(ARG(1)));
			regions[15] = p;
			printf("grow %s\n", p == (void *)-1 ? "fail" : "ok");
			i += 1;
		} else if (!strcmp(c, "shrink") || !strcmp(c, "brkdown")) {
			errno = 777;
			int rc = c[0] == 's' ? (sbrk(-(intptr_t)num(ARG(1))) == (void *)-1 ? -1 : 0)
					     : brk((char *)sbrk(0) - num(ARG(1)));
			printf("%s %d %d\n", c, rc, errno);
			i += 1;
		} else if (!strcmp(c, "advise")) {
			errno = 777;
			int rc = madvise(regions[num(ARG(1))] + num(ARG(2)), num(ARG(3)), (int)num(ARG(4)));
			printf("madvise %d %d\n", rc, errno);
			i += 4;
		} else if (!strcmp(c, "mapfix") || !strcmp(c, "mapnorep")) {
			int flags = MAP_PRIVATE | MAP_ANONYMOUS | (c[3] == 'f' ? MAP_FIXED : MAP_FIXED_NOREPLACE);
			errno = 777;
			void *r = mmap(regions[num(ARG(1))] + num(ARG(2)), num(ARG(3)), PROT_READ | PROT_WRITE, flags, -1, 0);
			printf("mmap %s %d\n", r == MAP_FAILED ? "fail" : "ok", errno);
			i += 3;
		} else if (!strcmp(c, "rawremap")) {
			errno = 777;
			void *r = mremap((void *)num(ARG(1)), num(ARG(2)), num(ARG(3)), remap_flags(ARG(4)), (void *)num(ARG(5)));
			printf("mremap %s %d\n", r == MAP_FAILED ? "fail" : "ok", errno);
			i += 5;
		} else if (!strcmp(c, "cb")) {
			if (pincoh_on_invalidate)
				pincoh_on_invalidate(on_inval, NULL);
		} else if (!strcmp(c, "pub")) {
			printf("pub %d\n", pincoh_publish(ARG(1), keys[num(ARG(2))]));
			i += 2;
		} else if (!strcmp(c, "att")) {
			int rc = pincoh_attach(ARG(1), (int)num(ARG(2)), &handles[nhandles]);
			printf("att %d %d\n", rc == 0 ? nhandles : -1, rc);
			if (rc == 0)
				nhandles++;
			i += 2;
		} else if (!strcmp(c, "put")) {
			static unsigned char data[1 << 20];
			size_t len = num(ARG(3));
			memset(data, (int)num(ARG(4)), len < sizeof data ? len : sizeof data);
			printf("put %d\n", pincoh_put(handles[num(ARG(1))], num(ARG(2)), data, len));
			i += 4;
		} else if (!strcmp(c, "putloop")) {
			static unsigned char data[4096];
			int rc = 0;
			printf("looping\n");
			for (unsigned long n = num(ARG(2)); n-- && rc == 0;)
				rc = pincoh_put(handles[num(ARG(1))], 0, data, sizeof data);
			printf("putloop %d\n", rc);
			i += 2;
		} else if (!strcmp(c, "get")) {
			static unsigned char data[1 << 20];
			size_t len = num(ARG(3));
			int rc = pincoh_get(handles[num(ARG(1))], num(ARG(2)), data, len < sizeof data ? len : sizeof data);
			printf("get %d %d\n", rc, data[0]);
			i += 3;
		} else if (!strcmp(c, "regmany")) {
			unsigned long n = num(ARG(2)), valid = 0, gone = 0, failed = 0;
			uint64_t *k = calloc(n, sizeof *k);
			for (unsigned long j = 0; j < n; j++)
				if (pincoh_register(regions[num(ARG(1))] + j * 4096, 4096, PINCOH_READ, &k[j]) != 0)
					failed++, k[j] = ~0ull;
			for (unsigned long j = 0; j < n; j += 2)
				pincoh_deregister(k[j]);
			for (unsigned long j = 0; j < n; j++) {
				valid += pincoh_is_valid(k[j]) > 0; /* 2: valid, not yet known to a coordinator */
				gone += j % 2 == 0 && k[j] != ~0ull && pincoh_deregister(k[j]) == -ENOENT;
			}
			if (failed)
				printf("regmany valid %lu refused %lu failed %lu\n", valid, gone, failed);
			else
				printf("regmany valid %lu refused %lu\n", valid, gone);
			free(k);
			i += 2;
		} else if (!strcmp(c, "live")) {
			int live = -1;
			int rc = pincoh_handle_info(handles[num(ARG(1))], NULL, NULL, NULL, &live);
			printf("live %lu %d %d\n", num(ARG(1)), rc, live);
			i += 1;
		} else if (!strcmp(c, "progress")) {
			printf("progress %d\n", pincoh_progress());
		} else if (!strcmp(c, "det")) {
			printf("det %d\n", pincoh_detach(handles[num(ARG(1))]));
			i += 1;
		} else if (!strcmp(c, "bar")) {
			printf("bar %d\n", pincoh_barrier((int)num(ARG(1))));
			i += 1;
		} else if (!strcmp(c, "fill")) {
			memset(regions[num(ARG(1))] + num(ARG(2)), (int)num(ARG(4)), num(ARG(3)));
			i += 4;
		} else if (!strcmp(c, "peek")) {
			printf("peek %d\n", regions[num(ARG(1))][num(ARG(2))]);
			i += 2;
		} else if (!strcmp(c, "wait")) {
			char line[64];
			printf("waiting\n");
			if (!fgets(line, sizeof line, stdin))
				return 3;
		} else if (!strcmp(c, "stop")) {
			printf("stopping\n");
			raise(SIGSTOP);
			printf("continued\n");
		} else if (!strcmp(c, "segv")) {
			signal(SIGSEGV, SIG_DFL);
			raise(SIGSEGV);
		} else if (!strcmp(c, "say")) {
			printf("said\n");
		} else if (!strcmp(c, "clone")) {
			/* clone novm|vm|bad|nofn: a child that exits 0 at once, waited for;
			 * bad asks for CLONE_SIGHAND without CLONE_VM (EINVAL) */
			static char stack[65536] __attribute__((aligned(16)));
			const char *how = ARG(1);
			int flags = SIGCHLD | (!strcmp(how, "vm") ? CLONE_VM | CLONE_VFORK : 0) | (!strcmp(how, "bad") ? CLONE_SIGHAND : 0);
			int st = -1;
			errno = 777;
			int rc = clone(strcmp(how, "nofn") ? child_exit0 : NULL, stack + sizeof stack, flags, NULL);
			int err = errno;
			if (rc > 0)
				waitpid(rc, &st, 0);
			printf("clone %s %d status %d\n", rc > 0 ? "child" : "fail", rc > 0 ? 0 : err, st);
			i += 1;
		} else if (!strcmp(c, "mark")) {
#ifdef SYS_getpgrp
			syscall(SYS_getpgrp); /* a marker the tests find in strace's output */
#else
			syscall(SYS_getpgid, 0); /* (aarch64 has no getpgrp) */
#endif
		} else if (!strcmp(c, "fds")) {
			printf("sockets %d\n", count_sockets());
		} else if (!strcmp(c, "threads")) {
			printf("threads %d\n", count_threads());
		} else if (!strcmp(c, "forktouch")) {
			/* a child reads region I at OFF; prints how it ended */
			volatile char *at = regions[num(ARG(1))] + num(ARG(2));
			int st;
			pid_t pid = fork();
			if (pid == 0)
				_exit(*at == 42 ? 0 : 1);
			waitpid(pid, &st, 0);
			printf("child %s %d\n", WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			i += 2;
		} else if (!strcmp(c, "forkreg")) {
			uint64_t k;
			pid_t pid = fork();
			if (pid == 0) {
				printf("child reg %d\n", pincoh_register(regions[num(ARG(1))] + num(ARG(2)), num(ARG(3)), PINCOH_READ, &k));
				fflush(stdout);
				_exit(0);
			}
			waitpid(pid, NULL, 0);
			printf("forked %d\n", pid);
			i += 3;
		} else if (!strcmp(c, "forkfds")) {
			pid_t pid = fork();
			if (pid == 0) {
				printf("child sockets %d\n", count_sockets());
				_exit(0);
			}
			waitpid(pid, NULL, 0);
		} else if (!strcmp(c, "exec")) {
			fflush(stdout);
			execvp(argv[i + 1], &argv[i + 1]);
			perror("exec");
			return 127;
		} else if (!strcmp(c, "stats")) {
			struct pincoh_stats s = { 0 };
			if (pincoh_get_stats)
				pincoh_get_stats(&s);
			printf("stats slow %llu inval %llu timeouts %llu degraded %d connected %d\n", (unsigned long long)s.slow_calls,
			       (unsigned long long)s.invalidations, (unsigned long long)s.timeouts, s.degraded, s.connected);
		} else if (!strcmp(c, "sleep")) {
			usleep((useconds_t)num(ARG(1)) * 1000);
			i += 1;
		} else if (!strcmp(c, "touch")) {
			regions[num(ARG(1))][num(ARG(2))] = 1;
			printf("touch ok\n");
			i += 2;
		} else {
			fprintf(stderr, "driver: unknown command %s\n", c);
			return 2;
		}
	}
	return 0;
}
