/* test-pol-parts.c: the engine's pure parts one by one: fees against hand-computed
 * values, scoring and its ties, GCRA budgets with reserves over simulated time,
 * affinity tables (TTL, eviction of the oldest, counter), path patterns. */
#include <string.h>

#include "classify.h"
#include "cost.h"
#include "pin.h"
#include "policy-t.h"
#include "policy.h"
#include "score.h"
#include "test.h"
#include "thr.h"

#define SEC 1000000000ULL /* ns */

static struct policy *load(const char *file)
{
	static char err[512];
	struct policy *p = pol_load(file, err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	return p;
}

static int cur_idx(const struct policy *p, const char *code)
{
	int i;

	for (i = 0; i < p->ncurrencies; i++)
		if (p->currencies[i] == (uint32_t)(code[0] << 16 | code[1] << 8 | code[2]))
			return i;
	TEST_FAIL_("no currency %s", code);
}

static int region_idx(const struct policy *p, const char *name)
{
	int i;

	for (i = 0; i < p->nregions; i++)
		if (!strcmp(p->region_names[i], name))
			return i;
	TEST_FAIL_("no region %s", name);
}

/* DOMAIN.md: an EEA credit card charged EUR 100.00 through the US entity costs
 * 2.9 + 1.5 (international) + 1.0 (conversion) = 5.4 % + 30 → 570; through the EEA
 * entity 1.5 % + 25 → 175. IC++ on multi-entity.conf: 0.30 + 0.10 + 0.50 = 0.9 % + 10 → 100. */
TEST(fees_hand_computed)
{
	struct policy *p = load("conf/payspoa.conf");
	struct policy *m = load("conf/examples/multi-entity.conf");
	const struct pol_backend *us = &p->backends[0], *eu = &p->backends[1];
	unsigned eea = (unsigned)region_idx(p, "eea"), uk = (unsigned)region_idx(p, "uk");
	unsigned usr = (unsigned)region_idx(p, "us");
	int eur = cur_idx(p, "eur"), usd = cur_idx(p, "usd"), gbp = cur_idx(p, "gbp");
	static const struct { int be; unsigned funding; double amount, fee; } cases[] = {
		{ 0, POL_FUND_CREDIT, 10000, 570 },  /* EEA card, EUR, US entity */
		{ 1, POL_FUND_CREDIT, 10000, 175 },  /* EEA card, EUR, EEA entity */
		{ 1, POL_FUND_DEBIT, 10000, 175 },   /* the debit row: same price here */
		{ 0, POL_FUND_CREDIT, 0, 30 },       /* fixed part only */
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pol_backend *b = &p->backends[cases[i].be];

		ASSERT_NEAR(cost_fee(&p->fees[b->fee], b, cases[i].amount, eea, cases[i].funding, eur), cases[i].fee, 1e-9);
	}
	/* US card in USD on the US entity: domestic, settled: 2.9 % + 30. */
	ASSERT_NEAR(cost_fee(&p->fees[us->fee], us, 10000, usr, POL_FUND_CREDIT, usd), 320, 1e-9);
	/* UK card in GBP on the EEA entity: the all-in row, no cross-border: 2.5 % + 25. */
	ASSERT_NEAR(cost_fee(&p->fees[eu->fee], eu, 10000, uk, POL_FUND_CREDIT, gbp), 275, 1e-9);
	/* US card on the EEA entity in USD (not presented there, but priced): 1.5 + 1.75 + 2.0. */
	ASSERT_NEAR(cost_fee(&p->fees[eu->fee], eu, 10000, usr, POL_FUND_ANY, usd), 550, 1e-9);
	/* Unknown card region: no cross-border assumed. */
	ASSERT_NEAR(cost_fee(&p->fees[us->fee], us, 10000, POL_REGION_UNKNOWN, POL_FUND_ANY, usd), 320, 1e-9);

	/* IC++ rows (multi-entity.conf, backend stripe_eu = index 2). */
	{
		const struct pol_backend *b = &m->backends[2];
		unsigned meea = (unsigned)region_idx(m, "eea");
		int meur = cur_idx(m, "eur");

		ASSERT_STREQ(b->name, "stripe_eu");
		ASSERT_NEAR(cost_fee(&m->fees[b->fee], b, 10000, meea, POL_FUND_CREDIT, meur), 100, 1e-9);
		ASSERT_NEAR(cost_fee(&m->fees[b->fee], b, 10000, meea, POL_FUND_DEBIT, meur), 90, 1e-9);
		/* Non-EEA card: IC++ 1.50 + 0.40 + 0.50 all-in. */
		ASSERT_NEAR(cost_fee(&m->fees[b->fee], b, 10000, POL_REGION_OTHER, POL_FUND_CREDIT, meur), 250, 1e-9);
	}
	pol_free(p);
	pol_free(m);
}

TEST(score_and_ties)
{
	struct policy *p = load("conf/payspoa.conf");
	struct score_in in = { .amount = 10000, .fee = 175, .p_auth = 0.9, .latency_ms = 200, .load = 0.5 };
	double s[4] = { 5, 7, 7, 6 };

	/* 0.9 × 9825 − 0.05 × 200 − 20 × 0.5 = 8842.5 − 10 − 10 */
	ASSERT_NEAR(score_value(p, &in), 8822.5, 1e-9);
	ASSERT_EQ(score_best(s, 0xf), 1);   /* tie 1 vs 2: the first in the file */
	ASSERT_EQ(score_best(s, 0xd), 2);
	ASSERT_EQ(score_best(s, 0x1), 0);
	ASSERT_EQ(score_best(s, 0), -1);
	pol_free(p);
}

/* One cell, 10 req/s, burst 5 (T = 100 ms, tolerance 500 ms). Table of
 * (time, share, max wait) → expected result in ms (0 allowed, >0 queued, <0 refused). */
TEST(gcra_table)
{
	static const struct { uint64_t t_ms; double share; uint64_t wait_ms; int64_t exp_ms; } steps[] = {
		{ 0, 1.0, 0, 0 }, { 0, 1.0, 0, 0 }, { 0, 1.0, 0, 0 },  /* tat 300 */
		{ 0, 0.6, 0, -100 },  /* a lower class sees 300 ms of tolerance: 400 > 300 */
		{ 0, 1.0, 0, 0 }, { 0, 1.0, 0, 0 },                    /* tat 500: burst used */
		{ 0, 1.0, 0, -100 },                                   /* refused, nothing booked */
		{ 0, 1.0, 250, 100 },                                  /* queued 100 ms, booked: tat 600 */
		{ 0, 1.0, 250, 200 },                                  /* tat 700 */
		{ 0, 1.0, 150, -300 },                                 /* 800-500 = 300 > 150 */
		{ 300, 1.0, 0, 0 },                                    /* tat 800-... 300+500=800 ≥ 800 */
		{ 2000, 0.6, 0, 0 },                                   /* idle: all back */
	};
	struct thr_cell c;
	unsigned i;

	c.interval_ns = 100000000;
	c.tol_ns = 500000000;
	atomic_init(&c.tat, 0);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int64_t r = thr_take(&c, 10 * SEC + steps[i].t_ms * 1000000, steps[i].share, steps[i].wait_ms * 1000000);

		if (r != steps[i].exp_ms * 1000000)
			TEST_FAIL_("step %u: %lld ns, expected %lld ms", i, (long long)r, (long long)steps[i].exp_ms);
	}
	ASSERT_NEAR(thr_load(&c, 12 * SEC), 0.2, 1e-9); /* 100 ms of 500 still booked */
	ASSERT_NEAR(thr_load(&c, 13 * SEC), 0, 1e-12);
}

/* thr_drain: a rate-limit 429 at 10 s spends the cell's burst (tat = now + tolerance):
 * the next request is refused, one passes per interval after, and a drain never lowers
 * a booking already further ahead. */
TEST(gcra_drain)
{
	struct thr_cell c;

	c.interval_ns = 100000000;
	c.tol_ns = 500000000;
	atomic_init(&c.tat, 0);
	ASSERT_EQ(thr_take(&c, 10 * SEC, 1.0, 0), 0);           /* tat 10.1 s: 4 more would pass */
	thr_drain(&c, 10 * SEC);
	ASSERT_NEAR(thr_load(&c, 10 * SEC), 1, 1e-12);
	ASSERT_EQ(thr_take(&c, 10 * SEC, 1.0, 0), -100000000);   /* over by one interval */
	ASSERT_EQ(thr_take(&c, 10 * SEC + 100000000, 1.0, 0), 0); /* the rate, not the burst */
	ASSERT_EQ(thr_take(&c, 10 * SEC + 100000000, 1.0, 0), -100000000);
	thr_drain(&c, 9 * SEC);                                  /* an older 429: no change */
	ASSERT_EQ(atomic_load(&c.tat), 10 * SEC + 600000000);
}

TEST(pin_ttl_and_eviction)
{
	struct pin_table t;
	uint64_t k;
	int i;

	ASSERT_EQ(pin_init(&t, 64, 100), 0); /* 16 buckets of 4 */
	pin_put(&t, 42, 3, 1000);
	ASSERT_EQ(pin_get(&t, 42, 1000), 3);
	ASSERT_EQ(pin_get(&t, 42, 1099), 3);
	ASSERT_EQ(pin_get(&t, 42, 1100), -1);  /* expired */
	ASSERT_EQ(pin_get(&t, 43, 1000), -1);
	pin_put(&t, 42, 5, 1000);
	ASSERT_EQ(pin_get(&t, 42, 1000), 5);    /* replaced, not duplicated */

	/* Five keys in one bucket (same low bits): the oldest goes, and is counted. */
	for (i = 0; i < 5; i++) {
		k = ((uint64_t)(i + 1) << 32) | 7;
		pin_put(&t, k, (unsigned)i, 2000 + (uint32_t)i);
	}
	ASSERT_EQ(pin_get(&t, (1ULL << 32) | 7, 2005), -1); /* the oldest */
	for (i = 1; i < 5; i++)
		ASSERT_EQ(pin_get(&t, ((uint64_t)(i + 1) << 32) | 7, 2005), i);
	ASSERT_EQ(atomic_load(&t.evicted), 1);
	ASSERT_EQ(pin_live(&t, 2005), 4);
	/* Expired entries are reused without counting an eviction. */
	pin_put(&t, (9ULL << 32) | 7, 9, 5000);
	ASSERT_EQ(atomic_load(&t.evicted), 1);
	pin_destroy(&t);
}

TEST(pin_merge_maps_backends)
{
	struct pin_table a, b;
	int map[128];
	int i;

	for (i = 0; i < 128; i++)
		map[i] = -1;
	map[0] = 1;
	ASSERT_EQ(pin_init(&a, 64, 100), 0);
	ASSERT_EQ(pin_init(&b, 256, 100), 0); /* resized on reload */
	pin_put(&a, 1001, 0, 10);
	pin_put(&a, 1002, 1, 10);             /* backend 1 is gone */
	pin_put(&b, 1003, 0, 10);
	pin_merge(&b, &a, map, 20);
	ASSERT_EQ(pin_get(&b, 1001, 20), 1);
	ASSERT_EQ(pin_get(&b, 1002, 20), -1);
	ASSERT_EQ(pin_get(&b, 1003, 20), 0);
	ASSERT_EQ(pin_get(&b, 1001, 110), -1); /* expiry kept, not refreshed */
	pin_destroy(&a);
	pin_destroy(&b);
}

TEST(path_patterns)
{
	static const struct { const char *pat, *path; bool match; } cases[] = {
		{ "/v1/charges", "/v1/charges", true },
		{ "/v1/charges", "/v1/charges/ch_1", false },
		{ "/v1/charges**", "/v1/charges/ch_1/refund", true },
		{ "/v1/charges**", "/v1/chargesx", true },
		{ "/v1/*/confirm", "/v1/pi/confirm", true },
		{ "/v1/*/confirm", "/v1//confirm", true },
		{ "/v1/*/confirm", "/v1/a/b/confirm", false },
		{ "/v1/pi_*/x", "/v1/pi_123/x", true },
		{ "/v1/pi_*/x", "/v1/ch_123/x", false },
		{ "/v1/*_end", "/v1/a_end_end", true },
		{ "/**", "/", true },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT(cls_pattern_check(cases[i].pat) == NULL);
		if (cls_path_match(cases[i].pat, cases[i].path, (uint32_t)strlen(cases[i].path)) != cases[i].match)
			TEST_FAIL_("case %u: %s ~ %s", i, cases[i].pat, cases[i].path);
	}
	ASSERT(!cls_path_match("/v1/x", NULL, 0));
}

int main(void)
{
	RUN(fees_hand_computed);
	RUN(score_and_ties);
	RUN(gcra_table);
	RUN(gcra_drain);
	RUN(pin_ttl_and_eviction);
	RUN(pin_merge_maps_backends);
	RUN(path_patterns);
	return test_summary();
}
