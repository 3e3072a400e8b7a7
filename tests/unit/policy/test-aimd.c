/* test-aimd.c: adaptive budgets, as tables of (time, outcome) -> expected limit. */
#include "aimd.h"
#include "outcome.h"
#include "test.h"

#define MS 1000ull

#define RL   OC_RATE_LIMITED
#define LOCK OC_LOCK_CONFLICT
#define READ OC_KIND_COUNT /* no outcome: only read the limit */

struct row {
	uint64_t t_ms;
	enum oc_kind kind;
	double want;   /* limit after the row, req/s */
	int cut;       /* expected return */
};

static void run_rows(struct aimd *a, const struct aimd_cfg *c, const struct row *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t now = r[i].t_ms * MS;
		int cut = r[i].kind == READ ? 0 : aimd_on_outcome(a, c, r[i].kind, now);
		double got = aimd_limit(a, c, now);

		if (cut != r[i].cut || got < r[i].want - 1e-9 || got > r[i].want + 1e-9)
			TEST_FAIL_("row %zu (t=%llu ms): limit %.6f cut %d, want %.6f cut %d", i,
			           (unsigned long long)r[i].t_ms, got, cut, r[i].want, r[i].cut);
	}
}

#define RUN_ROWS(a, c, tbl) run_rows((a), (c), (tbl), sizeof(tbl) / sizeof((tbl)[0]))

/* The rows against a budget of 100 req/s with the default settings; returns its state. */
static struct aimd run_default(const struct row *r, size_t n)
{
	struct aimd_cfg c;
	struct aimd a;

	aimd_cfg_default(&c, 100);
	aimd_init(&a, &c, 0);
	run_rows(&a, &c, r, n);
	return a;
}

#define RUN_DEFAULT(tbl) run_default((tbl), sizeof(tbl) / sizeof((tbl)[0]))

/* Ceiling 100, floor 5, x0.7, +1/s, cool-down 2 s. A burst of 429s is one cut; the
 * next cut comes only after the cool-down, from the recovered value. */
TEST(aimd_cut_cooldown_recover)
{
	static const struct row rows[] = {
		{ 0,      READ, 100, 0 },
		{ 1000,   RL,   70, 1 },
		{ 1100,   RL,   70.1, 0 },
		{ 1500,   RL,   70.5, 0 },
		{ 2999,   RL,   71.999, 0 },
		{ 3000,   RL,   72 * 0.7, 1 },
		{ 3000,   LOCK, 50.4, 0 },
		{ 3001,   OC_SUCCESS, 50.401, 0 },
		{ 3002,   OC_PSP_ERROR, 50.402, 0 },
		{ 13000,  READ, 60.4, 0 },
		{ 21000,  READ, 68.4, 0 },  /* 0.95 x 72, the budget that drew the last cut */
		{ 25000,  READ, 69.6, 0 },  /* then +0.3/s */
		{ 33000,  READ, 72, 0 },    /* up to 72 ... */
		{ 53000,  READ, 72, 0 },    /* ... held there 20 s without a 429 ... */
		{ 62600,  READ, 81.6, 0 },  /* ... then probed above it: +1/s */
		{ 81000,  READ, 100, 0 },   /* back at the ceiling, and no further */
		{ 900000, READ, 100, 0 },
		{ 900000, RL,   70, 1 },    /* a new overload, long after: cut again */
	};
	struct aimd_cfg c;
	struct aimd a;

	aimd_cfg_default(&c, 100);
	ASSERT(aimd_cfg_check(&c) == NULL);
	aimd_init(&a, &c, 0);
	RUN_ROWS(&a, &c, rows);
	ASSERT_EQ(a.cuts, 3);
	ASSERT_EQ(a.absorbed, 3);
	ASSERT_EQ(a.locks, 1);
}

/* The true limit is below the ceiling: the first cut comes from 100, the second from
 * the slow climb above 95; after it the budget climbs fast to 0.95 x 96.2, slowly to
 * 96.2, holds there 20 s, then probes on to the ceiling (the 429s stopped). Lock
 * conflicts do not refresh the memory. */
TEST(aimd_plateau_forget)
{
	static const struct row rows[] = {
		{ 0,      READ, 100, 0 },
		{ 1000,   RL,   70, 1 },
		{ 26000,  READ, 95, 0 },       /* +1/s up to 0.95 x 100 */
		{ 30000,  READ, 96.2, 0 },     /* then +0.3/s */
		{ 30000,  RL,   96.2 * 0.7, 1 },
		{ 54050,  READ, 91.39, 0 },    /* +1/s up to 0.95 x 96.2 */
		{ 64050,  READ, 94.39, 0 },    /* +0.3/s */
		{ 71000,  READ, 96.2, 0 },     /* reached at 70.08 s ... */
		{ 90000,  LOCK, 96.2, 0 },     /* ... and held until 90.08 s */
		{ 100000, READ, 100, 0 },      /* +1/s from there to the ceiling */
		{ 200000, READ, 100, 0 },
		{ 340000, READ, 100, 0 },
		{ 340000, RL,   70, 1 },       /* a new overload after forget_s: from 100 */
		{ 365000, READ, 95, 0 },
	};
	struct aimd a = RUN_DEFAULT(rows);

	ASSERT_EQ(a.cuts, 3);
	ASSERT_EQ(a.locks, 1);
}

/* plateau, probe and forget_us: set, or 0 for the defaults (a zeroed config, as the
 * engine's, behaves as aimd_cfg_default). */
TEST(aimd_plateau_cfg)
{
	static const struct row rows[] = {
		{ 0,      RL,   70, 1 },
		{ 10000,  READ, 80, 0 },       /* plateau 0.8 x 100 */
		{ 20000,  READ, 85, 0 },       /* +0.5/s */
		{ 20000,  RL,   59.5, 1 },
		{ 28500,  READ, 68, 0 },       /* 0.8 x 85 */
		{ 38500,  READ, 73, 0 },
		{ 62500,  READ, 85, 0 },       /* reached (+0.5/s) and held ... */
		{ 79999,  READ, 85, 0 },
		{ 90000,  READ, 95, 0 },       /* ... until forgotten 60 s after the cut (before
		                                * the 20 s hold ended): +1/s */
		{ 95000,  READ, 100, 0 },
	};
	struct aimd_cfg c, d, z = { 0 };
	struct aimd a, b;
	uint64_t t;

	aimd_cfg_default(&c, 100);
	c.plateau = 0.8;
	c.probe = 0.5;
	c.forget_us = 60000 * MS;
	ASSERT(aimd_cfg_check(&c) == NULL);
	aimd_init(&a, &c, 0);
	RUN_ROWS(&a, &c, rows);

	aimd_cfg_default(&d, 100);
	z.ceiling = d.ceiling;
	z.floor = d.floor;
	z.md = d.md;
	z.ai_per_s = d.ai_per_s;
	z.cooldown_us = d.cooldown_us;
	ASSERT(aimd_cfg_check(&z) == NULL);
	aimd_init(&a, &d, 0);
	aimd_init(&b, &z, 0);
	for (t = 0; t < 800000; t += 500) {
		if (t % 97000 == 0) {
			ASSERT(aimd_on_outcome(&a, &d, RL, t * MS));
			ASSERT(aimd_on_outcome(&b, &z, RL, t * MS));
		}
		ASSERT_NEAR(aimd_limit(&a, &d, t * MS), aimd_limit(&b, &z, t * MS), 1e-9);
	}
}

/* A limit drop that ends (issue 11: the budget stayed at the cut level for the 5
 * minutes of forget_s). Held at the level last cut for 20 s without a 429, the budget
 * probes above it; a probe that draws a 429 (the limit is still there) is cheap, back
 * to the plateau, and the next probe waits twice as long; once the limit is lifted the
 * probe climbs on to the ceiling. */
TEST(aimd_probe_lifted_limit)
{
	static const struct row rows[] = {
		{ 0,      RL,   70, 1 },       /* the true limit drops below 100 */
		{ 2000,   RL,   50.4, 1 },     /* 72 x 0.7: w_max = 72 */
		{ 20000,  READ, 68.4, 0 },     /* +1/s to 0.95 x 72 */
		{ 32000,  READ, 72, 0 },       /* +0.3/s to 72 */
		{ 52000,  READ, 72, 0 },       /* held 20 s */
		{ 53000,  RL,   68.4, 1 },     /* the probe at 73 fails: back to the plateau */
		{ 54000,  RL,   68.7, 0 },     /* the same overload; +0.3/s */
		{ 65000,  READ, 72, 0 },       /* +0.3/s to 72 again */
		{ 104000, READ, 72, 0 },       /* held 40 s now: the limit is lifted meanwhile */
		{ 110000, READ, 77, 0 },       /* probing since 105 s */
		{ 133000, READ, 100, 0 },      /* at the ceiling 133 s after the first cut */
		{ 200000, READ, 100, 0 },
		{ 400000, RL,   70, 1 },       /* long after: a plain cut */
	};
	struct aimd a = RUN_DEFAULT(rows);

	ASSERT_EQ(a.cuts, 4);
	ASSERT_EQ(a.probes_failed, 1);
	ASSERT_EQ(a.absorbed, 1);
	ASSERT_NEAR(a.w_max, 100, 1e-9);
}

/* Probes that keep failing back off: the wait at w_max doubles (20, 40, 80, 160 s ...)
 * up to forget_s, and the budget never falls below the plateau of the level that held. */
TEST(aimd_probe_backoff)
{
	struct aimd_cfg c;
	struct aimd a;
	uint64_t t, last = 0;
	double lo = 1e9;
	int fails = 0;

	aimd_cfg_default(&c, 100);
	aimd_init(&a, &c, 0);
	ASSERT(aimd_on_outcome(&a, &c, RL, 0));
	ASSERT(aimd_on_outcome(&a, &c, RL, 2000 * MS));
	/* the true limit stays at 72.5: every probe above it draws a 429 at once */
	for (t = 2000; t < 600000; t += 100) {
		double v = aimd_limit(&a, &c, t * MS);

		if (t > 20000 && v < lo)
			lo = v;
		if (v > 72.5 && aimd_on_outcome(&a, &c, RL, t * MS)) {
			if (fails) { /* climb + hold */
				uint64_t hold = 20000ull << fails;

				ASSERT(t - last >= 12000 + (hold < 300000 ? hold : 300000) - 200);
			}
			last = t;
			fails++;
		}
	}
	ASSERT_EQ(a.probes_failed, (uint32_t)fails);
	ASSERT_EQ(fails, 4); /* at 52, 104, 196 and 368 s; the next hold is forget_s */
	ASSERT(lo >= 68.4 - 1e-9 && lo < 68.5);
	ASSERT_NEAR(a.w_max, 72, 1e-9);
}

/* A sustained overload cuts once per cool-down and stops at the floor. */
TEST(aimd_floor)
{
	struct aimd_cfg c;
	struct aimd a;
	uint64_t t;

	aimd_cfg_default(&c, 100);
	aimd_init(&a, &c, 0);
	for (t = 0; t < 120000; t += 100)
		aimd_on_outcome(&a, &c, RL, t * MS);
	ASSERT_EQ(a.cuts, 60);
	/* floor + 2 s of recovery, +1/s up to 0.95 x w (the budget at the previous cut),
	 * then +0.3/s: w = 0.95 w + 0.3 (7 - 0.95 w), the fixed point 2.1 / 0.335 */
	ASSERT_NEAR(aimd_limit(&a, &c, 120000 * MS), 2.1 / 0.335, 1e-6);
	ASSERT(aimd_limit(&a, &c, 118000 * MS) >= c.floor);
	ASSERT_NEAR(a.limit, 5, 1e-12);
}

/* Lock conflicts (429 without Stripe-Rate-Limited-Reason), however many, never cut;
 * the classification decides, not the status. */
TEST(aimd_lock_conflicts_do_not_cut)
{
	static struct oc_rule mem[64];
	struct oc_table t;
	struct aimd_cfg c;
	struct aimd a;
	struct pay_outcome o = { .status = 429, .latency_ms = 5 };
	int i;

	ASSERT_EQ(oc_table_init(&t, mem, 64), 0);
	aimd_cfg_default(&c, 25);
	aimd_init(&a, &c, 0);
	for (i = 0; i < 1000; i++)
		ASSERT(!aimd_on_outcome(&a, &c, oc_classify(&t, &o, 0).kind, (uint64_t)i * 10 * MS));
	ASSERT_NEAR(aimd_limit(&a, &c, 10000 * MS), 25, 0);
	ASSERT_EQ(a.locks, 1000);
	o.rl_reason = (struct pay_str){ "endpoint-rate", 13 };
	ASSERT(aimd_on_outcome(&a, &c, oc_classify(&t, &o, 0).kind, 10000 * MS));
	ASSERT_NEAR(aimd_limit(&a, &c, 10000 * MS), 17.5, 1e-9);
}

/* A reload that lowers the ceiling or raises the floor applies at once. */
TEST(aimd_reload_bounds)
{
	struct aimd_cfg c;
	struct aimd a;

	aimd_cfg_default(&c, 100);
	aimd_init(&a, &c, 0);
	c.ceiling = 40;
	ASSERT_NEAR(aimd_limit(&a, &c, 0), 40, 0);
	aimd_on_outcome(&a, &c, RL, 0);
	ASSERT_NEAR(aimd_limit(&a, &c, 0), 28, 1e-9);
	c.floor = 30;
	ASSERT_NEAR(aimd_limit(&a, &c, 0), 30, 0);
}

TEST(aimd_cfg_checks)
{
	struct aimd_cfg c;

	aimd_cfg_default(&c, 100);
	c.md = 1;
	ASSERT(aimd_cfg_check(&c) != NULL);
	aimd_cfg_default(&c, 100);
	c.floor = 101;
	ASSERT(aimd_cfg_check(&c) != NULL);
	aimd_cfg_default(&c, 0);
	ASSERT(aimd_cfg_check(&c) != NULL);
	aimd_cfg_default(&c, 100);
	c.ai_per_s = -1;
	ASSERT(aimd_cfg_check(&c) != NULL);
	aimd_cfg_default(&c, 100);
	c.plateau = 1.5;
	ASSERT(aimd_cfg_check(&c) != NULL);
	aimd_cfg_default(&c, 100);
	c.probe = -0.1;
	ASSERT(aimd_cfg_check(&c) != NULL);
}

int main(void)
{
	RUN(aimd_cut_cooldown_recover);
	RUN(aimd_plateau_forget);
	RUN(aimd_plateau_cfg);
	RUN(aimd_probe_lifted_limit);
	RUN(aimd_probe_backoff);
	RUN(aimd_floor);
	RUN(aimd_lock_conflicts_do_not_cut);
	RUN(aimd_reload_bounds);
	RUN(aimd_cfg_checks);
	return test_summary();
}
