/* test-thr.c: policy/thr.c: GCRA budgets with reserves over simulated time, as tables
 * of (time, share, max wait) → result, and the drain a rate-limit 429 causes. */
#include <stdatomic.h>
#include <stdint.h>

#include "test.h"
#include "thr.h"

#define SEC 1000000000ULL /* ns */

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

int main(void)
{
	RUN(gcra_table);
	RUN(gcra_drain);
	return test_summary();
}
