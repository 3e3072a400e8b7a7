/* test-fleet-claim: fleet.claim through the real daemon and a real redis-server (its own
 * port and folder per case): a keyed first attempt's ACK waits for its claim in Redis;
 * a key the fleet already holds on another account (written to Redis by "another node",
 * not yet published) makes the held ACK name that account's backend and moves the local
 * pin; Redis frozen (SIGSTOP): the ACK goes as decided once fleet.claim_timeout_ms has
 * passed, never before, while the connection's other frames are answered meanwhile; Redis
 * down: ACKs are not held at all. Judged by the ACKs' contents, their order, Redis's keys
 * and the daemon's counters (its fleet_stopped line), and a clean stop with a claim
 * still unanswered; the only clock assertion is a lower
 * bound (an ACK held for its deadline cannot come earlier), which no machine speed breaks.
 * Skipped when redis-server or redis-cli is missing. */
#define TEST_TIMEOUT_S 120

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "test.h"

static pid_t redis_pid = -1;
static int redis_port;
static char redis_dir[64], conf_path[96];

static void redis_cleanup(void)
{
	char cmd[128];

	if (redis_pid > 0) {
		kill(redis_pid, SIGCONT);
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
		redis_pid = -1;
	}
	if (conf_path[0])
		unlink(conf_path);
	if (redis_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", redis_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "  cannot remove %s\n", redis_dir);
	}
}

static bool have(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* redis-cli ARGS: its first output line into out (may be empty). Returns its exit code. */
static int rcli(char *out, size_t len, const char *args)
{
	char cmd[512];
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "timeout 10 redis-cli -h 127.0.0.1 -p %d %s 2>&1", redis_port, args);
	p = popen(cmd, "r");
	ASSERT(p != NULL);
	out[0] = 0;
	if (fgets(out, (int)len, p))
		out[strcspn(out, "\n")] = 0;
	while (fgetc(p) != EOF)
		;
	rc = pclose(p);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void redis_start(void)
{
	char port[16], out[64];
	uint64_t deadline = sc_now_us() + 20 * 1000000ull;

	if (!have("redis-server") || !have("redis-cli"))
		TEST_SKIP("redis-server or redis-cli not installed\n");
	snprintf(redis_dir, sizeof(redis_dir), "/tmp/payspoa-claim-redis-%d", (int)getpid());
	mkdir(redis_dir, 0700);
	atexit(redis_cleanup);
	redis_port = pp_free_port();
	snprintf(port, sizeof(port), "%d", redis_port);
	redis_pid = fork();
	ASSERT(redis_pid >= 0);
	if (redis_pid == 0) {
		int fd = open("/dev/null", 1);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", redis_dir,
		       "--save", "", "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	while (rcli(out, sizeof(out), "PING") != 0 || strcmp(out, "PONG") != 0) {
		ASSERT(sc_now_us() < deadline);
		sc_sleep_ms(20);
	}
}

/* Two USD accounts, pa cheaper (every fresh payment goes there); a fleet on our Redis. */
static const char *conf_write(const char *prefix, int claim_timeout_ms, int timeout_ms)
{
	FILE *f;

	snprintf(conf_path, sizeof(conf_path), "/tmp/payspoa-claim-%d.conf", (int)getpid());
	f = fopen(conf_path, "w");
	ASSERT(f != NULL);
	fprintf(f,
	        SC_POLICY_TWO_USD_ACCOUNTS
	        "pinning = { idem_ttl_s = 60; };\n"
	        "throttle = { account = { rate = 1000000.0; burst = 1000000.0; }; };\n"
	        "fleet = { redis = \"127.0.0.1:%d\"; node = \"t1\"; prefix = \"%s\"; heartbeat_ms = 100;\n"
	        "  timeout_ms = %d; reconnect_max_ms = 100; claim_timeout_ms = %d; };\n",
	        redis_port, prefix, timeout_ms, claim_timeout_ms);
	fclose(f);
	return conf_path;
}

/* Sends a pay-request as stream sid without waiting for its ACK. */
static void send_req(struct sc_conn *c, const char *idem, uint64_t sid)
{
	uint8_t buf[2048];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct sc_payreq r;
	size_t n;

	sc_payreq_usd(&r, idem);
	n = sc_notify_payreq(&w, sid, 1, &r);
	ASSERT(n > 0);
	ASSERT_EQ(sc_send_all(c->fd, buf, n, 5000), 0);
}

/* Reads the next ACK: its stream id, backend and reason. */
static uint64_t read_ack(struct sc_conn *c, int timeout_ms, char backend[64], char reason[128])
{
	struct spop_frame f;
	struct sc_ack a;
	const char *b, *r;

	ASSERT_EQ(sc_read_frame(c, &f, timeout_ms), SC_FRAME);
	ASSERT_EQ(f.type, SPOP_FRM_ACK);
	ASSERT(sc_ack_decode(f.payload, f.len, &a) > 0);
	b = sc_ack_str(&a, "backend");
	r = sc_ack_str(&a, "reason");
	ASSERT(b != NULL);
	snprintf(backend, 64, "%s", b);
	snprintf(reason, 128, "%s", r ? r : "");
	return f.stream_id;
}

/* The counter `name` in the daemon's fleet_stopped line (after pp_stop). */
static long long stopped_stat(const struct pp_daemon *d, const char *name)
{
	char line[8192], needle[96];
	long long v = -1;
	FILE *f = fopen(d->log, "r");

	ASSERT(f != NULL);
	snprintf(needle, sizeof(needle), "\"%s\":\"", name);
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (strstr(line, "\"fleet_stopped\"") && (p = strstr(line, needle)))
			v = atoll(p + strlen(needle));
	}
	fclose(f);
	ASSERT(v >= 0);
	return v;
}

static void start_synced(struct pp_daemon *d, const char *prefix, int claim_timeout_ms, int timeout_ms)
{
	pp_start(d, conf_write(prefix, claim_timeout_ms, timeout_ms), NULL, 1, 0);
	ASSERT(pp_log_wait(d, "fleet_resynced", 20000));
}

/* The claim won: the ACK names the decision's backend and, when it arrives, the fleet
 * holds the key on its account (the claim came first). */
TEST(won_ack_after_claim)
{
	static struct pp_daemon d; /* pp_cleanup reads it at exit */
	struct sc_conn *c;
	char be[64], why[128], keys[256], val[128], cmd[300];

	redis_start();
	start_synced(&d, "cw", 1000, 5000);
	c = pp_hello(d.addr);
	send_req(c, "1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa", 1);
	ASSERT_EQ(read_ack(c, 10000, be, why), 1);
	ASSERT_STREQ(be, "pa");
	ASSERT_EQ(rcli(keys, sizeof(keys), "--raw KEYS 'cw:pin:0:*'"), 0);
	ASSERT(strncmp(keys, "cw:pin:0:", 9) == 0);
	snprintf(cmd, sizeof(cmd), "--raw GET %s", keys);
	ASSERT_EQ(rcli(val, sizeof(val), cmd), 0);
	ASSERT_STREQ(val, "pa acct_a");
	/* a retry is answered from the local pin, nothing held */
	send_req(c, "1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa", 3);
	ASSERT_EQ(read_ack(c, 10000, be, why), 3);
	ASSERT_STREQ(be, "pa");
	ASSERT(strstr(why, "pin:idem") != NULL);
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_sent"), 1);
	ASSERT_EQ(stopped_stat(&d, "claims_won"), 1);
	ASSERT_EQ(stopped_stat(&d, "claims_lost"), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_unconfirmed"), 0);
}

/* Another node claimed the key on acct_b (in Redis, not yet published here): the held
 * ACK names pb, and the retry follows the moved local pin. The key's name is learned
 * from a first daemon under another prefix (the hash does not depend on the prefix). */
TEST(lost_claim_reroutes_to_fleet_account)
{
	static const char idem[] = "2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb2222bbbb";
	static struct pp_daemon d; /* pp_cleanup reads it at exit */
	struct sc_conn *c;
	char be[64], why[128], keys[256], name[256], out[128], cmd[400];

	redis_start();
	start_synced(&d, "disc", 1000, 5000);
	c = pp_hello(d.addr);
	send_req(c, idem, 1);
	ASSERT_EQ(read_ack(c, 10000, be, why), 1);
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	pp_cleanup();
	ASSERT_EQ(rcli(keys, sizeof(keys), "--raw KEYS 'disc:pin:0:*'"), 0);
	ASSERT(strncmp(keys, "disc:pin:0:", 11) == 0);
	snprintf(name, sizeof(name), "%s", keys + 4); /* ":pin:0:<hex>" */

	start_synced(&d, "fl", 1000, 5000);
	snprintf(cmd, sizeof(cmd), "SET fl%s 'pb acct_b' PX 60000", name);
	ASSERT_EQ(rcli(out, sizeof(out), cmd), 0);
	ASSERT_STREQ(out, "OK");
	c = pp_hello(d.addr);
	send_req(c, idem, 1);
	ASSERT_EQ(read_ack(c, 10000, be, why), 1);
	ASSERT_STREQ(be, "pb");
	ASSERT(strstr(why, "pin:fleet") != NULL);
	send_req(c, idem, 3);
	ASSERT_EQ(read_ack(c, 10000, be, why), 3);
	ASSERT_STREQ(be, "pb");
	ASSERT(strstr(why, "pin:idem") != NULL);
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_lost"), 1);
	ASSERT_EQ(stopped_stat(&d, "claims_won"), 0);
}

/* Redis frozen: the keyed ACK is held until claim_timeout_ms (never sooner), then sent
 * as decided; an unkeyed request sent after it on the same connection is answered first. */
TEST(frozen_redis_ack_at_deadline)
{
	static struct pp_daemon d; /* pp_cleanup reads it at exit */
	struct sc_conn *c;
	char be[64], why[128];
	uint64_t t0, held_us;
	enum { TIMEOUT_MS = 300 };

	redis_start();
	start_synced(&d, "fz", TIMEOUT_MS, 60000);
	c = pp_hello(d.addr);
	ASSERT_EQ(kill(redis_pid, SIGSTOP), 0);
	t0 = sc_now_us();
	send_req(c, "3333cccc3333cccc3333cccc3333cccc3333cccc3333cccc3333cccc3333cccc", 1);
	send_req(c, NULL, 3);
	ASSERT_EQ(read_ack(c, 30000, be, why), 3); /* the unkeyed one, not held */
	ASSERT_EQ(read_ack(c, 30000, be, why), 1);
	held_us = sc_now_us() - t0;
	ASSERT_STREQ(be, "pa");
	ASSERT_GE(held_us, TIMEOUT_MS * 1000);
	pp_close(c);
	/* stopped with the claim still unanswered: the close answers it, nobody to wake */
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT_EQ(kill(redis_pid, SIGCONT), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_sent"), 1);
	ASSERT_EQ(stopped_stat(&d, "claims_unconfirmed"), 1);
	ASSERT_GE(stopped_stat(&d, "claim_wait_p99_us"), TIMEOUT_MS * 1000);
}

/* Redis down: nothing is held (claims_skipped), every keyed request is answered. */
TEST(redis_down_no_hold)
{
	static struct pp_daemon d; /* pp_cleanup reads it at exit */
	struct sc_conn *c;
	char be[64], why[128], idem[65];

	redis_start();
	start_synced(&d, "dn", 1000, 5000);
	ASSERT_EQ(kill(redis_pid, SIGKILL), 0);
	waitpid(redis_pid, NULL, 0);
	redis_pid = -1;
	ASSERT(pp_log_wait(&d, "fleet_redis_down", 20000));
	c = pp_hello(d.addr);
	for (unsigned i = 0; i < 20; i++) {
		snprintf(idem, sizeof(idem), "%064x", 0x4444u + i);
		send_req(c, idem, 1 + 2 * i);
		ASSERT_EQ(read_ack(c, 10000, be, why), 1 + 2 * i);
		ASSERT_STREQ(be, "pa");
	}
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_skipped"), 20);
	ASSERT_EQ(stopped_stat(&d, "claims_sent"), 0);
	ASSERT_EQ(stopped_stat(&d, "claims_unconfirmed"), 0);
}

int main(void)
{
	RUN(won_ack_after_claim);
	RUN(lost_claim_reroutes_to_fleet_account);
	RUN(frozen_redis_ack_at_deadline);
	RUN(redis_down_no_hold);
	return test_summary();
}
