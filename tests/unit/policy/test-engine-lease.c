/* test-engine-lease.c: the engine's lease-mode budgets (policy/engine-lease.c): a cell
 * admits only what was granted, keeps the class reserves on the leased tokens, gives the
 * top class its own pool, books a one-token debt for a class that may queue, and expires
 * tokens without going below zero; through pol_decide, a leased budget refuses (spills)
 * until the control thread grants, and its grants are spent exactly; a leased budget's
 * load (the cost model's, admin's, metrics') follows its tokens held against its stock;
 * a reload moves each budget's tokens to the same account in the new view. */
#include <stdatomic.h>
#include <string.h>

#include "engine-lease.h"
#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

static int64_t level(struct pol_lease_cell *c, bool top)
{
	return atomic_load(top ? &c->top : &c->tokens);
}

TEST(cell_admits_only_grants)
{
	struct pol_lease_cell c;
	int i;

	memset(&c, 0, sizeof(c));
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_NONE);
	pol_lease_grant(&c, 3, false);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOKEN);
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_NONE);
	ASSERT_EQ(level(&c, false), 0);
	ASSERT_EQ(atomic_load(&c.asked_top), 5); /* every attempt: the top class's demand */
	ASSERT_EQ(atomic_load(&c.asked), 0);
}

TEST(reserve_kept_for_classes_above)
{
	struct pol_lease_cell c;

	memset(&c, 0, sizeof(c));
	atomic_store(&c.stock, 10);
	pol_lease_grant(&c, 10, false);
	/* share 0.8: leaves 2 of a stock of 10 */
	while (pol_lease_take(&c, 0.8, 0) == POL_LEASE_TOKEN)
		;
	ASSERT_EQ(level(&c, false), 2);
	ASSERT_EQ(atomic_load(&c.asked), 9);
	/* the top class takes the reserve */
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOKEN);
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOKEN);
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_NONE);
}

TEST(top_pool_is_top_class_only)
{
	struct pol_lease_cell c;

	memset(&c, 0, sizeof(c));
	pol_lease_grant(&c, 2, true);
	ASSERT_EQ(pol_lease_take(&c, 0.9, 0), POL_LEASE_NONE);
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOP);
	pol_lease_grant(&c, 1, false);
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOP); /* its own pool first */
	ASSERT_EQ(pol_lease_take(&c, 1.0, 0), POL_LEASE_TOKEN);
	ASSERT_EQ(level(&c, true), 0);
	pol_lease_refund(&c, POL_LEASE_TOP);
	ASSERT_EQ(level(&c, true), 1);
	pol_lease_refund(&c, POL_LEASE_TOKEN);
	ASSERT_EQ(level(&c, false), 1);
}

TEST(debt_is_one_token_paid_by_the_next_grant)
{
	struct pol_lease_cell c;

	memset(&c, 0, sizeof(c));
	ASSERT_EQ(pol_lease_take(&c, 0.5, 1), POL_LEASE_DEBT);
	ASSERT_EQ(pol_lease_take(&c, 0.5, 1), POL_LEASE_NONE);
	ASSERT_EQ(level(&c, false), -1);
	pol_lease_grant(&c, 2, false);
	ASSERT_EQ(level(&c, false), 1);
}

TEST(expire_never_below_zero)
{
	struct pol_lease_cell c;

	memset(&c, 0, sizeof(c));
	pol_lease_grant(&c, 5, false);
	ASSERT_EQ(pol_lease_expire(&c, 3, false), 3);
	ASSERT_EQ(pol_lease_expire(&c, 9, false), 2);
	ASSERT_EQ(pol_lease_expire(&c, 1, false), 0);
	ASSERT_EQ(level(&c, false), 0);
	atomic_store(&c.tokens, -1); /* a debt is not expired */
	ASSERT_EQ(pol_lease_expire(&c, 1, false), 0);
	ASSERT_EQ(pol_lease_set(&c, 4, false), -1);
	ASSERT_EQ(level(&c, false), 4);
}

#define POLICY POL_TEST_TWO_USD_ACCOUNTS \
	"default_backend = \"pa\";\n" \
	"classes = ( { name = \"std\"; } );\n" \
	"fleet = { lease_ms = 5; };\n"

/* The account cell of backend name's account. */
static struct pol_lease_cell *account_cell(struct pol_engine *e, const char *acct)
{
	struct pol_lease_info in;
	uint16_t gen;
	unsigned i, n = pol_engine_lease_cells(e, &gen);

	for (i = 0; i < n; i++) {
		pol_engine_lease_info(e, i, &in);
		if (!in.endpoint && strcmp(in.account, acct) == 0)
			return in.cell;
	}
	return NULL;
}

TEST(decide_spends_grants)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pol_lease_cell *a, *b;
	struct pay_verdict v;
	uint16_t gen;
	int i, allowed_a = 0, allowed_b = 0;

	ASSERT_EQ(pol_engine_lease_cells(e, &gen), 0); /* off by default */
	ASSERT_EQ(pol_engine_lease(e), 0);
	ASSERT(pol_engine_lease_cells(e, &gen) > 0);
	ASSERT((a = account_cell(e, "acct_a")) != NULL);
	ASSERT((b = account_cell(e, "acct_b")) != NULL);
	/* nothing granted: refused everywhere */
	pol_decide(e, 0, &rq, 1 * SEC, &v);
	pol_quiesce(e, 0);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	/* 3 tokens on a, 2 on b: five allowed, a first (cheaper), then spilled to b */
	pol_lease_grant(a, 3, false);
	pol_lease_grant(b, 2, false);
	for (i = 0; i < 8; i++) {
		pol_decide(e, 0, &rq, 2 * SEC + (uint64_t)i, &v);
		pol_quiesce(e, 0);
		if (v.verdict == PAY_ALLOW) {
			allowed_a += strcmp(v.backend, "pa") == 0;
			allowed_b += strcmp(v.backend, "pb") == 0;
		}
	}
	ASSERT_EQ(allowed_a, 3);
	ASSERT_EQ(allowed_b, 2);
	ASSERT_EQ(level(a, false), 0);
	ASSERT_EQ(level(b, false), 0);
	pol_engine_free(e);
}

TEST(lease_load_follows_tokens_held)
{
	struct pol_lease_cell c;

	memset(&c, 0, sizeof(c));
	ASSERT(pol_lease_load(&c) == 0); /* no stock: no demand, no load */
	atomic_store(&c.stock, 4);
	ASSERT(pol_lease_load(&c) == 1); /* demand and nothing held */
	pol_lease_grant(&c, 1, false);
	ASSERT(pol_lease_load(&c) == 0.75);
	pol_lease_grant(&c, 1, true); /* the top pool counts */
	ASSERT(pol_lease_load(&c) == 0.5);
	pol_lease_grant(&c, 5, false);
	ASSERT(pol_lease_load(&c) == 0);
	pol_lease_set(&c, -1, false);
	pol_lease_set(&c, 0, true);
	ASSERT(pol_lease_load(&c) == 1); /* a debt */
}

/* Through the engine: in lease mode the budget's and the backend's load read the lease
 * cell, not the GCRA cell (which no request books in lease mode: it would read 0). */
TEST(engine_load_reads_the_lease)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_budget_info bi;
	struct pol_backend_info be;
	struct pol_lease_cell *a;
	unsigned i, n;

	ASSERT_EQ(pol_engine_lease(e), 0);
	ASSERT((a = account_cell(e, "acct_a")) != NULL);
	atomic_store(&a->stock, 10);
	pol_lease_grant(a, 2, false);
	for (i = 0, n = 0; pol_engine_budget_info(e, i, 1 * SEC, &bi) == 0; i++) {
		if (bi.endpoint || strcmp(bi.account, "acct_a"))
			continue;
		ASSERT(bi.load > 0.79 && bi.load < 0.81);
		n++;
	}
	ASSERT_EQ(n, 1);
	for (i = 0, n = 0; pol_engine_backend_info(e, i, 1 * SEC, &be) == 0; i++) {
		if (strcmp(be.account, "acct_a"))
			continue;
		ASSERT(be.budget_load > 0.79 && be.budget_load < 0.81);
		n++;
	}
	ASSERT(n >= 1);
	pol_engine_free(e);
}

/* A reload (the accounts in another order, so their cells move) carries each budget's
 * tokens, top pool and stock to the same account in the new view, once. */
TEST(reload_carries_tokens)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pol_lease_cell *a, *b;
	struct pay_verdict v;
	char err[256];
	int i, allowed = 0;

	ASSERT_EQ(pol_engine_lease(e), 0);
	a = account_cell(e, "acct_a");
	b = account_cell(e, "acct_b");
	pol_lease_grant(a, 3, false);
	pol_lease_grant(a, 1, true);
	atomic_store(&a->stock, 5);
	pol_lease_grant(b, 2, false);
	ASSERT_EQ(pol_engine_swap(e, pol_load_string(
		"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n"
		"backends = (\n"
		" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"b\"; },\n"
		" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; }\n"
		");\n"
		"default_backend = \"pa\";\n"
		"classes = ( { name = \"std\"; } );\n"
		"fleet = { lease_ms = 5; };\n", "test2", err, sizeof(err)), err, sizeof(err)), 0);
	ASSERT(account_cell(e, "acct_a") != a); /* a new view, the cells moved */
	a = account_cell(e, "acct_a");
	b = account_cell(e, "acct_b");
	ASSERT_EQ(level(a, false), 3);
	ASSERT_EQ(level(a, true), 1);
	ASSERT_EQ(atomic_load(&a->stock), 5);
	ASSERT_EQ(level(b, false), 2);
	/* spent once: the 3 + 2 common tokens (the top pool is the top class's: "std" is
	 * the only class, the top one, so it takes that one too) */
	for (i = 0; i < 10; i++) {
		pol_decide(e, 0, &rq, 2 * SEC + (uint64_t)i, &v);
		pol_quiesce(e, 0);
		allowed += v.verdict == PAY_ALLOW;
	}
	ASSERT_EQ(allowed, 6);
	pol_engine_free(e);
}

int main(void)
{
	RUN(cell_admits_only_grants);
	RUN(reserve_kept_for_classes_above);
	RUN(lease_load_follows_tokens_held);
	RUN(engine_load_reads_the_lease);
	RUN(reload_carries_tokens);
	RUN(top_pool_is_top_class_only);
	RUN(debt_is_one_token_paid_by_the_next_grant);
	RUN(expire_never_below_zero);
	RUN(decide_spends_grants);
	return test_summary();
}
