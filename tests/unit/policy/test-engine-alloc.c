/* test-engine-alloc.c: pol_decide, pol_observe (and _batch) and pol_quiesce make no heap call in steady
 * state (DESIGN.md §1). Counted by interposing malloc; not countable under sanitizers. */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "pol-test.h"
#include "test.h"
#include "alloc-count.h"


TEST(counter_sees_heap_calls)
{
	if (!ALLOC_COUNT_WORKS)
		return;
	ASSERT_EQ(alloc_count_probe(), 2);
}

TEST(decide_observe_allocate_nothing)
{
	char err[512], idem[65], obj[32];
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));
	struct pol_engine *e;
	struct pay_request rq = { 0 };
	struct pay_outcome o;
	struct pay_verdict v;
	uint64_t now = 5000000;
	int i;

	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err))))
		TEST_FAIL_("%s", err);
	pol_engine_set_sampling(e, 3); /* the decision sample ring is written too */
	alloc_calls = 0;
	alloc_counting = 1;
	for (i = 0; i < 20000; i++, now += 1000) {
		snprintf(idem, sizeof(idem), "%064x", i % 500);
		snprintf(obj, sizeof(obj), "pi_%d", i % 300);
		rq.method = S("POST");
		rq.path = (i & 1) ? S("/v1/payment_intents") : S("/v1/payment_intents/pi_7/capture");
		rq.currency = (i % 3) ? S("eur") : S("usd");
		rq.card_country = (i % 5) ? S("DE") : S("US");
		rq.idem = (struct pay_str){ idem, 64 };
		rq.amount = 1000 + i;
		rq.has_amount = true;
		pol_decide(e, 0, &rq, now, &v);
		o = pol_test_answer(&v, (i % 7) ? 200 : 402, 0);
		o.object = (struct pay_str){ obj, (uint32_t)strlen(obj) };
		if (i & 2)
			pol_observe_batch(e, 0, &o, 1, now); /* the log reader's path */
		else
			pol_observe(e, 0, &o, now);
		pol_quiesce(e, 0);
	}
	alloc_counting = 0;
	ASSERT_EQ(alloc_calls, 0);
	pol_engine_free(e);
}

int main(void)
{
	if (!ALLOC_COUNT_WORKS)
		printf("# heap calls cannot be counted under a sanitizer: the check below is vacuous here\n");
	RUN(counter_sees_heap_calls);
	RUN(decide_observe_allocate_nothing);
	return test_summary();
}
