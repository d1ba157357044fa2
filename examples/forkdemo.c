/* forkdemo: fork gives the child nothing; the parent keeps everything.
 *
 * The parent registers a buffer and forks. In the child the registration does
 * not exist (the child's copy of the pages is not what was pinned); the child
 * registers its own buffer over its own connection. The parent's registration
 * is untouched by all of it.
 *
 * The child also says what it has at the registered pages: its own copy by
 * default, nothing at all under `pincoh run --fork dontfork` (a touch would be
 * SIGSEGV, as after ibv_fork_init).
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv)
{
	(void)argc;
	require_pincoh(argv[0]);
	int rank = rank_or_zero();
	size_t len = 1u << 16;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t key, ckey;
	if (buf == MAP_FAILED || pincoh_register(buf, len, PINCOH_READ | PINCOH_WRITE, &key) < 0) {
		fprintf(stderr, "forkdemo: cannot register\n");
		return 1;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsigned char vec;
		int inherited = pincoh_is_valid(key);
		int mapped = mincore(buf, 4096, &vec) == 0; /* ENOMEM: nothing mapped there */
		char *own = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int rc = pincoh_register(own, len, PINCOH_READ, &ckey);
		printf("rank %d child: parent's registration valid here: %s; its pages here: %s; own registration: %s\n", rank,
		       inherited == 1 ? "yes (WRONG)" : "no",
		       mapped ? "a private copy (fork keep)" : "not mapped (fork dontfork: a touch is SIGSEGV)",
		       rc == 0 && pincoh_is_valid(ckey) == 1 ? "ok" : strerror(-rc));
		fflush(stdout);
		munmap(own, len);
		_exit(inherited == 1 || rc != 0);
	}
	int status;
	waitpid(pid, &status, 0);
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && pincoh_is_valid(key) == 1;
	printf("rank %d parent: registration still valid after fork: %s\n", rank, pincoh_is_valid(key) == 1 ? "yes" : "NO");
	munmap(buf, len);
	printf("rank %d parent: after munmap, valid: %s\n", rank, pincoh_is_valid(key) == 1 ? "yes (WRONG)" : "no");
	return ok && pincoh_is_valid(key) == 0 ? 0 : 1;
}
