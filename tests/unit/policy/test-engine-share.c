/* test-engine-share.c: learning shared across a fleet, engine side (engine-share.h),
 * through the engine's API with two or three engines standing for nodes: the tick's
 * outcome counts exported (they add up, swap-and-reset), carried as merge.h texts and
 * applied on the others (counted there, never exported again, own echo refused), a
 * breaker opening of one node opening the others' unless their own recent calls say
 * healthy, and nothing allocated by export or apply. */
#include <stdio.h>
#include <string.h>

#include "alloc-count.h"
#include "engine-share.h"
#include "merge.h"
#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL
#define MS 1000ULL
#define CELLS 256u

static struct pol_engine *node(void)
{
	struct pol_engine *e = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS
	                                       "breaker = { consecutive = 5; min_calls = 20; open_s = 20.0; jitter = 0.0; };\n"
	                                       "classes = ( { name = \"checkout\"; explore = 0.0; } );\n"
	                                       "classify = { default = \"checkout\"; };\n",
	                                       1);

	ASSERT_EQ(pol_engine_learn_share(e, CELLS), 0);
	return e;
}

/* One USD payment decided at t and answered: status, and a decline code (or NULL). */
static struct pay_verdict pay(struct pol_engine *e, uint64_t t, int status, const char *decline)
{
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	struct pay_outcome o;

	pol_decide(e, 0, &rq, t, &v);
	o = pol_test_answer(&v, status, 300);
	if (decline) {
		o.err_type = (struct pay_str){ "card_error", 10 };
		o.decline = (struct pay_str){ decline, (uint32_t)strlen(decline) };
	}
	pol_observe(e, 0, &o, t);
	pol_quiesce(e, 0);
	return v;
}

static void totals(const struct mrg_delta *d, const char *backend, uint64_t *s, uint64_t *f)
{
	uint32_t i;

	*s = *f = 0;
	for (i = 0; i < d->cap; i++)
		if (d->cell[i].used && strcmp(d->cell[i].k.backend, backend) == 0) {
			*s += d->cell[i].s;
			*f += d->cell[i].f;
		}
}

/* Observations of backend b's whole traffic in the master posteriors. */
static double seen(struct pol_engine *e, unsigned b, uint64_t t)
{
	struct pol_seg_info seg[8];

	ASSERT(pol_engine_learn_segs(e, b, t, seg, 8) >= 1);
	return seg[0].n;
}

/* Two nodes, both ticked at t. */
static void two_nodes(struct pol_engine **a, struct pol_engine **b, uint64_t t)
{
	*a = node();
	*b = node();
	pol_tick(*a, t);
	pol_tick(*b, t);
}

static unsigned nopened;
static char opened[4][64];
static void on_opened(void *arg, const char *backend)
{
	(void)arg;
	if (nopened < 4)
		snprintf(opened[nopened], sizeof(opened[0]), "%s", backend);
	nopened++;
}

/* Successes and soft declines learned by the tick are exported once, then nothing;
 * customer declines teach nothing by default (learning.customer_declines 0). */
TEST(export_counts_add_up_and_reset)
{
	struct pol_engine *a = node();
	struct mrg_cell mem[CELLS];
	struct mrg_delta d;
	uint64_t t = 10 * SEC, s, f;
	int i;

	ASSERT_EQ(mrg_init(&d, mem, CELLS), 0);
	pol_tick(a, t);
	for (i = 0; i < 12; i++)
		pay(a, t + (uint64_t)i * MS, 200, NULL);
	for (i = 0; i < 4; i++)
		pay(a, t + (uint64_t)(20 + i) * MS, 402, "do_not_honor");
	for (i = 0; i < 3; i++)
		pay(a, t + (uint64_t)(30 + i) * MS, 402, "insufficient_funds");
	ASSERT_EQ(pol_engine_learn_export(a, &d), 0); /* not merged by a tick yet */
	pol_tick(a, t + 50 * MS);
	ASSERT_EQ(pol_engine_learn_export(a, &d), 16);
	totals(&d, "pa", &s, &f);
	ASSERT_EQ(s, 12);
	ASSERT_EQ(f, 4);
	mrg_reset(&d);
	pol_tick(a, t + 100 * MS);
	ASSERT_EQ(pol_engine_learn_export(a, &d), 0);
	ASSERT_EQ(d.n, 0);
	pol_engine_free(a);
}

/* Node a's counts, as the channel carries them, reach b's posteriors once: b's own echo
 * and a replay are refused, and what b applied is never exported by b (not echoed back). */
TEST(apply_counts_once_and_never_echoes)
{
	struct pol_engine *a, *b;
	static struct mrg_cell mem[3][CELLS];
	struct mrg_delta out, in, back;
	struct mrg_peers peers_b = { 0 };
	struct mrg_msg m;
	static char text[CELLS * 128];
	uint64_t t = 10 * SEC, s, f;
	double before;
	int i, n;

	ASSERT_EQ(mrg_init(&out, mem[0], CELLS), 0);
	ASSERT_EQ(mrg_init(&in, mem[1], CELLS), 0);
	ASSERT_EQ(mrg_init(&back, mem[2], CELLS), 0);
	two_nodes(&a, &b, t);
	for (i = 0; i < 30; i++)
		pay(a, t + (uint64_t)i * MS, i % 3 ? 200 : 402, i % 3 ? NULL : "do_not_honor");
	pol_tick(a, t + 50 * MS);
	ASSERT_EQ(pol_engine_learn_export(a, &out), 30);
	n = mrg_encode(&out, "a", 1000, text, sizeof(text));
	ASSERT(n > 0);
	/* b: the text applied, its counts in b's posteriors */
	before = seen(b, 0, t + 60 * MS);
	ASSERT_EQ(mrg_parse(text, (size_t)n, &m, &in), 0);
	ASSERT_EQ(mrg_accept(&peers_b, "b", m.node, m.seq), MRG_APPLY);
	ASSERT_EQ(pol_engine_learn_apply(b, &in, t + 60 * MS), 30);
	ASSERT(seen(b, 0, t + 60 * MS) - before > 29.9);
	/* the same text again: refused before it reaches the engine */
	ASSERT_EQ(mrg_parse(text, (size_t)n, &m, &in), 0);
	ASSERT_EQ(mrg_accept(&peers_b, "b", m.node, m.seq), MRG_SEEN);
	/* a's own echo */
	{
		struct mrg_peers peers_a = { 0 };

		ASSERT_EQ(mrg_accept(&peers_a, "a", m.node, m.seq), MRG_OWN);
	}
	/* b publishes only what b learned itself: nothing */
	pol_tick(b, t + 100 * MS);
	ASSERT_EQ(pol_engine_learn_export(b, &back), 0);
	/* b's own outcomes do go out, and only them */
	pay(b, t + 110 * MS, 200, NULL);
	pol_tick(b, t + 150 * MS);
	ASSERT_EQ(pol_engine_learn_export(b, &back), 1);
	{
		uint64_t s2, f2;

		totals(&back, "pa", &s, &f);
		totals(&back, "pb", &s2, &f2);
		ASSERT_EQ(s + f + s2 + f2, 1);
	}
	/* a backend this node does not have is skipped */
	{
		struct mrg_key k = { "nowhere", 0, 0, 0, 0 };

		mrg_reset(&in);
		ASSERT_EQ(mrg_add(&in, &k, 5, 5), 0);
		ASSERT_EQ(pol_engine_learn_apply(b, &in, t + 160 * MS), 0);
	}
	pol_engine_free(a);
	pol_engine_free(b);
}

/* A breaker opened by node a's failures is noted for the fleet once; on node b, which
 * has no evidence of its own, the B line opens the breaker and b's next payment goes
 * elsewhere, saying why; b does not publish that opening again. */
TEST(remote_breaker_opens_without_local_evidence)
{
	struct pol_engine *a, *b;
	uint64_t t = 10 * SEC;
	struct pay_verdict v;
	int i;

	two_nodes(&a, &b, t);
	v = pay(b, t + MS, 200, NULL);
	ASSERT_STREQ(v.backend, "pa"); /* b's first choice */
	for (i = 0; i < 5; i++)
		pay(a, t + (uint64_t)(i + 2) * MS, 500, NULL);
	pol_tick(a, t + 50 * MS);
	ASSERT_STREQ(pol_test_breaker(a, 0, t + 50 * MS), "open");
	nopened = 0;
	ASSERT_EQ(pol_engine_learn_opened(a, on_opened, NULL), 1);
	ASSERT_STREQ(opened[0], "pa");
	ASSERT_EQ(pol_engine_learn_opened(a, on_opened, NULL), 0); /* once */

	ASSERT_EQ(pol_engine_learn_breaker(b, "pa", t + 60 * MS), POL_SHARE_OPENED);
	ASSERT_EQ(pol_engine_learn_breaker(b, "pa", t + 61 * MS), POL_SHARE_NONE); /* already open */
	ASSERT_EQ(pol_engine_learn_breaker(b, "nowhere", t + 61 * MS), -1);
	v = pay(b, t + 62 * MS, 200, NULL); /* published at once, before any tick */
	ASSERT_STREQ(v.backend, "pb");
	pol_tick(b, t + 100 * MS);
	ASSERT_STREQ(pol_test_breaker(b, 0, t + 100 * MS), "open");
	v = pay(b, t + 110 * MS, 200, NULL);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "breaker:pa"));
	nopened = 0;
	ASSERT_EQ(pol_engine_learn_opened(b, on_opened, NULL), 0);
	pol_engine_free(a);
	pol_engine_free(b);
}

/* Node c's own recent calls to pa succeeded (at least min_calls of them): a B line for pa
 * keeps c's breaker closed and c keeps routing there. A window with fewer calls is no
 * evidence: opened. */
TEST(local_healthy_evidence_keeps_breaker_closed)
{
	struct pol_engine *c, *d;
	uint64_t t = 10 * SEC;
	struct pay_verdict v;
	int i;

	two_nodes(&c, &d, t);
	for (i = 0; i < 25; i++)
		pay(c, t + (uint64_t)(i + 1) * MS, 200, NULL);
	for (i = 0; i < 10; i++)
		pay(d, t + (uint64_t)(i + 1) * MS, 200, NULL);
	pol_tick(c, t + 50 * MS);
	pol_tick(d, t + 50 * MS);
	ASSERT_EQ(pol_engine_learn_breaker(c, "pa", t + 60 * MS), POL_SHARE_KEPT);
	ASSERT_EQ(pol_engine_learn_breaker(d, "pa", t + 60 * MS), POL_SHARE_OPENED);
	pol_tick(c, t + 100 * MS);
	pol_tick(d, t + 100 * MS);
	ASSERT_STREQ(pol_test_breaker(c, 0, t + 100 * MS), "closed");
	ASSERT_STREQ(pol_test_breaker(d, 0, t + 100 * MS), "open");
	v = pay(c, t + 110 * MS, 200, NULL);
	ASSERT_STREQ(v.backend, "pa");
	/* closing stays local: d's probes close it after the open time */
	pol_engine_free(c);
	pol_engine_free(d);
}

/* Counts of three nodes merged: each node's posteriors hold the others' outcomes plus its
 * own, none twice. */
TEST(three_nodes_merge_to_the_same_total)
{
	struct pol_engine *e[3] = { node(), node(), node() };
	static struct mrg_cell mem[4][CELLS];
	struct mrg_delta out[3], in;
	uint64_t t = 10 * SEC;
	double base[3];
	int i, j, k;

	ASSERT_EQ(mrg_init(&in, mem[3], CELLS), 0);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(mrg_init(&out[i], mem[i], CELLS), 0);
		pol_tick(e[i], t);
		base[i] = seen(e[i], 0, t);
		for (j = 0; j < 10 * (i + 1); j++)
			pay(e[i], t + (uint64_t)(j + 1) * MS, 200, NULL);
		pol_tick(e[i], t + 50 * MS);
		ASSERT_EQ(pol_engine_learn_export(e[i], &out[i]), (uint64_t)(10 * (i + 1)));
	}
	for (i = 0; i < 3; i++)
		for (k = 0; k < 3; k++)
			if (k != i)
				ASSERT_EQ(pol_engine_learn_apply(e[i], &out[k], t + 60 * MS), (uint64_t)(10 * (k + 1)));
	for (i = 0; i < 3; i++) {
		double n = seen(e[i], 0, t + 60 * MS) - base[i];

		ASSERT(n > 59.5 && n < 60.5); /* 10 + 20 + 30 (discounting over 60 ms is negligible) */
		pol_tick(e[i], t + 100 * MS);
		mrg_reset(&in);
		ASSERT_EQ(pol_engine_learn_export(e[i], &in), 0);
		pol_engine_free(e[i]);
	}
}

/* Export and apply, as fleet-learn.c calls them every second, allocate nothing. */
TEST(export_and_apply_allocate_nothing)
{
	struct pol_engine *a, *b;
	static struct mrg_cell mem[CELLS];
	struct mrg_delta d;
	uint64_t t = 10 * SEC;
	int i, r;

	ASSERT_EQ(mrg_init(&d, mem, CELLS), 0);
	two_nodes(&a, &b, t);
	for (r = 0; r < 3; r++) {
		for (i = 0; i < 20; i++)
			pay(a, t += MS, 200, NULL);
		pol_tick(a, t);
	}
	alloc_calls = 0;
	alloc_counting = 1;
	for (r = 0; r < 20; r++) {
		for (i = 0; i < 20; i++)
			pay(a, t += MS, i % 4 ? 200 : 402, i % 4 ? NULL : "do_not_honor");
		pol_tick(a, t);
		mrg_reset(&d);
		pol_engine_learn_export(a, &d);
		pol_engine_learn_apply(b, &d, t);
		pol_engine_learn_breaker(b, "pb", t);
		pol_tick(b, t);
	}
	alloc_counting = 0;
	if (ALLOC_COUNT_WORKS)
		ASSERT_EQ(alloc_calls, 0);
	pol_engine_free(a);
	pol_engine_free(b);
}

int main(void)
{
	RUN(export_counts_add_up_and_reset);
	RUN(apply_counts_once_and_never_echoes);
	RUN(remote_breaker_opens_without_local_evidence);
	RUN(local_healthy_evidence_keeps_breaker_closed);
	RUN(three_nodes_merge_to_the_same_total);
	RUN(export_and_apply_allocate_nothing);
	return test_summary();
}
