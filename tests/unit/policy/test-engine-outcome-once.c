/* test-engine-outcome-once.c: outcomes from two channels (pay-response on a decision
 * worker, the log line on the reader's own engine slot) are learned once per decision;
 * what only the log line reports (HAProxy's own 503s, its queue timeouts, clients that
 * left, requests that reached no backend, requests without advice) teaches what it should
 * and nothing else. Tables of (time, event) -> counters and breaker state, through the
 * engine's public API. Slot 0 decides and reads pay-response; slot 1 is the log reader. */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL
#define MS 1000ULL
#define READER 1u

/* "pa" is the first choice of every USD payment until it fails; 5 failures in a row trip
 * its breaker. The outcome socket's path only makes the engine keep the once-only marks. */
#define POLICY \
	POL_TEST_TWO_USD_ACCOUNTS \
	"classes = ( { name = \"checkout\"; priority = -100; shed_order = 1; explore = 0.0; } );\n" \
	"classify = { default = \"checkout\"; };\n" \
	"breaker = { open_s = 2.0; jitter = 0.0; probes = 1; consecutive = 5; failure_rate = 0.0; };\n" \
	"learning = { unanswered = { grace_ms = 500; }; };\n"

static struct pol_engine *engine(bool with_socket)
{
	return pol_test_engine(with_socket ? POLICY "agent = { outcome_socket = \"/tmp/payspoa-test.sock\"; };\n"
	                                   : POLICY, 2);
}

static struct pay_verdict decide(struct pol_engine *e, uint64_t now)
{
	struct pay_verdict v;
	struct pay_request rq = pol_test_usd_charge();

	pol_decide(e, 0, &rq, now, &v);
	pol_quiesce(e, 0);
	return v;
}

/* The outcome of verdict v as `channel` reports it (term: the log line's termination
 * state, NULL for none). */
static void report(struct pol_engine *e, const struct pay_verdict *v, unsigned channel, int status,
                   const char *term, uint64_t now)
{
	struct pay_outcome o = pol_test_answer(v, status, 100);
	unsigned slot = channel == PAY_CH_LOG ? READER : 0;

	o.channel = (uint8_t)channel;
	if (term)
		o.term = (struct pay_str){ term, (uint32_t)strlen(term) };
	pol_observe(e, slot, &o, now);
	pol_quiesce(e, slot);
}

/* Both channels report each of 5 failures, in either order: the breaker sees 5, not 10
 * (4 would not open it, so the count is exact on the other side too: each is learned). */
TEST(both_channels_learned_once)
{
	static const struct { unsigned first, second; } order[] = {
		{ PAY_CH_SPOE, PAY_CH_LOG }, { PAY_CH_LOG, PAY_CH_SPOE }, { PAY_CH_SPOE, PAY_CH_LOG },
		{ PAY_CH_LOG, PAY_CH_SPOE },
	};
	struct pol_engine *e = engine(true);
	uint64_t t = 10 * SEC;
	struct pol_stats st;
	unsigned i;

	for (i = 0; i < 4; i++, t += 10 * MS) {
		struct pay_verdict v = decide(e, t);

		ASSERT_STREQ(v.backend, "pa");
		report(e, &v, order[i].first, 502, order[i].first == PAY_CH_LOG ? "SH" : NULL, t + MS);
		report(e, &v, order[i].second, 502, order[i].second == PAY_CH_LOG ? "SH" : NULL, t + 2 * MS);
	}
	pol_test_ticks(e, 10 * SEC - 50 * MS, t + 100 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 100 * MS), "closed"); /* 4 failures, not 8 */
	pol_engine_stats(e, t, &st);
	ASSERT_EQ(st.observed, 8);
	ASSERT_EQ(st.observed_log, 4);
	ASSERT_EQ(st.observe_dup, 4);
	ASSERT_EQ(st.outcomes[3], 4); /* psp_error */
	{
		struct pay_verdict v = decide(e, t + 200 * MS);

		report(e, &v, PAY_CH_LOG, 502, "SH", t + 201 * MS);
		report(e, &v, PAY_CH_SPOE, 502, NULL, t + 202 * MS);
	}
	pol_test_ticks(e, t + 100 * MS, t + 400 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 400 * MS), "open"); /* the fifth */
	pol_engine_free(e);
}

/* Without agent.outcome_socket the engine keeps no marks: one channel, nothing to skip. */
TEST(no_marks_without_socket)
{
	struct pol_engine *e = engine(false);
	struct pay_verdict v = decide(e, 10 * SEC);
	struct pol_stats st;

	report(e, &v, PAY_CH_SPOE, 200, NULL, 10 * SEC + MS);
	report(e, &v, PAY_CH_SPOE, 200, NULL, 10 * SEC + 2 * MS);
	pol_engine_stats(e, 10 * SEC, &st);
	ASSERT_EQ(st.observe_dup, 0);
	ASSERT_EQ(st.outcomes[0], 2);
	pol_engine_free(e);
}

/* What only the log line reports. HAProxy's own 503 for a dead server (SC) is a PSP error
 * and opens the breaker; its queue timeout (sQ) and a client that left (CD, no status)
 * are answers (nothing judged missing) that blame no backend; a line naming the
 * frontend (HAProxy's own 429) teaches nothing. */
TEST(log_only_outcomes)
{
	static const struct { int status; const char *term, *backend; const char *breaker; } table[] = {
		{ 503, "sQ", NULL, "closed" },      /* queue timeout x5 */
		{ -1, "CD", NULL, "closed" },       /* client gone x5 */
		{ 429, "PR", "payments", "closed" }, /* shed by HAProxy itself x5 */
		{ 503, "SC", NULL, "open" },        /* dead server x5 */
	};
	struct pol_engine *e = engine(true);
	uint64_t t = 10 * SEC, t_end;
	struct pol_stats st;
	unsigned k, i;

	for (k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
		for (i = 0; i < 5; i++, t += 10 * MS) {
			struct pay_verdict v = decide(e, t);
			struct pay_outcome o = pol_test_answer(&v, table[k].status, 100);

			o.channel = PAY_CH_LOG;
			o.term = (struct pay_str){ table[k].term, 2 };
			if (table[k].backend)
				o.backend = (struct pay_str){ table[k].backend, (uint32_t)strlen(table[k].backend) };
			pol_observe(e, READER, &o, t + MS);
			pol_quiesce(e, READER);
		}
		t_end = t + 1500 * MS; /* past grace: anything missing is judged */
		pol_test_ticks(e, t - 50 * MS * 10, t_end);
		if (strcmp(pol_test_breaker(e, 0, t_end), table[k].breaker))
			TEST_FAIL_("row %u (%s): breaker %s, want %s", k, table[k].term, pol_test_breaker(e, 0, t_end),
			           table[k].breaker);
		t = t_end;
	}
	pol_engine_stats(e, t, &st);
	ASSERT_EQ(st.observe_queue_timeout, 5);
	ASSERT_EQ(st.observe_client_gone, 5);
	ASSERT_EQ(st.observe_unrouted, 5);
	ASSERT_EQ(st.outcomes[3], 5);
	ASSERT_EQ(st.unanswered_fed, 0); /* every allowed decision was answered by its line */
	pol_engine_free(e);
}

/* A request routed without advice (no decision id) and keyed: the log line moves the
 * key's pin to the backend HAProxy used, so the retry follows it. */
TEST(unadvised_request_pins_backend_used)
{
	struct pol_engine *e = engine(true);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_outcome o = { 0 };
	struct pay_verdict v;
	struct pol_stats st;

	o.channel = PAY_CH_LOG;
	o.backend = S("pb");
	o.status = 200;
	o.latency_ms = 80;
	o.idem = S("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
	pol_observe(e, READER, &o, 10 * SEC);
	pol_quiesce(e, READER);
	rq.idem = o.idem;
	pol_decide(e, 0, &rq, 10 * SEC + MS, &v);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "pin:idem"));
	pol_engine_stats(e, 10 * SEC, &st);
	ASSERT_EQ(st.observe_bad, 0);
	pol_engine_free(e);
}

int main(void)
{
	RUN(both_channels_learned_once);
	RUN(no_marks_without_socket);
	RUN(log_only_outcomes);
	RUN(unadvised_request_pins_backend_used);
	return test_summary();
}
