/* mpiring: an Open MPI program, run by Debian's mpirun with the shim preloaded
 * into its ranks. Each rank exposes an 8 MiB malloc'd buffer as an MPI window,
 * puts a message into the next rank's, then frees the buffer.
 * usage: mpiring plain|coherent
 * coherent: the buffer is also registered with pincoh, and the rank reports
 * whether the invalidation arrived inside free() (libc's own munmap). Rank 0
 * prints every rank's line, in rank order. */
#define _GNU_SOURCE
#define PINCOH_WEAK
#include <mpi.h>
#include <pincoh.h>
#include "watch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int main(int argc, char **argv)
{
	int rank, size, coherent = argc > 1 && !strcmp(argv[1], "coherent");
	size_t len = 8 << 20;
	char line[128], msg[32], *lines;
	MPI_Win win;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);

	char *buf = malloc(len); /* above the mmap threshold: free() unmaps it inside libc */
	memset(buf, 0, len);
	if (coherent) {
		if (!pincoh_register) {
			fprintf(stderr, "mpiring: coherent needs the shim preloaded\n");
			MPI_Abort(MPI_COMM_WORLD, 2);
		}
		pincoh_on_invalidate(on_inval, NULL);
		if (pincoh_register(buf, len, PINCOH_READ | PINCOH_WRITE, &watched) != 0)
			MPI_Abort(MPI_COMM_WORLD, 3);
	}
	MPI_Win_create(buf, (MPI_Aint)len, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &win);
	MPI_Win_fence(0, win);
	snprintf(msg, sizeof msg, "from %d", rank);
	MPI_Put(msg, (int)strlen(msg) + 1, MPI_CHAR, (rank + 1) % size, 4096, (int)strlen(msg) + 1, MPI_CHAR, win);
	MPI_Win_fence(0, win);
	MPI_Win_free(&win);

	long one = rank + 1, sum = 0;
	MPI_Allreduce(&one, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	snprintf(msg, sizeof msg, "%.16s", buf + 4096);
	free(buf);
	snprintf(line, sizeof line, "rank %d/%d: got '%s' sum %ld", rank, size, msg, sum);
	if (coherent) {
		struct pincoh_stats s;
		pincoh_get_stats(&s);
		snprintf(line + strlen(line), sizeof line - strlen(line), " fired %d valid %d libc %d", fired,
			 pincoh_is_valid(watched), s.libc);
	}
	lines = rank == 0 ? calloc((size_t)size, sizeof line) : NULL;
	MPI_Gather(line, sizeof line, MPI_CHAR, lines, sizeof line, MPI_CHAR, 0, MPI_COMM_WORLD);
	for (int r = 0; rank == 0 && r < size; r++)
		printf("%s\n", lines + (size_t)r * sizeof line);
	free(lines);
	MPI_Finalize();
	return 0;
}
