/* test-engine.c: pol_decide and pol_observe end to end on the shipped policies:
 * routing by cost and compliance, pinning (idempotency key, object, Connect account),
 * pinned-but-unhealthy, panic, budgets with class reserves, decision ids. */
#include <stdio.h>
#include <string.h>

#include "engine-t.h"
#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

static char err[512];

static struct pol_engine *engine(const char *file)
{
	struct policy *p = pol_load(file, err, sizeof(err));
	struct pol_engine *e;

	if (!p)
		TEST_FAIL_("%s", err);
	e = pol_engine_new(p, 2, err, sizeof(err));
	if (!e)
		TEST_FAIL_("%s", err);
	return e;
}

static struct pay_request charge(const char *cur, const char *country, int64_t amount)
{
	struct pay_request rq = { 0 };

	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	rq.currency = (struct pay_str){ cur, (uint32_t)strlen(cur) };
	rq.card_country = (struct pay_str){ country, (uint32_t)strlen(country) };
	rq.card_funding = S("credit");
	rq.amount = amount;
	rq.has_amount = true;
	return rq;
}

static int backend_idx(struct pol_engine *e, const char *name)
{
	const struct policy *p = atomic_load(&e->view)->p;
	int i;

	for (i = 0; i < p->nbackends; i++)
		if (!strcmp(p->backends[i].name, name))
			return i;
	TEST_FAIL_("no backend %s", name);
}

/* Table: (currency, card country) → backend, on the default policy. */
TEST(routes_by_cost_and_compliance)
{
	static const struct { const char *cur, *cc, *backend, *tok; } cases[] = {
		{ "eur", "DE", "stripe_eu", "cost" },   /* compliance: EUR by the EEA entity, its cheaper account */
		{ "EUR", "fr", "stripe_eu", "cost" },   /* any case */
		{ "usd", "US", "stripe_us", "cost" },   /* the US entity: 2.9 % beats its standby's 3.4 % */
		{ "gbp", "GB", "stripe_eu", "cost" },   /* UK card, GBP: EU entity all-in 2.5 % */
		{ "gbp", "US", "stripe_us", "cost" },   /* US card in GBP: 3.9 % at P 0.95 beats 3.25 % at 0.90 */
		{ "cad", "CA", "stripe_us", "cost" },
		{ "sek", "SE", "stripe_eu", "cost" },   /* 1.5 % + fx beats the EEA standby's 1.9 % + fx */
		{ "chf", "CH", "stripe_eu", "cost" },
		{ "jpy", "JP", "stripe_us", "cost" },
	};
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_verdict v;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pay_request rq = charge(cases[i].cur, cases[i].cc, 10000);

		pol_decide(e, 0, &rq, 1000 * SEC + i, &v);
		if (strcmp(v.backend, cases[i].backend) || !has_token(&v, cases[i].tok))
			TEST_FAIL_("case %u: %s/%s → %s \"%s\", expected %s with %s", i, cases[i].cur, cases[i].cc,
			           v.backend, v.reason, cases[i].backend, cases[i].tok);
		ASSERT_EQ(v.verdict, PAY_ALLOW);
		ASSERT_STREQ(v.class_name, "checkout");
		ASSERT_EQ(v.prio, -100);
	}
	pol_engine_free(e);
}

TEST(idem_pin_survives_unhealthy_account)
{
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_request rq = charge("gbp", "GB", 5000);
	struct pay_verdict v;
	int eu = backend_idx(e, "stripe_eu");

	pol_tick(e, 100 * SEC); /* the pin tables' first generation starts */
	rq.idem = S("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	pol_decide(e, 0, &rq, 100 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(!has_token(&v, "pin:idem"));

	/* The EU account's breaker opens: a retry of the same key still goes there. */
	atomic_store(&atomic_load(&e->view)->health[eu].state, SCORE_DOWN);
	pol_decide(e, 1, &rq, 101 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(has_token(&v, "pin:idem"));
	ASSERT(has_token(&v, "pin:down"));

	/* ... and so when the admin disables it. */
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_eu", false), 0);
	pol_decide(e, 0, &rq, 102 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(has_token(&v, "pin:down"));

	/* A new key for the same payment is not pinned: it goes where it can (the EEA
	 * entity's standby account, next cheapest for a UK card). */
	rq.idem = S("0000000000000000000000000000000000000000000000000000000000000001");
	pol_decide(e, 0, &rq, 103 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu_standby");
	ASSERT(!has_token(&v, "pin:idem"));

	/* The same key on another (Connect) account is another identity. */
	rq.idem = S("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	rq.account = S("acct_other");
	pol_decide(e, 0, &rq, 104 * SEC, &v);
	ASSERT(!has_token(&v, "pin:idem"));

	/* Past the TTL (24 h) and the generation's period (6 h) the pin is gone: the control
	 * thread rotates the generation at 6 h and drops it 24 h after that. */
	rq.account = (struct pay_str){ 0 };
	pol_decide(e, 0, &rq, (100 + 86400) * SEC, &v);
	ASSERT(has_token(&v, "pin:idem")); /* no tick: nothing was dropped */
	pol_tick(e, (100 + 21600) * SEC);
	pol_tick(e, (100 + 21600 + 86400) * SEC);
	pol_decide(e, 0, &rq, (100 + 21600 + 86400) * SEC, &v);
	ASSERT(has_token(&v, "pin:idem")); /* 30 h old, within TTL + period */
	pol_tick(e, (100 + 21600 + 86401) * SEC);
	pol_decide(e, 0, &rq, (100 + 21600 + 86401) * SEC, &v);
	ASSERT(!has_token(&v, "pin:idem"));
	pol_engine_free(e);
}

TEST(object_pin_learned_from_response)
{
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_request rq = charge("eur", "DE", 2000);
	struct pay_outcome o = { 0 };
	struct pay_verdict v;
	struct pol_stats st;

	/* Created on the US account (HAProxy fell back there: be_name says so). */
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	o.decision = (struct pay_str){ v.decision, v.decision_len };
	o.backend = S("stripe_us");
	o.status = 200;
	o.object = S("pi_3MtwBwLkdIwHu7ix28a3tqPa");
	pol_observe(e, 1, &o, 11 * SEC);

	rq = (struct pay_request){ 0 };
	rq.method = S("POST");
	rq.path = S("/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/capture");
	rq.currency = S("eur");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_us");
	ASSERT(has_token(&v, "pin:object"));
	ASSERT_STREQ(v.class_name, "capture");

	/* A refund names the payment in its body: pinned the same way. */
	rq.path = S("/v1/refunds");
	rq.payment_intent = S("pi_3MtwBwLkdIwHu7ix28a3tqPa");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_us");
	ASSERT(has_token(&v, "pin:object"));
	ASSERT_STREQ(v.class_name, "refund");
	rq.payment_intent = S("pi_unknown");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(!has_token(&v, "pin:object"));
	rq.payment_intent = (struct pay_str){ 0 };

	/* Another object, never seen: routed normally (EUR → EU). */
	rq.path = S("/v1/payment_intents/pi_unknown/capture");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(!has_token(&v, "pin:object"));

	/* A failed response teaches nothing; neither does an unknown prefix. */
	o.status = 402;
	o.object = S("pi_declined");
	pol_observe(e, 0, &o, 13 * SEC);
	o.status = 200;
	o.object = S("zz_weird");
	pol_observe(e, 0, &o, 13 * SEC);
	pol_engine_stats(e, 13 * SEC, &st);
	ASSERT_EQ(st.learned_objects, 1);
	ASSERT_EQ(st.observe_bad, 0);
	pol_engine_free(e);
}

TEST(observe_survives_garbage)
{
	static const char *const ids[] = { "", "zzz", "0000000000000000000000000000000000000000",
		"00000000000000000000000000", "000000000000000000000000000", "gggggggggggggggggggggggggg" };
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_outcome o = { 0 };
	struct pol_stats st;
	unsigned i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		o.decision = (struct pay_str){ ids[i], (uint32_t)strlen(ids[i]) };
		o.backend = S("no_such_backend");
		o.status = 200;
		o.object = S("pi_x");
		pol_observe(e, 0, &o, SEC);
	}
	o = (struct pay_outcome){ 0 };
	pol_observe(e, 0, &o, SEC); /* everything absent */
	pol_engine_stats(e, SEC, &st);
	ASSERT_EQ(st.observed, i + 1);
	ASSERT_EQ(st.observe_bad, i + 1);
	ASSERT_EQ(st.learned_objects, 0);
	pol_engine_free(e);
}

TEST(decision_ids_unique_and_echoable)
{
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_request rq = charge("usd", "US", 1000);
	struct pay_outcome o = { 0 };
	struct pay_verdict v;
	char prev[PAY_DECISION_MAX + 1] = "";
	struct pol_stats st;
	int i;

	for (i = 0; i < 50; i++) {
		pol_decide(e, (unsigned)i & 1, &rq, SEC + (uint64_t)i * 100000, &v);
		ASSERT(v.decision_len > 0 && v.decision_len <= PAY_DECISION_MAX);
		ASSERT_EQ(strlen(v.decision), v.decision_len);
		ASSERT(strcmp(prev, v.decision) != 0);
		memcpy(prev, v.decision, sizeof(prev));
		o.decision = (struct pay_str){ v.decision, v.decision_len };
		pol_observe(e, 0, &o, SEC); /* no be_name: the decision id names the backend */
	}
	/* A flipped digit breaks the check byte. */
	prev[5] ^= 1;
	o.decision = (struct pay_str){ prev, (uint32_t)strlen(prev) };
	pol_observe(e, 0, &o, SEC);
	pol_engine_stats(e, SEC, &st);
	ASSERT_EQ(st.observe_bad, 1);
	ASSERT_EQ(st.decisions, 50);
	pol_engine_free(e);
}

TEST(panic_rather_than_nothing)
{
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_request rq = charge("xyz", "DE", 1000);
	struct pay_verdict v;
	struct pol_stats st;

	/* A currency nobody presents: the default backend, and say so. */
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_us");
	ASSERT(has_token(&v, "panic"));
	ASSERT_EQ(v.verdict, PAY_ALLOW);

	/* EUR may only use the EU entity: with one of its accounts disabled it fails over to
	 * the other; with both disabled, it still gets an answer, from the EU entity. */
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_eu", false), 0);
	rq = charge("eur", "DE", 1000);
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu_standby");
	ASSERT(!has_token(&v, "panic"));
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_eu_standby", false), 0);
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT(!strcmp(v.backend, "stripe_eu") || !strcmp(v.backend, "stripe_eu_standby"));
	ASSERT(has_token(&v, "panic"));
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_eu", true), 0);
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_eu_standby", true), 0);
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT(!has_token(&v, "panic"));
	ASSERT_EQ(pol_engine_set_enabled(e, "nope", true), -1);
	pol_engine_stats(e, SEC, &st);
	ASSERT_EQ(st.panic, 2);
	pol_engine_free(e);
}

TEST(breaker_open_routes_around)
{
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_request rq = charge("gbp", "GB", 5000);
	struct pay_verdict v;

	/* The EEA entity's standby first (all-in 2.9 % for a UK card), then the US entity. */
	atomic_store(&atomic_load(&e->view)->health[backend_idx(e, "stripe_eu")].state, SCORE_DOWN);
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu_standby");
	ASSERT(!has_token(&v, "panic"));
	atomic_store(&atomic_load(&e->view)->health[backend_idx(e, "stripe_eu_standby")].state, SCORE_DOWN);
	pol_decide(e, 0, &rq, 2 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_us");
	ASSERT(!has_token(&v, "panic"));
	pol_engine_free(e);
}

/* low-budget.conf: 2 req/s, burst 2; checkout reserves half. Simulated time. */
TEST(budget_reserve_queue_reject)
{
	struct pol_engine *e = engine("conf/examples/low-budget.conf");
	struct pay_request std = { 0 }, co = charge("usd", "US", 100);
	struct pay_verdict v;
	uint64_t t = 50 * SEC;

	std.method = S("GET");
	std.path = S("/v1/customers");
	std.currency = S("usd"); /* one account only: nothing to spill to */
	pol_decide(e, 0, &std, t, &v);
	ASSERT_EQ(v.verdict, PAY_ALLOW);
	ASSERT_STREQ(v.class_name, "standard");
	/* The second standard request would dip into checkout's reserve. */
	pol_decide(e, 0, &std, t, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	ASSERT(has_token(&v, "budget:account"));
	ASSERT_EQ(v.retry_after_s, 1);
	/* Checkout may use it. */
	pol_decide(e, 0, &co, t, &v);
	ASSERT_EQ(v.verdict, PAY_ALLOW);
	ASSERT_STREQ(v.class_name, "checkout");
	pol_decide(e, 0, &co, t, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	/* Half a second later one token is back: checkout yes, standard not yet. */
	t += SEC / 2;
	pol_decide(e, 0, &std, t, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	pol_decide(e, 0, &co, t, &v);
	ASSERT_EQ(v.verdict, PAY_ALLOW);
	/* After a quiet second and a half everything is free again. */
	t += 3 * SEC / 2;
	pol_decide(e, 0, &std, t, &v);
	ASSERT_EQ(v.verdict, PAY_ALLOW);
	pol_engine_free(e);
}

/* A refund class with queue_ms = 5000: over budget by up to 5 s is let through as
 * `queue` (booked, offset grown by the wait), beyond that refused. The default policy
 * has queue_ms = 0 (HAProxy does not hold a request for a time): there, everything over
 * the burst is refused, once both accounts that present USD (stripe_us and its standby,
 * each with its own budget) are spent. */
TEST(budget_queue_offset)
{
	static const char *const pol[] = {
		"conf/payspoa.conf",
		"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; } );\n"
		"backends = ( { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\";\n"
		"               currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\n"
		"classes = ( { name = \"checkout\"; priority = -100; reserve = 0.3; },\n"
		"            { name = \"refund\"; offset_ms = 100; queue_ms = 5000; } );\n"
		"classify = { default = \"checkout\"; rules = ( { path = \"/v1/refunds\"; class = \"refund\"; } ); };\n"
		"throttle = { endpoints = ( { name = \"refunds\"; method = \"POST\"; path = \"/v1/refunds\"; rate = 25.0; burst = 25.0; } ); };\n",
	};
	static const int want_allowed[] = { 2 * 17, 17 }, want_queued[] = { 0, 125 }, want_rejected[] = { 166, 58 };
	struct pay_request rq = { 0 };
	struct pay_verdict v;
	unsigned k;
	int i;

	rq.method = S("POST");
	rq.path = S("/v1/refunds");
	rq.currency = S("usd");
	for (k = 0; k < 2; k++) {
		struct pol_engine *e = k ? pol_test_engine(pol[k], 2) : engine(pol[k]);
		int queued = 0, rejected = 0;

		/* refunds endpoint: 25/s burst 25 per account; the refund class may use 1 - 0.30 → 17.5 */
		for (i = 0; i < 200; i++) {
			pol_decide(e, 0, &rq, SEC, &v);
			if (v.verdict == PAY_QUEUE) {
				queued++;
				ASSERT(v.offset_ms > 100);
				ASSERT(has_token(&v, "budget:endpoint"));
			} else if (v.verdict == PAY_REJECT) {
				rejected++;
				ASSERT(v.retry_after_s >= (k ? 5 : 1));
			}
		}
		ASSERT_EQ(200 - queued - rejected, want_allowed[k]);
		ASSERT_EQ(queued, want_queued[k]);      /* 5 s × 25/s */
		ASSERT_EQ(rejected, want_rejected[k]);
		pol_engine_free(e);
	}
}

TEST(connect_accounts)
{
	struct pol_engine *e = engine("conf/examples/connect.conf");
	struct pay_request rq = charge("eur", "DE", 1000);
	struct pay_verdict v;
	char first[64];

	/* A listed connected account goes to its platform whatever the cost says. */
	rq.account = S("acct_1SELLERUS000001");
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT_STREQ(v.backend, "platform_us");
	ASSERT(has_token(&v, "pin:connect"));

	/* An unknown one goes to a platform, then stays on it. */
	rq.account = S("acct_1NEWSELLER00001");
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT(!has_token(&v, "pin:account"));
	snprintf(first, sizeof(first), "%s", v.backend);
	rq = charge("usd", "US", 1000);
	rq.account = S("acct_1NEWSELLER00001");
	pol_decide(e, 0, &rq, 2 * SEC, &v);
	ASSERT_STREQ(v.backend, first);
	ASSERT(has_token(&v, "pin:account"));
	pol_engine_free(e);
}

TEST(classification_table)
{
	static const struct { const char *method, *path, *hint, *cls; } cases[] = {
		{ "POST", "/v1/payment_intents", NULL, "checkout" },
		{ "post", "/v1/payment_intents/pi_1/confirm", NULL, "checkout" },
		{ "POST", "/v1/payment_intents/pi_1/capture", NULL, "capture" },
		{ "POST", "/v1/payment_intents/pi_1/cancel", NULL, "standard" },
		{ "POST", "/v1/payment_intents/pi_1/x/confirm", NULL, "standard" }, /* '*' stays in its segment */
		{ "POST", "/v1/refunds", NULL, "refund" },
		{ "POST", "/v1/subscriptions/sub_1/items", NULL, "background" },
		{ "POST", "/v1/subscriptions", NULL, "background" },
		{ "GET", "/v1/charges", NULL, "read" },
		{ "POST", "/v1/charges", "background", "background" }, /* trusted hint first */
		{ "DELETE", "/v1/customers/cus_1", NULL, "standard" },
		{ NULL, NULL, NULL, "standard" },
	};
	struct pol_engine *e = engine("conf/payspoa.conf");
	struct pay_verdict v;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pay_request rq = { 0 };

		if (cases[i].method)
			rq.method = (struct pay_str){ cases[i].method, (uint32_t)strlen(cases[i].method) };
		if (cases[i].path)
			rq.path = (struct pay_str){ cases[i].path, (uint32_t)strlen(cases[i].path) };
		if (cases[i].hint)
			rq.class_hint = (struct pay_str){ cases[i].hint, (uint32_t)strlen(cases[i].hint) };
		pol_decide(e, 0, &rq, SEC, &v);
		if (strcmp(v.class_name, cases[i].cls))
			TEST_FAIL_("case %u (%s %s): %s, expected %s", i, cases[i].method, cases[i].path,
			           v.class_name, cases[i].cls);
	}
	pol_engine_free(e);
}

int main(void)
{
	RUN(routes_by_cost_and_compliance);
	RUN(idem_pin_survives_unhealthy_account);
	RUN(object_pin_learned_from_response);
	RUN(observe_survives_garbage);
	RUN(decision_ids_unique_and_echoable);
	RUN(panic_rather_than_nothing);
	RUN(breaker_open_routes_around);
	RUN(budget_reserve_queue_reject);
	RUN(budget_queue_offset);
	RUN(connect_accounts);
	RUN(classification_table);
	return test_summary();
}
