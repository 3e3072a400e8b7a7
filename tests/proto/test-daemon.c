/* test-daemon: the daemon as an operator meets it: the command line (-c, -V, usage),
 * listeners (IPv6), idle timeout, running out of descriptors (EMFILE), and SIGHUP
 * reloads, good and bad. Each case starts its own ./payspoa ($PAYSPOA_BIN). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "test.h"

/* A copy of conf/ with `from` replaced by `to` in payspoa.conf (NULL: unchanged). */
static const char *conf_variant(const char *from, const char *to)
{
	return pp_conf_variant(from ? 1 : 0, &from, &to);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT(f);
	fputs(text, f);
	fclose(f);
}

static void sample(struct sc_payreq *r, const char *currency)
{
	static char id[32], idem[65];

	sc_payreq_sample(r, 1, id, idem);
	r->currency = currency;
	r->card_country = "US";
}

TEST(check_valid_policy)
{
	char out[4096];

	ASSERT_EQ(pp_run(out, sizeof(out), "-c", "-f", "conf/payspoa.conf", NULL), 0);
	ASSERT(strstr(out, "valid"));
}

/* The line (1-based) of conf/payspoa.conf that holds `what`, or 0. */
static int conf_line_of(const char *what)
{
	char line[512];
	FILE *f = fopen("conf/payspoa.conf", "r");
	int n = 0, found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		if (++n && strstr(line, what))
			found = n;
	if (f)
		fclose(f);
	return found;
}

TEST(check_refuses_with_file_line)
{
	const char *path = conf_variant("idle_timeout_ms = 30000;", "idle_timeout_ms = 30000;\n\tbogus_key = 1;");
	char out[4096], want[128];

	ASSERT_EQ(pp_run(out, sizeof(out), "-c", "-f", path, NULL), 1);
	/* The unknown key sits on the line after idle_timeout_ms in the default policy. */
	snprintf(want, sizeof(want), "%s:%d:", path, conf_line_of("idle_timeout_ms") + 1);
	if (!strstr(out, want))
		TEST_FAIL_("expected \"%s\" in: %s", want, out);
	ASSERT_EQ(pp_run(out, sizeof(out), "-c", "-f", "/nonexistent/payspoa.conf", NULL), 1);
	ASSERT(strstr(out, "/nonexistent/payspoa.conf"));
}

TEST(version_and_usage)
{
	char out[4096];

	ASSERT_EQ(pp_run(out, sizeof(out), "-V", NULL), 0);
	ASSERT(strncmp(out, "payspoa ", 8) == 0);
	ASSERT_EQ(pp_run(out, sizeof(out), "-x", NULL), 2);
	ASSERT(strstr(out, "usage"));
	ASSERT_EQ(pp_run(out, sizeof(out), NULL), 2);
}

TEST(start_fails_on_bad_listener)
{
	char out[4096];

	ASSERT_EQ(pp_run(out, sizeof(out), "-f", "conf/payspoa.conf", "-l", "nonsense", NULL), 1);
	ASSERT(strstr(out, "start_failed"));
	ASSERT(strstr(out, "nonsense"));
}

TEST(ipv6_listener)
{
	struct pp_daemon d;
	struct sc_payreq r;
	struct sc_ack a;
	struct sc_conn *c;
	char addr[64];
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	if (fd < 0 || bind(fd, (struct sockaddr *)&s6, sizeof(s6)) < 0)
		TEST_SKIP("no IPv6 loopback on this machine");
	close(fd);
	snprintf(addr, sizeof(addr), "[::1]:%d", pp_free_port());
	pp_start(&d, pp_conf(), addr, 1, 0);
	c = pp_hello(addr);
	sample(&r, "usd");
	pp_decide(c, &r, 7, &a);
	ASSERT_STREQ(sc_ack_str(&a, "backend"), "stripe_us");
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* A connection idle past agent.idle_timeout_ms gets AGENT-DISCONNECT (2, timeout) and
 * is closed; a busy one is not. The busy one speaks every ~100 ms, a tenth of the 1 s
 * timeout, so that a slow or loaded machine cannot make it look idle; 2.5 s leaves the
 * idle one 1.5 s past its timeout. */
TEST(idle_timeout)
{
	const char *conf = conf_variant("idle_timeout_ms = 30000;", "idle_timeout_ms = 1000;");
	struct pp_daemon d;
	struct sc_conn *idle, *busy;
	struct spop_frame f;
	struct spop_str msg;
	struct sc_payreq r;
	struct sc_ack a;
	uint32_t st;
	uint64_t t0;

	pp_start(&d, conf, NULL, 1, 0);
	idle = pp_hello(d.addr);
	busy = pp_hello(d.addr);
	sample(&r, "usd");
	t0 = sc_now_us();
	while (sc_now_us() - t0 < 2500000) {
		pp_decide(busy, &r, 1, &a);
		sc_sleep_ms(100);
	}
	ASSERT_EQ(sc_read_frame(idle, &f, 100), SC_FRAME);
	ASSERT_EQ(f.type, SPOP_FRM_AGENT_DISCONNECT);
	ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &st, &msg), 0);
	ASSERT_EQ(st, SPOP_ST_TIMEOUT);
	ASSERT_EQ(sc_read_frame(idle, &f, 3000), SC_CLOSED);
	pp_decide(busy, &r, 2, &a); /* still served */
	pp_close(idle);
	pp_close(busy);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* With 40 descriptors and 150 connections knocking, accept hits EMFILE: the daemon
 * must neither die nor spin, and must serve again once descriptors are free. */
TEST(emfile_survived)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	char stat0[256] = "", path[64];
	int fds[150], n = 0, i;
	FILE *f;

	pp_start(&d, pp_conf(), NULL, 1, 40);
	for (i = 0; i < 150; i++) {
		fds[n] = sc_connect(d.addr, 1000);
		if (fds[n] >= 0)
			n++;
	}
	ASSERT(pp_log_wait(&d, "accept_emfile", 5000));
	sc_sleep_ms(500);
	/* Pending connections are shed in one go, then accepting pauses: a handful of
	 * warnings, not one per connection (nor a flood: 150 would mean a spin). */
	ASSERT_LE(pp_log_count(&d, "accept_emfile"), 20);
	ASSERT(pp_alive(&d));
	/* Not spinning: over one second the daemon uses well under a second of CPU. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d.pid);
	f = fopen(path, "r");
	ASSERT(f && fgets(stat0, sizeof(stat0), f));
	fclose(f);
	{
		char stat1[256] = "";
		unsigned long u0, s0, u1, s1;
		const char *p0 = strrchr(stat0, ')'), *p1;

		sc_sleep_ms(1000);
		f = fopen(path, "r");
		ASSERT(f && fgets(stat1, sizeof(stat1), f));
		fclose(f);
		p1 = strrchr(stat1, ')');
		ASSERT(p0 && p1);
		ASSERT_EQ(sscanf(p0 + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &u0, &s0), 2);
		ASSERT_EQ(sscanf(p1 + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &u1, &s1), 2);
		ASSERT_LE((u1 + s1) - (u0 + s0), (unsigned long)sysconf(_SC_CLK_TCK) / 2);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	sc_sleep_ms(1500); /* the daemon notices the closes and its accept pause ends */
	c = pp_hello(d.addr);
	sample(&r, "usd");
	pp_decide(c, &r, 3, &a);
	ASSERT_STREQ(sc_ack_str(&a, "verdict"), "allow");
	ASSERT(pp_alive(&d));
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* Connects to addr and sends a HAPROXY-HELLO without waiting for the answer. */
static void hello_sent(const char *addr, struct sc_conn *c)
{
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	size_t n = spop_haproxy_hello(&w, "2.0", 16380, "pipelining", false, "test");
	int fd = sc_connect(addr, 1000);

	ASSERT(fd >= 0);
	sc_conn_init(c, fd);
	ASSERT_EQ(sc_send_all(fd, buf, n, 1000), 0);
}

/* At max_connections, a new connection is held (accepting paused) until a slot frees,
 * and a slot freed while the control thread pauses must seat it (a lost wake-up left it
 * waiting until refused). 2 slots: A and B are served; C knocks and sends its HELLO while
 * A closes at once; C must get its AGENT-HELLO. The race is narrow: 250 rounds, bounded
 * in time; the first round waits before closing A, so C surely is held. */
TEST(slot_freed_while_pausing_resumes_accept)
{
	const char *conf = conf_variant("max_connections = 512;", "max_connections = 2;");
	struct pp_daemon d;
	uint64_t end;
	int round;

	pp_start(&d, conf, NULL, 2, 0);
	end = sc_now_us() + 25 * 1000000ull;
	for (round = 0; round < 250 && sc_now_us() < end; round++) {
		struct sc_conn *a = pp_hello(d.addr), *b = pp_hello(d.addr);
		struct sc_conn cc;
		struct spop_frame f;
		int r;

		hello_sent(d.addr, &cc);
		if (round == 0) /* held, not refused, not answered: no slot yet */
			ASSERT_EQ(sc_read_quiet(&cc, &f, 300), SC_TIMEOUT);
		pp_close(a);
		r = sc_read_frame(&cc, &f, 3000);
		if (r != SC_FRAME || f.type != SPOP_FRM_AGENT_HELLO)
			TEST_FAIL_("round %d: the connection waiting for a slot got no AGENT-HELLO (%s)", round,
			           r == SC_CLOSED ? "refused" : r == SC_TIMEOUT ? "silence" : "bad frame");
		close(cc.fd);
		pp_close(b);
		sc_sleep_ms(2);
	}
	printf("  %d rounds\n", round);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* SIGHUP with a changed file: new connections and old ones see the new policy. */
TEST(reload_applies_new_policy)
{
	const char *conf = conf_variant(NULL, NULL);
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	const struct sc_var *prio;

	pp_start(&d, conf, NULL, 2, 0);
	c = pp_hello(d.addr);
	sample(&r, "usd");
	pp_decide(c, &r, 1, &a);
	prio = sc_ack_var(&a, "prio");
	ASSERT(prio);
	ASSERT_EQ(prio->val.v.i, -100); /* checkout */
	conf = conf_variant("name = \"checkout\";   priority = -100;", "name = \"checkout\";   priority = -777;");
	kill(d.pid, SIGHUP);
	ASSERT(pp_log_wait(&d, "\"reloaded\"", 5000));
	pp_decide(c, &r, 2, &a);
	prio = sc_ack_var(&a, "prio");
	ASSERT(prio);
	ASSERT_EQ(prio->val.v.i, -777);
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
}

/* SIGHUP with a broken file: refused with file:line, the old policy keeps serving. */
TEST(reload_bad_file_keeps_old_policy)
{
	const char *conf = conf_variant(NULL, NULL);
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	char want[128];

	pp_start(&d, conf, NULL, 2, 0);
	c = pp_hello(d.addr);
	sample(&r, "usd");
	write_file(conf, "agent = {\n  listen = [ \"127.0.0.1:1\" ];\n  workers = \"many\";\n};\n");
	kill(d.pid, SIGHUP);
	ASSERT(pp_log_wait(&d, "reload_failed", 5000));
	snprintf(want, sizeof(want), "%s:3:", conf);
	if (!pp_log_has(&d, want))
		TEST_FAIL_("reload_failed without \"%s\" (see %s)", want, d.log);
	pp_decide(c, &r, 1, &a);
	ASSERT_STREQ(sc_ack_str(&a, "backend"), "stripe_us");
	ASSERT_EQ(sc_ack_var(&a, "prio")->val.v.i, -100);
	pp_close(c);
	/* A new connection is served too. */
	c = pp_hello(d.addr);
	pp_decide(c, &r, 2, &a);
	ASSERT_STREQ(sc_ack_str(&a, "verdict"), "allow");
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
	/* The run's totals close the log: pp_start's probe and two clients, two decisions,
	 * no errors. */
	ASSERT(pp_log_has(&d, "\"event\":\"stopped\",\"connections\":\"3\",\"requests\":\"2\""));
	ASSERT(pp_log_has(&d, "\"protocol_errors\":\"0\""));
}

/* Peers that never complete a HELLO or a frame held slots for as long as the attack
 * lasted (600 silent sockets locked HAProxy's health check out for 31 s; one byte every
 * 5 s, indefinitely). With 64 slots: a trickler that completed its HELLO and sends a
 * NOTIFY a byte at a time, then 600 silent sockets; a real SPOP client must still get
 * its AGENT-HELLO (within 20 s; about 2 s here) and decisions, the trickler is
 * closed by the frame deadline, the silent sockets by reclaiming and the HELLO deadline. */
TEST(silent_peers_lock_out_haproxy)
{
	static const char *const from[] = { "max_connections = 512;", "idle_timeout_ms = 30000;" };
	static const char *const to[] = { "max_connections = 64;",
		"idle_timeout_ms = 30000;\n\thello_timeout_ms = 1000;\n\tframe_timeout_ms = 2000;" };
	const char *conf = pp_conf_variant(2, from, to);
	struct rlimit rl;
	struct pp_daemon d;
	struct sc_conn *trick, *c;
	struct sc_payreq r;
	struct sc_ack a;
	struct spop_frame f;
	uint8_t notify[1024];
	size_t nlen, sent = 0;
	int silent[600], n = 0, rc = SC_TIMEOUT;
	uint64_t t0, deadline;

	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	pp_start(&d, conf, NULL, 2, 0);
	trick = pp_hello(d.addr);
	nlen = sc_notify_sample(notify, sizeof(notify), 1, 1, 1);
	ASSERT(nlen > 8);
	ASSERT_EQ(sc_send_all(trick->fd, notify, 1, 1000), 0);
	sent = 1;
	for (n = 0; n < 600; n++) {
		silent[n] = sc_connect(d.addr, 2000);
		ASSERT(silent[n] >= 0); /* the backlog (1024) takes them all */
	}
	/* a generous bound (a loaded machine; the sanitizers): without the deadlines and the
	 * reclaiming, no slot ever frees while the silent sockets stay open */
	t0 = sc_now_us();
	c = calloc(1, sizeof(*c));
	ASSERT(c != NULL);
	hello_sent(d.addr, c);
	rc = sc_read_frame(c, &f, 20000);
	if (rc != SC_FRAME || f.type != SPOP_FRM_AGENT_HELLO)
		TEST_FAIL_("no AGENT-HELLO within 20 s behind 600 silent sockets (%s)",
		           rc == SC_CLOSED ? "refused" : rc == SC_TIMEOUT ? "silence" : "bad frame");
	printf("  AGENT-HELLO after %.2f s behind 600 silent sockets\n", (double)(sc_now_us() - t0) / 1e6);
	rc = SC_TIMEOUT;
	sample(&r, "usd");
	pp_decide(c, &r, 3, &a);
	ASSERT_STREQ(sc_ack_str(&a, "verdict"), "allow");
	/* the trickler: a byte every 500 ms never finishes its frame within 2 s; closed */
	deadline = sc_now_us() + 10 * 1000000ull;
	while (sc_now_us() < deadline && sent < nlen) {
		rc = sc_read_frame(trick, &f, 500);
		if (rc == SC_CLOSED)
			break;
		if (sc_send_all(trick->fd, notify + sent, 1, 500) < 0) {
			rc = SC_CLOSED;
			break;
		}
		sent++;
	}
	ASSERT_EQ(rc, SC_CLOSED);
	ASSERT(sent < nlen);
	/* the client that speaks SPOP is still served */
	pp_decide(c, &r, 5, &a);
	ASSERT_STREQ(sc_ack_str(&a, "verdict"), "allow");
	pp_close(c);
	close(trick->fd);
	free(trick);
	for (int i = 0; i < n; i++)
		close(silent[i]);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 5000), 0);
	ASSERT(pp_log_has(&d, "\"frame_timeouts\":\"1\""));
	ASSERT(!pp_log_has(&d, "\"reclaimed\":\"0\"") || !pp_log_has(&d, "\"hello_timeouts\":\"0\""));
}

int main(int argc, char **argv)
{
	RUN(check_valid_policy);
	RUN(check_refuses_with_file_line);
	RUN(version_and_usage);
	RUN(start_fails_on_bad_listener);
	RUN(ipv6_listener);
	RUN(idle_timeout);
	RUN(emfile_survived);
	RUN(slot_freed_while_pausing_resumes_accept);
	RUN(silent_peers_lock_out_haproxy);
	RUN(reload_applies_new_policy);
	RUN(reload_bad_file_keeps_old_policy);
	return test_summary();
}
