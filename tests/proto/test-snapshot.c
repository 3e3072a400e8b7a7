/* test-snapshot: snapshots through the real daemon. SIGTERM writes one after the drain;
 * a restart loads it before the first decision (the first request for a pinned key is
 * routed by its pin); SIGUSR1 writes one on demand; SIGKILL while large snapshots are
 * written continuously never harms the previous one (SNAP_KILLS kills: 20 here, 200 in
 * `make test-long`). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_TIMEOUT_S 900
#include "clock.h"
#include "payspoa-proc.h"
#include "policy.h"
#include "snap.h"
#include "spop-client.h"
#include "state.h"
#include "test.h"

static char conf[128], state[128];

/* conf/ copied into a fresh folder; payspoa.conf's agent section gets state_file and
 * state_interval_s, and its idempotency table room for `slots` pins. */
static void setup(double interval_s, unsigned slots)
{
	char agent[256], pinning[64];
	const char *from[] = { "agent = {", "pinning = {" }, *to[] = { agent, pinning };
	const char *path = pp_conf_variant(0, NULL, NULL);

	/* the snapshot beside the copy: a new copy starts without one, and goes at exit */
	snprintf(state, sizeof(state), "%.*s/payspoa.state", (int)(strrchr(path, '/') - path), path);
	snprintf(agent, sizeof(agent), "agent = {\n\tstate_file = \"%s\";\n\tstate_interval_s = %g;", state,
	         interval_s);
	snprintf(pinning, sizeof(pinning), "pinning = {\n\tidem_slots = %u;", slots);
	path = pp_conf_variant(2, from, to);
	snprintf(conf, sizeof(conf), "%s", path);
}

/* The daemon's log must hold `needle` (waiting up to 5 s); else the case fails with the
 * log shown. */
static void expect_log(struct pp_daemon *d, const char *needle)
{
	char cmd[160];

	if (pp_log_wait(d, needle, 5000))
		return;
	snprintf(cmd, sizeof(cmd), "sed 's/^/  log: /' '%s' >&2", d->log);
	if (system(cmd) != 0)
		fprintf(stderr, "  (no log)\n");
	TEST_FAIL_("no %s in the daemon's log", needle);
}

static void gbp(struct sc_payreq *r, unsigned n)
{
	static char id[32], idem[65];

	sc_payreq_sample(r, n, id, idem);
	r->account = NULL;
	r->currency = "gbp";
	r->card_country = "GB";
}

TEST(sigterm_writes_restart_routes_by_pin)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	struct stat sb;
	char backend[64];

	setup(0, 65536);
	pp_start(&d, conf, NULL, 1, 0);
	expect_log(&d, "state_cold_start");
	c = pp_hello(d.addr);
	gbp(&r, 7);
	pp_decide(c, &r, 1, &a);
	ASSERT(sc_ack_str(&a, "backend"));
	snprintf(backend, sizeof(backend), "%s", sc_ack_str(&a, "backend"));
	pp_close(c);
	ASSERT_EQ(stat(state, &sb), -1); /* interval 0: nothing before SIGTERM */
	ASSERT_EQ(pp_stop(&d, SIGTERM, 10000), 0);
	expect_log(&d, "\"snapshot_written\",\"why\":\"SIGTERM\"");
	ASSERT_EQ(stat(state, &sb), 0);
	pp_cleanup();

	pp_start(&d, conf, NULL, 1, 0);
	expect_log(&d, "\"state_loaded\"");
	ASSERT(pp_log_has(&d, "\"pins\":\"1\"") || pp_log_has(&d, "\"pins\":\"2\""));
	c = pp_hello(d.addr);
	/* the very first decision after the restart: the retry follows its pin */
	pp_decide(c, &r, 1, &a);
	ASSERT_STREQ(sc_ack_str(&a, "backend"), backend);
	if (!strstr(sc_ack_str(&a, "reason"), "pin:idem"))
		TEST_FAIL_("first decision after the restart: reason \"%s\", no pin:idem", sc_ack_str(&a, "reason"));
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 10000), 0);
}

TEST(sigusr1_writes_on_demand_and_bad_file_is_a_cold_start)
{
	struct pp_daemon d;
	struct sc_conn *c;
	struct sc_payreq r;
	struct sc_ack a;
	struct stat sb;
	FILE *f;

	setup(0, 65536);
	pp_start(&d, conf, NULL, 1, 0);
	c = pp_hello(d.addr);
	gbp(&r, 9);
	pp_decide(c, &r, 1, &a);
	pp_close(c);
	kill(d.pid, SIGUSR1);
	ASSERT(pp_log_wait(&d, "\"why\":\"SIGUSR1\"", 10000));
	ASSERT_EQ(stat(state, &sb), 0);
	ASSERT_EQ(pp_stop(&d, SIGKILL, 10000) != -1, 1);
	pp_cleanup();
	/* a foreign file where the snapshot should be: a warning and a cold start */
	f = fopen(state, "w");
	ASSERT(f);
	fputs("not a snapshot\n", f);
	fclose(f);
	pp_start(&d, conf, NULL, 1, 0);
	expect_log(&d, "\"state_refused\"");
	ASSERT(pp_log_has(&d, "cold start"));
	c = pp_hello(d.addr);
	pp_decide(c, &r, 1, &a);
	ASSERT(!strstr(sc_ack_str(&a, "reason"), "pin:idem"));
	pp_close(c);
	ASSERT_EQ(pp_stop(&d, SIGTERM, 10000), 0);
}

/* A snapshot of n idempotency pins, written through the product's own encoder from an
 * engine of the same policy on the daemon's clock. */
static void seed_snapshot(unsigned n)
{
	char err[512];
	struct policy *p = pol_load(conf, err, sizeof(err));
	struct pol_engine *e;
	struct pol_state_import im;
	struct pol_state *st;
	struct snap_result res;
	uint64_t now = clock_mono_us();
	unsigned i;

	ASSERT(p);
	e = pol_engine_new(p, 1, err, sizeof(err));
	ASSERT(e);
	pol_state_import_begin(&im, e, now, now, 0, true);
	for (i = 0; i < n; i++) {
		struct pol_pin_rec rec = { POL_PIN_IDEM, i % 2 ? "stripe_eu" : "stripe_us",
		                           i % 2 ? "acct_eu_payspoa" : "acct_us_payspoa",
		                           0x9e3779b97f4a7c15ULL * (i + 1), 60 };

		pol_state_restore_pin(&im, &rec);
	}
	pol_state_import_end(&im);
	ASSERT(im.pins == n);
	st = pol_state_capture(e, now);
	ASSERT(st);
	if (snap_write(st, clock_wall_us(), state, &res, err, sizeof(err)))
		TEST_FAIL_("%s", err);
	ASSERT_EQ(res.pins, n);
	pol_state_free(st);
	pol_engine_free(e);
}

/* The file at `state` loads whole, with n pins. */
static void assert_loads(unsigned n, unsigned kill_no)
{
	char err[512];
	struct policy *p = pol_load(conf, err, sizeof(err));
	struct pol_engine *e;
	struct snap_result res;
	int rc;

	ASSERT(p);
	e = pol_engine_new(p, 1, err, sizeof(err));
	ASSERT(e);
	rc = snap_load(e, state, clock_mono_us(), clock_wall_us(), &res, err, sizeof(err));
	if (rc != 0 || res.im.pins != n)
		TEST_FAIL_("after kill %u: load %d (%s), %llu pins of %u", kill_no, rc, rc ? err : "",
		           (unsigned long long)res.im.pins, n);
	pol_engine_free(e);
}

TEST(sigkill_during_writes_leaves_the_previous_snapshot_whole)
{
	const char *env = getenv("SNAP_KILLS");
	unsigned kills = env ? (unsigned)atoi(env) : 20, n = 120000, k, torn = 0;
	struct pp_daemon d;
	char tmp[160];
	struct stat sb;

	/* a write every 20 ms, each of 120k pins (~1.8 MB, fsync included; the table promises
	 * 1 M pins over the TTL, so a quarter of it, one generation, holds them): the daemon is
	 * writing most of the time, so most kills land inside a write */
	setup(0.02, 1u << 20);
	snprintf(tmp, sizeof(tmp), "%s.tmp", state);
	seed_snapshot(n);
	srand((unsigned)getpid());
	for (k = 0; k < kills; k++) {
		pp_start(&d, conf, NULL, 1, 0);
		if (!pp_log_wait(&d, "\"state_loaded\"", 10000))
			TEST_FAIL_("kill %u: the daemon did not load the snapshot", k);
		/* writing continuously: one write done, then a kill at a random phase */
		if (!pp_log_wait(&d, "\"snapshot_written\"", 10000))
			TEST_FAIL_("kill %u: no snapshot written", k);
		sc_sleep_ms((unsigned)(rand() % 50));
		ASSERT(pp_stop(&d, SIGKILL, 10000) != -1);
		torn += stat(tmp, &sb) == 0; /* a write was cut short */
		pp_cleanup();
		assert_loads(n, k);
	}
	fprintf(stderr, "  %u kills, %u of them during a write (a temp file left behind)\n", kills, torn);
}

int main(void)
{
	RUN(sigterm_writes_restart_routes_by_pin);
	RUN(sigusr1_writes_on_demand_and_bad_file_is_a_cold_start);
	RUN(sigkill_during_writes_leaves_the_previous_snapshot_whole);
	return test_summary();
}
