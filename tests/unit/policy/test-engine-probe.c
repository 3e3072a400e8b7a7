/* test-engine-probe.c: active probe results through the engine (pol_engine_probe_result),
 * as tables of (time, event) -> breaker state and routing: failing probes alone open a
 * breaker and payments go elsewhere, healthy probes close it after its open time, and the
 * loader's probe and webhook settings (accepted, defaults, each error with file:line). */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "policy-t.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL
#define MS 1000ULL

static char err[512];

#define CLASSES \
	"classes = ( { name = \"checkout\"; explore = 0.0; } );\n" \
	"classify = { default = \"checkout\"; };\n"
#define BASE POL_TEST_TWO_USD_ACCOUNTS CLASSES \
	"breaker = { consecutive = 3; open_s = 1.0; jitter = 0.0; probes = 2; };\n"

static struct pay_verdict decide(struct pol_engine *e, uint64_t now)
{
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;

	pol_decide(e, 0, &rq, now, &v);
	return v;
}

/* Three failed probes of pa (no payment ever reached it) open its breaker; payments go to
 * pb with the reason breaker:pa; once open_s has passed, two healthy probes make the
 * half-open batch and close it, and payments come back. */
TEST(probes_open_and_close_the_breaker)
{
	struct pol_engine *e = pol_test_engine(BASE, 1);
	uint64_t t = 10 * SEC;
	struct pay_verdict v;
	int i;

	pol_tick(e, t);
	v = decide(e, t);
	ASSERT_STREQ(v.backend, "pa");
	for (i = 0; i < 2; i++)
		ASSERT_EQ(pol_engine_probe_result(e, "pa", false, 3.0, t + (uint64_t)i * 100 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 200 * MS), "closed"); /* 2 in a row: not yet */
	ASSERT_EQ(pol_engine_probe_result(e, "pa", false, 3.0, t + 200 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 200 * MS), "open");
	pol_test_ticks(e, t + 200 * MS, t + 300 * MS);
	v = decide(e, t + 300 * MS);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "breaker:pa"));
	/* healthy probes while open teach nothing that closes it early */
	ASSERT_EQ(pol_engine_probe_result(e, "pa", true, 50.0, t + 500 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 500 * MS), "open");
	pol_test_ticks(e, t + 300 * MS, t + 1300 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 1300 * MS), "half-open");
	ASSERT_EQ(pol_engine_probe_result(e, "pa", true, 50.0, t + 1300 * MS), 0);
	ASSERT_EQ(pol_engine_probe_result(e, "pa", true, 50.0, t + 1400 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 1400 * MS), "closed");
	pol_test_ticks(e, t + 1300 * MS, t + 1500 * MS);
	v = decide(e, t + 1500 * MS);
	ASSERT_STREQ(v.backend, "pa");
	pol_engine_free(e);
}

/* A failed probe during the half-open batch reopens it, for twice as long. */
TEST(failed_probe_reopens)
{
	struct pol_engine *e = pol_test_engine(BASE, 1);
	uint64_t t = 10 * SEC;
	struct pol_learn_info li;
	int i;

	for (i = 0; i < 3; i++)
		pol_engine_probe_result(e, "pa", false, -1, t);
	pol_test_ticks(e, t, t + 1100 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 1100 * MS), "half-open");
	pol_engine_probe_result(e, "pa", false, -1, t + 1100 * MS);
	pol_engine_probe_result(e, "pa", false, -1, t + 1150 * MS);
	ASSERT_EQ(pol_engine_learn_info(e, 0, t + 1150 * MS, &li), 0);
	ASSERT_STREQ(li.breaker, "open");
	ASSERT_EQ(li.trips, 2);
	pol_engine_free(e);
}

/* Healthy probes never open anything; an unknown backend is refused. */
TEST(healthy_probes_and_unknown_backend)
{
	struct pol_engine *e = pol_test_engine(BASE, 1);
	uint64_t t = 10 * SEC;
	int i;

	for (i = 0; i < 100; i++)
		ASSERT_EQ(pol_engine_probe_result(e, "pb", true, 20.0, t + (uint64_t)i * 10 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 1, t + SEC), "closed");
	ASSERT_EQ(pol_engine_probe_result(e, "nope", false, 1.0, t + SEC), -1);
	ASSERT_EQ(pol_engine_probe_result(e, "", false, 1.0, t + SEC), -1);
	pol_engine_free(e);
}

/* A probe answered in time but slower than breaker.slow_ms is a slow call: slow ones at
 * slow_rate open the breaker; the same probes answered quickly do not. */
TEST(slow_probes_are_slow_calls)
{
	static const char pol[] = POL_TEST_TWO_USD_ACCOUNTS CLASSES
		"breaker = { consecutive = 0; failure_rate = 0.5; slow_rate = 0.5; slow_ms = 1000; min_calls = 4;\n"
		"            window_s = 10.0; jitter = 0.0; };\n";
	struct pol_engine *e = pol_test_engine(pol, 1);
	uint64_t t = 10 * SEC;
	int i;

	for (i = 0; i < 6; i++)
		ASSERT_EQ(pol_engine_probe_result(e, "pb", true, 20.0, t + (uint64_t)i * 100 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 1, t + SEC), "closed");
	for (i = 0; i < 6; i++)
		ASSERT_EQ(pol_engine_probe_result(e, "pa", true, 1500.0, t + (uint64_t)i * 100 * MS), 0);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + SEC), "open");
	pol_engine_free(e);
}

TEST(loader_probe_and_webhook_settings)
{
	static const struct { const char *extra; const char *err; } bad[] = {
		{ "webhooks = { urls = [ \"http://127.0.0.1:1/h\" ]; };\n", "test:9: webhooks: 'urls' needs 'secret_file'" },
		{ "webhooks = { urls = [ \"ftp://x/\" ]; secret_env = \"S\"; };\n", "test:9: webhooks.urls 'ftp://x/': expected" },
		{ "webhooks = { urls = [ \"http://a b/\" ]; secret_env = \"S\"; };\n", "test:9: webhooks.urls: a URL may not" },
		{ "webhooks = { secret_env = \"S\"; backoff_s = 10.0; backoff_max_s = 1.0; };\n",
		  "test:9: webhooks: 'backoff_max_s' must be" },
		{ "webhooks = { queue = 0; };\n", "test:9: 'queue' = 0 is out of range" },
		{ "webhooks = { url = \"http://x/\"; };\n", "test:9: unknown key 'url' in webhooks" },
		{ "agent = { user = \"\"; };\n", "test:9:" },
	};
	char text[8192];
	struct policy *p;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", BASE, bad[i].extra);
		p = pol_load_string(text, "test", err, sizeof(err));
		if (p || strncmp(err, bad[i].err, strlen(bad[i].err)))
			TEST_FAIL_("case %u: got '%s', want '%s...'", i, p ? "(loaded)" : err, bad[i].err);
	}
	/* a backend's probe: bad URL refused with the backend's line */
	p = pol_load_string("fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; } );\n"
	                    "backends = ( { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\";\n"
	                    "  currencies = [ \"usd\" ]; fee_schedule = \"a\"; probe_url = \"gopher://x\"; } );\n" CLASSES,
	                    "test", err, sizeof(err));
	ASSERT(p == NULL);
	if (!strstr(err, "test:3: probe_url 'gopher://x': expected an http:// or https:// URL"))
		TEST_FAIL_("%s", err);
	/* accepted, with the documented defaults */
	p = pol_load_string("fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; } );\n"
	                    "backends = ( { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\";\n"
	                    "  currencies = [ \"usd\" ]; fee_schedule = \"a\"; probe_url = \"https://h.example/health\"; },\n"
	                    " { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\";\n"
	                    "  currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\n"
	                    "agent = { user = \"nobody\"; group = \"nogroup\"; };\n"
	                    "webhooks = { urls = [ \"http://127.0.0.1:9/a\", \"https://h.example/b\" ]; secret_file = \"/s\"; };\n"
	                    CLASSES,
	                    "test", err, sizeof(err));
	if (!p)
		TEST_FAIL_("%s", err);
	ASSERT_STREQ(p->backends[0].probe_url, "https://h.example/health");
	ASSERT_NEAR(p->backends[0].probe_interval_s, 5, 0);
	ASSERT_NEAR(p->backends[0].probe_timeout_s, 2, 0);
	ASSERT_EQ(p->backends[0].probe_status, 200);
	ASSERT_STREQ(p->backends[1].probe_url, "");
	ASSERT_STREQ(pol_agent(p)->user, "nobody");
	ASSERT_STREQ(pol_agent(p)->group, "nogroup");
	ASSERT_EQ(p->hook.nurls, 2);
	ASSERT_STREQ(p->hook.urls[1], "https://h.example/b");
	ASSERT_EQ(p->hook.queue, 256);
	ASSERT_EQ(p->hook.retries, 8);
	ASSERT_NEAR(p->hook.backoff_s, 1, 0);
	ASSERT_NEAR(p->hook.backoff_max_s, 300, 0);
	pol_free(p);
}

int main(void)
{
	RUN(probes_open_and_close_the_breaker);
	RUN(failed_probe_reopens);
	RUN(healthy_probes_and_unknown_backend);
	RUN(slow_probes_are_slow_calls);
	RUN(loader_probe_and_webhook_settings);
	return test_summary();
}
