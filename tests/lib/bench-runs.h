/* bench-runs.h: what the bench programs share to time rounds and report them: a
 * monotonic clock in seconds, and the best / median / worst of a set of rounds (the
 * machine is shared: the best round is the honest figure, the median and range say how
 * much the rounds moved). Header-only; no allocation. */
#ifndef BENCH_RUNS_H
#define BENCH_RUNS_H

#include <stdlib.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

static inline double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts t[0..n) ascending: t[0] is the best (shortest) round, bench_median(t, n) the
 * median, t[n - 1] the worst. */
static inline void bench_sort(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(t[0]), bench_cmp_double);
}

/* The median of t[0..n), sorted by bench_sort (the mean of the middle two when n is
 * even). */
static inline double bench_median(const double *t, int n)
{
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* A round count from the command line: `def` when absent or outside 1..BENCH_MAX_RUNS. */
static inline int bench_runs_arg(int argc, char **argv, int i, int def)
{
	int r = argc > i ? atoi(argv[i]) : def;

	return r < 1 || r > BENCH_MAX_RUNS ? def : r;
}

#endif /* BENCH_RUNS_H */
