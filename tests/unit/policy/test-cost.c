/* test-cost.c: policy/cost.c: fees against hand-computed values (percentage, fixed,
 * cross-border, conversion, IC++), on the default and the multi-entity policies. */
#include <string.h>

#include "cost.h"
#include "pol-test.h"
#include "policy-t.h"
#include "policy.h"
#include "test.h"

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
	struct policy *p = pol_test_load("conf/payspoa.conf");
	struct policy *m = pol_test_load("conf/examples/multi-entity.conf");
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

int main(void)
{
	RUN(fees_hand_computed);
	return test_summary();
}
