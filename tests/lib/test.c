/* test.c: the case runner of test.h: each case in its own process with a time limit,
 * so a crash or a hang fails that case alone. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static int test_passed_, test_failed_, test_skipped_;

double test_time_scale(void)
{
	static int milli; /* the scale x 1000, read once; threads may race to the same value */
	int m = __atomic_load_n(&milli, __ATOMIC_RELAXED);

	if (!m) {
		const char *e = getenv("TEST_TIME_SCALE");
		double v = e && *e ? strtod(e, NULL) : 1.0;

		m = v >= 1.0 && v <= 100.0 ? (int)(v * 1000.0) : 1000;
		__atomic_store_n(&milli, m, __ATOMIC_RELAXED);
	}
	return m / 1000.0;
}

int test_scale_ms(int ms)
{
	double v = ms * test_time_scale();

	return v > 2e9 ? 2000000000 : (int)v;
}

static void test_run_case_(const char *name, void (*fn)(void), unsigned timeout_s)
{
	int st = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm((unsigned)(timeout_s * test_time_scale() + 0.5));
		fn();
		exit(0); /* not _exit: the case's atexit clean-ups (daemons, files) must run */
	}
	if (pid > 0 && waitpid(pid, &st, 0) != pid)
		pid = -1;
	if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == TEST_SKIP_STATUS) {
		test_skipped_++;
		printf("SKIP %s\n", name);
	} else if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		test_failed_++;
		if (pid > 0 && WIFSIGNALED(st))
			fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(st),
			        WTERMSIG(st) == SIGALRM ? " (time limit)" : "");
		printf("FAIL %s\n", name);
	} else {
		test_passed_++;
		printf("PASS %s\n", name);
	}
	fflush(stdout);
}

static int test_threaded_only(void)
{
	const char *e = getenv("TEST_THREADED_ONLY");

	return e && !strcmp(e, "1");
}

void test_run_threaded_(const char *name, void (*fn)(void), unsigned timeout_s)
{
	test_run_case_(name, fn, timeout_s);
}

void test_run_(const char *name, void (*fn)(void), unsigned timeout_s)
{
	if (!test_threaded_only())
		test_run_case_(name, fn, timeout_s);
}

int test_summary(void)
{
	return test_failed_ ? 1 : 0;
}
