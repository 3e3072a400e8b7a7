/* test.c: the case runner of test.h: each case in its own process with a time limit,
 * so a crash or a hang fails that case alone. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static int test_passed_, test_failed_, test_skipped_;

void test_run_(const char *name, void (*fn)(void), unsigned timeout_s)
{
	int st = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm(timeout_s);
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

int test_summary(void)
{
	return test_failed_ ? 1 : 0;
}
