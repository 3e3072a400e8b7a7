/* payspoa-proc.h: start, watch and stop a payspoa daemon from a test. Header-only for the
 * same reason as spop-client.h. Every wait has a deadline; a case that fails or is
 * killed by its time limit takes the daemon along (PR_SET_PDEATHSIG, atexit). */
#ifndef PAYSPOA_PROC_H
#define PAYSPOA_PROC_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spop-client.h"
#include "test.h"

struct pp_daemon {
	pid_t pid;
	bool stopped;
	char addr[128];
	char log[96];
};

static struct pp_daemon *pp_current;

static inline const char *pp_bin(void)
{
	const char *b = getenv("PAYSPOA_BIN");

	return b && *b ? b : "./payspoa";
}

static inline int pp_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ASSERT(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* At exit of a case (failed ones included): kill the daemon, show its warnings and
 * errors on stderr (they land in the test's log), remove its log. */
static inline void pp_cleanup(void)
{
	struct pp_daemon *d = pp_current;
	char line[1024];
	FILE *f;

	if (!d)
		return;
	if (d->pid > 0 && !d->stopped) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->stopped = true;
	}
	f = fopen(d->log, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "\"error\"") || strstr(line, "Sanitizer") || strstr(line, "runtime error"))
			fprintf(stderr, "  daemon: %s", line);
	if (f)
		fclose(f);
	unlink(d->log);
	pp_current = NULL;
}

/* How many lines of the daemon's log contain `needle`? */
static inline int pp_log_count(const struct pp_daemon *d, const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(d->log, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static inline bool pp_log_has(const struct pp_daemon *d, const char *needle)
{
	return pp_log_count(d, needle) > 0;
}

/* Wait up to timeout_ms for the log to contain needle. */
static inline bool pp_log_wait(const struct pp_daemon *d, const char *needle, int timeout_ms)
{
	uint64_t deadline = sc_now_us() + (uint64_t)timeout_ms * 1000u;

	while (!pp_log_has(d, needle)) {
		if (sc_now_us() > deadline)
			return false;
		sc_sleep_ms(10);
	}
	return true;
}

/* Start `payspoa -f conf -l listen -w workers` (listen NULL: a free loopback port) with
 * at most `nofile` descriptors (0: inherited), and wait until it accepts. */
static inline void pp_start(struct pp_daemon *d, const char *conf, const char *listen, int workers,
                            int nofile)
{
	uint64_t deadline = sc_now_us() + 20 * 1000000ull;
	char w[16];
	int fd;

	memset(d, 0, sizeof(*d));
	if (listen)
		snprintf(d->addr, sizeof(d->addr), "%s", listen);
	else
		snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", pp_free_port());
	snprintf(d->log, sizeof(d->log), "/tmp/payspoa-test-%d.log", (int)getpid());
	snprintf(w, sizeof(w), "%d", workers);
	pp_current = d;
	atexit(pp_cleanup);
	d->pid = fork();
	ASSERT(d->pid >= 0);
	if (d->pid == 0) {
		int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
			close(lfd);
		}
		if (nofile > 0) {
			struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };

			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execl(pp_bin(), pp_bin(), "-f", conf, "-l", d->addr, "-w", w, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		int st;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->stopped = true;
			TEST_FAIL_("%s exited at start (status 0x%x); log %s", pp_bin(), st, d->log);
		}
		fd = sc_connect(d->addr, 200);
		if (fd >= 0)
			break;
		if (sc_now_us() > deadline)
			TEST_FAIL_("%s does not accept on %s within 20 s", pp_bin(), d->addr);
		sc_sleep_ms(10);
	}
	close(fd);
}

static inline bool pp_alive(struct pp_daemon *d)
{
	return d->pid > 0 && !d->stopped && waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* Send sig and wait for the exit. Returns the wait status, or -1 on timeout (killed). */
static inline int pp_stop(struct pp_daemon *d, int sig, int timeout_ms)
{
	uint64_t deadline = sc_now_us() + (uint64_t)timeout_ms * 1000u;
	int st;

	kill(d->pid, sig);
	for (;;) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->stopped = true;
			return st;
		}
		if (sc_now_us() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->stopped = true;
			return -1;
		}
		sc_sleep_ms(5);
	}
}

/* Run `payspoa ARGS...` to completion (10 s at most); its stdout+stderr go into out.
 * Returns the exit code, or -1 if it did not exit normally. */
static inline int pp_run(char *out, size_t outlen, ...)
{
	const char *argv[16];
	int pipefd[2], st, n = 0;
	size_t len = 0;
	va_list ap;
	pid_t pid;

	argv[n++] = pp_bin();
	va_start(ap, outlen);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(10);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		execv(pp_bin(), (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t r = read(pipefd[0], out + len, outlen - 1 - len);

		if (r <= 0 || (len += (size_t)r) == outlen - 1)
			break;
	}
	out[len] = 0;
	close(pipefd[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* HELLO on a fresh connection; returns the connection (caller frees) or fails. A
 * connection refused at once (closed: the daemon's slots still held by connections it
 * has not yet seen close) is tried again for up to 2 s; silence is a failure. */
static inline struct sc_conn *pp_hello(const char *addr)
{
	struct sc_conn *c = calloc(1, sizeof(*c));
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	uint64_t deadline = sc_now_us() + 2 * 1000000ull;
	size_t n = spop_haproxy_hello(&w, "2.0", 16380, "pipelining", false, "test");
	int r;

	ASSERT(c);
	ASSERT(n > 0);
	for (;;) {
		int fd = sc_connect(addr, 2000);

		ASSERT(fd >= 0);
		sc_conn_init(c, fd);
		r = SC_BAD;
		if (sc_send_all(fd, buf, n, 2000) == 0 && (r = sc_read_frame(c, &f, 5000)) == SC_FRAME)
			break;
		close(fd);
		if (r != SC_CLOSED || sc_now_us() > deadline)
			TEST_FAIL_("no AGENT-HELLO from %s (%s)", addr, r == SC_TIMEOUT ? "silence" : "refused");
		sc_sleep_ms(10);
	}
	ASSERT_EQ(f.type, SPOP_FRM_AGENT_HELLO);
	return c;
}

static inline void pp_close(struct sc_conn *c)
{
	close(c->fd);
	free(c);
}

/* One pay-request round trip; *a receives the ACK's variables. */
static inline void pp_decide(struct sc_conn *c, const struct sc_payreq *r, uint64_t sid,
                             struct sc_ack *a)
{
	uint8_t buf[2048];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	size_t n = sc_notify_payreq(&w, sid, 1, r);

	ASSERT(n > 0);
	ASSERT_EQ(sc_send_all(c->fd, buf, n, 2000), 0);
	ASSERT_EQ(sc_read_frame(c, &f, 5000), SC_FRAME);
	ASSERT_EQ(f.type, SPOP_FRM_ACK);
	ASSERT_EQ(f.stream_id, sid);
	ASSERT(sc_ack_decode(f.payload, f.len, a) > 0);
}

#endif /* PAYSPOA_PROC_H */
