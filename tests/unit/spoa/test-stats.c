/* test-stats.c: the counter lists (policy/counters-t.h, spoa/stats-t.h) and what is
 * generated from them: every field described once, the folds, the engine's sums. */
#include <stdio.h>
#include <string.h>

#include "engine-t.h"
#include "policy.h"
#include "pol-test.h"
#include "stats.h"
#include "test.h"

/* Descriptions cover the struct exactly: distinct offsets, n values each, no gap. */
TEST(pol_stats_described_once)
{
	size_t i, k, bytes = 0;

	for (i = 0; i < pol_stats_ndesc; i++) {
		const struct pol_stats_desc *d = &pol_stats_desc[i];
		unsigned words = 0;

		ASSERT(!strcmp(d->type, "counter") || !strcmp(d->type, "gauge"));
		ASSERT(d->help && d->help[0]);
		ASSERT(d->off % sizeof(uint64_t) == 0 && d->off < sizeof(struct pol_stats));
		for (k = 0; k < i; k++) {
			ASSERT_NE(pol_stats_desc[k].off, d->off);
			ASSERT(strcmp(pol_stats_desc[k].name, d->name));
		}
		if (d->label) { /* one label value per array cell */
			const char *s = d->values;

			while (*s) {
				words++;
				s += strcspn(s, " ");
				s += strspn(s, " ");
			}
			ASSERT_EQ(words, d->n);
		} else {
			ASSERT_EQ(d->n, 1);
		}
		bytes += d->n * sizeof(uint64_t);
	}
	ASSERT_EQ(bytes, sizeof(struct pol_stats));
}

TEST(spoa_stats_described_once)
{
	size_t i, k, bytes = 0;
	unsigned logged = 0;

	for (i = 0; i < stats_ndesc; i++) {
		const struct stats_desc *d = &stats_desc[i];

		ASSERT(!strcmp(d->type, "counter") || !strcmp(d->type, "gauge"));
		ASSERT(d->help && d->help[0]);
		for (k = 0; k < i; k++) {
			ASSERT_NE(stats_desc[k].off, d->off);
			ASSERT(!d->log[0] || strcmp(stats_desc[k].log, d->log));
		}
		logged += d->log[0] != 0;
		bytes += sizeof(uint64_t);
	}
	ASSERT_EQ(bytes, sizeof(struct spoa_totals));
	ASSERT_EQ(logged, 23); /* the stopped line's fields: tests/ and operators read them */
}

/* A connection's counters are added and zeroed; the agent's are added as the difference
 * since the last fold; the totals sum the workers. */
TEST(spoa_folds)
{
	static struct worker_stats ws[2];
	struct conn_counts c = { 0 };
	struct agent_counts a = { 0 }, flushed = { 0 };
	struct spoa_totals t = { 0 };

	c.frames_in = 3;
	c.notify = 2;
	stats_fold_conn(&ws[0], &c);
	ASSERT_EQ(c.frames_in, 0);
	ASSERT_EQ(c.notify, 0);
	c.frames_in = 1;
	stats_fold_conn(&ws[0], &c);
	a.requests = 5;
	a.reject = 1;
	stats_fold_agent(&ws[0], &a, &flushed);
	a.requests = 7;
	stats_fold_agent(&ws[0], &a, &flushed);
	ASSERT_EQ(STAT_GET(ws[0].frames_in), 4);
	ASSERT_EQ(STAT_GET(ws[0].notify), 2);
	ASSERT_EQ(STAT_GET(ws[0].requests), 7);
	ASSERT_EQ(STAT_GET(ws[0].reject), 1);
	STAT_ADD(ws[1].requests, 10);
	STAT_ADD(ws[1].resets, 2);
	stats_sum(&t, &ws[0]);
	stats_sum(&t, &ws[1]);
	ASSERT_EQ(t.requests, 17);
	ASSERT_EQ(t.resets, 2);
	ASSERT_EQ(t.frames_in, 4);
	ASSERT_EQ(t.refused, 0); /* the daemon's own: never in a worker's statistics */
}

/* The generated fold of pol_engine_stats sums every worker's row. */
TEST(pol_stats_sum_workers)
{
	char err[512];
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));
	struct pol_engine *e;
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	struct pol_stats st;
	unsigned i;

	if (!p)
		TEST_FAIL_("%s", err);
	e = pol_engine_new(p, 3, err, sizeof(err));
	ASSERT(e);
	for (i = 0; i < 6; i++)
		pol_decide(e, i % 3, &rq, 1000000 + i, &v);
	atomic_store(&e->workers[2].c.outcomes[4], 5);
	pol_engine_stats(e, 1000000, &st);
	ASSERT_EQ(st.decisions, 6);
	ASSERT_EQ(st.allow + st.queue + st.reject, 6);
	ASSERT_EQ(st.outcomes[4], 5);
	pol_engine_free(e);
}

int main(void)
{
	RUN(pol_stats_described_once);
	RUN(spoa_stats_described_once);
	RUN(spoa_folds);
	RUN(pol_stats_sum_workers);
	return test_summary();
}
