/* test-srate.c: success-rate posteriors: decay, back-off, eviction, publishing and
 * Thompson exploration with a fixed seed (so every proportion below is deterministic;
 * the bounds are generous around the analytic values noted with each). */
#include <math.h>
#include <stdint.h>

#include "srate.h"
#include "test.h"

#define SEC 1000000ull

/* 2048 slots and their dirty-block generations (8 bytes per 64 slots) */
static struct srt_entry mem_a[2048 + 8], mem_b[2048 + 8], mem_c[2048 + 8];

static void setup(struct srt_table *t, struct srt_entry *mem, double half_life_s,
                  double min_n, uint32_t max)
{
	struct srt_cfg c = { .half_life_s = half_life_s, .prior_a = 1, .prior_b = 1, .min_n = min_n,
	                     .max_segments = max };

	ASSERT(srt_cfg_check(&c) == NULL);
	ASSERT(srt_mem_size(max) <= sizeof(mem_a));
	ASSERT_EQ(srt_init(t, &c, mem, sizeof(mem_a)), 0);
}

static struct srt_seg seg(uint32_t backend, const char *cur, const char *cty,
                          const char *brand, const char *funding)
{
	struct srt_seg s = { backend, srt_code(cur, strlen(cur)), srt_code(cty, strlen(cty)),
	                     srt_code(brand, strlen(brand)), srt_code(funding, strlen(funding)) };
	return s;
}

/* (time, successes, failures) -> discounted counts: one half-life halves them. */
TEST(srate_decay_halves)
{
	static const struct { uint64_t t_s; double succ, fail; double want_s; } rows[] = {
		{ 0,   80, 20, 100 },
		{ 60,   0,  0,  50 },  /* one half-life */
		{ 120,  0,  0,  25 },
		{ 120, 10,  0,  35 },
		{ 180,  0,  0,  17.5 },
		{ 780,  0,  0,  17.5 / 1024 },
	};
	struct srt_table t;
	struct srt_seg s = seg(1, "usd", "us", "visa", "credit");
	size_t i;
	int lv;

	setup(&t, mem_a, 60, 20, 64);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t now = rows[i].t_s * SEC;

		srt_add(&t, &s, rows[i].succ, rows[i].fail, now);
		for (lv = 0; lv < SRT_LEVELS; lv++)
			ASSERT_NEAR(srt_count(&t, &s, (enum srt_level)lv, now), rows[i].want_s, 1e-9);
	}
	{
		struct srt_post p;

		/* at 180 s: successes 80/8 + 10/2, failures 20/8 */
		srt_lookup(&t, &s, 180 * SEC, &p);
		ASSERT_NEAR(p.a, 1 + 15, 1e-9);
		ASSERT_NEAR(p.b, 1 + 2.5, 1e-9);
		/* reading at an earlier time than the last update does not inflate */
		srt_lookup(&t, &s, 60 * SEC, &p);
		ASSERT_NEAR(p.a, 1 + 30, 1e-9);
	}
	/* no decay when half-life is 0 */
	setup(&t, mem_a, 0, 20, 64);
	srt_add(&t, &s, 3, 1, 0);
	ASSERT_NEAR(srt_count(&t, &s, SRT_L_FULL, 1000000 * SEC), 4, 1e-12);
}

/* The evidence cap, as (time, successes, failures) -> counts: at max_n each new outcome
 * displaces as much old weight, so a busy key tracks a change within ~max_n outcomes
 * while the half-life still ages a quiet one. */
TEST(srate_evidence_cap)
{
	static const struct { uint64_t t_s; double succ, fail; double want_n, want_s; } rows[] = {
		{ 0,   90, 10, 100, 90 },
		{ 0,   90, 10, 200, 180 },   /* at the cap, nothing displaced yet */
		{ 0,    0, 100, 200, 90 },   /* 100 new: the old 200 weigh 100 */
		{ 0,    0, 200, 200, 0 },    /* all displaced */
		{ 60,  10,  0, 110, 10 },    /* a half-life halved the 200 first */
	};
	struct srt_cfg c = { .half_life_s = 60, .prior_a = 1, .prior_b = 1, .min_n = 20,
	                     .max_n = 200, .max_segments = 64 };
	struct srt_table t;
	struct srt_seg s = seg(1, "usd", "us", "visa", "credit");
	struct srt_post p;
	size_t i;

	ASSERT(srt_cfg_check(&c) == NULL);
	ASSERT_EQ(srt_init(&t, &c, mem_a, sizeof(mem_a)), 0);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t now = rows[i].t_s * SEC;

		srt_add(&t, &s, rows[i].succ, rows[i].fail, now);
		srt_lookup(&t, &s, now, &p);
		ASSERT_NEAR(p.n, rows[i].want_n, 1e-9);
		ASSERT_NEAR(p.a - 1, rows[i].want_s, 1e-9);
	}
}

/* Back-off: a thin fine segment reads its coarser parent; once it has min_n, itself. */
TEST(srate_backoff)
{
	static const struct { uint32_t be; const char *cur, *cty, *brand, *fund; double s, f; } feed[] = {
		{ 1, "usd", "US", "visa", "credit",  4,  1 }, /* thin: 5 */
		{ 1, "usd", "US", "visa", "debit",  10, 20 }, /* sibling: brand level 35 */
		{ 1, "eur", "FR", "visa", "credit", 30,  0 },
		{ 2, "usd", "US", "visa", "credit", 50, 50 },
	};
	static const struct {
		uint32_t be; const char *cur, *cty, *brand, *fund; int level; double mean;
	} want[] = {
		{ 1, "usd", "US", "visa", "credit", SRT_L_BRAND,    (1 + 14.0) / (2 + 35) }, /* thin_n 0 */
		{ 1, "USD", "us", "VISA", "debit",  SRT_L_FULL,     (1 + 10.0) / (2 + 30) },
		{ 1, "usd", "US", "mastercard", "credit", SRT_L_COUNTRY, (1 + 14.0) / (2 + 35) },
		{ 1, "usd", "GB", "visa", "credit", SRT_L_CURRENCY, (1 + 14.0) / (2 + 35) },
		{ 1, "jpy", "JP", "jcb", "credit",  SRT_L_BACKEND,  (1 + 44.0) / (2 + 65) },
		{ 2, "eur", "FR", "visa", "credit", SRT_L_BACKEND,  (1 + 50.0) / (2 + 100) },
		{ 3, "usd", "US", "visa", "credit", -1,             0.5 },
	};
	struct srt_table t;
	struct srt_post p;
	struct srt_seg s;
	size_t i;

	setup(&t, mem_a, 3600, 20, 256);
	for (i = 0; i < sizeof(feed) / sizeof(feed[0]); i++) {
		s = seg(feed[i].be, feed[i].cur, feed[i].cty, feed[i].brand, feed[i].fund);
		srt_add(&t, &s, feed[i].s, feed[i].f, SEC);
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		s = seg(want[i].be, want[i].cur, want[i].cty, want[i].brand, want[i].fund);
		srt_lookup(&t, &s, SEC, &p);
		if (p.level != want[i].level || fabs(srt_mean(&p) - want[i].mean) > 1e-9)
			TEST_FAIL_("row %zu: level %d mean %.6f, want %d %.6f", i, p.level,
			           srt_mean(&p), want[i].level, want[i].mean);
	}
	/* the thin segment fills up: now it reads itself */
	s = seg(1, "usd", "US", "visa", "credit");
	srt_add(&t, &s, 15, 0, SEC);
	srt_lookup(&t, &s, SEC, &p);
	ASSERT_EQ(p.level, SRT_L_FULL);
	ASSERT_NEAR(srt_mean(&p), (1 + 19.0) / (2 + 20), 1e-9);
	/* and decays back to thin: an hour later (one half-life) 10 < 20, so it backs off;
	 * nothing reaches 20 at the brand level either (25) ... but the brand level does */
	srt_lookup(&t, &s, 3601 * SEC, &p);
	ASSERT_EQ(p.level, SRT_L_BRAND);
	/* nothing anywhere has enough: the heaviest level is used */
	srt_lookup(&t, &s, 3 * 3600 * SEC, &p);
	ASSERT_EQ(p.level, SRT_L_BACKEND);
}

/* A thin segment (some outcomes, fewer than min_n) reads its own outcomes on top of the
 * coarser level's mean worth at most thin_n, at the coarser level's weight (issue 11,
 * cause 2): a backend seldom tried on a segment where it is much better than on its
 * others is not stuck at its other segments' rate, and its posterior is no wider than
 * the coarser level's. Rows: thin_n, (segment's own s/f, backend level's s/f, the
 * segment's included) -> level used, mean, count. min_n 30. */
TEST(srate_thin_segment_blends)
{
	static const struct { double tw, s, f, ps, pf; int level; double mean, n; } rows[] = {
		/* never tried on the segment: the coarse level as it is */
		{ 30, 0, 0, 176, 24, SRT_L_BACKEND, (1 + 176.0) / (2 + 200), 200 },
		/* 10 of 10 where the backend authorises 88 %: 10 + 26.4 / 3.6 (0.91) scaled to
		 * the backend level's 200 */
		{ 30, 10, 0, 176, 24, SRT_L_BACKEND, (1 + 36.4 * 5) / (2 + 200), 40 },
		/* worth 90: 10 + 79.2 / 10.8 (0.89) */
		{ 90, 10, 0, 176, 24, SRT_L_BACKEND, (1 + 89.2 * 2) / (2 + 200), 100 },
		/* thin_n 0: the plain back-off, the backend level alone */
		{ 0, 10, 0, 176, 24, SRT_L_BACKEND, (1 + 176.0) / (2 + 200), 200 },
		/* the segment worse than the rest pulls down as much: 28.4 / 11.6 (0.71) */
		{ 30, 2, 8, 176, 24, SRT_L_BACKEND, (1 + 28.4 * 5) / (2 + 200), 40 },
		/* a backend level thinner than thin_n weighs what it has, never more */
		{ 30, 5, 0, 10, 10, SRT_L_BACKEND, (1 + 5 + 10.0) / (2 + 5 + 20), 25 },
		/* enough of its own: the segment alone */
		{ 30, 40, 0, 176, 24, SRT_L_FULL, (1 + 40.0) / (2 + 40), 40 },
	};
	struct srt_table t;
	struct srt_post p;
	struct srt_seg s = seg(1, "gbp", "GB", "visa", "credit");
	struct srt_seg other = seg(1, "eur", "DE", "visa", "credit");
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		setup(&t, mem_a, 0, 30, 256);
		t.cfg.thin_n = rows[i].tw;
		srt_add(&t, &other, rows[i].ps - rows[i].s, rows[i].pf - rows[i].f, SEC);
		if (rows[i].s + rows[i].f > 0)
			srt_add(&t, &s, rows[i].s, rows[i].f, SEC);
		srt_lookup(&t, &s, SEC, &p);
		if (p.level != rows[i].level || fabs(srt_mean(&p) - rows[i].mean) > 1e-9 ||
		    fabs(p.n - rows[i].n) > 1e-9)
			TEST_FAIL_("row %zu: level %d mean %.6f n %.1f, want %d %.6f %.1f", i, p.level,
			           srt_mean(&p), p.n, rows[i].level, rows[i].mean, rows[i].n);
	}
}

TEST(srate_outcome_kinds)
{
	static const struct { enum oc_kind k; bool learns; double s, f; } rows[] = {
		{ OC_SUCCESS, true, 1, 0 },          { OC_DECLINE_SOFT, true, 1, 1 },
		{ OC_PSP_ERROR, true, 1, 2 },        { OC_DECLINE_CUSTOMER, false, 1, 2 },
		{ OC_RATE_LIMITED, false, 1, 2 },    { OC_LOCK_CONFLICT, false, 1, 2 },
		{ OC_CLIENT_ERROR, false, 1, 2 },
	};
	struct srt_table t;
	struct srt_seg s = seg(4, "gbp", "gb", "amex", "credit");
	struct srt_post p;
	size_t i;

	setup(&t, mem_a, 0, 1, 64);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ASSERT_EQ(srt_add_outcome(&t, &s, rows[i].k, SEC), rows[i].learns);
		srt_lookup(&t, &s, SEC, &p);
		ASSERT_NEAR(p.a - 1, rows[i].s, 1e-12);
		ASSERT_NEAR(p.b - 1, rows[i].f, 1e-12);
	}
}

/* Every occupied slot must be reachable from its home (checks the backward-shift
 * deletion), and the count must match. */
static void check_table(const struct srt_table *t)
{
	uint32_t i, n = 0, mask = t->cap - 1;

	for (i = 0; i < t->cap; i++) {
		uint32_t j;

		if (!t->e[i].key)
			continue;
		n++;
		for (j = (uint32_t)t->e[i].key & mask; j != i; j = (j + 1) & mask)
			if (!t->e[j].key)
				TEST_FAIL_("slot %u unreachable from home %u", i,
				           (unsigned)(t->e[i].key & mask));
	}
	ASSERT_EQ(n, t->used);
}

/* Full table: fixed memory, evictions counted, heavy keys kept, light/old ones go. */
TEST(srate_eviction)
{
	struct srt_table t;
	struct srt_seg heavy = seg(7, "usd", "us", "visa", "credit"), s;
	uint32_t i;

	setup(&t, mem_a, 600, 5, 40);
	ASSERT_EQ(t.cap, 64);
	ASSERT_EQ(t.limit, 40);
	srt_add(&t, &heavy, 900, 100, 0);
	for (i = 0; i < 2000; i++) {
		char cur[4] = { (char)('a' + i % 26), (char)('a' + i / 26 % 26), (char)('a' + i / 676), 0 };

		s = seg(100 + i % 13, cur, "us", "visa", "debit");
		srt_add(&t, &s, 1, 0, (uint64_t)i * SEC / 10);
		ASSERT_LE(t.used, t.limit);
		if (i % 97 == 0)
			check_table(&t);
	}
	check_table(&t);
	/* each add brings 4 new keys (the currency differs), backend keys recur */
	ASSERT_GE(t.evictions, 2000 * 4 - 40);
	ASSERT_NEAR(srt_count(&t, &heavy, SRT_L_FULL, 0), 1000, 1e-9);
	/* 200 s later the heavy key weighs 1000 / 2^(1/3) ~ 794: still there */
	ASSERT(srt_count(&t, &heavy, SRT_L_BACKEND, 200 * SEC) > 790);
}

/* The table is a plain array: a copy reads the same; caps must match. */
TEST(srate_copy_publish)
{
	struct srt_table t, snap, other;
	struct srt_seg s = seg(1, "usd", "us", "visa", "credit");
	struct srt_post p1, p2;

	setup(&t, mem_a, 60, 5, 100);
	setup(&snap, mem_b, 60, 5, 100);
	srt_add(&t, &s, 30, 10, 0);
	ASSERT_EQ(srt_copy(&snap, &t), 0);
	ASSERT(snap.e == mem_b);
	srt_add(&t, &s, 100, 0, 0); /* the writer moves on; the snapshot does not */
	srt_lookup(&snap, &s, 30 * SEC, &p1);
	ASSERT_NEAR(p1.a, 1 + 30 / sqrt(2), 1e-9);
	srt_lookup(&t, &s, 30 * SEC, &p2);
	ASSERT(p2.a > p1.a);
	setup(&other, mem_b, 60, 5, 1000);
	ASSERT_EQ(srt_copy(&other, &t), -1);
}

/* Publishing copies only the blocks written since the last copy from the same source,
 * and still gives the same bytes as the source (inserts, updates, evictions with
 * backward shifts across blocks); a copy from another source is a whole one. */
TEST(srate_copy_incremental)
{
	struct srt_table t, u, snap;
	struct srt_seg s;
	uint32_t i, round;

	setup(&t, mem_a, 60, 5, 100);
	setup(&u, mem_c, 60, 5, 100);
	setup(&snap, mem_b, 60, 5, 100);
	for (round = 0; round < 50; round++) {
		for (i = 0; i < 1 + round % 7; i++) {
			char cur[4] = { (char)('a' + (round * 7 + i) % 26), (char)('a' + (round + i) / 26 % 26), 'x', 0 };

			s = seg(round % 3, cur, "us", "visa", i & 1 ? "debit" : "credit");
			srt_add(&t, &s, i & 1, 1, (uint64_t)round * SEC);
		}
		ASSERT_EQ(srt_copy(&snap, &t), 0);
		ASSERT_EQ(snap.used, t.used);
		ASSERT(!memcmp(snap.e, t.e, t.cap * sizeof(*t.e)));
		if (round % 10 == 9) {
			/* another source in between: the next copy from t is whole again */
			s = seg(9, "eur", "de", "visa", "debit");
			srt_add(&u, &s, 3, 1, 0);
			ASSERT_EQ(srt_copy(&snap, &u), 0);
			ASSERT(!memcmp(snap.e, u.e, u.cap * sizeof(*u.e)));
		}
	}
	ASSERT(t.evictions > 0);
	/* a re-initialised source (generation back to 1): whole copy */
	setup(&t, mem_a, 60, 5, 100);
	ASSERT_EQ(srt_copy(&snap, &t), 0);
	ASSERT(!memcmp(snap.e, t.e, t.cap * sizeof(*t.e)));
	ASSERT_EQ(snap.used, 0);
}

/* Pure Thompson (eps = 1, no floor): arm 0 ~ Beta(91, 11) (0.892) vs arm 1 ~ Beta(81,
 * 21) (0.794): P(draw0 > draw1) ~ Phi(0.098 / 0.050) ~ 0.975. */
TEST(srate_thompson_prefers_better)
{
	struct srt_post post[2] = { { 91, 11, 100, 0 }, { 81, 21, 100, 0 } };
	uint64_t rng = 12345;
	double p[2];
	int i, wins = 0;

	for (i = 0; i < 10000; i++) {
		ASSERT(srt_scores(post, 2, 1.0, -1, &rng, p));
		ASSERT(p[0] > 0 && p[0] < 1 && p[1] > 0 && p[1] < 1);
		wins += srt_argmax(p, 2) == 0;
	}
	ASSERT_GE(wins, 9400);
	ASSERT_LE(wins, 9950);
}

/* Bounded exploration: eps = 0.05 explores in ~5 % of decisions; the worse arm can
 * only win in those; exploiting decisions give the means. */
TEST(srate_exploration_bounded)
{
	struct srt_post post[3] = { { 91, 11, 100, 0 }, { 81, 21, 100, 0 }, { 2, 2, 2, 0 } };
	uint64_t rng = 777;
	double p[3];
	int i, explored = 0, worse = 0;

	for (i = 0; i < 20000; i++) {
		bool ex = srt_scores(post, 3, 0.05, 3, &rng, p);

		explored += ex;
		if (srt_argmax(p, 3) != 0) {
			worse++;
			ASSERT(ex);
		}
		if (!ex)
			ASSERT_NEAR(p[1], 81.0 / 102, 1e-12);
	}
	ASSERT_GE(explored, 800);   /* 1000 expected, sd ~31 */
	ASSERT_LE(explored, 1200);
	ASSERT_LE(worse, explored);
	ASSERT_GE(worse, 50);       /* the thin arm 2 wins some explorations */
	/* eps 0: never explores */
	for (i = 0; i < 1000; i++)
		ASSERT(!srt_scores(post, 3, 0, 3, &rng, p));
}

/* Untested arms' draws (srt_scores_untested): arms 0 and 1 hold 100 observations, arm 2
 * only its prior, the one untested arm. With share 0.2, ~20 % of decisions draw; in those
 * only arm 2 is drawn and the others keep their means exactly, so the established arms
 * never trade places (arm 1 never wins) and arm 2 wins whenever its draw beats 91/102. */
TEST(srate_untested_arm_draws_alone)
{
	struct srt_post post[3] = { { 91, 11, 100, 0 }, { 81, 21, 100, 0 }, { 18, 2, 0, -1 } };
	uint64_t rng = 31337;
	double p[3];
	int i, drew = 0, untested_won = 0;

	for (i = 0; i < 20000; i++) {
		if (!srt_scores_untested(post, 3, 1u << 2, 0.2, &rng, p))
			continue;
		drew++;
		ASSERT_NEAR(p[0], 91.0 / 102, 1e-12);
		ASSERT_NEAR(p[1], 81.0 / 102, 1e-12);
		ASSERT(srt_argmax(p, 3) != 1);
		untested_won += srt_argmax(p, 3) == 2;
	}
	ASSERT_GE(drew, 3700); /* 4000 expected, sd ~57 */
	ASSERT_LE(drew, 4300);
	ASSERT_GE(untested_won, drew / 4); /* P(Beta(18, 2) > 0.892) ~ 0.55 */
	ASSERT_LE(untested_won, drew * 3 / 4);
	for (i = 0; i < 1000; i++) /* share 0: never */
		ASSERT(!srt_scores_untested(post, 3, 1u << 2, 0, &rng, p));
}

/* Floor: a laggard at 0.11 against a leader at 0.90 with 1000 observations. Without
 * the floor it never wins an exploration; with p_max - 3 sd it is drawn around 0.87 and
 * wins ~20 % of them (Phi(-0.028 / 0.034)), so a recovered backend is re-tested. */
TEST(srate_floor_retests_laggard)
{
	struct srt_post post[2] = { { 901, 101, 1000, 0 }, { 11, 91, 100, 0 } };
	uint64_t rng = 4242;
	double p[2];
	int i, with = 0, without = 0;

	for (i = 0; i < 10000; i++) {
		srt_scores(post, 2, 1.0, -1, &rng, p);
		without += srt_argmax(p, 2) == 1;
		srt_scores(post, 2, 1.0, 3, &rng, p);
		with += srt_argmax(p, 2) == 1;
	}
	ASSERT_EQ(without, 0);
	ASSERT_GE(with, 1000);
	ASSERT_LE(with, 3500);
}

TEST(srate_beta_moments)
{
	static const struct { double a, b; } rows[] = { { 2, 5 }, { 0.5, 0.5 }, { 30, 3 }, { 1, 1 } };
	uint64_t rng = 99;
	size_t r;
	int i;

	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct srt_post want = { rows[r].a, rows[r].b, 0, 0 };
		double sum = 0, sq = 0, m, sd;

		for (i = 0; i < 40000; i++) {
			double x = srt_beta(&rng, rows[r].a, rows[r].b);

			ASSERT(x >= 0 && x <= 1);
			sum += x;
			sq += x * x;
		}
		m = sum / 40000;
		sd = sqrt(sq / 40000 - m * m);
		ASSERT_NEAR(m, srt_mean(&want), 0.01);
		ASSERT_NEAR(sd, srt_sd(&want), 0.01);
	}
	/* same seed, same draws */
	{
		uint64_t r1 = 5, r2 = 5;

		ASSERT_EQ(srt_rand(&r1), srt_rand(&r2));
		ASSERT(srt_beta(&r1, 3, 4) == srt_beta(&r2, 3, 4));
	}
}

TEST(srate_codes_and_cfg)
{
	struct srt_cfg c = { .half_life_s = 60, .prior_a = 1, .prior_b = 1, .min_n = 20,
	                     .max_segments = 100 };
	struct srt_table t;

	ASSERT_EQ(srt_code("USD", 3), srt_code("usd", 3));
	ASSERT_NE(srt_code("usd", 3), srt_code("eur", 3));
	ASSERT_EQ(srt_code(NULL, 0), 0);
	ASSERT_EQ(srt_code("x", 0), 0);
	ASSERT(srt_cfg_check(&c) == NULL);
	c.prior_a = 0;
	ASSERT(srt_cfg_check(&c) != NULL);
	c.prior_a = 1;
	c.half_life_s = -1;
	ASSERT(srt_cfg_check(&c) != NULL);
	c.half_life_s = NAN;
	ASSERT(srt_cfg_check(&c) != NULL);
	c.half_life_s = 60;
	c.max_n = 10; /* under min_n */
	ASSERT(srt_cfg_check(&c) != NULL);
	c.max_n = INFINITY;
	ASSERT(srt_cfg_check(&c) != NULL);
	c.max_n = 200;
	ASSERT(srt_cfg_check(&c) == NULL);
	c.max_segments = 0;
	ASSERT(srt_cfg_check(&c) != NULL);
	ASSERT_EQ(srt_mem_size(0), 0);
	c.max_segments = 100;
	ASSERT_EQ(srt_init(&t, &c, mem_a, srt_mem_size(100) - 1), -1);
	ASSERT_EQ(srt_init(&t, &c, mem_a, srt_mem_size(100)), 0);
	ASSERT_EQ(t.cap, 256);
}

int main(void)
{
	RUN(srate_decay_halves);
	RUN(srate_evidence_cap);
	RUN(srate_backoff);
	RUN(srate_thin_segment_blends);
	RUN(srate_outcome_kinds);
	RUN(srate_eviction);
	RUN(srate_copy_publish);
	RUN(srate_copy_incremental);
	RUN(srate_thompson_prefers_better);
	RUN(srate_exploration_bounded);
	RUN(srate_untested_arm_draws_alone);
	RUN(srate_floor_retests_laggard);
	RUN(srate_beta_moments);
	RUN(srate_codes_and_cfg);
	return test_summary();
}
