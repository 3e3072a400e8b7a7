/* test-admin: the admin socket and the metrics endpoint of a real daemon, with real SPOP
 * traffic (tests/lib): every command answers, errors are one line, state changes take
 * effect on the decisions, hostile clients (1000 idle connections, a byte at a time, a
 * huge line) stop neither decisions nor a well-behaved admin client, a live instance's
 * socket is never stolen and a stale one is replaced, /metrics moves with traffic. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "test.h"

static char sock_dir[64];

static void sock_dir_cleanup(void)
{
	char cmd[128];

	if (sock_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sock_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "  cannot remove %s\n", sock_dir);
	}
}

/* A policy with the admin socket in a private folder and /metrics on a free port. */
static const char *admin_conf(char *sock, size_t slen, int *mport)
{
	static char to[512];
	const char *from = "log_level = \"info\";";
	const char *tp = to;

	if (!sock_dir[0]) {
		snprintf(sock_dir, sizeof(sock_dir), "/tmp/payspoa-admin-XXXXXX");
		ASSERT(mkdtemp(sock_dir));
		atexit(sock_dir_cleanup);
	}
	snprintf(sock, slen, "%s/admin.sock", sock_dir);
	*mport = pp_free_port();
	snprintf(to, sizeof(to), "log_level = \"info\";\n\tadmin_socket = \"%s\";\n\tmetrics = \"127.0.0.1:%d\";", sock,
	         *mport);
	return pp_conf_variant(1, &from, &tp);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF (or out is full) within timeout_ms; returns the bytes read, -1 past the
 * deadline. */
static long read_all(int fd, char *out, size_t len, int timeout_ms)
{
	uint64_t deadline = sc_now_us() + (uint64_t)timeout_ms * 1000;
	size_t got = 0;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = sc_left_ms(deadline);
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&p, 1, left) <= 0)
			continue;
		n = read(fd, out + got, len - 1 - got);
		if (n <= 0 || (got += (size_t)n) == len - 1)
			break;
	}
	out[got] = 0;
	return (long)got;
}

/* Sends cmds, half-closes, reads the whole answer (10 s at most). */
static void admin(const char *path, const char *cmds, char *out, size_t len)
{
	int fd = unix_connect(path);

	ASSERT(fd >= 0);
	ASSERT_EQ(sc_send_all(fd, cmds, strlen(cmds), 5000), 0);
	shutdown(fd, SHUT_WR);
	if (read_all(fd, out, len, 10000) < 0)
		TEST_FAIL_("no complete answer to \"%s\" within 10 s", cmds);
	close(fd);
}

/* Answers in out: each ends with an empty line. */
static int count_answers(const char *out)
{
	int n = 0;

	for (const char *p = out; (p = strstr(p, "\n\n")); p += 2)
		n++;
	return n;
}

static unsigned req_n;

static const char *decide(struct sc_conn *c, const char *idem, struct sc_ack *a)
{
	static char id[32], idem_buf[65];
	struct sc_payreq r;

	sc_payreq_sample(&r, ++req_n, id, idem_buf);
	r.currency = "usd";
	r.card_country = "US";
	r.idem = idem ? idem : idem_buf;
	r.account = NULL; /* a connected account would pin its requests to one backend */
	pp_decide(c, &r, req_n, a);
	return sc_ack_str(a, "backend");
}

TEST(every_command_answers)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_ack a;
	char sock[128], out[65536], *p;
	int mport;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 2, 0);
	admin(sock, "set sample 1\n", out, sizeof(out));
	ASSERT_STREQ(out, "\n");
	c = pp_hello(d.addr);
	for (int i = 0; i < 20; i++)
		ASSERT(decide(c, NULL, &a));
	pp_close(c);
	/* several commands per connection, by newline and ';' */
	admin(sock, "help\nshow info;show backends;show classes\nshow breakers;show budgets;show forecast\n"
	      "show learning;show learning stripe_us 3;show pins;show decisions 5\n", out, sizeof(out));
	if (count_answers(out) != 11)
		TEST_FAIL_("expected 11 answers in:\n%s", out);
	ASSERT(strstr(out, "set backend <backend> enable|disable|drain"));
	ASSERT(strstr(out, "decisions: 20\n"));
	ASSERT(strstr(out, "stripe_us acct_us_payspoa up enabled closed normal 1.000"));
	/* no outcome reported: every backend's auth_rate is still the operator's guess */
	ASSERT(strstr(out, " budget_load prior\n"));
	p = strstr(out, "stripe_us acct_us_payspoa up enabled closed normal 1.000");
	ASSERT(p && strchr(p, '\n') && !strncmp(strchr(p, '\n') - 9, " untested", 9));
	ASSERT(strstr(out, "\ncheckout -100 "));
	ASSERT(strstr(out, "\nstripe_eu closed normal 0 "));
	ASSERT(strstr(out, "\nacct_us_payspoa payment_intents.create "));
	ASSERT(strstr(out, "\nacct_us_payspoa checkout "));
	ASSERT(strstr(out, "# backend segment n mean sd\nstripe_us all "));
	ASSERT(strstr(out, "\nidem 20 20 0 "));
	/* five sampled decisions, each with the score of every backend it scored */
	p = strstr(out, "# sample_every=1;");
	ASSERT(p);
	for (int i = 0; i < 5; i++) {
		ASSERT((p = strstr(p, "\ndecision ")));
		ASSERT(strstr(p, " stripe_us allow \""));
		p++;
	}
	ASSERT(!strstr(p, "\ndecision "));
	ASSERT(strstr(out, "\n  stripe_us ") && strstr(out, "candidate,chosen"));
	/* no key ever: the idempotency keys sent are not in any answer */
	ASSERT(!strstr(out, "00000000000000000000"));
	ASSERT(strstr(out, "\nshow fleet "));  /* in help; without fleet.redis: */
	admin(sock, "show fleet\n", out, sizeof(out));
	ASSERT_STREQ(out, "no fleet\n\n");
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

TEST(errors_are_one_line)
{
	static const char *const bad[] = {
		"bogus", "show", "show nothing", "show info extra", "show learning nosuch", "show learning stripe_us 0",
		"show decisions many", "set", "set breaker nosuch open", "set breaker stripe_us sideways",
		"set backend stripe_us frobnicate", "set backend nosuch drain", "set sample -1", "save", "save state",
		"reload now", "a b c d e f g h i j",
	};
	struct pp_daemon d;
	char sock[128], out[8192];
	int mport;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 1, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char cmd[64];
		const char *nl;

		snprintf(cmd, sizeof(cmd), "%s\n", bad[i]);
		admin(sock, cmd, out, sizeof(out));
		nl = strchr(out, '\n');
		if (!nl || nl == out || strcmp(nl, "\n\n"))
			TEST_FAIL_("\"%s\": expected one line and an empty one, got \"%s\"", bad[i], out);
	}
	ASSERT(pp_alive(&d));
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

TEST(state_changes_take_effect)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_ack a;
	char sock[128], out[8192], key[65];
	int mport;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 2, 0);
	c = pp_hello(d.addr);
	ASSERT_STREQ(decide(c, NULL, &a), "stripe_us");

	admin(sock, "set breaker stripe_us open\nshow breakers\n", out, sizeof(out));
	ASSERT(strstr(out, "\nstripe_us open "));
	for (int i = 0; i < 10; i++)
		ASSERT(strcmp(decide(c, NULL, &a), "stripe_us"));
	admin(sock, "set breaker stripe_us auto\n", out, sizeof(out));
	ASSERT_STREQ(decide(c, NULL, &a), "stripe_us");

	admin(sock, "set backend stripe_us disable\n", out, sizeof(out));
	for (int i = 0; i < 10; i++)
		ASSERT(strcmp(decide(c, NULL, &a), "stripe_us"));
	admin(sock, "set backend stripe_us enable\n", out, sizeof(out));
	snprintf(key, sizeof(key), "%064x", 0xd1a1);
	ASSERT_STREQ(decide(c, key, &a), "stripe_us"); /* pins the key there */

	/* drain: new traffic goes elsewhere, the retry of a pinned key still reaches it */
	admin(sock, "set backend stripe_us drain\nshow backends\n", out, sizeof(out));
	ASSERT(strstr(out, "\nstripe_us acct_us_payspoa up drain "));
	for (int i = 0; i < 10; i++)
		ASSERT(strcmp(decide(c, NULL, &a), "stripe_us"));
	ASSERT_STREQ(decide(c, key, &a), "stripe_us");
	ASSERT(strstr(sc_ack_str(&a, "reason"), "pin:idem"));
	admin(sock, "set backend stripe_us enable\n", out, sizeof(out));
	ASSERT_STREQ(decide(c, NULL, &a), "stripe_us");

	/* reload keeps the admin's state for the names that survive; save state without a
	 * state_file is refused, in one line */
	admin(sock, "set backend stripe_us disable;reload\n", out, sizeof(out));
	ASSERT(strstr(out, "Reloaded.\n"));
	ASSERT(strcmp(decide(c, NULL, &a), "stripe_us"));
	pp_close(c);
	/* every state change in the log as an admin action, with its origin */
	ASSERT(pp_log_wait(&d, "\"command\":\"reload\",\"origin\":\"uid=", 5000));
	ASSERT_EQ(pp_log_count(&d, "\"event\":\"admin_action\""), 8);
	ASSERT(pp_log_has(&d, "\"command\":\"set backend stripe_us drain\",\"origin\":\"uid="));
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* 1000 idle connections, a client sending a byte at a time, one sending a line far over
 * the limit: decisions go on, a well-behaved client gets its answers. */
TEST(hostile_clients)
{
	enum { NIDLE = 1000 };
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_ack a;
	struct rlimit rl;
	char sock[128], out[8192], *huge;
	int mport, idle[NIDLE], slow, big, nidle = 0;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);
	uint64_t t0;
	long n;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < NIDLE + 64) {
		rl.rlim_cur = rl.rlim_max < NIDLE + 64 ? rl.rlim_max : NIDLE + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	pp_start(&d, conf, NULL, 2, 0);
	c = pp_hello(d.addr);
	for (int i = 0; i < NIDLE && nidle < (int)rl.rlim_cur - 64; i++)
		if ((idle[nidle] = unix_connect(sock)) >= 0)
			nidle++;
	ASSERT_GE(nidle, 900);
	ASSERT_STREQ(decide(c, NULL, &a), "stripe_us");

	/* a byte every 20 ms: no stall meanwhile */
	slow = unix_connect(sock);
	ASSERT(slow >= 0);
	for (const char *p = "show info\n"; *p; p++) {
		ASSERT_EQ(sc_send_all(slow, p, 1, 1000), 0);
		ASSERT(decide(c, NULL, &a));
		sc_sleep_ms(20);
	}
	/* a line 64 times the limit: one error, then the connection closes */
	huge = malloc(256 * 1024);
	ASSERT(huge);
	memset(huge, 'x', 256 * 1024);
	big = unix_connect(sock);
	ASSERT(big >= 0);
	sc_send_all(big, huge, 256 * 1024, 5000); /* stops when the daemon closes: not checked */
	free(huge);
	n = read_all(big, out, sizeof(out), 10000);
	ASSERT_GE(n, 0);
	ASSERT(strstr(out, "Command line too long"));
	close(big);

	/* the well-behaved client: answered promptly, the numbers right */
	t0 = sc_now_us();
	admin(sock, "show info\n", out, sizeof(out));
	ASSERT(strstr(out, "decisions: 11\n"));
	ASSERT_LE((long long)(sc_now_us() - t0), 5000000);
	for (int i = 0; i < 20; i++)
		ASSERT(decide(c, NULL, &a));
	/* the dribbler, active all along (never the least recently active), got its answer */
	shutdown(slow, SHUT_WR);
	n = read_all(slow, out, sizeof(out), 10000);
	ASSERT_GE(n, 0);
	ASSERT(strstr(out, "decisions: 1"));
	close(slow);
	for (int i = 0; i < nidle; i++)
		close(idle[i]);
	pp_close(c);
	ASSERT(pp_alive(&d));
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

TEST(live_socket_not_stolen_stale_replaced)
{
	struct pp_daemon d, d2;
	char sock[128], out[8192], addr[64];
	int mport, rc;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 1, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", pp_free_port());
	/* a second instance on the same admin socket: refused, the first one keeps it (its
	 * metrics port is taken too, so point that elsewhere) */
	{
		char to[512];
		const char *from = "log_level = \"info\";", *tp = to;
		const char *c2;

		snprintf(to, sizeof(to), "log_level = \"info\";\n\tadmin_socket = \"%s\";", sock);
		c2 = pp_conf_variant(1, &from, &tp);
		rc = pp_run(out, sizeof(out), "-f", c2, "-l", addr, NULL);
		ASSERT_EQ(rc, 1);
		ASSERT(strstr(out, "another process is serving this socket"));
		admin(sock, "show info\n", out, sizeof(out));
		ASSERT(strstr(out, "decisions: 0"));
		/* the first dies without cleaning up: its file stays, stale */
		ASSERT(pp_stop(&d, SIGKILL, 5000) >= 0);
		ASSERT_EQ(access(sock, F_OK), 0);
		pp_start(&d2, c2, addr, 1, 0);
		admin(sock, "show info\n", out, sizeof(out));
		ASSERT(strstr(out, "decisions: 0"));
		ASSERT_EQ(pp_stop(&d2, SIGTERM, 5000), 0);
		ASSERT(access(sock, F_OK) < 0); /* removed on a clean exit */
	}
}

/* GET one path on 127.0.0.1:port; returns the whole response. */
static void http_get(int port, const char *request, char *out, size_t len)
{
	char addr[64];
	int fd;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	fd = sc_connect(addr, 5000);
	ASSERT(fd >= 0);
	ASSERT_EQ(sc_send_all(fd, request, strlen(request), 5000), 0);
	if (read_all(fd, out, len, 10000) < 0)
		TEST_FAIL_("no complete answer to %s within 10 s", request);
	close(fd);
}

static long long metric(const char *text, const char *line_start)
{
	const char *p = strstr(text, line_start);

	if (!p)
		TEST_FAIL_("no \"%s\" in the metrics", line_start);
	return atoll(p + strlen(line_start));
}

TEST(metrics_move_with_traffic)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_ack a;
	char sock[128];
	static char m[1 << 20];
	int mport;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 2, 0);
	http_get(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", m, sizeof(m));
	ASSERT(!strncmp(m, "HTTP/1.1 200 OK\r\n", 17));
	ASSERT(strstr(m, "Content-Type: text/plain; version=0.0.4"));
	ASSERT_EQ(metric(m, "\npayspoa_decisions_total "), 0);
	c = pp_hello(d.addr);
	for (int i = 0; i < 20; i++) /* within the endpoint's burst of 25: no spill */
		ASSERT_STREQ(decide(c, NULL, &a), "stripe_us");
	pp_close(c);
	/* a worker folds its counters just after it sends the ACK: wait for the last fold */
	for (uint64_t end = sc_now_us() + 5000000;;) {
		http_get(mport, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", m, sizeof(m));
		if (metric(m, "\npayspoa_spoa_requests_total ") == 20 || sc_now_us() > end)
			break;
		sc_sleep_ms(20);
	}
	ASSERT_EQ(metric(m, "\npayspoa_decisions_total "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_allow_total "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_decisions_by_route_total{backend=\"stripe_us\",class=\"checkout\",verdict=\"allow\"} "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_reasons_total{reason=\"cost\"} "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_pin_live{table=\"idem\"} "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_spoa_requests_total "), 20);
	ASSERT_GE(metric(m, "\npayspoa_spoa_frames_in_total "), 21);
	ASSERT_EQ(metric(m, "\npayspoa_spoa_protocol_errors_total "), 0);
	ASSERT_EQ(metric(m, "\npayspoa_decision_latency_seconds_count "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_decision_latency_seconds_bucket{le=\"+Inf\"} "), 20);
	ASSERT_EQ(metric(m, "\npayspoa_breaker_state{backend=\"stripe_us\",state=\"closed\"} "), 1);
	ASSERT(strstr(m, "\n# TYPE payspoa_decision_latency_seconds histogram\n"));
	ASSERT_GE(metric(m, "\npayspoa_metrics_scrapes_total "), 2);
	/* other paths, methods and malformed or oversized requests */
	http_get(mport, "GET /other HTTP/1.1\r\n\r\n", m, sizeof(m));
	ASSERT(!strncmp(m, "HTTP/1.1 404 ", 13));
	http_get(mport, "POST /metrics HTTP/1.1\r\n\r\n", m, sizeof(m));
	ASSERT(!strncmp(m, "HTTP/1.1 405 ", 13));
	http_get(mport, "garbage\r\n\r\n", m, sizeof(m));
	ASSERT(!strncmp(m, "HTTP/1.1 400 ", 13));
	{
		static char big[20000];

		memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
		memset(big + 26, 'a', sizeof(big) - 27);
		http_get(mport, big, m, sizeof(m));
		ASSERT(!strncmp(m, "HTTP/1.1 431 ", 13));
	}
	ASSERT(pp_alive(&d));
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* Sampling while the admin reads the rings and /metrics is scraped: a child decides
 * without pause on two connections (two workers write their rings) while the parent
 * reads; every answer is whole (under TSan, the seqlock's reads and writes race by
 * design and must be reported clean). */
TEST(sampled_while_reading)
{
	struct pp_daemon d;
	char sock[128], out[65536];
	static char m[1 << 20];
	int mport, reads = 0, status;
	const char *conf = admin_conf(sock, sizeof(sock), &mport);
	pid_t child;

	pp_start(&d, conf, NULL, 2, 0);
	admin(sock, "set sample 1\n", out, sizeof(out));
	child = fork();
	ASSERT(child >= 0);
	if (child == 0) {
		struct sc_conn *c1 = pp_hello(d.addr), *c2 = pp_hello(d.addr);
		struct sc_ack a;

		for (int i = 0; i < 1500; i++) {
			decide(c1, NULL, &a);
			decide(c2, NULL, &a);
		}
		_exit(0);
	}
	while (waitpid(child, &status, WNOHANG) == 0) {
		const char *p = out;
		int n = 0;

		admin(sock, "show decisions 20\n", out, sizeof(out));
		while ((p = strstr(p, "\ndecision ")))
			p++, n++;
		ASSERT(n <= 20);
		ASSERT(strlen(out) >= 2 && !strcmp(out + strlen(out) - 2, "\n\n"));
		ASSERT(!strstr(out, "?"));
		http_get(mport, "GET /metrics HTTP/1.1\r\n\r\n", m, sizeof(m));
		ASSERT(strstr(m, "\n# TYPE payspoa_metrics_scrapes_total counter\npayspoa_metrics_scrapes_total "));
		reads++;
	}
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	admin(sock, "show decisions 1000\nshow info\n", out, sizeof(out));
	ASSERT(strstr(out, "decisions: 3000\n"));
	ASSERT_GE(reads, 1);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* agent.workers 0 (the shipped policy's) and no -w: one worker per 4 online CPUs, at least
 * one (spoa/README.md, Workers), as `show info` reports. */
TEST(default_workers_one_per_four_cpus)
{
	struct pp_daemon d;
	char sock[128], out[4096], want[64];
	int mport;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	const char *conf = admin_conf(sock, sizeof(sock), &mport);

	pp_start(&d, conf, NULL, 0, 0);
	admin(sock, "show info\n", out, sizeof(out));
	snprintf(want, sizeof(want), "\nworkers: %ld\n", n > 4 ? (n + 3) / 4 : 1);
	if (!strstr(out, want))
		TEST_FAIL_("%ld CPUs: expected \"%s\" in:\n%s", n, want + 1, out);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

int main(int argc, char **argv)
{
	RUN(every_command_answers);
	RUN(errors_are_one_line);
	RUN(state_changes_take_effect);
	RUN(hostile_clients);
	RUN(live_socket_not_stolen_stale_replaced);
	RUN(metrics_move_with_traffic);
	RUN(sampled_while_reading);
	RUN(default_workers_one_per_four_cpus);
	return test_summary();
}
