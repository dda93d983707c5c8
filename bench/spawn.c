/* Raw posix_spawn rate of this machine: the baseline for wf's `shell` steps.
 *   spawn N PAR PROG [ARGS...]   runs PROG N times, at most PAR at once,
 *                                prints "<N> <seconds> <per_second>".
 * Built by bench/run.sh: cc -O2 -o $WORK/spawn bench/spawn.c */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: spawn N PAR PROG [ARGS...]\n");
		return 2;
	}
	long n = atol(argv[1]), par = atol(argv[2]), started = 0, done = 0, failed = 0;
	if (n < 1 || par < 1)
		return 2;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < n) {
		while (started < n && started - done < par) {
			pid_t pid;
			if (posix_spawn(&pid, argv[3], NULL, NULL, &argv[3], environ) != 0) {
				perror("posix_spawn");
				return 1;
			}
			started++;
		}
		int st;
		if (wait(&st) < 0) {
			perror("wait");
			return 1;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
		done++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%ld %.3f %.1f\n", n, s, (double)n / s);
	return failed ? 1 : 0;
}
