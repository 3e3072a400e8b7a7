/* test-outlog: the log outcome channel against a real daemon. The daemon creates
 * agent.outcome_socket mode 0660; lines sent on it as HAProxy sends them are learned,
 * malformed and truncated ones are counted and never stop it; an outcome reported by
 * both pay-response (SPOP) and the log line is learned once. The counts come from the
 * daemon's `stopped` line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "spop.h"
#include "test.h"

static char dir[64], conf[96], sock[96];

static void cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", dir);
}

/* conf/ copied to a fresh folder, payspoa.conf given an outcome socket there. */
static void make_conf(void)
{
	char cmd[512];

	snprintf(dir, sizeof(dir), "/tmp/payspoa-tol-%d", (int)getpid());
	snprintf(conf, sizeof(conf), "%s/payspoa.conf", dir);
	snprintf(sock, sizeof(sock), "%s/outcomes.sock", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && cp conf/*.conf '%s'/", dir, dir, dir);
	ASSERT_EQ(system(cmd), 0);
	atexit(cleanup);
	snprintf(cmd, sizeof(cmd), "sed -i 's|^\\([[:space:]]*outcome_socket[[:space:]]*=\\).*|\\1 \"%s\";|' '%s'",
	         sock, conf);
	ASSERT_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "grep -q 'outcome_socket = \"%s\"' '%s'", sock, conf);
	if (system(cmd) != 0)
		TEST_FAIL_("conf/payspoa.conf no longer has an outcome_socket line");
}

static void send_line(const char *line, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	ASSERT(fd >= 0);
	memcpy(sa.sun_path, sock, strlen(sock));
	if (sendto(fd, line, len, 0, (struct sockaddr *)&sa, sizeof(sa)) != (ssize_t)len)
		TEST_FAIL_("sendto %s failed", sock);
	close(fd);
}

/* pay-response for decision `decision` on backend `backend`, status 200, as HAProxy
 * sends it; returns once the ACK came (the outcome is observed then). */
static void pay_response(struct sc_conn *c, uint64_t sid, const char *decision, const char *backend)
{
	uint8_t buf[1024];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, sid, 1);
	struct spop_frame f;
	size_t n;

	spop_put_str(&w, "pay-response", 12);
	spop_put_u8(&w, 4);
	sc_put_arg_str(&w, "decision", decision);
	sc_put_arg_str(&w, "backend", backend);
	spop_put_str(&w, "status", 6);
	spop_put_data_int(&w, 200);
	spop_put_str(&w, "latency_ms", 10);
	spop_put_data_int(&w, 90);
	n = spop_frame_end(&w, start, UINT32_MAX);
	ASSERT(n > 0);
	ASSERT_EQ(sc_send_all(c->fd, buf, n, 2000), 0);
	ASSERT_EQ(sc_read_frame(c, &f, 5000), SC_FRAME);
	ASSERT_EQ(f.type, SPOP_FRM_ACK);
}

static void line_for(char *out, size_t size, const char *decision, const char *backend)
{
	snprintf(out, size, "{\"decision\":\"%s\",\"backend\":\"%s\",\"status\":\"200\",\"latency_ms\":\"90\","
	         "\"term\":\"--\",\"should_retry\":\"-\",\"rl_reason\":\"-\",\"err_type\":\"-\",\"err_code\":\"-\","
	         "\"decline\":\"-\",\"object\":\"-\",\"idem\":\"-\",\"account\":\"-\"}\n", decision, backend);
}

TEST(outcome_socket_lines)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a1, a2;
	struct stat sb;
	static char id[32], idem[65], dec1[64], dec2[64], be1[64], be2[64], line[4096];
	static const char garbage[] = "payspoa says hello";
	static const char cut[] = "{\"decision\":\"-\",\"backend\":\"stripe_us\",\"status\":\"5";

	make_conf();
	pp_start(&d, conf, NULL, 1, 0);
	ASSERT_EQ(lstat(sock, &sb), 0);
	ASSERT(S_ISSOCK(sb.st_mode));
	ASSERT_EQ(sb.st_mode & 0777, 0660);
	ASSERT(pp_log_wait(&d, "\"event\":\"outcome_socket\"", 5000));

	c = pp_hello(d.addr);
	sc_payreq_sample(&r, 1, id, idem);
	pp_decide(c, &r, 1, &a1);
	sc_payreq_sample(&r, 2, id, idem);
	pp_decide(c, &r, 3, &a2);
	ASSERT(sc_ack_str(&a1, "decision") && sc_ack_str(&a2, "decision"));
	snprintf(dec1, sizeof(dec1), "%s", sc_ack_str(&a1, "decision"));
	snprintf(dec2, sizeof(dec2), "%s", sc_ack_str(&a2, "decision"));
	snprintf(be1, sizeof(be1), "%s", sc_ack_str(&a1, "backend"));
	snprintf(be2, sizeof(be2), "%s", sc_ack_str(&a2, "backend"));

	/* decision 1: pay-response first, then its log line (skipped: learned once) */
	pay_response(c, 5, dec1, be1);
	line_for(line, sizeof(line), dec1, be1);
	send_line(line, strlen(line));
	/* bad input: counted, never fatal */
	send_line(garbage, sizeof(garbage) - 1);
	send_line(cut, sizeof(cut) - 1);
	memset(line, 'x', sizeof(line));
	line[0] = '{';
	send_line(line, 3000); /* longer than LOGLINE_MAX */
	line_for(line, sizeof(line), "not-a-decision", be1);
	send_line(line, strlen(line));
	/* decision 2: the log line alone */
	line_for(line, sizeof(line), dec2, be2);
	send_line(line, strlen(line));

	/* still serving after all that */
	sc_payreq_sample(&r, 3, id, idem);
	pp_decide(c, &r, 7, &a1);
	ASSERT_STREQ(sc_ack_str(&a1, "verdict"), "allow");
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
	/* 6 lines: 1 malformed, 2 truncated; 4 outcomes observed (1 by pay-response, 3 by
	 * lines), of which 1 skipped as already learned and 1 with a bad decision id */
	if (!pp_log_has(&d, "\"log_lines\":\"6\",\"log_malformed\":\"1\",\"log_truncated\":\"2\"") ||
	    !pp_log_has(&d, "\"outcomes\":\"4\",\"outcomes_dup\":\"1\",\"outcomes_bad\":\"1\""))
		TEST_FAIL_("unexpected totals (see the stopped line in %s)", d.log);
	ASSERT(pp_log_has(&d, "\"responses\":\"1\""));
	/* the socket is removed on exit */
	ASSERT(lstat(sock, &sb) < 0);
}

/* The two channels racing: each of 400 decisions is reported by pay-response (on a
 * worker) and by its log line (on the reader) at nearly the same moment, in no set
 * order; every 4th decision also gets a second log line. Exactly one report per extra is
 * skipped, whichever thread came first: 400 + 100 duplicates, 900 observed. Under
 * ThreadSanitizer (make tsan) this is the reader thread's race test. */
TEST(channels_race_learned_once)
{
	enum { N = 400 };
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	static char id[32], idem[65], dec[64], be[64], line[1024], want[128];
	unsigned i;

	make_conf();
	pp_start(&d, conf, NULL, 2, 0);
	ASSERT(pp_log_wait(&d, "\"event\":\"outcome_socket\"", 5000));
	c = pp_hello(d.addr);
	for (i = 0; i < N; i++) {
		sc_payreq_sample(&r, i + 1, id, idem);
		r.currency = i % 2 ? "eur" : "usd";
		pp_decide(c, &r, 2 * i + 1, &a);
		ASSERT(sc_ack_str(&a, "decision") != NULL);
		snprintf(dec, sizeof(dec), "%s", sc_ack_str(&a, "decision"));
		snprintf(be, sizeof(be), "%s", sc_ack_str(&a, "backend"));
		line_for(line, sizeof(line), dec, be);
		send_line(line, strlen(line));
		pay_response(c, 2 * i + 2, dec, be);
		if (i % 4 == 0)
			send_line(line, strlen(line));
	}
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 10000), 0);
	snprintf(want, sizeof(want), "\"outcomes\":\"%u\",\"outcomes_dup\":\"%u\",\"outcomes_bad\":\"0\"",
	         2 * N + N / 4, N + N / 4);
	if (!pp_log_has(&d, want))
		TEST_FAIL_("no %s in the stopped line (see %s)", want, d.log);
}

/* Regression: a SIGTERM while HAProxy goes on logging (it does: only our workers stop).
 * The reader naps between drains for as long as lines keep coming, and saw the stop only
 * when it went back to poll, which a steady stream never let it do: the daemon never
 * exited. Three children send a line every 20 µs each for up to 30 s (a stream without a
 * 2-ms gap, most of the time on this machine); the daemon must exit. */
TEST(sigterm_while_lines_keep_coming)
{
	enum { SENDERS = 3 };
	static struct pp_daemon d; /* pp_cleanup reads it at exit, after a failed case too */
	pid_t sender[SENDERS];
	static const char junk[] = "not an outcome line";

	make_conf();
	pp_start(&d, conf, NULL, 1, 0);
	ASSERT(pp_log_wait(&d, "\"event\":\"outcome_socket\"", 5000));
	for (int k = 0; k < SENDERS; k++) {
		sender[k] = fork();
		ASSERT(sender[k] >= 0);
		if (sender[k] == 0) { /* nothing of the test library here: it is the parent's */
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);

			memcpy(sa.sun_path, sock, strlen(sock));
			for (int i = 0; fd >= 0 && i < 1500000; i++) {
				(void)sendto(fd, junk, sizeof(junk) - 1, 0, (struct sockaddr *)&sa, sizeof(sa));
				usleep(20);
			}
			_exit(0);
		}
	}
	usleep(300 * 1000); /* the reader is in its drain-and-nap loop by now */
	if (pp_stop(&d, SIGTERM, 10000) != 0)
		TEST_FAIL_("payspoa did not exit within 10 s of SIGTERM while lines kept coming (%s)", d.log);
	for (int k = 0; k < SENDERS; k++) {
		kill(sender[k], SIGKILL);
		waitpid(sender[k], NULL, 0);
	}
}

int main(void)
{
	RUN(outcome_socket_lines);
	RUN(channels_race_learned_once);
	RUN(sigterm_while_lines_keep_coming);
	return test_summary();
}
