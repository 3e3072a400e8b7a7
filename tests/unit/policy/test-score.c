/* test-score.c: policy/score.c: a candidate's expected net value against a
 * hand-computed one, and how ties between equal scores are broken. */
#include "pol-test.h"
#include "policy-t.h"
#include "policy.h"
#include "score.h"
#include "test.h"

TEST(score_and_ties)
{
	struct policy *p = pol_test_load("conf/payspoa.conf");
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

int main(void)
{
	RUN(score_and_ties);
	return test_summary();
}
