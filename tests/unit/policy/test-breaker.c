/* test-breaker.c: circuit breaker, as tables of (time, event) -> expected state. */
#include "breaker.h"
#include "outcome.h"
#include "test.h"

#define SEC 1000000ull
#define MS  1000ull

enum step_op {
	OP_EV,    /* brk_record(arg = enum brk_event) */
	OP_TICK,  /* brk_update */
	OP_ALLOW, /* brk_allow; ret = expected 0/1 */
	OP_OVR,   /* brk_set_override(arg = enum brk_override) */
};

struct step {
	uint64_t t_ms;
	enum step_op op;
	int arg;
	enum brk_state want; /* effective state after the step */
	int ret;             /* expected return for OP_ALLOW / OP_EV (changed), -1: any */
};

#define F BRK_EV_FAILURE
#define S BRK_EV_SUCCESS
#define W BRK_EV_SLOW

static void run_steps(struct brk *b, const struct brk_cfg *c, const struct step *st, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t now = st[i].t_ms * MS;
		int r = -1;
		enum brk_state s;

		switch (st[i].op) {
		case OP_EV:    r = brk_record(b, c, (enum brk_event)st[i].arg, true, now); break;
		case OP_TICK:  brk_update(b, c, true, now); break;
		case OP_ALLOW: r = brk_allow(b, c, now); break;
		case OP_OVR:   brk_set_override(b, c, (enum brk_override)st[i].arg, now); break;
		}
		s = brk_state_at(b, now);
		if (s != st[i].want || (st[i].ret >= 0 && r != st[i].ret))
			TEST_FAIL_("step %zu (t=%llu ms): state %s ret %d, want %s ret %d", i,
			           (unsigned long long)st[i].t_ms, brk_state_name(s), r,
			           brk_state_name(st[i].want), st[i].ret);
	}
}

#define RUN_STEPS(b, c, tbl) run_steps((b), (c), (tbl), sizeof(tbl) / sizeof((tbl)[0]))

static void cfg_test(struct brk_cfg *c)
{
	brk_cfg_default(c);
	c->open_base_us = 30000000; /* the tables below were written for a 30 s first open time */
	ASSERT(brk_cfg_check(c) == NULL);
}

/* 5 consecutive failures at t=1..5 s -> open at 5 s, still open at 34.999 s, half-open
 * at 35 s, 3 probes admitted, 3 probe successes -> closed. */
TEST(breaker_consecutive_trip_and_probe)
{
	static const struct step st[] = {
		{ 1000, OP_EV, F, BRK_CLOSED, 0 },
		{ 2000, OP_EV, F, BRK_CLOSED, 0 },
		{ 3000, OP_EV, F, BRK_CLOSED, 0 },
		{ 4000, OP_EV, F, BRK_CLOSED, 0 },
		{ 5000, OP_EV, F, BRK_OPEN, 1 },
		{ 5001, OP_ALLOW, 0, BRK_OPEN, 0 },
		{ 20000, OP_EV, F, BRK_OPEN, 0 },  /* late answers are ignored */
		{ 20001, OP_EV, S, BRK_OPEN, 0 },
		{ 34000, OP_TICK, 0, BRK_OPEN, -1 },
		{ 34999, OP_ALLOW, 0, BRK_OPEN, 0 },
		{ 35000, OP_TICK, 0, BRK_HALF_OPEN, -1 },
		{ 35000, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 35001, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 35002, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 35003, OP_ALLOW, 0, BRK_HALF_OPEN, 0 }, /* only 3 probes */
		{ 35100, OP_EV, S, BRK_HALF_OPEN, 0 },
		{ 35200, OP_EV, BRK_EV_NONE, BRK_HALF_OPEN, 0 },
		{ 35300, OP_EV, S, BRK_HALF_OPEN, 0 },
		{ 35400, OP_EV, S, BRK_CLOSED, 1 },
		{ 35500, OP_ALLOW, 0, BRK_CLOSED, 1 },
		/* four failures, one success, four failures: never five in a row */
		{ 36000, OP_EV, F, BRK_CLOSED, 0 }, { 36100, OP_EV, F, BRK_CLOSED, 0 },
		{ 36200, OP_EV, F, BRK_CLOSED, 0 }, { 36300, OP_EV, F, BRK_CLOSED, 0 },
		{ 36400, OP_EV, S, BRK_CLOSED, 0 },
		{ 36500, OP_EV, F, BRK_CLOSED, 0 }, { 36600, OP_EV, F, BRK_CLOSED, 0 },
		{ 36700, OP_EV, F, BRK_CLOSED, 0 }, { 36800, OP_EV, F, BRK_CLOSED, 0 },
	};
	struct brk_cfg c;
	struct brk b;

	cfg_test(&c);
	brk_init(&b, &c, 42, 0);
	RUN_STEPS(&b, &c, st);
	ASSERT_EQ(b.trips, 1);
}

/* The half-open batch is judged by the window's rates over all 3 probes: one failure
 * (33 %) closes it, a second (67 % >= 50 %) reopens at once for twice as long; 3 slow
 * probes (100 % >= 80 %) reopen too. */
TEST(breaker_half_open_reopens)
{
	static const struct step st[] = {
		{ 1000, OP_EV, F, BRK_CLOSED, 0 }, { 1001, OP_EV, F, BRK_CLOSED, 0 },
		{ 1002, OP_EV, F, BRK_CLOSED, 0 }, { 1003, OP_EV, F, BRK_CLOSED, 0 },
		{ 1004, OP_EV, F, BRK_OPEN, 1 },
		{ 31004, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 31100, OP_EV, F, BRK_HALF_OPEN, 0 },    /* 1 of 3: under 50 % */
		{ 31200, OP_EV, F, BRK_OPEN, 1 },         /* 2 of 3: reopened before the 3rd, 60 s */
		{ 91199, OP_TICK, 0, BRK_OPEN, -1 },
		{ 91200, OP_TICK, 0, BRK_HALF_OPEN, -1 },
		{ 91300, OP_EV, W, BRK_HALF_OPEN, 0 },
		{ 91400, OP_EV, W, BRK_HALF_OPEN, 0 },
		{ 91500, OP_EV, W, BRK_OPEN, 1 },         /* 3 slow of 3: 120 s */
		{ 211499, OP_TICK, 0, BRK_OPEN, -1 },
		{ 211500, OP_TICK, 0, BRK_HALF_OPEN, -1 },
		{ 211600, OP_EV, S, BRK_HALF_OPEN, 0 },
		{ 211700, OP_EV, F, BRK_HALF_OPEN, 0 },   /* one failure in the batch ... */
		{ 211800, OP_EV, S, BRK_CLOSED, 1 },      /* ... is under the rate: closed */
	};
	struct brk_cfg c;
	struct brk b;

	cfg_test(&c);
	brk_init(&b, &c, 1, 0);
	RUN_STEPS(&b, &c, st);
	ASSERT_EQ(b.trips, 3);
}

/* With the failure rate off, a batch fails at its first failure. */
TEST(breaker_half_open_rate_off)
{
	static const struct step st[] = {
		{ 1000, OP_EV, F, BRK_CLOSED, 0 }, { 1001, OP_EV, F, BRK_CLOSED, 0 },
		{ 1002, OP_EV, F, BRK_CLOSED, 0 }, { 1003, OP_EV, F, BRK_CLOSED, 0 },
		{ 1004, OP_EV, F, BRK_OPEN, 1 },
		{ 31004, OP_TICK, 0, BRK_HALF_OPEN, -1 },
		{ 31100, OP_EV, S, BRK_HALF_OPEN, 0 },
		{ 31200, OP_EV, F, BRK_OPEN, 1 },
	};
	struct brk_cfg c;
	struct brk b;

	cfg_test(&c);
	c.failure_permille = 0;
	brk_init(&b, &c, 1, 0);
	RUN_STEPS(&b, &c, st);
	ASSERT_EQ(b.trips, 2);
}

/* Failure-rate trip over the window: alternating S/F never makes 5 in a row, but at the
 * 20th call (min_calls) the rate is 50 % -> open. */
TEST(breaker_failure_rate)
{
	struct brk_cfg c;
	struct brk b;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 7, 0);
	for (i = 1; i <= 20; i++) {
		uint64_t now = (uint64_t)i * 100 * MS;
		bool ch = brk_record(&b, &c, (i % 2) ? S : F, true, now);

		ASSERT_EQ(ch, i == 20);
		ASSERT_EQ(brk_state_at(&b, now), i < 20 ? BRK_CLOSED : BRK_OPEN);
	}
	/* 45 %: stays closed */
	brk_init(&b, &c, 7, 0);
	for (i = 1; i <= 40; i++)
		brk_record(&b, &c, ((i % 20) & 1) && (i % 20) < 18 ? F : S, true, (uint64_t)i * 100 * MS);
	ASSERT_EQ(b.calls, 40);
	ASSERT_EQ(b.failures, 18);
	ASSERT_EQ(brk_state_at(&b, 4 * SEC), BRK_CLOSED);
}

/* Slow-call rate: 80 % slow over >= 20 calls opens, 75 % does not. */
TEST(breaker_slow_rate)
{
	struct brk_cfg c;
	struct brk b;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 20; i++)
		brk_record(&b, &c, (i % 4 == 0) ? S : W, true, (uint64_t)i * 10 * MS);
	ASSERT_EQ(brk_state_at(&b, SEC), BRK_CLOSED);
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 20; i++)
		brk_record(&b, &c, (i % 5 == 0) ? S : W, true, (uint64_t)i * 10 * MS);
	ASSERT_EQ(brk_state_at(&b, SEC), BRK_OPEN);
}

/* Old buckets leave the window: 12 failures at t=0..1 s and 12 at t=11..12 s are never
 * 20 calls in one 10 s window, so the rate never trips; the same 24 calls within 10 s
 * do. */
TEST(breaker_window_expiry)
{
	struct brk_cfg c;
	struct brk b;
	int i;

	cfg_test(&c);
	c.consecutive = 0;
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 12; i++)
		brk_record(&b, &c, F, true, (uint64_t)i * 80 * MS);
	ASSERT_EQ(b.calls, 12);
	brk_update(&b, &c, true, 11 * SEC);
	ASSERT_EQ(b.calls, 0);
	for (i = 0; i < 12; i++)
		brk_record(&b, &c, F, true, 11 * SEC + (uint64_t)i * 80 * MS);
	ASSERT_EQ(brk_state_at(&b, 12 * SEC), BRK_CLOSED);
	/* partial roll: t=5 s keeps t=0..0.9 s (window covers 10 buckets) */
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 12; i++)
		brk_record(&b, &c, F, true, (uint64_t)i * 80 * MS);
	for (i = 0; i < 8; i++)
		brk_record(&b, &c, F, true, 5 * SEC + (uint64_t)i * 80 * MS);
	ASSERT_EQ(brk_state_at(&b, 6 * SEC), BRK_OPEN);
}

/* A storm of customer declines, soft declines, lock conflicts and rate limits is
 * classified first and never opens the breaker; the same harness with 5 PSP errors
 * does (so the test can fail). */
TEST(breaker_decline_storm)
{
	static const struct { int64_t status; const char *decline, *rl; } mix[] = {
		{ 402, "insufficient_funds", NULL }, { 402, "incorrect_cvc", NULL },
		{ 402, "generic_decline", NULL },    { 402, "do_not_honor", NULL },
		{ 429, NULL, NULL },                 { 429, NULL, "global-rate" },
		{ 400, NULL, NULL },
	};
	static struct oc_rule mem[64];
	struct oc_table t;
	struct brk_cfg c;
	struct brk b;
	int i;

	ASSERT_EQ(oc_table_init(&t, mem, 64), 0);
	cfg_test(&c);
	brk_init(&b, &c, 3, 0);
	for (i = 0; i < 5000; i++) {
		struct pay_outcome o = { .status = mix[i % 7].status, .latency_ms = 100 };
		struct oc_class oc;

		if (mix[i % 7].decline)
			o.decline = (struct pay_str){ mix[i % 7].decline,
			                              (uint32_t)strlen(mix[i % 7].decline) };
		if (mix[i % 7].rl)
			o.rl_reason = (struct pay_str){ mix[i % 7].rl, (uint32_t)strlen(mix[i % 7].rl) };
		oc = oc_classify(&t, &o, 2000);
		brk_record(&b, &c, brk_event_of(&oc), true, (uint64_t)i * MS);
		ASSERT_EQ(brk_state_at(&b, (uint64_t)i * MS), BRK_CLOSED);
	}
	ASSERT_EQ(b.failures, 0);
	for (i = 0; i < 5; i++) {
		struct pay_outcome o = { .status = 503, .latency_ms = 10 };
		struct oc_class oc = oc_classify(&t, &o, 2000);

		brk_record(&b, &c, brk_event_of(&oc), true, 5 * SEC + (uint64_t)i * MS);
	}
	ASSERT_EQ(brk_state_at(&b, 6 * SEC), BRK_OPEN);
}

/* Trip k opens for 30 s * 2^(k-1), capped at 300 s; after forget_us closed, back to 30. */
TEST(breaker_backoff_doubles_to_cap)
{
	static const uint64_t want_s[] = { 30, 60, 120, 240, 300, 300, 300 };
	struct brk_cfg c;
	struct brk b;
	uint64_t now = SEC;
	size_t k;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 9, 0);
	for (i = 0; i < 5; i++)
		brk_record(&b, &c, F, true, now);
	for (k = 0; k < sizeof(want_s) / sizeof(want_s[0]); k++) {
		ASSERT_EQ(brk_state_at(&b, now), BRK_OPEN);
		ASSERT_EQ(brk_retry_in_us(&b, now), want_s[k] * SEC);
		now += want_s[k] * SEC;
		ASSERT_EQ(brk_update(&b, &c, true, now), BRK_HALF_OPEN);
		ASSERT(brk_allow(&b, &c, now));
		brk_record(&b, &c, F, true, now + MS);
		ASSERT_EQ(brk_state_at(&b, now + MS), BRK_HALF_OPEN); /* 1 of 3 failed */
		brk_record(&b, &c, F, true, now + 2 * MS);             /* 2 of 3: reopened */
		now += 2 * MS;
	}
	/* recover, stay closed 10 min, trip again: 30 s */
	now += 300 * SEC;
	brk_update(&b, &c, true, now);
	for (i = 0; i < 3; i++)
		brk_record(&b, &c, S, true, now);
	ASSERT_EQ(brk_state_at(&b, now), BRK_CLOSED);
	ASSERT_EQ(b.trips, 8);
	now += 600 * SEC;
	brk_update(&b, &c, true, now);
	ASSERT_EQ(b.trips, 0);
	for (i = 0; i < 5; i++)
		brk_record(&b, &c, F, true, now);
	ASSERT_EQ(brk_retry_in_us(&b, now), 30 * SEC);
}

/* The open time doubles with failed probe batches in a row, not with trips: a breaker
 * whose probes passed and that trips again (a 30 % brownout: 3 probes pass, 5 failures
 * in a row follow) opens for the base time again, so that traffic returns soon after
 * the repair; failed batches still back off. Table, open_base 30 s (the re-trips by
 * consecutive failures, the batches as in breaker_backoff_doubles_to_cap):
 *   trip 1 at 1 s: 30 s | batch fails at 31 s: 60 s | batch passes at 91 s: closed |
 *   trip 3 at 95 s: 30 s, not 120 | batch fails at 125 s: 60 s | fails at 185 s: 120 s |
 *   passes at 305 s | trip 6 at 306 s: 30 s. */
TEST(breaker_retrip_after_passed_probes_not_doubled)
{
	static const struct {
		uint64_t at_s;
		char what;          /* t: 5 failures in a row; f: a failed batch; p: a passed one */
		uint64_t want_open_s; /* retry in, after it; 0: closed */
	} rows[] = {
		{ 1, 't', 30 }, { 31, 'f', 60 }, { 91, 'p', 0 }, { 95, 't', 30 },
		{ 125, 'f', 60 }, { 185, 'f', 120 }, { 305, 'p', 0 }, { 306, 't', 30 },
	};
	struct brk_cfg c;
	struct brk b;
	size_t k;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 9, 0);
	for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		uint64_t now = rows[k].at_s * SEC;

		brk_update(&b, &c, true, now);
		for (i = 0; i < (rows[k].what == 't' ? 5 : 3); i++)
			brk_record(&b, &c, rows[k].what == 'p' ? S : F, true, now);
		if (rows[k].what == 't' || rows[k].what == 'f')
			ASSERT_EQ(brk_state_at(&b, now), BRK_OPEN);
		else
			ASSERT_EQ(brk_state_at(&b, now), BRK_CLOSED);
		if (brk_retry_in_us(&b, now) != rows[k].want_open_s * SEC)
			TEST_FAIL_("row %zu (%c at %llu s): open for %llu s, want %llu", k, rows[k].what,
			           (unsigned long long)rows[k].at_s,
			           (unsigned long long)(brk_retry_in_us(&b, now) / SEC),
			           (unsigned long long)rows[k].want_open_s);
	}
	ASSERT_EQ(b.trips, 6);
}

/* Calls sent to an open backend since it opened (pinned there: the account holds the
 * object or the first attempt) and answered well, max(min_calls, probes) of them in a
 * row, cut an open time longer than the first one short: half-open at once, the probes
 * then decide. The first open time stands (it is the brownout's hysteresis); a failure or
 * a slow call starts the run over; an answer to a call sent before the opening teaches
 * nothing. open_base 30 s, min_calls 4; trip at 1 s (open until 31 s), the batch fails at
 * 31 s (open 60 s, until 91 s). Rows: sent, answered, event, the state after. */
TEST(breaker_pinned_calls_cut_a_doubled_open)
{
	static const struct { uint64_t sent_ms, at_ms; enum brk_event ev; enum brk_state want; } table[] = {
		{ 2000, 2100, S, BRK_OPEN }, { 3000, 3100, S, BRK_OPEN }, { 4000, 4100, S, BRK_OPEN },
		{ 4500, 4600, S, BRK_OPEN },
		{ 5000, 30900, S, BRK_OPEN },  /* 5 in a row within the first open time: it stands */
		/* 31 s: half-open, the batch fails: open since 31.002 s */
		{ 30000, 40000, S, BRK_OPEN }, /* sent before it opened: nothing */
		{ 40000, 40200, S, BRK_OPEN }, { 41000, 41200, S, BRK_OPEN }, { 42000, 42200, S, BRK_OPEN },
		{ 43000, 43200, S, BRK_OPEN }, /* 4 in a row, but only 12 s in */
		{ 50000, 58000, F, BRK_OPEN }, /* a timeout: the run is over */
		{ 59000, 59300, S, BRK_OPEN }, { 60000, 60300, W, BRK_OPEN }, /* slow: over */
		{ 61000, 61100, S, BRK_OPEN }, { 61200, 61300, S, BRK_OPEN }, { 61500, 61600, S, BRK_OPEN },
		{ 62000, 62100, S, BRK_HALF_OPEN }, /* 4 in a row, 31 s in: half-open, not at 91 s */
	};
	struct brk_cfg c;
	struct brk b;
	char err[160];
	size_t i;
	int k;

	cfg_test(&c);
	ASSERT_EQ(c.probes, 3);
	c.min_calls = 4;
	brk_init(&b, &c, 7, 0);
	for (k = 0; k < 5; k++)
		brk_record_sent(&b, &c, F, SEC, true, SEC);
	ASSERT_EQ(brk_retry_in_us(&b, SEC), 30 * SEC);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (i == 5) {
			ASSERT_EQ(brk_update(&b, &c, true, 31 * SEC), BRK_HALF_OPEN);
			for (k = 0; k < 2; k++)
				brk_record_sent(&b, &c, F, 31 * SEC, true, 31 * SEC + (uint64_t)(k + 1) * MS);
			ASSERT_EQ(brk_retry_in_us(&b, 31 * SEC + 2 * MS), 60 * SEC);
		}
		brk_record_sent(&b, &c, table[i].ev, table[i].sent_ms * MS, true, table[i].at_ms * MS);
		if (brk_state_at(&b, table[i].at_ms * MS) != table[i].want)
			TEST_FAIL_("row %zu: %s, want %s", i, brk_state_name(brk_state_at(&b, table[i].at_ms * MS)),
			           brk_state_name(table[i].want));
		ASSERT_EQ(brk_verify(&b, err, sizeof(err)), 0);
	}
	/* the pinned calls that came back well are the latest such sends too: a failure sent
	 * before them and answered later is not in a row (brk_record_sent, reorder_us) */
	ASSERT_EQ(b.ok_sent_us, 62000 * MS);
	/* the probes decide: they pass, it closes */
	for (k = 0; k < 3; k++) {
		ASSERT(brk_allow(&b, &c, 62200 * MS));
		brk_record_sent(&b, &c, S, 62200 * MS, true, 62500 * MS);
	}
	ASSERT_EQ(brk_state_at(&b, 62500 * MS), BRK_CLOSED);
}

/* Jitter: only lengthens, by less than jitter_permille, reproducible per seed, differs
 * across seeds, never beyond the cap. */
TEST(breaker_jitter)
{
	struct brk_cfg c;
	struct brk b1, b2;
	uint64_t seed, distinct = 0, prev = 0;

	cfg_test(&c);
	c.jitter_permille = 200;
	for (seed = 1; seed <= 64; seed++) {
		uint64_t d;

		brk_init(&b1, &c, seed, 0);
		brk_init(&b2, &c, seed, 0);
		d = brk_open_time(&b1, &c, 1);
		ASSERT_EQ(d, brk_open_time(&b2, &c, 1));
		ASSERT_GE(d, 30 * SEC);
		ASSERT(d < 36 * SEC);
		ASSERT_LE(brk_open_time(&b1, &c, 4), 300 * SEC);
		ASSERT_GE(brk_open_time(&b1, &c, 4), 240 * SEC);
		ASSERT_EQ(brk_open_time(&b1, &c, 5), 300 * SEC);
		ASSERT_EQ(brk_open_time(&b1, &c, 1000), 300 * SEC);
		distinct += d != prev;
		prev = d;
	}
	ASSERT_GE(distinct, 60);
	c.jitter_permille = 0;
	ASSERT_EQ(brk_open_time(&b1, &c, 1), 30 * SEC);
}

static void trip(struct brk *b, const struct brk_cfg *c, bool may_open, uint64_t now)
{
	int i;

	for (i = 0; i < 5; i++)
		brk_record(b, c, F, may_open, now);
}

/* Ejection cap: with 10 backends and 200 permille, two may be ejected; the third one to
 * trip is degraded, and opens once an ejected one has recovered. */
TEST(breaker_ejection_cap)
{
	struct brk_cfg c;
	struct brk b[10];
	const struct brk *all[10];
	uint64_t now = SEC;
	int i;

	cfg_test(&c);
	for (i = 0; i < 10; i++) {
		brk_init(&b[i], &c, (uint64_t)i, 0);
		all[i] = &b[i];
	}
	for (i = 0; i < 3; i++)
		trip(&b[i], &c, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_state_at(&b[0], now), BRK_OPEN);
	ASSERT_EQ(brk_state_at(&b[1], now), BRK_OPEN);
	ASSERT_EQ(brk_state_at(&b[2], now), BRK_DEGRADED);
	ASSERT(brk_allow(&b[2], &c, now)); /* degraded still serves */
	/* half-open still counts as ejected (b[2] still failing: its run of 1 s has left the
	 * window by now, failing means failures now) */
	now += 30 * SEC;
	brk_update(&b[0], &c, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_state_at(&b[0], now), BRK_HALF_OPEN);
	trip(&b[2], &c, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_update(&b[2], &c, brk_may_open(all, 10, 200, now), now), BRK_DEGRADED);
	/* b[0] recovers: now b[2], still failing, may open */
	for (i = 0; i < 3; i++)
		brk_record(&b[0], &c, S, true, now);
	ASSERT_EQ(brk_state_at(&b[0], now), BRK_CLOSED);
	brk_record(&b[2], &c, F, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_state_at(&b[2], now), BRK_OPEN);
	/* a degraded breaker whose failures stop goes back to closed */
	trip(&b[3], &c, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_state_at(&b[3], now), BRK_DEGRADED);
	brk_record(&b[3], &c, S, brk_may_open(all, 10, 200, now), now);
	ASSERT_EQ(brk_state_at(&b[3], now), BRK_CLOSED);
	/* small groups: max(1, n * share) */
	ASSERT(brk_may_open(all + 3, 3, 100, now));
	ASSERT(!brk_may_open(all, 3, 100, now)); /* b[1] is open */
	ASSERT(!brk_may_open(all + 3, 3, 0, now));
	/* forced open counts */
	brk_set_override(&b[4], &c, BRK_OVR_OPEN, now);
	ASSERT(!brk_may_open(all + 3, 3, 100, now));
}

/* `calls` answers at 10 ms apart from t: `fail_pct` % of them failures, spread (a failure
 * whenever the running share is below it), the cap asked of all[] each time. Returns the
 * time after the last. */
static uint64_t feed(struct brk *b, const struct brk_cfg *c, struct brk *const *all, int calls, int fail_pct,
                     uint64_t t)
{
	int i, failed = 0;

	for (i = 0; i < calls; i++, t += 10 * MS) {
		bool f = failed * 100 < fail_pct * (i + 1);

		failed += f;
		brk_record(b, c, f ? F : S, brk_may_open((const struct brk *const *)all, 2, 500, t), t);
	}
	return t;
}

/* The cap's exchange (brk_exchange): two backends, one may be out (max_ejected 0.5). pa
 * opens first on `a_pct` % failures over 20 calls; then pb fails `b_pct` % of `b_calls`
 * and, the cap full, is degraded. Whether pa closes to make room and pb opens: a backend
 * gone dark takes the place of one out for a partial failure (row 1); not a backend
 * failing less than 90 % (row 2), not when pa was forced open (row 3) or failed nearly
 * as badly (row 4: no ping-pong between two dead backends), not on a window thinner than
 * min_calls (row 5: five in a row); after an exchange, pa failing as badly again stays
 * in (row 6: pa's new opening share is 100 %, pb's 100 % is not 20 points above it). */
TEST(breaker_exchange)
{
	static const struct {
		int a_pct, b_pct, b_calls;
		bool a_forced, want;
	} rows[] = {
		{ 60, 100, 20, false, true },
		{ 60, 70, 20, false, false },
		{ 60, 100, 20, true, false },
		{ 100, 100, 20, false, false },
		{ 60, 100, 5, false, false },
		{ 75, 95, 20, false, true },
	};
	size_t k;

	for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		struct brk_cfg c;
		struct brk b[2], *all[2] = { &b[0], &b[1] };
		uint64_t t = 10 * SEC;
		int got;

		cfg_test(&c);
		brk_init(&b[0], &c, 1, t);
		brk_init(&b[1], &c, 2, t);
		t = feed(&b[0], &c, all, 20, rows[k].a_pct, t);
		ASSERT_EQ(brk_state_at(&b[0], t), BRK_OPEN);
		if (rows[k].a_forced)
			brk_set_override(&b[0], &c, BRK_OVR_OPEN, t);
		t = feed(&b[1], &c, all, rows[k].b_calls, rows[k].b_pct, t + SEC);
		if (rows[k].b_pct >= 50 || (uint32_t)rows[k].b_calls < c.min_calls)
			ASSERT_EQ(brk_state_at(&b[1], t), BRK_DEGRADED);
		got = brk_exchange(all, 2, &c, 500, t);
		brk_update(&b[1], &c, brk_may_open((const struct brk *const *)all, 2, 500, t), t);
		if ((got == 0) != rows[k].want || (brk_state_at(&b[1], t) == BRK_OPEN) != rows[k].want ||
		    (rows[k].want && brk_state_at(&b[0], t) != BRK_CLOSED))
			TEST_FAIL_("row %zu (pa %d %%, pb %d %% of %d%s): exchange %d, pa %s, pb %s; want %s", k,
			           rows[k].a_pct, rows[k].b_pct, rows[k].b_calls, rows[k].a_forced ? ", pa forced" : "",
			           got, brk_state_name(brk_state_at(&b[0], t)), brk_state_name(brk_state_at(&b[1], t)),
			           rows[k].want ? "pa closed, pb open" : "no exchange");
		if (rows[k].want) {
			/* pa dark too now: it trips, the cap full, and is not exchanged back */
			t = feed(&b[0], &c, all, 20, 100, t + SEC);
			if (brk_state_at(&b[0], t) != BRK_DEGRADED || brk_exchange(all, 2, &c, 500, t) != -1)
				TEST_FAIL_("row %zu: pa failing in full after the exchange: %s, or exchanged back", k,
				           brk_state_name(brk_state_at(&b[0], t)));
		}
	}
}

/* b->scoped (set by the engine: the failures are some segments' own, scored away there,
 * while others answer normally). Table over one breaker: a closed one does not trip on a
 * failure rate or a run it would trip on unscoped, a degraded one closes, an open one goes
 * half-open at the next update (not 30 s later); a scoped breaker counts as ejected for the
 * cap; half-open, a failure sent well before the probes began is no probe's, a later one
 * is. Cleared, the same window trips again. */
TEST(breaker_scoped)
{
	struct brk_cfg c;
	struct brk b, o;
	const struct brk *all[2] = { &b, &o };
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 1, 0);
	brk_init(&o, &c, 2, 0);
	b.scoped = 1;
	for (i = 0; i < 10; i++) /* 10 in a row, 10 of 10 failed */
		brk_record(&b, &c, F, true, SEC + (uint64_t)i * MS);
	ASSERT_EQ(brk_state_at(&b, SEC + 10 * MS), BRK_CLOSED);
	ASSERT(!brk_may_open(all, 2, 500, SEC + 10 * MS)); /* the scoped one takes the cap's one */
	b.scoped = 0;
	ASSERT(brk_may_open(all, 2, 500, SEC + 10 * MS));
	brk_record(&b, &c, F, false, SEC + 11 * MS); /* the cap refuses: degraded */
	ASSERT_EQ(brk_state_at(&b, SEC + 11 * MS), BRK_DEGRADED);
	b.scoped = 1;
	ASSERT_EQ(brk_update(&b, &c, true, SEC + 20 * MS), BRK_CLOSED);
	b.scoped = 0;
	brk_record(&b, &c, F, true, SEC + 30 * MS);
	ASSERT_EQ(brk_state_at(&b, SEC + 30 * MS), BRK_OPEN);
	ASSERT_EQ(brk_update(&b, &c, true, 2 * SEC), BRK_OPEN);
	b.scoped = 1;
	ASSERT_EQ(brk_update(&b, &c, true, 2 * SEC), BRK_HALF_OPEN);
	ASSERT(brk_allow(&b, &c, 2 * SEC));
	/* a hung call sent at 0.5 s, its 504 at 9 s: not a probe's (1 s of reorder_us before the
	 * half-open start at 2 s); one sent at 2.1 s is */
	brk_record_sent(&b, &c, F, 500 * MS, true, 9 * SEC);
	ASSERT_EQ(brk_state_at(&b, 9 * SEC), BRK_HALF_OPEN);
	ASSERT_EQ(b.probes_done, 0);
	brk_record_sent(&b, &c, S, 2 * SEC, true, 9 * SEC); /* a success counts, whenever sent */
	ASSERT_EQ(b.probes_done, 1);
	brk_record_sent(&b, &c, F, 2 * SEC + 100 * MS, true, 9 * SEC);
	brk_record_sent(&b, &c, F, 2 * SEC + 200 * MS, true, 9 * SEC);
	ASSERT_EQ(brk_state_at(&b, 9 * SEC), BRK_OPEN); /* 2 of 3 probes failed */
}

/* A run of failures in a row ends when its last failure leaves the window. A breaker
 * tripped while the ejection cap was full stays degraded; scored down, it may get no
 * traffic at all, and its run of 5 used to open it whenever the cap let it, long after
 * the backend recovered (random world 3000122: opened 43 s after its outage ended). Table:
 * (when the cap frees, s after the run) -> state. Within the window it still opens. */
TEST(breaker_stale_run_not_opened_later)
{
	static const struct { uint64_t after_ms; enum brk_state want; } table[] = {
		{ 500, BRK_OPEN }, { 9000, BRK_OPEN }, { 10500, BRK_CLOSED }, { 43000, BRK_CLOSED },
	};
	struct brk_cfg c;
	struct brk b;
	size_t i;

	cfg_test(&c);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		uint64_t t = 100 * SEC + table[i].after_ms * MS;

		brk_init(&b, &c, 7, 0);
		trip(&b, &c, false, 100 * SEC);
		ASSERT_EQ(brk_state_at(&b, 100 * SEC), BRK_DEGRADED);
		brk_update(&b, &c, false, (100 * SEC + t) / 2); /* the cap still full meanwhile */
		ASSERT_EQ(brk_update(&b, &c, true, t), table[i].want);
	}
	/* a run whose failures keep coming less than a window apart goes on: one failure
	 * every 8 s, 5 in a row, opens at the 5th (a backend only probes reach) */
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 5; i++)
		brk_record(&b, &c, F, true, (uint64_t)i * 8 * SEC);
	ASSERT_EQ(brk_state_at(&b, 32 * SEC), BRK_OPEN);
}

/* In a row by send order, not answer order (brk_record_sent): a timeout comes back 8 s
 * after it was sent, after calls sent later came back well. A backend whose traffic moved
 * away ends on a run of its slowest answers (random world 2000128: σ 1.0 latency, 1 %
 * timeouts at 8 s, 5 of them after the last success: opened). Table of (sent, answered,
 * event) -> state, reorder 1 s: a failure sent before the latest good call and answered
 * 1 s or more after it counts in the rates only; answered within 1 s of it (the jitter of
 * a brownout's fast errors) or sent after it, in a row. */
TEST(breaker_in_a_row_by_send_order)
{
	static const struct { uint64_t sent_ms, at_ms; enum brk_event ev; enum brk_state want; } table[] = {
		{ 10000, 10300, S, BRK_CLOSED },
		{ 9800, 10400, F, BRK_CLOSED }, { 9850, 10500, F, BRK_CLOSED }, { 9900, 10600, F, BRK_CLOSED },
		{ 2500, 11500, F, BRK_CLOSED }, { 2700, 11700, F, BRK_CLOSED }, { 2900, 11900, F, BRK_CLOSED },
		{ 3100, 12100, F, BRK_CLOSED }, { 3300, 12300, F, BRK_CLOSED }, { 3500, 12500, F, BRK_CLOSED },
		{ 12600, 12620, F, BRK_CLOSED }, { 12650, 12670, F, BRK_OPEN },
	};
	struct brk_cfg c;
	struct brk b;
	size_t i;

	cfg_test(&c);
	ASSERT_EQ(c.reorder_us, SEC);
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (i == 10) { /* all in the rates, the first 3 in a row */
			ASSERT_EQ(b.failures, 9);
			ASSERT_EQ(b.consecutive, 3);
		}
		brk_record_sent(&b, &c, table[i].ev, table[i].sent_ms * MS, true, table[i].at_ms * MS);
		if (brk_state_at(&b, table[i].at_ms * MS) != table[i].want)
			TEST_FAIL_("row %zu: %s, want %s", i, brk_state_name(brk_state_at(&b, table[i].at_ms * MS)),
			           brk_state_name(table[i].want));
	}
	/* reorder off: answer order, as brk_record */
	c.reorder_us = 0;
	brk_init(&b, &c, 7, 0);
	brk_record_sent(&b, &c, S, 10 * SEC, true, 10300 * MS);
	for (i = 0; i < 5; i++)
		brk_record_sent(&b, &c, F, 2 * SEC, true, 10500 * MS);
	ASSERT_EQ(brk_state_at(&b, 10500 * MS), BRK_OPEN);
}

/* Overrides: forced open refuses everything, forced closed admits while tripping, auto
 * starts over closed with an empty window. */
TEST(breaker_override)
{
	static const struct step st[] = {
		{ 1000, OP_OVR, BRK_OVR_OPEN, BRK_OPEN, -1 },
		{ 1001, OP_ALLOW, 0, BRK_OPEN, 0 },
		{ 400000, OP_TICK, 0, BRK_OPEN, -1 },   /* no timer on a forced open */
		{ 400001, OP_OVR, BRK_OVR_CLOSED, BRK_CLOSED, -1 },
		{ 400002, OP_EV, F, BRK_CLOSED, 0 }, { 400003, OP_EV, F, BRK_CLOSED, 0 },
		{ 400004, OP_EV, F, BRK_CLOSED, 0 }, { 400005, OP_EV, F, BRK_CLOSED, 0 },
		{ 400006, OP_EV, F, BRK_CLOSED, 1 },    /* auto state opened underneath */
		{ 400007, OP_ALLOW, 0, BRK_CLOSED, 1 },
		{ 400008, OP_OVR, BRK_OVR_AUTO, BRK_CLOSED, -1 },
		{ 400009, OP_EV, F, BRK_CLOSED, 0 },    /* window and run start over */
		{ 400010, OP_ALLOW, 0, BRK_CLOSED, 1 },
	};
	struct brk_cfg c;
	struct brk b;

	cfg_test(&c);
	brk_init(&b, &c, 5, 0);
	RUN_STEPS(&b, &c, st);
	ASSERT_EQ(b.consecutive, 1);
}

/* Probes that never get an answer: a new batch after probe_timeout_us. */
TEST(breaker_probe_timeout)
{
	static const struct step st[] = {
		{ 0, OP_EV, F, BRK_CLOSED, 0 }, { 0, OP_EV, F, BRK_CLOSED, 0 },
		{ 0, OP_EV, F, BRK_CLOSED, 0 }, { 0, OP_EV, F, BRK_CLOSED, 0 },
		{ 0, OP_EV, F, BRK_OPEN, 1 },
		{ 30000, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 30000, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 30000, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 39999, OP_ALLOW, 0, BRK_HALF_OPEN, 0 },
		{ 40000, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
		{ 40001, OP_ALLOW, 0, BRK_HALF_OPEN, 1 },
	};
	struct brk_cfg c;
	struct brk b;

	cfg_test(&c);
	brk_init(&b, &c, 5, 0);
	RUN_STEPS(&b, &c, st);
}

/* Publishing: a copied breaker reads the same state; a reload that changes the window
 * shape starts the window over instead of reading stale buckets. */
TEST(breaker_copy_and_reshape)
{
	struct brk_cfg c;
	struct brk b, snap;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 5, 0);
	trip(&b, &c, true, SEC);
	snap = b;
	ASSERT_EQ(brk_state_at(&snap, 2 * SEC), BRK_OPEN);
	ASSERT_EQ(brk_state_at(&snap, 31 * SEC), BRK_HALF_OPEN);
	ASSERT_EQ(snap.state, BRK_OPEN); /* reading did not write */

	brk_init(&b, &c, 5, 0);
	for (i = 0; i < 15; i++)
		brk_record(&b, &c, (i & 1) ? F : S, true, 100 * MS);
	c.buckets = 20;
	brk_record(&b, &c, F, true, 200 * MS);
	ASSERT_EQ(b.calls, 1);
	ASSERT_EQ(b.nbuckets, 20);
}

TEST(breaker_cfg_check)
{
	struct brk_cfg c;

	cfg_test(&c);
	c.buckets = 0;
	ASSERT(brk_cfg_check(&c) != NULL);
	cfg_test(&c);
	c.buckets = BRK_MAX_BUCKETS + 1;
	ASSERT(brk_cfg_check(&c) != NULL);
	cfg_test(&c);
	c.open_max_us = c.open_base_us - 1;
	ASSERT(brk_cfg_check(&c) != NULL);
	cfg_test(&c);
	c.probes = 0;
	ASSERT(brk_cfg_check(&c) != NULL);
	cfg_test(&c);
	c.failure_permille = 1001;
	ASSERT(brk_cfg_check(&c) != NULL);
	ASSERT_STREQ(brk_state_name(BRK_HALF_OPEN), "half-open");
}

TEST(breaker_event_of)
{
	struct oc_class oc = { OC_SUCCESS, OC_RL_NONE, 0 };

	ASSERT_EQ(brk_event_of(&oc), BRK_EV_SUCCESS);
	oc.flags = OC_F_SLOW;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_SLOW);
	oc.kind = OC_DECLINE_CUSTOMER;
	oc.flags = 0;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_SUCCESS);
	oc.kind = OC_PSP_ERROR;
	oc.flags = OC_F_SLOW | OC_F_TIMEOUT;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_FAILURE);
	oc.kind = OC_RATE_LIMITED;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_NONE);
	oc.kind = OC_LOCK_CONFLICT;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_NONE);
	oc.kind = OC_CLIENT_ERROR;
	ASSERT_EQ(brk_event_of(&oc), BRK_EV_NONE);
}

/* brk_forgive: a failure recorded for a call judged missing is taken back when its answer
 * comes after all. Closed: one failure and its call leave the window, the run of
 * consecutive failures shortens; never below zero (nothing to forgive: false, nothing
 * changes). Half-open: one failed probe is uncounted, the batch waits for an answer
 * again. Open: nothing, the open time stands. */
TEST(breaker_forgive)
{
	struct brk_cfg c;
	struct brk b;
	uint64_t until;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 7, 0);
	ASSERT(!brk_forgive(&b, &c, 500 * MS)); /* nothing recorded */
	ASSERT_EQ(b.calls, 0);
	for (i = 0; i < 4; i++)
		brk_record(&b, &c, F, true, (1000 + (uint64_t)i * 300) * MS);
	ASSERT_EQ(b.failures, 4);
	ASSERT_EQ(b.consecutive, 4);
	ASSERT(brk_forgive(&b, &c, 2500 * MS));
	ASSERT_EQ(b.failures, 3);
	ASSERT_EQ(b.calls, 3);
	ASSERT_EQ(b.consecutive, 3);
	/* the caller records the answer as what it was: the run is broken */
	brk_record(&b, &c, S, true, 2500 * MS);
	ASSERT_EQ(b.consecutive, 0);
	for (i = 0; i < 3; i++)
		ASSERT(brk_forgive(&b, &c, 2600 * MS));
	ASSERT_EQ(b.failures, 0);
	ASSERT_EQ(b.calls, 1);
	ASSERT(!brk_forgive(&b, &c, 2700 * MS)); /* never below zero */
	ASSERT_EQ(b.calls, 1);
	ASSERT_EQ(brk_state_at(&b, 2700 * MS), BRK_CLOSED);

	/* 4 failures, one forgiven: the 5th in a row does not trip, the 6th does */
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 4; i++)
		brk_record(&b, &c, F, true, 1000 * MS);
	ASSERT(brk_forgive(&b, &c, 1100 * MS));
	brk_record(&b, &c, F, true, 1200 * MS);
	ASSERT_EQ(brk_state_at(&b, 1200 * MS), BRK_CLOSED);
	brk_record(&b, &c, F, true, 1300 * MS);
	ASSERT_EQ(brk_state_at(&b, 1300 * MS), BRK_OPEN);

	/* open: forgiving changes neither the state nor the open time */
	until = b.open_until_us;
	ASSERT(!brk_forgive(&b, &c, 1400 * MS));
	ASSERT_EQ(b.open_until_us, until);
	ASSERT_EQ(brk_state_at(&b, 1400 * MS), BRK_OPEN);

	/* a failure that left the window (10 s) is not forgiven */
	brk_init(&b, &c, 7, 0);
	brk_record(&b, &c, F, true, 1000 * MS);
	ASSERT(!brk_forgive(&b, &c, 12000 * MS));

	/* half-open, 3 probes, failure rate 50 %: one failed probe forgiven, the batch waits;
	 * then two successes close it (2 failures of 3 would have reopened it) */
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < 5; i++)
		brk_record(&b, &c, F, true, 1000 * MS);
	ASSERT_EQ(brk_state_at(&b, 1000 * MS), BRK_OPEN);
	until = b.open_until_us;
	brk_update(&b, &c, true, until);
	ASSERT_EQ(brk_state_at(&b, until), BRK_HALF_OPEN);
	for (i = 0; i < 3; i++)
		ASSERT(brk_allow(&b, &c, until));
	brk_record(&b, &c, F, true, until + 100 * MS);
	ASSERT_EQ(b.probes_failed, 1);
	ASSERT(brk_forgive(&b, &c, until + 200 * MS));
	ASSERT_EQ(b.probes_failed, 0);
	ASSERT_EQ(b.probes_done, 0);
	ASSERT(!brk_forgive(&b, &c, until + 200 * MS));
	brk_record(&b, &c, S, true, until + 200 * MS); /* the forgiven probe's answer */
	brk_record(&b, &c, F, true, until + 300 * MS);
	ASSERT_EQ(brk_state_at(&b, until + 300 * MS), BRK_HALF_OPEN);
	brk_record(&b, &c, S, true, until + 400 * MS);
	ASSERT_EQ(brk_state_at(&b, until + 400 * MS), BRK_CLOSED);
}

/* Another node's breaker opened (brk_remote_open): an empty or thin window opens (as a
 * trip: open time, trips counted); a window of min_calls healthy calls keeps it closed;
 * the ejection cap leaves a thin one degraded; open and half-open
 * are left alone. */
TEST(breaker_remote_open)
{
	struct brk_cfg c;
	struct brk b;
	int i;

	cfg_test(&c);
	brk_init(&b, &c, 7, 0);
	ASSERT_EQ(brk_remote_open(&b, &c, true, 1 * SEC), BRK_REMOTE_OPENED);
	ASSERT_EQ(brk_state_at(&b, 1 * SEC), BRK_OPEN);
	ASSERT_EQ(b.trips, 1);
	ASSERT_EQ(brk_remote_open(&b, &c, true, 2 * SEC), BRK_REMOTE_NONE); /* open already */
	brk_update(&b, &c, true, 31 * SEC);
	ASSERT_EQ(brk_state_at(&b, 31 * SEC), BRK_HALF_OPEN);
	ASSERT_EQ(brk_remote_open(&b, &c, true, 31 * SEC), BRK_REMOTE_NONE); /* its probes decide */

	brk_init(&b, &c, 7, 0);
	for (i = 0; i < (int)c.min_calls - 1; i++)
		brk_record(&b, &c, S, true, (1000 + (uint64_t)i * 10) * MS);
	ASSERT_EQ(brk_remote_open(&b, &c, false, 2 * SEC), BRK_REMOTE_NONE); /* thin: degraded (cap) */
	ASSERT_EQ(brk_state_at(&b, 2 * SEC), BRK_DEGRADED);

	brk_init(&b, &c, 7, 0);
	for (i = 0; i < (int)c.min_calls; i++)
		brk_record(&b, &c, S, true, (1000 + (uint64_t)i * 10) * MS);
	ASSERT_EQ(brk_remote_open(&b, &c, true, 2 * SEC), BRK_REMOTE_KEPT);
	ASSERT_EQ(brk_state_at(&b, 2 * SEC), BRK_CLOSED);
	ASSERT_EQ(b.trips, 0);
}

int main(void)
{
	RUN(breaker_consecutive_trip_and_probe);
	RUN(breaker_half_open_reopens);
	RUN(breaker_half_open_rate_off);
	RUN(breaker_failure_rate);
	RUN(breaker_slow_rate);
	RUN(breaker_window_expiry);
	RUN(breaker_decline_storm);
	RUN(breaker_backoff_doubles_to_cap);
	RUN(breaker_retrip_after_passed_probes_not_doubled);
	RUN(breaker_pinned_calls_cut_a_doubled_open);
	RUN(breaker_jitter);
	RUN(breaker_ejection_cap);
	RUN(breaker_exchange);
	RUN(breaker_stale_run_not_opened_later);
	RUN(breaker_in_a_row_by_send_order);
	RUN(breaker_override);
	RUN(breaker_probe_timeout);
	RUN(breaker_copy_and_reshape);
	RUN(breaker_cfg_check);
	RUN(breaker_event_of);
	RUN(breaker_forgive);
	RUN(breaker_remote_open);
	RUN(breaker_scoped);
	return test_summary();
}
