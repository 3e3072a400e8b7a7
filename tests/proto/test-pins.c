/* test-pins: idempotency pins through the real daemon (payspoa -w 2, SPOP on loopback):
 * simultaneous identical pay-requests on two connections never get two accounts; a
 * flood of distinct keys at the highest rate loopback allows keeps every pin at the
 * default size (a sample of earlier keys retried routes to its first account), and a
 * deliberately small table counts its evictions, warns, and reports them when stopping.
 * PAYSPOA_FLOOD_KEYS sets the flood (default 50 000; `make test-long`: 1 000 000). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "test.h"

static char conf_path[64];

static void conf_cleanup(void)
{
	if (conf_path[0])
		unlink(conf_path);
}

/* Two USD accounts, pa cheaper. pa_rate/pa_burst: pa's budget (what does not fit spills
 * to pb, whose budget, the most a policy may set, admits any flood of up to 1 M keys
 * however fast it comes: nothing here depends on the machine's speed); idem_slots 0:
 * the default size. */
static const char *conf_write(double pa_rate, double pa_burst, unsigned idem_slots)
{
	FILE *f;

	snprintf(conf_path, sizeof(conf_path), "/tmp/payspoa-pins-%d.conf", (int)getpid());
	atexit(conf_cleanup);
	f = fopen(conf_path, "w");
	ASSERT(f != NULL);
	fprintf(f,
	        SC_POLICY_TWO_USD_ACCOUNTS
	        "pinning = { idem_ttl_s = 60; idem_slots = %u; };\n"
	        "throttle = { account = { rate = 1000000.0; burst = 1000000.0; };\n"
	        "  accounts = ( { account = \"acct_a\"; rate = %g; burst = %g; } ); };\n",
	        idem_slots, pa_rate, pa_burst);
	fclose(f);
	return conf_path;
}

static void key(char out[65], unsigned run, unsigned n)
{
	snprintf(out, 65, "%08x%056x", run, n);
}

/* Sends n NOTIFYs (stream ids sid0..) in one write, then reads their ACKs in order:
 * backend[i] gets the first letter after 'p' of each backend ('a'/'b'), pinned[i] whether
 * the reason says pin:idem. */
static void batch(struct sc_conn *c, const struct sc_payreq *r, unsigned n, uint64_t sid0, char *backend,
                  bool *pinned)
{
	static uint8_t buf[256 * 512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	struct sc_ack a;
	size_t len = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		size_t k;

		w = spop_wbuf_init(buf + len, sizeof(buf) - len);
		k = sc_notify_payreq(&w, sid0 + i, 1, &r[i]);
		ASSERT(k > 0);
		len += k;
	}
	ASSERT_EQ(sc_send_all(c->fd, buf, len, 5000), 0);
	for (i = 0; i < n; i++) {
		const char *b, *reason;

		ASSERT_EQ(sc_read_frame(c, &f, 10000), SC_FRAME);
		ASSERT_EQ(f.type, SPOP_FRM_ACK);
		ASSERT_EQ(f.stream_id, sid0 + i);
		ASSERT(sc_ack_decode(f.payload, f.len, &a) > 0);
		b = sc_ack_str(&a, "backend");
		reason = sc_ack_str(&a, "reason");
		ASSERT(b != NULL && b[0] == 'p');
		/* a retry (pinned != NULL) may find its pinned account over budget (pa's burst is
		 * 50, and retries come as fast as the machine sends them): refused on that
		 * account, never moved, which is what the callers check */
		if (strcmp(sc_ack_str(&a, "verdict"), "allow") &&
		    !(pinned && reason && strstr(reason, "pin:idem") && strstr(reason, "budget:")))
			TEST_FAIL_("request %u of %u (stream %llu): %s, reason %s", i, n, (unsigned long long)(sid0 + i),
			           sc_ack_str(&a, "verdict"), reason ? reason : "-");
		backend[i] = b[1];
		if (pinned)
			pinned[i] = reason && strstr(reason, "pin:idem");
	}
}

/* 1 000 pairs of identical requests, one on each connection (one per worker), sent
 * back to back. acct_a takes one request per pair (200/s, burst 1, a pair every 5 ms):
 * without an atomic claim the two halves of a pair land on pa and pb. */
TEST(simultaneous_pairs_one_account)
{
	struct pp_daemon d;
	struct sc_conn *c1, *c2;
	struct sc_payreq r;
	char k[65], b1, b2;
	unsigned i, split = 0, followed = 0, onpa = 0;
	bool p1, p2;

	pp_start(&d, conf_write(200, 1, 0), NULL, 2, 0);
	c1 = pp_hello(d.addr);
	c2 = pp_hello(d.addr);
	for (i = 0; i < 1000; i++) {
		uint8_t buf[1024];
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		struct spop_frame f;
		struct sc_ack a;
		size_t n;

		key(k, 1, i);
		sc_payreq_usd(&r, k);
		n = sc_notify_payreq(&w, i + 1, 1, &r);
		ASSERT(n > 0);
		ASSERT_EQ(sc_send_all(c1->fd, buf, n, 2000), 0);
		ASSERT_EQ(sc_send_all(c2->fd, buf, n, 2000), 0);
		ASSERT_EQ(sc_read_frame(c1, &f, 5000), SC_FRAME);
		ASSERT(sc_ack_decode(f.payload, f.len, &a) > 0);
		b1 = sc_ack_str(&a, "backend")[1];
		p1 = sc_ack_str(&a, "reason") && strstr(sc_ack_str(&a, "reason"), "pin:idem");
		ASSERT_EQ(sc_read_frame(c2, &f, 5000), SC_FRAME);
		ASSERT(sc_ack_decode(f.payload, f.len, &a) > 0);
		b2 = sc_ack_str(&a, "backend")[1];
		p2 = sc_ack_str(&a, "reason") && strstr(sc_ack_str(&a, "reason"), "pin:idem");
		split += b1 != b2;
		followed += p1 || p2;
		onpa += b1 == 'a';
		sc_sleep_ms(5);
	}
	fprintf(stderr, "  1000 pairs: %u split, %u answered by a pin, %u on pa\n", split, followed, onpa);
	ASSERT_EQ(split, 0);
	pp_close(c1);
	pp_close(c2);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 10000), 0);
	pp_cleanup();
}

static unsigned flood_keys(void)
{
	const char *s = getenv("PAYSPOA_FLOOD_KEYS"), *bin = pp_bin();

	if (s && atoi(s) > 0)
		return (unsigned)atoi(s);
	return strstr(bin, "tsan") || strstr(bin, "asan") ? 10000 : 50000;
}

#define WINDOW 128

/* Sends `keys` distinct keys, WINDOW in flight per connection; returns each key's
 * backend letter in first[] (malloc'd). */
static char *flood(struct sc_conn **c, unsigned run, unsigned keys)
{
	static struct sc_payreq r[WINDOW];
	static char k[WINDOW][65];
	char *first = malloc(keys);
	unsigned i, j, n;
	uint64_t t0 = sc_now_us();

	ASSERT(first != NULL);
	for (i = 0; i < keys; i += n) {
		n = keys - i < WINDOW ? keys - i : WINDOW;
		for (j = 0; j < n; j++) {
			key(k[j], run, i + j);
			sc_payreq_usd(&r[j], k[j]);
		}
		batch(c[(i / WINDOW) & 1], r, n, i + 1, first + i, NULL);
	}
	fprintf(stderr, "  %u keyed requests in %.2f s\n", keys, (double)(sc_now_us() - t0) / 1e6);
	return first;
}

static size_t count_b(const char *first, unsigned keys)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < keys; i++)
		n += first[i] == 'b';
	return n;
}

/* Every 97th key again: it must reach its first account, from its pin. */
static unsigned retry_sample(struct sc_conn *c, unsigned run, unsigned keys, const char *first, unsigned *moved)
{
	static struct sc_payreq r[WINDOW];
	static char k[WINDOW][65];
	char got[WINDOW];
	bool pinned[WINDOW];
	unsigned i, j, n = 0, unpinned = 0, at[WINDOW];

	*moved = 0;
	for (i = 0; i < keys; i += 97) {
		key(k[n], run, i);
		sc_payreq_usd(&r[n], k[n]);
		at[n++] = i;
		if (n == WINDOW || i + 97 >= keys) {
			batch(c, r, n, 1u << 30 | i, got, pinned);
			for (j = 0; j < n; j++) {
				unpinned += !pinned[j];
				*moved += got[j] != first[at[j]];
			}
			n = 0;
		}
	}
	return unpinned;
}

/* acct_a's budget (20 000/s, burst 50) takes part of the flood, pb the rest; a retry
 * without its pin would go to pa (cheaper, its budget idle again). */
TEST(flood_keeps_every_pin_at_default_size)
{
	struct pp_daemon d;
	struct sc_conn *c[2];
	unsigned keys = flood_keys(), moved, unpinned;
	char *first;

	pp_start(&d, conf_write(20000, 50, 0), NULL, 2, 0);
	c[0] = pp_hello(d.addr);
	c[1] = pp_hello(d.addr);
	first = flood(c, 2, keys);
	sc_sleep_ms(1000); /* pa's budget refills */
	unpinned = retry_sample(c[0], 2, keys, first, &moved);
	fprintf(stderr, "  retries: %u moved, %u without pin:idem; first attempts on pb: %zu of %u\n", moved,
	        unpinned, count_b(first, keys), keys);
	ASSERT_EQ(moved, 0);
	ASSERT_EQ(unpinned, 0);
	free(first);
	pp_close(c[0]);
	pp_close(c[1]);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT(pp_log_has(&d, "\"pins_evicted\":\"0\""));
	ASSERT(!pp_log_has(&d, "\"event\":\"pins_evicted\""));
	pp_cleanup();
}

/* A table of 2 000 pins against the flood: the oldest generations go early, counted. */
TEST(flood_small_table_counts_evictions)
{
	struct pp_daemon d;
	struct sc_conn *c[2];
	unsigned keys = 2000, round;

	pp_start(&d, conf_write(400000, 400000, 2000), NULL, 2, 0);
	c[0] = pp_hello(d.addr);
	c[1] = pp_hello(d.addr);
	/* each tick (50 ms) starts at most one generation, the sixth evicts the first */
	for (round = 0; round < 40 && !pp_log_has(&d, "\"event\":\"pins_evicted\""); round++) {
		free(flood(c, 3 + round, keys));
		sc_sleep_ms(60);
	}
	ASSERT(pp_log_wait(&d, "\"event\":\"pins_evicted\"", 2000));
	ASSERT(pp_log_has(&d, "\"level\":\"warning\",\"event\":\"pins_evicted\"") ||
	       pp_log_has(&d, "\"event\":\"pins_evicted\",\"table\":\"idem\""));
	pp_close(c[0]);
	pp_close(c[1]);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 20000), 0);
	ASSERT(pp_log_has(&d, "\"event\":\"stopped\""));
	ASSERT(!pp_log_has(&d, "\"pins_evicted\":\"0\""));
	pp_cleanup();
}

/* `payspoa -c` says what the pin tables promise, and the shorter promise of a small one. */
TEST(check_prints_the_guarantee)
{
	char out[4096];

	ASSERT_EQ(pp_run(out, sizeof(out), "-c", "-f", conf_write(20000, 50, 0), NULL), 0);
	ASSERT(strstr(out, "valid") != NULL);
	ASSERT(strstr(out, "idempotency pins are kept 1 min up to 1020000 new keys/s (what the budgets admit)") != NULL);
	ASSERT_EQ(pp_run(out, sizeof(out), "-c", "-f", conf_write(20000, 50, 6000000), NULL), 0);
	if (!strstr(out, "idempotency pins are kept 1 min up to 100000 req/s of keyed requests; "
	                 "at the budgets' 1020000 req/s, for 5.88 s"))
		TEST_FAIL_("payspoa -c said: %s", out);
}

int main(void)
{
	RUN(check_prints_the_guarantee);
	RUN(simultaneous_pairs_one_account);
	RUN(flood_keeps_every_pin_at_default_size);
	RUN(flood_small_table_counts_evictions);
	return test_summary();
}
