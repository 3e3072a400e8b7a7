/* test-engine-spare.c: a request of the most protected class that every candidate's
 * budget refuses takes the spare budget of a backend its breaker holds back before it is
 * refused; other classes are refused as before, and a spent held budget refuses too.
 * A table of (class, pa's breaker, decisions in order) -> verdict and backend. */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "policy-t.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL
#define MS 1000ULL

/* pa (cheaper, the first choice) and pb each take one request (burst 1, next token in
 * 100 s); checkout is the most protected class, background below it; neither queues. */
#define SPARE_POLICY(dflt) \
	POL_TEST_TWO_USD_ACCOUNTS \
	"classes = ( { name = \"checkout\"; explore = 0.0; shed_order = 2; queue_ms = 0; },\n" \
	"            { name = \"background\"; explore = 0.0; shed_order = 1; queue_ms = 0; } );\n" \
	"classify = { default = \"" dflt "\"; };\n" \
	"breaker = { consecutive = 3; open_s = 30.0; jitter = 0.0; probes = 2; };\n" \
	"throttle = { accounts = ( { account = \"acct_a\"; rate = 0.01; burst = 1.0; },\n" \
	"                          { account = \"acct_b\"; rate = 0.01; burst = 1.0; } ); };\n"

struct step {
	enum pay_verdict_kind verdict;
	const char *backend; /* for an allow */
	const char *token;   /* a reason token it must carry, or NULL */
};

TEST(top_class_takes_a_held_backends_spare_budget)
{
	static const char *const pol[] = { SPARE_POLICY("checkout"), SPARE_POLICY("background") };
	static const struct {
		int pol;     /* 0: checkout requests, 1: background requests */
		bool pa_open;
		struct step s[3];
	} rows[] = {
		/* pa open: pb takes the first; checkout then takes pa's spare, then nothing is left */
		{ 0, true, { { PAY_ALLOW, "pb", "breaker:pa" }, { PAY_ALLOW, "pa", "spill:pa" }, { PAY_REJECT, NULL, "budget:account" } } },
		/* background is refused once pb is spent: a held backend is not its to use */
		{ 1, true, { { PAY_ALLOW, "pb", "breaker:pa" }, { PAY_REJECT, NULL, "budget:account" }, { PAY_REJECT, NULL, NULL } } },
		/* pa healthy: pa, then the spill to pb, then both spent (no held backend) */
		{ 0, false, { { PAY_ALLOW, "pa", "cost" }, { PAY_ALLOW, "pb", "spill" }, { PAY_REJECT, NULL, "budget:account" } } },
		{ 1, false, { { PAY_ALLOW, "pa", "cost" }, { PAY_ALLOW, "pb", "spill" }, { PAY_REJECT, NULL, "budget:account" } } },
	};
	unsigned i, k;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pol_engine *e = pol_test_engine(pol[rows[i].pol], 1);
		uint64_t t = 10 * SEC;

		pol_tick(e, t);
		if (rows[i].pa_open)
			for (k = 0; k < 3; k++)
				ASSERT_EQ(pol_engine_probe_result(e, "pa", false, -1, t + k * MS), 0);
		pol_test_ticks(e, t, t + 200 * MS);
		ASSERT_STREQ(pol_test_breaker(e, 0, t + 200 * MS), rows[i].pa_open ? "open" : "closed");
		for (k = 0; k < 3; k++) {
			const struct step *s = &rows[i].s[k];
			struct pay_request rq = pol_test_usd_charge();
			struct pay_verdict v;

			pol_decide(e, 0, &rq, t + 200 * MS + k * MS, &v);
			if (v.verdict != s->verdict || (s->backend && strcmp(v.backend, s->backend)) ||
			    (s->token && !has_token(&v, s->token)))
				fprintf(stderr, "row %u step %u: verdict %d backend %s reason '%s'\n", i, k, (int)v.verdict,
				        v.backend, v.reason);
			ASSERT_EQ((int)v.verdict, (int)s->verdict);
			if (s->backend)
				ASSERT_STREQ(v.backend, s->backend);
			if (s->token)
				ASSERT(has_token(&v, s->token));
		}
		pol_engine_free(e);
	}
}

int main(void)
{
	RUN(top_class_takes_a_held_backends_spare_budget);
	return test_summary();
}
