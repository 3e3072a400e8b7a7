/* test-forecast.c: Holt and Holt-Winters forecasters over simulated time: ramps,
 * daily shapes learned in days of simulated traffic, gaps, save/restore. */
#include <math.h>

#include "forecast.h"
#include "test.h"

#define SEC 1000000ull

static struct fc f1, f2; /* ~12 KB each: keep them off the stack */

static void setup(struct fc *f, struct fc_cfg *c)
{
	fc_cfg_default(c);
	ASSERT(fc_cfg_check(c) == NULL);
	fc_init(f, c, 0);
}

/* Feed `per_s` requests per second for seconds [from, to), as 4 ticks a second. */
static void feed(struct fc *f, const struct fc_cfg *c, uint64_t from, uint64_t to,
                 double (*rate)(uint64_t s))
{
	uint64_t s;
	int q;

	for (s = from; s < to; s++)
		for (q = 0; q < 4; q++)
			fc_observe(f, c, rate(s) / 4, s * SEC + (uint64_t)q * 250000);
}

static double ramp(uint64_t s)
{
	return 10 + 0.5 * (double)s;
}

static double flat_then_ramp(uint64_t s)
{
	return s < 100 ? 20 : 20 + 2 * (double)(s - 100);
}

static double falling(uint64_t s)
{
	return 100 - 2 * (double)s;
}

/* A ramp: the first whole second sets the level, the trend is learned from 0 (the first
 * second is partial in use, so its difference is no trend); exact to ~1e-5 after 200 s. */
TEST(forecast_holt_ramp)
{
	static const uint32_t h[] = { 1, 5, 30, 120 };
	struct fc_cfg c;
	size_t i;

	setup(&f1, &c);
	feed(&f1, &c, 0, 200, ramp);
	fc_advance(&f1, &c, 200 * SEC); /* close second 199 */
	/* the trend is learned from 0, not copied from the first difference (the first
	 * second is partial in use): on a ramp 200 s long it is exact to ~1e-5 */
	for (i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		ASSERT_NEAR(fc_short(&f1, h[i]), ramp(199 + h[i]), 1e-3);
	/* a ramp that starts late: within 5 % after a minute of it */
	setup(&f1, &c);
	feed(&f1, &c, 0, 160, flat_then_ramp);
	fc_advance(&f1, &c, 160 * SEC);
	for (i = 0; i < sizeof(h) / sizeof(h[0]) - 1; i++) {
		double want = flat_then_ramp(159 + h[i]);

		ASSERT_NEAR(fc_short(&f1, h[i]), want, 0.05 * want);
	}
	/* never negative on a falling ramp; nothing learned: 0 */
	setup(&f1, &c);
	feed(&f1, &c, 0, 40, falling);
	fc_advance(&f1, &c, 40 * SEC);
	ASSERT_NEAR(fc_short(&f1, 1), falling(40), 0.05 * falling(40)); /* 40 s: ~1 behind */
	ASSERT_EQ(fc_short(&f1, 100), 0);
	setup(&f1, &c);
	ASSERT_EQ(fc_short(&f1, 10), 0);
}

/* Daily shape in requests/s: a trough at night, a peak mid-day, a lunch bump. */
static double daily(uint64_t s)
{
	double d = (double)(s % 86400) / 86400;

	return 60 - 45 * cos(2 * M_PI * d) + 15 * exp(-pow((d - 0.52) / 0.02, 2));
}

static double minute_mean(uint64_t minute)
{
	double sum = 0;
	uint64_t k;

	for (k = 0; k < 60; k++)
		sum += daily(minute * 60 + k);
	return sum / 60;
}

/* Holt-Winters learns the daily shape: after 4 simulated days its forecasts for the
 * next day, minute by minute, are within 5 % (the flat level would be off by ~75 %). */
TEST(forecast_holt_winters_daily)
{
	struct fc_cfg c;
	uint64_t h, start;
	double worst = 0, worst_flat = 0;

	setup(&f1, &c);
	ASSERT(!fc_day_ready(&f1));
	feed(&f1, &c, 0, 86400, daily);
	fc_advance(&f1, &c, 86400 * SEC);
	ASSERT(fc_day_ready(&f1));
	ASSERT_NEAR(f1.w_level, 60 * 60, 60 * 2);      /* mean count per minute */
	feed(&f1, &c, 86400, 4 * 86400, daily);
	start = 4 * 86400 + 7 * 3600 + 1234;          /* mid-morning of day 5 */
	feed(&f1, &c, 4 * 86400, start, daily);
	fc_advance(&f1, &c, start * SEC);
	for (h = 1; h <= 1440; h++) {
		uint64_t minute = start / 60 - 1 + h;
		double want = minute_mean(minute);
		double err = fabs(fc_day(&f1, (uint32_t)h) - want) / want;
		double err_flat = fabs(f1.w_level / 60 - want) / want;

		worst = err > worst ? err : worst;
		worst_flat = err_flat > worst_flat ? err_flat : worst_flat;
	}
	ASSERT(worst < 0.05);
	ASSERT(worst_flat > 0.5);
	/* Holt follows the same traffic at the second scale */
	ASSERT_NEAR(fc_short(&f1, 1), daily(start), 0.02 * daily(start));
}

/* Worst error of the next 24 h of minute forecasts, relative to the daily mean (60/s). */
static double day_error(const struct fc *f, uint64_t now_s)
{
	double worst = 0;
	uint32_t h;

	for (h = 1; h <= 1440; h++) {
		double e = fabs(fc_day(f, h) - minute_mean(now_s / 60 - 1 + h)) / 60;

		worst = e > worst ? e : worst;
	}
	return worst;
}

static double flat60(uint64_t s)
{
	(void)s;
	return 60;
}

/* Cold start on a day without shape (say, a launch day): the shape arrives the next
 * day and is learned at gamma per day: the error shrinks every day, from ~73 % after
 * one day of it to under 10 % after six (0.6^k of the shape left). */
TEST(forecast_holt_winters_learns_new_shape)
{
	struct fc_cfg c;
	double prev = 10, err = 0;
	uint64_t day, fed = 86400;

	setup(&f1, &c);
	feed(&f1, &c, 0, fed, flat60);
	for (day = 1; day <= 6; day++) {
		uint64_t now = day * 86400 + 7 * 3600;

		feed(&f1, &c, fed, now, daily);
		fed = now;
		fc_advance(&f1, &c, now * SEC);
		err = day_error(&f1, now);
		if (day == 1)
			ASSERT(err > 0.5);
		ASSERT(err < prev * 0.8);
		prev = err;
	}
	ASSERT(err < 0.1);
}

/* Gaps: idle seconds count as zeros; long gaps cost bounded work and land at the
 * fixed point; time slightly back counts into the open second; far back re-anchors. */
TEST(forecast_gaps)
{
	struct fc_cfg c;
	uint64_t n_min;

	setup(&f1, &c);
	fc_observe(&f1, &c, 100, 0);
	fc_observe(&f1, &c, 100, 1 * SEC);
	fc_observe(&f1, &c, 100, 2 * SEC);
	fc_observe(&f1, &c, 5, 5 * SEC);              /* seconds 3, 4 idle */
	ASSERT_EQ(f1.n_sec, 5);
	ASSERT(fc_short(&f1, 0) < 100);
	fc_observe(&f1, &c, 7, 5 * SEC - 2 * SEC);    /* 2 s back: counts into second 5 */
	ASSERT_NEAR(f1.sec_acc, 12, 1e-12);
	ASSERT_EQ(f1.sec, 5);

	n_min = f1.n_min;
	fc_advance(&f1, &c, 5 * 86400 * SEC);         /* five idle days */
	ASSERT_EQ(f1.n_sec, 6 + FC_GAP_MAX_S);
	ASSERT_EQ(f1.level, 0);
	ASSERT_EQ(f1.trend, 0);
	ASSERT_LE(f1.n_min, n_min + 1 + f1.m);        /* at most one season of zeros */
	ASSERT_EQ(fc_short(&f1, 60), 0);

	/* a clock far in the past (restart under a new monotonic clock): re-anchor, learn
	 * nothing */
	n_min = f1.n_sec;
	fc_observe(&f1, &c, 3, 10 * SEC);
	ASSERT_EQ(f1.sec, 10);
	ASSERT_EQ(f1.n_sec, n_min);
	ASSERT_NEAR(f1.sec_acc, 3, 1e-12);
}

/* Save/restore is bytewise, and both copies then evolve identically. Corrupt or
 * foreign snapshots are refused and leave the target untouched. */
TEST(forecast_save_restore)
{
	static unsigned char buf[sizeof(struct fc) + 16], bad[sizeof(struct fc)];
	struct fc_cfg c;
	double nan = NAN;
	size_t n;

	setup(&f1, &c);
	feed(&f1, &c, 0, 2 * 3600, daily);
	n = fc_save(&f1, buf, sizeof(buf));
	ASSERT_EQ(n, sizeof(struct fc));
	ASSERT_EQ(fc_save(&f1, buf, sizeof(struct fc) - 1), 0);
	memset(&f2, 0xa5, sizeof(f2));
	ASSERT_EQ(fc_restore(&f2, buf, n), 0);
	ASSERT_MEMEQ(&f2, &f1, sizeof(f1));
	feed(&f1, &c, 2 * 3600, 3 * 3600, daily);
	feed(&f2, &c, 2 * 3600, 3 * 3600, daily);
	ASSERT_MEMEQ(&f2, &f1, sizeof(f1));

	memcpy(bad, buf, sizeof(bad));
	bad[0] ^= 1;                                   /* magic */
	ASSERT_EQ(fc_restore(&f2, bad, sizeof(bad)), -1);
	memcpy(bad, buf, sizeof(bad));
	memcpy(bad + offsetof(struct fc, season) + 8 * 77, &nan, sizeof(nan));
	ASSERT_EQ(fc_restore(&f2, bad, sizeof(bad)), -1);
	memcpy(bad, buf, sizeof(bad));
	bad[offsetof(struct fc, m)] = 0;
	bad[offsetof(struct fc, m) + 1] = 0;
	ASSERT_EQ(fc_restore(&f2, bad, sizeof(bad)), -1);
	ASSERT_EQ(fc_restore(&f2, buf, n - 1), -1);
	ASSERT_MEMEQ(&f2, &f1, sizeof(f1));            /* refused: untouched */
}

/* The phase places minutes in the day: the same traffic half an hour later, with a
 * phase of -30 min, lands in the same slots. */
TEST(forecast_phase)
{
	struct fc_cfg c;
	uint64_t s;

	fc_cfg_default(&c);
	c.season = 60; /* one-hour season keeps the test short */
	fc_init(&f1, &c, 0);
	fc_init(&f2, &c, -1800);
	for (s = 0; s < 3 * 3600; s++) {
		fc_observe(&f1, &c, (double)(s / 60 % 60), s * SEC);
		fc_observe(&f2, &c, (double)(s / 60 % 60), (s + 1800) * SEC);
	}
	fc_advance(&f1, &c, 3 * 3600 * SEC);
	fc_advance(&f2, &c, (3 * 3600 + 1800) * SEC);
	ASSERT_MEMEQ(f1.season, f2.season, 60 * sizeof(double));
	ASSERT_NEAR(fc_day(&f1, 1), 0, 0.5);          /* slot 0 comes next */
	ASSERT_NEAR(fc_day(&f1, 30), 29, 0.5);        /* counts/min 29*60 -> 29/s */
}

TEST(forecast_cfg_check)
{
	struct fc_cfg c;

	fc_cfg_default(&c);
	c.alpha = 1.5;
	ASSERT(fc_cfg_check(&c) != NULL);
	fc_cfg_default(&c);
	c.season = FC_SEASON_MAX + 1;
	ASSERT(fc_cfg_check(&c) != NULL);
	c.season = 1;
	ASSERT(fc_cfg_check(&c) != NULL);
	c.season = 2;
	ASSERT(fc_cfg_check(&c) == NULL);
}

int main(void)
{
	RUN(forecast_holt_ramp);
	RUN(forecast_holt_winters_daily);
	RUN(forecast_holt_winters_learns_new_shape);
	RUN(forecast_gaps);
	RUN(forecast_save_restore);
	RUN(forecast_phase);
	RUN(forecast_cfg_check);
	return test_summary();
}
