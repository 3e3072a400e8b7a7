/* test-engine-unanswered.c: decisions that pay-response never answers (HAProxy sends none for the
 * 502/503/504 it generates itself: an upstream that is down or hangs). Tables of
 * (time, decisions / answers / ticks) -> breaker state and counters, through the engine's
 * public API: per-tick accounting, the grace delay, the min_calls / min_share guards, the
 * witness (no pay-response at all teaches nothing), late answers counted once, probes,
 * the policy key, decision ids from another view. 1 accounting tick = 100 ms. */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL
#define MS 1000ULL

static char err[512];

/* "pa" is the cheaper of two USD accounts: every payment goes there until it fails.
 * Breaker: 5 failures in a row trip it (the rate rule off); grace 500 ms. */
#define POLICY \
	POL_TEST_TWO_USD_ACCOUNTS \
	"classes = ( { name = \"checkout\"; priority = -100; shed_order = 1; explore = 0.0; } );\n" \
	"classify = { default = \"checkout\"; };\n" \
	"breaker = { open_s = 2.0; jitter = 0.0; probes = 1; consecutive = 5; failure_rate = 0.0; };\n"

/* An engine for `policy` with these learning.unanswered settings. */
static struct pol_engine *engine_for(const char *policy, const char *unanswered)
{
	static char text[8192];

	snprintf(text, sizeof(text), "%slearning = { unanswered = { %s }; };\n", policy, unanswered);
	return pol_test_engine(text, 1);
}

static struct pol_engine *engine(const char *unanswered)
{
	return engine_for(POLICY, unanswered);
}

static struct pay_verdict decide(struct pol_engine *e, uint64_t now)
{
	struct pay_verdict v;
	struct pay_request rq = pol_test_usd_charge();

	pol_decide(e, 0, &rq, now, &v);
	pol_quiesce(e, 0);
	return v;
}

/* pay-response for verdict v at `now` (status 200, as HAProxy reports it). */
static void answer(struct pol_engine *e, const struct pay_verdict *v, uint64_t now)
{
	struct pay_outcome o = pol_test_answer(v, 200, 100);

	pol_observe(e, 0, &o, now);
	pol_quiesce(e, 0);
}

/* n decisions at `at` that are answered right away (the witness that pay-response works). */
static void healthy(struct pol_engine *e, uint64_t at, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct pay_verdict v = decide(e, at);

		answer(e, &v, at + 5 * MS);
	}
}

/* A hung first choice: from t0 + 1 s nothing comes back. Tick s (100 ms) is judged once
 * (s + 2) x 100 ms + grace has passed: the first silent decisions (tick 11) at 1.8 s. The
 * breaker opens then, not before; the next payment goes to pb and says why. */
TEST(hung_backend_opens_after_grace)
{
	struct pol_engine *e = engine("grace_ms = 500;");
	uint64_t t0 = 10 * SEC, t;
	struct pay_verdict v;
	struct pol_stats st;
	static const struct { uint64_t at_ms; const char *state; } table[] = {
		{ 1500, "closed" }, { 1750, "closed" }, { 1800, "open" }, { 2500, "open" },
	};
	unsigned k = 0;

	healthy(e, t0, 10);
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	for (t = t0 + 1100 * MS; t < t0 + 2600 * MS; t += 10 * MS) {
		if (t < t0 + 1800 * MS) {
			v = decide(e, t);
			ASSERT_STREQ(v.backend, "pa");
		}
		if (t % (50 * MS) == 0)
			pol_tick(e, t);
		if (k < sizeof(table) / sizeof(table[0]) && t == t0 + table[k].at_ms * MS) {
			if (strcmp(pol_test_breaker(e, 0, t), table[k].state))
				TEST_FAIL_("at %llu ms: breaker %s, want %s", (unsigned long long)table[k].at_ms,
				           pol_test_breaker(e, 0, t), table[k].state);
			k++;
		}
	}
	ASSERT_EQ(k, 4);
	v = decide(e, t0 + 2600 * MS);
	ASSERT_STREQ(v.backend, "pb");
	pol_engine_stats(e, t0 + 2600 * MS, &st);
	ASSERT(st.unanswered_fed >= 5);
	ASSERT(st.unanswered >= st.unanswered_fed);
	ASSERT_EQ(st.breaker_opens, 1);
	pol_engine_free(e);
}

/* A queued decision waits in HAProxy's queue for up to its offset, past any grace: its
 * answer is not waited for. 19 payments queued behind a 10/s budget and answered only
 * 3 s later must not open the breaker (nor count as unanswered); the allowed one is
 * answered at once. Counted, they would be 19 missing in a row: open. (pb takes no USD,
 * so nothing spills there.) */
TEST(queued_decisions_not_waited_for)
{
	static const char text[] =
		"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n"
		"backends = (\n"
		" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n"
		" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"eur\" ]; fee_schedule = \"b\"; }\n"
		");\n"
		"classes = ( { name = \"checkout\"; priority = -100; shed_order = 1; explore = 0.0; queue_ms = 5000; } );\n"
		"classify = { default = \"checkout\"; };\n"
		"throttle = { account = { rate = 10.0; burst = 1.0; }; };\n"
		"forecast = { enabled = false; };\n"
		"breaker = { open_s = 2.0; jitter = 0.0; probes = 1; consecutive = 5; failure_rate = 0.0; };\n"
		"learning = { unanswered = { grace_ms = 500; }; };\n";
	struct pol_engine *e = pol_test_engine(text, 1);
	struct pay_verdict v, q[19];
	struct pol_stats st;
	uint64_t t0 = 10 * SEC;
	int i, queued = 0;

	for (i = 0; i < 10; i++) { /* the witness: allowed and answered, one per 100 ms */
		v = decide(e, t0 + (uint64_t)i * 100 * MS);
		ASSERT_EQ(v.verdict, PAY_ALLOW);
		answer(e, &v, t0 + (uint64_t)i * 100 * MS + 5 * MS);
	}
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	v = decide(e, t0 + 1000 * MS);
	answer(e, &v, t0 + 1005 * MS);
	for (i = 0; i < 19; i++) {
		q[i] = decide(e, t0 + 1000 * MS);
		ASSERT_STREQ(q[i].backend, "pa");
		queued += q[i].verdict == PAY_QUEUE;
	}
	ASSERT_EQ(queued, 19);
	pol_test_ticks(e, t0 + 1000 * MS, t0 + 4000 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 4000 * MS), "closed");
	for (i = 0; i < 19; i++)
		answer(e, &q[i], t0 + 4000 * MS);
	pol_test_ticks(e, t0 + 4000 * MS, t0 + 4500 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 4500 * MS), "closed");
	pol_engine_stats(e, t0 + 4500 * MS, &st);
	ASSERT_EQ(st.unanswered, 0);
	ASSERT_EQ(st.breaker_opens, 0);
	pol_engine_free(e);
}

/* A late answer (after its tick was judged) that was fed as missing teaches once: a late
 * success takes its failure back (brk_forgive) and counts as the success it was, a late
 * error leaves the failure standing and teaches nothing more. 4 missing failures (4 in a
 * row, one short of the trip), then their 4 late answers; then 1 missing decision:
 * - late successes: the 4 failures are forgiven and the run is broken, the breaker stays
 *   closed, and it takes 5 more missing ones in a row to open it;
 * - late 503s: the 4 stand (not counted twice either), the 5th in a row opens it. */
TEST(late_answers_count_once)
{
	static const struct { int status; uint64_t forgiven; const char *after_one; } cases[] = {
		{ 200, 4, "closed" },
		{ 503, 0, "open" },
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct pol_engine *e = engine("grace_ms = 500; min_calls = 1;");
		uint64_t t0 = 10 * SEC;
		struct pay_verdict v[4], w;
		struct pol_stats st;
		int i;

		healthy(e, t0, 1);
		pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
		for (i = 0; i < 4; i++)
			v[i] = decide(e, t0 + 1010 * MS);            /* tick t0/100ms + 10 */
		pol_test_ticks(e, t0 + 1000 * MS, t0 + 1700 * MS);           /* judged at 1.7 s */
		ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 1700 * MS), "closed");
		pol_engine_stats(e, t0 + 1700 * MS, &st);
		ASSERT_EQ(st.unanswered_fed, 4);
		for (i = 0; i < 4; i++) {
			struct pay_outcome o = pol_test_answer(&v[i], cases[c].status, 740);

			pol_observe(e, 0, &o, t0 + 1750 * MS); /* late */
			pol_quiesce(e, 0);
		}
		pol_test_ticks(e, t0 + 1700 * MS, t0 + 2000 * MS);
		pol_engine_stats(e, t0 + 2000 * MS, &st);
		ASSERT_EQ(st.unanswered_late, 4);
		ASSERT_EQ(st.unanswered_forgiven, cases[c].forgiven);
		ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 2000 * MS), "closed");
		w = decide(e, t0 + 2010 * MS);
		ASSERT_STREQ(w.backend, "pa");
		/* (the late successes' 740 ms taught pa's latency: its grace is now ~875 ms) */
		pol_test_ticks(e, t0 + 2000 * MS, t0 + 3300 * MS);
		if (strcmp(pol_test_breaker(e, 0, t0 + 3300 * MS), cases[c].after_one))
			TEST_FAIL_("case %u (late %d): breaker %s after one more missing, want %s", c, cases[c].status,
			           pol_test_breaker(e, 0, t0 + 3300 * MS), cases[c].after_one);
		if (cases[c].status == 200) {
			for (i = 0; i < 4; i++)
				decide(e, t0 + 3310 * MS);
			pol_test_ticks(e, t0 + 3300 * MS, t0 + 4500 * MS);
			ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 4500 * MS), "open");
		}
		pol_engine_free(e);
	}
}

/* Guards against false opens. Each case: 10 decisions per tick for 3 s after a healthy
 * second, of which `answered` are answered in time; the breaker must stay closed and
 * nothing be fed. */
TEST(guards_keep_breaker_closed)
{
	static const struct { const char *cfg; int answered; bool witness; const char *why; } cases[] = {
		{ "grace_ms = 500;", 9, true, "10 % missing (clients hanging up) is under min_share" },
		{ "grace_ms = 500;", 6, true, "40 % missing is under min_share 0.5" },
		{ "grace_ms = 500; min_share = 0.9;", 2, true, "80 % missing is under min_share 0.9" },
		{ "grace_ms = 500;", 0, false, "no pay-response ever: the group is not configured" },
		{ "enabled = false;", 0, true, "disabled by the policy" },
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct pol_engine *e = engine(cases[c].cfg);
		uint64_t t0 = 10 * SEC, t;
		struct pol_stats st;
		int i;

		if (cases[c].witness)
			healthy(e, t0, 10);
		pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
		for (t = t0 + 1000 * MS; t < t0 + 4000 * MS; t += 100 * MS) {
			for (i = 0; i < 10; i++) {
				struct pay_verdict v = decide(e, t + 10 * MS);

				if (i < cases[c].answered)
					answer(e, &v, t + 50 * MS);
			}
			pol_test_ticks(e, t, t + 100 * MS);
		}
		pol_test_ticks(e, t, t + 1000 * MS);
		pol_engine_stats(e, t, &st);
		if (strcmp(pol_test_breaker(e, 0, t), "closed") || st.unanswered_fed)
			TEST_FAIL_("case %u (%s): breaker %s, %llu fed", c, cases[c].why, pol_test_breaker(e, 0, t),
			           (unsigned long long)st.unanswered_fed);
		pol_engine_free(e);
	}
}

/* Missing answers of a tick that also had answers are not failures in a row: fed in bulk
 * after the grace they once looked like 6 in a row and opened the breaker (a surge that
 * slowed answers past the grace, random worlds' false opens). Time table (grace 500 ms,
 * 5 in a row open, the rate rule off): 1.01 s 10 decisions, 4 answered: 6 fed at 1.7 s,
 * closed; 3.01 s 10 decisions, none answered: 10 fed in a row at 3.7 s, open. */
TEST(missing_among_answers_not_in_a_row)
{
	struct pol_engine *e = engine("grace_ms = 500;");
	uint64_t t0 = 10 * SEC;
	struct pol_stats st;
	int i;

	healthy(e, t0, 10);
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	for (i = 0; i < 10; i++) {
		struct pay_verdict v = decide(e, t0 + 1010 * MS);

		if (i % 2 == 0 && i < 8)
			answer(e, &v, t0 + 1050 * MS);
	}
	pol_test_ticks(e, t0 + 1000 * MS, t0 + 3000 * MS);
	pol_engine_stats(e, t0 + 3000 * MS, &st);
	ASSERT_EQ(st.unanswered_fed, 6);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 3000 * MS), "closed");
	for (i = 0; i < 10; i++)
		decide(e, t0 + 3010 * MS);
	pol_test_ticks(e, t0 + 3000 * MS, t0 + 3700 * MS);
	pol_engine_stats(e, t0 + 3700 * MS, &st);
	ASSERT_EQ(st.unanswered_fed, 16);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 3700 * MS), "open");
	pol_engine_free(e);
}

/* A tick whose decisions all wait past the grace while calls decided after it come back
 * is not a run of failures in a row: the backend answered calls sent after them (a surge
 * queued in HAProxy; random world 1000065: the 11 decisions of one tick unanswered between
 * ticks answered in time opened a healthy backend's breaker). Default grace (2 s); 5 in a
 * row open, the rate rule off. Time table: 1.0 s 10 decisions never answered; 1.2-2.9 s
 * a decision every 100 ms answered 150 ms later: tick 1.0 is fed (10 missing) at 3.2 s,
 * closed. From 5.0 s nothing comes back (hung): open by 5.0 s + grace + a few ticks. */
TEST(queued_tick_between_answers_not_in_a_row)
{
	struct pol_engine *e = engine("");
	uint64_t t0 = 10 * SEC, t, opened = 0;
	struct pay_verdict v[20];
	struct pol_stats st;
	int i, nv = 0, na = 0;

	healthy(e, t0, 10);
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	for (i = 0; i < 10; i++)
		decide(e, t0 + 1010 * MS);
	for (t = t0 + 1050 * MS; t < t0 + 5000 * MS; t += 50 * MS) {
		uint64_t ms = (t - t0) / MS;

		if (ms >= 1200 && ms <= 2900 && ms % 100 == 0)
			v[nv++] = decide(e, t);
		if (ms >= 1350 && ms <= 3050 && ms % 100 == 50) { /* latency 150 ms */
			struct pay_outcome o = pol_test_answer(&v[na++], 200, 150);

			pol_observe(e, 0, &o, t);
			pol_quiesce(e, 0);
		}
		pol_tick(e, t);
	}
	ASSERT_EQ(nv, 18);
	ASSERT_EQ(na, 18);
	pol_engine_stats(e, t0 + 5000 * MS, &st);
	ASSERT_EQ(st.unanswered_fed, 10);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 5000 * MS), "closed");
	for (t = t0 + 5000 * MS; t < t0 + 9000 * MS && !opened; t += 50 * MS) {
		if ((t - t0) % (100 * MS) == 0)
			ASSERT_STREQ(decide(e, t).backend, "pa");
		pol_tick(e, t);
		if (!strcmp(pol_test_breaker(e, 0, t), "open"))
			opened = t;
	}
	if (!opened || opened > t0 + 7800 * MS)
		TEST_FAIL_("hung at 5.0 s: breaker opened at %.2f s (0: never), want by 7.8 s",
		           opened ? (double)(opened - t0) / 1e6 : 0.0);
	pol_engine_free(e);
}

/* Answers without decision ids (they teach the breaker only) in a row by send order: a
 * timeout comes back 8 s after it was sent, after calls sent later came back well. Pa
 * answers successes at 300 ms until 2.9 s; its 6 timeouts (504 at 8 s), sent at -3.9 to
 * -2.9 s, come back at 4.1-5.1 s, after calls sent up to 2.6 s: closed (random world
 * 2000128: σ 1.0 latency, the traffic moved away and its last answers were 5 timeouts in
 * a row). Then 5 fast 503s (sent after every success) in a row open it as before. */
TEST(slow_tail_not_in_a_row)
{
	struct pol_engine *e = engine("");
	uint64_t t0 = 10 * SEC, t;
	int i;

	for (t = t0; t < t0 + 5500 * MS; t += 50 * MS) {
		if (t < t0 + 3000 * MS && (t - t0) % (100 * MS) == 0) {
			struct pay_outcome o = { 0 };

			o.backend = (struct pay_str){ "pa", 2 };
			o.status = 200;
			o.latency_ms = 300;
			pol_observe(e, 0, &o, t);
		}
		if (t >= t0 + 4100 * MS && t <= t0 + 5100 * MS && (t - t0) % (200 * MS) == 100 * MS) {
			struct pay_outcome o = { 0 };

			o.backend = (struct pay_str){ "pa", 2 };
			o.status = 504;
			o.latency_ms = 8000;
			pol_observe(e, 0, &o, t);
		}
		pol_quiesce(e, 0);
		pol_tick(e, t);
	}
	ASSERT_STREQ(pol_test_breaker(e, 0, t), "closed");
	for (i = 0; i < 5; i++) {
		struct pay_outcome o = { 0 };

		o.backend = (struct pay_str){ "pa", 2 };
		o.status = 503;
		o.latency_ms = 20;
		pol_observe(e, 0, &o, t + (uint64_t)i * 100 * MS);
		pol_quiesce(e, 0);
	}
	pol_test_ticks(e, t, t + 600 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 600 * MS), "open");
	pol_engine_free(e);
}

/* Few decisions: 1 every 300 ms, all unanswered. Nothing is fed until the run holds
 * min_calls (5) decisions; then all 5 are, and the breaker opens. */
TEST(min_calls_then_whole_run_fed)
{
	struct pol_engine *e = engine("grace_ms = 500;");
	uint64_t t0 = 10 * SEC, t;
	struct pol_stats st;
	int n = 0;

	healthy(e, t0, 3);
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	for (t = t0 + 1000 * MS; n < 5; t += 300 * MS, n++) {
		decide(e, t + 10 * MS);
		pol_test_ticks(e, t, t + 300 * MS);
		pol_engine_stats(e, t + 300 * MS, &st);
		ASSERT_EQ(st.unanswered_fed, 0);
	}
	/* the 5th decision (at 2.21 s, tick 22) is judged at 2.9 s */
	pol_test_ticks(e, t, t0 + 2900 * MS);
	pol_engine_stats(e, t0 + 2900 * MS, &st);
	ASSERT_EQ(st.unanswered_fed, 5);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 2900 * MS), "open");
	pol_engine_free(e);
}

/* Recovery: open for 2 s, then half-open; an unanswered probe is a failed probe (reopens
 * at once, despite min_calls); the next probe, answered, closes it. (Where traffic goes
 * then is the posteriors' business: pb's answers taught them meanwhile.) */
TEST(probe_unanswered_reopens_answered_closes)
{
	struct pol_engine *e = engine("grace_ms = 500;");
	uint64_t t0 = 10 * SEC, t;
	struct pay_verdict v;
	struct pol_learn_info li;
	int i;

	healthy(e, t0, 10);
	pol_test_ticks(e, t0 - 50 * MS, t0 + 1000 * MS);
	for (i = 0; i < 10; i++)
		decide(e, t0 + 1010 * MS);
	pol_test_ticks(e, t0 + 1000 * MS, t0 + 1700 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 1700 * MS), "open");
	/* keep the witness fresh: pb answers */
	for (t = t0 + 1700 * MS; t < t0 + 3800 * MS && strcmp(pol_test_breaker(e, 0, t), "half-open"); t += 100 * MS) {
		healthy(e, t + 10 * MS, 1);
		pol_test_ticks(e, t, t + 100 * MS);
	}
	ASSERT_STREQ(pol_test_breaker(e, 0, t), "half-open");
	v = decide(e, t + 10 * MS);
	ASSERT_STREQ(v.backend, "pa");
	pol_test_ticks(e, t, t + 800 * MS);
	t += 800 * MS;
	ASSERT_EQ(pol_engine_learn_info(e, 0, t, &li), 0);
	ASSERT_STREQ(li.breaker, "open");
	ASSERT_EQ(li.trips, 2);
	/* 4 s later: half-open again; this probe is answered */
	for (i = 0; i < 45 && strcmp(pol_test_breaker(e, 0, t), "half-open"); i++, t += 100 * MS) {
		healthy(e, t + 10 * MS, 1);
		pol_test_ticks(e, t, t + 100 * MS);
	}
	ASSERT_STREQ(pol_test_breaker(e, 0, t), "half-open");
	ASSERT(i >= 35); /* open 4 s (the second trip) */
	v = decide(e, t + 10 * MS);
	ASSERT_STREQ(v.backend, "pa");
	answer(e, &v, t + 20 * MS);
	pol_test_ticks(e, t, t + 100 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t + 100 * MS), "closed");
	pol_engine_free(e);
}

/* Answers to decisions of another view (before a reload) or without a decision id still
 * teach as before, and open nothing by their absence; the id is 36 hex digits. */
TEST(other_view_and_no_decision)
{
	struct pol_engine *e = engine("grace_ms = 500;");
	uint64_t t0 = 10 * SEC;
	struct pay_verdict v[10];
	struct pay_outcome o = { 0 };
	struct pol_stats st;
	struct policy *p;
	char text[8192];
	int i;

	healthy(e, t0, 10);
	for (i = 0; i < 10; i++)
		v[i] = decide(e, t0 + 100 * MS);
	ASSERT_EQ(v[0].decision_len, 36);
	ASSERT(v[0].decision_len <= PAY_DECISION_MAX);
	snprintf(text, sizeof(text), "%slearning = { unanswered = { grace_ms = 500; }; };\n", POLICY);
	ASSERT((p = pol_load_string(text, "test", err, sizeof(err))));
	ASSERT_EQ(pol_engine_swap(e, p, err, sizeof(err)), 0);
	pol_test_ticks(e, t0 + 100 * MS, t0 + 3000 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 3000 * MS), "closed");
	for (i = 0; i < 10; i++)
		answer(e, &v[i], t0 + 3000 * MS); /* old view: no accounting, breaker events */
	o.backend = S("pa");
	o.status = 503;
	for (i = 0; i < 5; i++)
		pol_observe(e, 0, &o, t0 + 3010 * MS); /* be_name only */
	pol_tick(e, t0 + 3050 * MS);
	ASSERT_STREQ(pol_test_breaker(e, 0, t0 + 3050 * MS), "open");
	pol_engine_stats(e, t0 + 3050 * MS, &st);
	ASSERT_EQ(st.unanswered_fed, 0);
	pol_engine_free(e);
}

/* ---- per-backend grace (a slow backend's answers are not missing) ------------------- */

/* pa only: pb presents no USD, so every payment goes to pa whatever its latency. */
#define POLICY_PA POLICY_PA_HEAD POLICY_PA_BREAKER("")
#define POLICY_PA_HEAD \
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n" \
	"backends = (\n" \
	" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n" \
	" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"eur\" ]; fee_schedule = \"b\"; }\n" \
	");\n" \
	"classes = ( { name = \"checkout\"; priority = -100; shed_order = 1; explore = 0.0; } );\n" \
	"classify = { default = \"checkout\"; };\n"
/* reorder_s 0: in a row by answer order (the design before; brk_record_sent) */
#define POLICY_PA_ANSWER_ORDER POLICY_PA_HEAD POLICY_PA_BREAKER("reorder_s = 0.0;")
#define POLICY_PA_BREAKER(x) \
	"breaker = { open_s = 20.0; jitter = 0.0; probes = 1; consecutive = 5; failure_rate = 0.0; " x " };\n"

static struct pol_engine *engine_pa(const char *unanswered)
{
	return engine_for(POLICY_PA, unanswered);
}

/* The grace of a backend is max(grace_ms, grace_latency x its learned latency), capped at
 * max_grace_ms. The latency is learned from 20 answers that report `learn_ms` (they come
 * back at once: the witness); then 10 decisions are answered `delay_ms` later. In time
 * they are neither missing nor late; past the backend's grace all 10 are late and were
 * judged missing. */
TEST(per_backend_grace_judging)
{
	static const struct { const char *cfg; int learn_ms, delay_ms; uint64_t late; } cases[] = {
		{ "grace_ms = 500;", 100, 450, 0 },                          /* grace 500 ms */
		{ "grace_ms = 500;", 100, 1000, 10 },
		{ "grace_ms = 500;", 1000, 3000, 0 },                        /* 4 x 1 s */
		{ "grace_ms = 500;", 1000, 5000, 10 },
		{ "grace_ms = 500; grace_latency = 2.0;", 1000, 1500, 0 },   /* 2 x 1 s */
		{ "grace_ms = 500; grace_latency = 2.0;", 1000, 3000, 10 },
		{ "grace_ms = 500;", 3000, 7000, 0 },                        /* 12 s, capped at 8 */
		{ "grace_ms = 500;", 3000, 9500, 10 },
		{ "grace_ms = 500; max_grace_ms = 3000;", 3000, 2500, 0 },
		{ "grace_ms = 500; max_grace_ms = 3000;", 3000, 4000, 10 },
		{ "grace_ms = 500; grace_latency = 0;", 1000, 1000, 10 },    /* off: 500 ms for all */
		{ "grace_ms = 2000; grace_latency = 0;", 1000, 1500, 0 },
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct pol_engine *e = engine_pa(cases[c].cfg);
		uint64_t t0 = 10 * SEC, t1 = t0 + 1000 * MS, ans = t1 + (uint64_t)cases[c].delay_ms * MS;
		struct pay_verdict v[10];
		struct pol_stats st;
		int i;

		for (i = 0; i < 20; i++) {
			struct pay_verdict w = decide(e, t0 + (uint64_t)i * 40 * MS);
			struct pay_outcome o = pol_test_answer(&w, 200, cases[c].learn_ms);

			pol_observe(e, 0, &o, t0 + (uint64_t)i * 40 * MS + 5 * MS);
			pol_quiesce(e, 0);
		}
		pol_test_ticks(e, t0 - 50 * MS, t1);
		for (i = 0; i < 10; i++)
			v[i] = decide(e, t1 + 10 * MS);
		pol_test_ticks(e, t1, ans);
		for (i = 0; i < 10; i++) {
			struct pay_outcome o = pol_test_answer(&v[i], 200, cases[c].delay_ms);

			pol_observe(e, 0, &o, ans);
			pol_quiesce(e, 0);
		}
		pol_test_ticks(e, ans, ans + 10 * SEC);
		pol_engine_stats(e, ans + 10 * SEC, &st);
		if (st.unanswered_late != cases[c].late || st.unanswered != cases[c].late)
			TEST_FAIL_("case %u (%s learned %d ms, answered after %d ms): %llu late, %llu missing, want %llu",
			           c, cases[c].cfg, cases[c].learn_ms, cases[c].delay_ms,
			           (unsigned long long)st.unanswered_late, (unsigned long long)st.unanswered,
			           (unsigned long long)cases[c].late);
		pol_engine_free(e);
	}
}

/* A scripted run of pa: one decision every `gap_ms`, answered after lat(t) (reported as its
 * latency), or never once t >= hang_at; ticks every 50 ms. Returns when pa's breaker
 * first opened (0: never). The spread: each answer's latency is the median times one of
 * ten factors (0.5 .. 2), drawn by an LCG. */
struct creep {
	uint64_t t0, ramp_us, end_us, hang_at; /* hang_at 0: never */
	int from_ms, to_ms, gap_ms;
};

static uint64_t run_creep(struct pol_engine *e, const struct creep *k)
{
	static const double factor[10] = { 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.25, 1.4, 1.6, 2.0 };
	static struct { uint64_t at; int lat; struct pay_verdict v; } pend[1024];
	unsigned n = 0, i;
	uint64_t t, next = k->t0, rng = 12345, opened = 0;

	for (t = k->t0; t <= k->end_us; t += 10 * MS) {
		for (i = 0; i < n;) { /* answers due */
			if (pend[i].at <= t) {
				struct pay_outcome o = pol_test_answer(&pend[i].v, 200, pend[i].lat);

				pol_observe(e, 0, &o, t);
				pol_quiesce(e, 0);
				pend[i] = pend[--n];
			} else {
				i++;
			}
		}
		if (t >= next) {
			double f = t - k->t0 >= k->ramp_us ? 1.0 : (double)(t - k->t0) / (double)k->ramp_us;
			struct pay_verdict v = decide(e, t);

			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			if (!strcmp(v.backend, "pa") && (!k->hang_at || t < k->hang_at) && n < 1024) {
				pend[n].lat = (int)((k->from_ms + f * (k->to_ms - k->from_ms)) * factor[(rng >> 33) % 10]);
				pend[n].at = t + (uint64_t)pend[n].lat * MS;
				pend[n++].v = v;
			}
			next += (uint64_t)k->gap_ms * MS;
		}
		if (t % (50 * MS) == 0) {
			pol_tick(e, t);
			if (!opened && !strcmp(pol_test_breaker(e, 0, t), "open"))
				opened = t;
		}
	}
	return opened;
}

/* Latency that creeps from 200 ms to a 1.5 s median over a minute and stays there for
 * another, no errors, one payment every 50 ms. With the default grace (2 s, and 4 x the
 * learned latency) no answer is missing and the breaker never opens. With one grace for
 * all (grace_latency 0: the design before), the answers slower than 2 s (3 in 10) are
 * judged missing; fed as failures in a row by answer order (reorder_s 0, the design
 * before) they opened the breaker; by send order they are not in a row (calls sent
 * after them came back) and count in the rates only (off here). */
TEST(latency_creep_never_opens)
{
	static const struct { const char *policy, *cfg; bool opens; } cases[] = {
		{ POLICY_PA, "", false },
		{ POLICY_PA, "grace_latency = 0;", false },
		{ POLICY_PA_ANSWER_ORDER, "grace_latency = 0;", true },
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct pol_engine *e = engine_for(cases[c].policy, cases[c].cfg);
		struct creep k = { 10 * SEC, 60 * SEC, 130 * SEC, 0, 200, 1500, 50 };
		struct pol_stats st;
		uint64_t opened = run_creep(e, &k);

		pol_engine_stats(e, k.end_us, &st);
		if ((opened != 0) != cases[c].opens)
			TEST_FAIL_("case %u (%s): breaker opened at %.1f s (0: never), want %s; %llu missing, %llu fed",
			           c, cases[c].cfg, opened ? (double)(opened - k.t0) / 1e6 : 0.0,
			           cases[c].opens ? "opened" : "never", (unsigned long long)st.unanswered,
			           (unsigned long long)st.unanswered_fed);
		if (c == 0)
			ASSERT_EQ(st.unanswered_fed, 0);
		pol_engine_free(e);
	}
}

/* A hung backend still opens its breaker within its grace and a few ticks: pa answers at a
 * 1.5 s median for 30 s (learned latency about 1.6 s: grace about 6.5 s, under the 8 s
 * cap), then stops answering; with the cap at 3 s, within 3 s; a fast one (200 ms) within
 * grace_ms (2 s). Never before grace_ms. */
TEST(hung_slow_backend_opens_within_grace)
{
	static const struct { const char *cfg; int lat_ms; uint64_t min_us, max_us; } cases[] = {
		{ "", 1500, 4 * SEC, 8 * SEC + 500 * MS },
		{ "max_grace_ms = 3000;", 1500, 2 * SEC, 3 * SEC + 500 * MS },
		{ "", 200, 2 * SEC, 2 * SEC + 500 * MS }, /* fast: grace_ms */
	};
	unsigned c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct pol_engine *e = engine_pa(cases[c].cfg);
		struct creep k = { 10 * SEC, 20 * SEC, 60 * SEC, 40 * SEC, cases[c].lat_ms, cases[c].lat_ms, 50 };
		uint64_t opened = run_creep(e, &k);

		if (opened < k.hang_at + cases[c].min_us || opened > k.hang_at + cases[c].max_us)
			TEST_FAIL_("case %u (%s): hung at %.1f s, breaker opened at %.1f s (0: never), want %.1f-%.1f s later",
			           c, cases[c].cfg, (double)(k.hang_at - k.t0) / 1e6,
			           opened ? (double)(opened - k.t0) / 1e6 : 0.0, (double)cases[c].min_us / 1e6,
			           (double)cases[c].max_us / 1e6);
		pol_engine_free(e);
	}
}

/* The policy key: defaults, and file:line errors. */
TEST(loader_unanswered)
{
	static const struct { const char *u; const char *err; } bad[] = {
		{ "grace_ms = 50;", "test:9: 'grace_ms' = 50 is out of range" },
		{ "grace_ms = 60000;", "test:9: 'grace_ms' = 60000 is out of range" },
		{ "min_share = 0.0;", "test:9: 'min_share' = 0 is out of range" },
		{ "enabled = 1;", "test:9: 'enabled' must be a boolean" },
		{ "delay_ms = 1;", "test:9: unknown key 'delay_ms' in unanswered" },
		{ "grace_latency = -1.0;", "test:9: 'grace_latency' = -1 is out of range" },
		{ "max_grace_ms = 100000;", "test:9: 'max_grace_ms' = 100000 is out of range" },
	};
	char text[8192];
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy *p;

		snprintf(text, sizeof(text), "%slearning = { unanswered = { %s }; };\n", POLICY, bad[i].u);
		p = pol_load_string(text, "test", err, sizeof(err));
		if (p || strncmp(err, bad[i].err, strlen(bad[i].err)))
			TEST_FAIL_("case %u: got '%s', want '%s...'", i, p ? "(loaded)" : err, bad[i].err);
		pol_free(p);
	}
}

/* An answer on its way: decision k (of vs[]; -1 once delivered), its status and latency,
 * due at `at`. */
struct due {
	uint64_t at;
	int k, status, lat;
};

/* Call k, sent at t, answers `status` after 100 ms, or after fail_ms if it failed. */
static void due_answer(struct due *d, int k, uint64_t t, int status, int fail_ms)
{
	d->k = k;
	d->status = status;
	d->lat = status == 200 ? 100 : fail_ms;
	d->at = t + (uint64_t)d->lat * MS;
}

/* The answers of due[head..n) due by t, delivered in answer order; returns the new head
 * (the first not delivered). */
static int deliver_due(struct pol_engine *e, const struct pay_verdict *vs, struct due *due, int head, int n,
                       uint64_t t)
{
	for (;;) {
		int best = -1, j;
		struct pay_outcome o;

		for (j = head; j < n; j++)
			if (due[j].k >= 0 && due[j].at <= t && (best < 0 || due[j].at < due[best].at))
				best = j;
		if (best < 0)
			return head;
		o = pol_test_answer(&vs[due[best].k], due[best].status, due[best].lat);
		pol_observe(e, 0, &o, due[best].at);
		pol_quiesce(e, 0);
		due[best].k = -1;
		while (head < n && due[head].k < 0)
			head++;
	}
}

/* The segment tests' policy: pa (cheaper) and pb on two accounts of one entity, serving
 * `currencies` (a libconfig list's items), one checkout class with `explore`, then
 * `tail` (more settings). */
static const char *seg_text(const char *currencies, const char *explore, const char *tail)
{
	static char text[4096];

	snprintf(text, sizeof(text),
	         "fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 8.0; fixed = 30; } );\n"
	         "backends = (\n"
	         " { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ %s ]; fee_schedule = \"a\"; },\n"
	         " { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ %s ]; fee_schedule = \"b\"; }\n"
	         ");\n"
	         "classes = ( { name = \"checkout\"; priority = -100; shed_order = 1; %s } );\n"
	         "classify = { default = \"checkout\"; };\n"
	         "%s",
	         currencies, currencies, explore, tail);
	return text;
}

static struct pol_engine *seg_engine(const char *currencies, const char *explore, const char *tail)
{
	return pol_test_engine(seg_text(currencies, explore, tail), 1);
}

/* A hang of one segment only (random world 1000089: debit cards time out on psp0, its
 * credit cards are answered): each 100 ms pa gets two Visa credit payments, answered in
 * 100 ms, and one Visa debit payment, answered `status` after `lat_ms` for 20 s (a 504
 * after 8 s is past the 2 s grace: late), then in 100 ms. The breaker never opens
 * (consecutive 1000, no rate rule) and the anomaly chart is off: only the segment's own
 * estimate can move it (pb's fee is 8 %, pa's 2.9 %: pb's payments all pass, pa's
 * debit ones count at a thinner level). Where the last debit payment before 20 s went, where the last
 * credit one went (pa: it stays), and where the last ones before 80 s went (pa: the
 * segment came back, by its count's decay alone: exploration is off here). Timeouts counted per segment (the default): debit moves
 * to pb and back; off (answer_half_life_s 0): debit stays on pa throughout; fast 503s
 * (an outage's) fail the payment there too and move debit alike. */
TEST(segment_timeouts_move_the_segment)
{
	static const struct {
		const char *learn;
		int status, lat_ms;
		const char *debit;
	} rows[] = {
		{ "", 504, 8000, "pb" },
		{ "answer_half_life_s = 0;", 504, 8000, "pa" },
		{ "", 503, 20, "pb" },
	};
	static struct pay_verdict vs[2400];
	static struct due due[2400];
	size_t r;

	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		char tail[256], debit20[8] = "", credit20[8] = "", debit80[8] = "", credit80[8] = "";
		struct pol_engine *e;
		uint64_t t0 = 10 * SEC, t;
		struct pay_request debit = pol_test_usd_charge(), credit = pol_test_usd_charge();
		int n = 0, i, head = 0;

		debit.card_funding = S("debit");
		snprintf(tail, sizeof(tail),
		         "breaker = { consecutive = 1000; failure_rate = 0.0; };\n"
		         "anomaly = { enabled = false; };\n"
		         "learning = { %s };\n",
		         rows[r].learn);
		e = seg_engine("\"usd\"", "explore = 0.0;", tail);
		ASSERT(e != NULL);
		for (t = t0; t < t0 + 80 * SEC; t += 50 * MS) {
			if ((t - t0) % (100 * MS) == 0 && n + 3 <= (int)(sizeof(vs) / sizeof(vs[0]))) {
				for (i = 0; i < 3; i++) {
					bool deb = i == 2, hung = deb && t < t0 + 20 * SEC;

					pol_decide(e, 0, deb ? &debit : &credit, t, &vs[n]);
					pol_quiesce(e, 0);
					if (t < t0 + 20 * SEC)
						snprintf(deb ? debit20 : credit20, 8, "%s", vs[n].backend);
					else
						snprintf(deb ? debit80 : credit80, 8, "%s", vs[n].backend);
					due_answer(&due[n], n, t, hung && !strcmp(vs[n].backend, "pa") ? rows[r].status : 200, rows[r].lat_ms);
					n++;
				}
			}
			head = deliver_due(e, vs, due, head, n, t);
			pol_tick(e, t);
		}
		ASSERT_STREQ(pol_test_breaker(e, 0, t), "closed");
		if (strcmp(debit20, rows[r].debit) || strcmp(credit20, "pa") || strcmp(debit80, "pa") || strcmp(credit80, "pa"))
			TEST_FAIL_("row %zu: at 20 s debit on %s (want %s), credit on %s (want pa); at 80 s debit on %s, "
			           "credit on %s (want pa)", r, debit20, rows[r].debit, credit20, debit80, credit80);
		pol_engine_free(e);
	}
}

/* A segment's hang is the segment's, not the backend's (breaker.scope_factor,
 * policy/learning.md "a segment's hang does not eject its backend"). pa, the cheaper,
 * gets one credit and two debit payments every 100 ms; from 10 s to 30 s the ones it
 * hangs (debit only, or everything) never answer and come back as 504s after `timeout
 * server` (8 s). Debit only: once the 504s collapsed debit's answered share on pa while
 * credit answers normally, the breaker does not trip; if the missing answers tripped it
 * first (they fill the window as the 504s come), it goes half-open at once and credit's
 * probes close it: open under a second, debit on pb, credit on pa. Without the rule
 * (scope_factor 0) the breaker opens and credit moves to pb too, for 20 s. Everything
 * hung: it opens at the same moment with the rule as without. Anomaly charts off: the
 * breaker and the answered share alone. */
TEST(segment_hang_keeps_breaker_closed)
{
	static const struct {
		bool all;            /* everything hangs, not only debit */
		double scope;        /* breaker.scope_factor */
		const char *credit;  /* credit's backend at 29 s */
		const char *debit;   /* debit's backend at 29 s */
		int open_min, open_max; /* ms open or half-open while the hang lasts */
	} rows[] = {
		{ false, 0.5, "pa", "pb", 0, 1000 },
		{ false, 0.0, "pb", "pb", 10000, 20000 },
		{ true, 0.0, "pb", "pb", 10000, 20000 },
		{ true, 0.5, "pb", "pb", 10000, 20000 }, /* and opens when row 2 did */
	};
	static struct pay_verdict vs[1300];
	static struct due due[1300];
	int prev_first = -2;
	size_t r;

	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		char tail[256], debit29[8] = "", credit29[8] = "";
		struct pol_engine *e;
		uint64_t t0 = 10 * SEC, t;
		struct pay_request debit = pol_test_usd_charge(), credit = pol_test_usd_charge();
		int n = 0, i, head = 0, first = -1, open_ms = 0;

		debit.card_funding = S("debit");
		snprintf(tail, sizeof(tail), "breaker = { scope_factor = %g; };\nanomaly = { enabled = false; };\n", rows[r].scope);
		e = seg_engine("\"usd\"", "explore = 0.0;", tail);
		ASSERT(e != NULL);
		for (t = t0; t < t0 + 40 * SEC; t += 50 * MS) {
			if ((t - t0) % (100 * MS) == 0 && n + 3 <= (int)(sizeof(vs) / sizeof(vs[0]))) {
				for (i = 0; i < 3; i++) {
					bool deb = i > 0, hang = (rows[r].all || deb) && t >= t0 + 10 * SEC && t < t0 + 30 * SEC;

					pol_decide(e, 0, deb ? &debit : &credit, t, &vs[n]);
					pol_quiesce(e, 0);
					if (t == t0 + 29 * SEC)
						snprintf(deb ? debit29 : credit29, 8, "%s", vs[n].backend);
					due_answer(&due[n], n, t, hang && !strcmp(vs[n].backend, "pa") ? 504 : 200, 8000);
					n++;
				}
			}
			head = deliver_due(e, vs, due, head, n, t);
			pol_tick(e, t);
			if (t >= t0 + 10 * SEC && t < t0 + 30 * SEC && strcmp(pol_test_breaker(e, 0, t), "closed")) {
				open_ms += 50;
				if (first < 0)
					first = (int)((t - t0 - 10 * SEC) / MS);
			}
		}
		if (strcmp(credit29, rows[r].credit) || strcmp(debit29, rows[r].debit))
			TEST_FAIL_("row %zu: at 29 s credit on %s (want %s), debit on %s (want %s)", r, credit29,
			           rows[r].credit, debit29, rows[r].debit);
		if (open_ms < rows[r].open_min || open_ms > rows[r].open_max)
			TEST_FAIL_("row %zu: open %d ms of the hang (want %d..%d)", r, open_ms, rows[r].open_min,
			           rows[r].open_max);
		if (rows[r].all && rows[r].scope > 0 && first != prev_first)
			TEST_FAIL_("row %zu: everything hung opens %d ms after the hang began, %d ms without the rule", r,
			           first, prev_first);
		prev_first = first;
		pol_engine_free(e);
	}
}

/* A segment's fast 5xx are the segment's, not the backend's (policy/learning.md "a
 * segment's brownout does not move its backend"). pa, the cheaper, gets one EUR payment
 * and two USD payments every 100 ms; from 10 s to 30 s half of what it answers (EUR only,
 * or everything) are fast 500s. EUR only: EUR moves to pb, USD stays on pa throughout and
 * the breaker stays closed (neither the breaker nor the error chart's penalty takes USD
 * away). Everything: the breaker opens and USD moves too. Default breaker and anomaly
 * settings; the 500s by a fixed hash of the decision's number. */
TEST(segment_brownout_moves_the_segment)
{
	static const struct {
		bool all;            /* everything browns out, not only EUR */
		const char *eur;     /* EUR's backend at 29 s */
		int usd_away_max;    /* USD payments sent to pb while it lasts, at most */
		bool opens;          /* pa's breaker opens while it lasts */
	} rows[] = {
		{ false, "pb", 0, false },
		{ true, "pb", 1000, true },
	};
	static struct pay_verdict vs[1300];
	static struct due due[1300];
	size_t r;

	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		char eur29[8] = "";
		struct pol_engine *e;
		uint64_t t0 = 10 * SEC, t;
		struct pay_request eur = pol_test_usd_charge(), usd = pol_test_usd_charge();
		int n = 0, i, head = 0, usd_away = 0;
		bool opened = false;

		eur.currency = S("eur");
		eur.card_country = S("DE");
		e = seg_engine("\"usd\", \"eur\"", "", "");
		ASSERT(e != NULL);
		for (t = t0; t < t0 + 40 * SEC; t += 50 * MS) {
			bool during = t >= t0 + 10 * SEC && t < t0 + 30 * SEC;

			if ((t - t0) % (100 * MS) == 0 && n + 3 <= (int)(sizeof(vs) / sizeof(vs[0]))) {
				for (i = 0; i < 3; i++) {
					bool is_eur = i == 0, fail = (rows[r].all || is_eur) && during &&
					                            ((uint32_t)n * 2654435761u >> 16 & 1);

					pol_decide(e, 0, is_eur ? &eur : &usd, t, &vs[n]);
					pol_quiesce(e, 0);
					if (t == t0 + 29 * SEC && is_eur)
						snprintf(eur29, 8, "%s", vs[n].backend);
					if (during && !is_eur && strcmp(vs[n].backend, "pa"))
						usd_away++;
					due_answer(&due[n], n, t, fail && !strcmp(vs[n].backend, "pa") ? 500 : 200, 30);
					n++;
				}
			}
			head = deliver_due(e, vs, due, head, n, t);
			pol_tick(e, t);
			if (during && strcmp(pol_test_breaker(e, 0, t), "closed"))
				opened = true;
		}
		if (strcmp(eur29, rows[r].eur) || usd_away > rows[r].usd_away_max || opened != rows[r].opens)
			TEST_FAIL_("row %zu: at 29 s EUR on %s (want %s); %d USD payments on pb (want at most %d); "
			           "breaker %s (want %s)", r, eur29, rows[r].eur, usd_away, rows[r].usd_away_max,
			           opened ? "opened" : "stayed closed", rows[r].opens ? "opened" : "stayed closed");
		pol_engine_free(e);
	}
}

/* A breaker scoped by a segment's hang (brk.scoped) is judged again from the new view
 * after a reload (review finding): a reload that switched the segment cells off
 * (answer_half_life_s = 0) kept the byte set for good, so a later outage of all of pa
 * (fast 500s on every payment) never opened its breaker and 450 payments went to it.
 * Debit hangs on pa from 10 s to 25 s (scoped), the policy is swapped at 24 s, then
 * everything on pa fails from 25 s to 40 s: the breaker must be out most of that time. */
TEST(scoped_breaker_cleared_by_reload)
{
	static const char *const tails[] = {
		"breaker = { scope_factor = 0.5; };\nanomaly = { enabled = false; };\n",
		"breaker = { scope_factor = 0.5; };\nanomaly = { enabled = false; };\nlearning = { answer_half_life_s = 0; };\n",
	};
	static struct pay_verdict vs[1300];
	static struct due due[1300];
	size_t r;

	for (r = 0; r < sizeof(tails) / sizeof(tails[0]); r++) {
		struct pol_engine *e = seg_engine("\"usd\"", "explore = 0.0;", tails[0]);
		uint64_t t0 = 10 * SEC, t;
		struct pay_request debit = pol_test_usd_charge(), credit = pol_test_usd_charge();
		int n = 0, i, head = 0, open_ms = 0;
		bool swapped = false;

		ASSERT(e != NULL);
		debit.card_funding = S("debit");
		for (t = t0; t < t0 + 40 * SEC; t += 50 * MS) {
			if (!swapped && t >= t0 + 24 * SEC) {
				struct policy *p = pol_load_string(seg_text("\"usd\"", "explore = 0.0;", tails[r]), "test", err,
				                                   sizeof(err));

				ASSERT(p != NULL);
				ASSERT_EQ(pol_engine_swap(e, p, err, sizeof(err)), 0);
				swapped = true;
			}
			if ((t - t0) % (100 * MS) == 0 && n + 3 <= (int)(sizeof(vs) / sizeof(vs[0]))) {
				for (i = 0; i < 3; i++) {
					bool deb = i > 0, on_pa, hang = deb && t >= t0 + 10 * SEC && t < t0 + 25 * SEC;

					pol_decide(e, 0, deb ? &debit : &credit, t, &vs[n]);
					pol_quiesce(e, 0);
					on_pa = !strcmp(vs[n].backend, "pa");
					vs[n].backend = on_pa ? "pa" : "pb"; /* the view's names go with the reload */
					due_answer(&due[n], n, t, !on_pa ? 200 : hang ? 504 : t >= t0 + 25 * SEC ? 500 : 200,
					           hang ? 8000 : 30);
					n++;
				}
			}
			head = deliver_due(e, vs, due, head, n, t);
			pol_tick(e, t);
			if (t >= t0 + 25 * SEC && strcmp(pol_test_breaker(e, 0, t), "closed"))
				open_ms += 50;
		}
		if (open_ms < 10000)
			TEST_FAIL_("row %zu: pa's breaker out only %d ms of its 15 s outage after the reload", r, open_ms);
		pol_engine_free(e);
	}
}

int main(void)
{
	RUN(hung_backend_opens_after_grace);
	RUN(queued_decisions_not_waited_for);
	RUN(late_answers_count_once);
	RUN(guards_keep_breaker_closed);
	RUN(min_calls_then_whole_run_fed);
	RUN(missing_among_answers_not_in_a_row);
	RUN(queued_tick_between_answers_not_in_a_row);
	RUN(slow_tail_not_in_a_row);
	RUN(probe_unanswered_reopens_answered_closes);
	RUN(other_view_and_no_decision);
	RUN(per_backend_grace_judging);
	RUN(latency_creep_never_opens);
	RUN(hung_slow_backend_opens_within_grace);
	RUN(loader_unanswered);
	RUN(segment_timeouts_move_the_segment);
	RUN(segment_hang_keeps_breaker_closed);
	RUN(segment_brownout_moves_the_segment);
	RUN(scoped_breaker_cleared_by_reload);
	return test_summary();
}
