/* test-anomaly.c: EWMA anomaly detector, as tables of (tick, requests, errors, latency)
 * -> expected state, over a deterministic noisy baseline. */
#include "anomaly.h"
#include "test.h"

#define SEC 1000000ull

/* Baseline traffic: 100 requests a tick, 1-3 errors, 190-210 ms mean latency. */
static void base_tick(struct anom *a, const struct anom_cfg *c, uint32_t i)
{
	anom_tick(a, c, 100, 1 + (i * 7) % 3, 100.0 * (190 + (i * 13) % 21), (uint64_t)i * SEC);
}

static uint32_t warm(struct anom *a, const struct anom_cfg *c)
{
	uint32_t i;

	anom_init(a, 0);
	for (i = 0; i < 60; i++) {
		base_tick(a, c, i);
		ASSERT_EQ(a->state, ANOM_NORMAL);
	}
	return i;
}

struct row {
	uint32_t n, errors;
	double lat_ms;           /* mean */
	enum anom_state want;
	uint8_t alarms;
};

static uint32_t run_rows(struct anom *a, const struct anom_cfg *c, uint32_t t,
                         const struct row *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++, t++) {
		enum anom_state s = anom_tick(a, c, r[i].n, r[i].errors, r[i].lat_ms * r[i].n,
		                              (uint64_t)t * SEC);

		if (s != r[i].want || a->alarms != r[i].alarms)
			TEST_FAIL_("row %zu: %s alarms %#x, want %s %#x (err z %.4f mean %.4f, "
			           "lat z %.1f mean %.1f)", i, anom_state_name(s), a->alarms,
			           anom_state_name(r[i].want), r[i].alarms, a->err.z, a->err.mean,
			           a->lat.z, a->lat.mean);
	}
	return t;
}

#define RUN_ROWS(a, c, t, tbl) run_rows((a), (c), (t), (tbl), sizeof(tbl) / sizeof((tbl)[0]))
#define N ANOM_NORMAL
#define D ANOM_DEGRADED

/* Error spike: 30 % for two ticks -> degraded on the second (the limit is mean + 5 %);
 * back to 2 %: stays degraded while the EWMA decays and for 5 ticks under the exit
 * line, then normal. z: .09 .1425 | .112 .089 .072 .059 .049 .042 .036 .032 .029 .027 */
TEST(anomaly_error_spike)
{
	static const struct row rows[] = {
		{ 100, 30, 200, N, 0 },
		{ 100, 30, 200, D, ANOM_ERR },
		{ 100, 2, 200, D, ANOM_ERR }, { 100, 2, 200, D, ANOM_ERR },
		{ 100, 2, 200, D, ANOM_ERR }, { 100, 2, 200, D, ANOM_ERR },
		{ 100, 2, 200, D, ANOM_ERR }, { 100, 2, 200, D, ANOM_ERR },
		{ 100, 2, 200, D, ANOM_ERR }, { 100, 2, 200, D, ANOM_ERR },
	};
	struct anom_cfg c;
	struct anom a;
	uint32_t t, i;

	anom_cfg_default(&c);
	ASSERT(anom_cfg_check(&c) == NULL);
	t = warm(&a, &c);
	ASSERT_NEAR(anom_factor(&a, &c), 1, 0);
	t = RUN_ROWS(&a, &c, t, rows);
	ASSERT_NEAR(anom_factor(&a, &c), 0.5, 1e-12);
	for (i = 0; i < 6 && a.state == D; i++)
		base_tick(&a, &c, t++);
	ASSERT_EQ(a.state, N);
	ASSERT_NEAR(anom_factor(&a, &c), 1, 0);
}

/* Blips the charts must shrug off: one tick at 15 %, fewer errors than usual, a single
 * error on a zero-error baseline, faster answers. */
TEST(anomaly_no_false_alarms)
{
	static const struct row rows[] = {
		{ 100, 15, 200, N, 0 }, { 100, 2, 200, N, 0 }, { 100, 2, 200, N, 0 },
		{ 100, 0, 200, N, 0 }, { 100, 0, 200, N, 0 }, { 100, 0, 200, N, 0 },
		{ 100, 2, 240, N, 0 }, { 100, 2, 200, N, 0 },
		{ 100, 2, 20, N, 0 }, { 100, 2, 20, N, 0 }, { 100, 2, 20, N, 0 },
	};
	struct anom_cfg c;
	struct anom a;
	uint32_t t, i;

	anom_cfg_default(&c);
	t = warm(&a, &c);
	RUN_ROWS(&a, &c, t, rows);
	/* zero-error baseline (sd 0): one error in 100 is under the 5 % minimum rise */
	anom_init(&a, 0);
	for (i = 0; i < 40; i++)
		anom_tick(&a, &c, 100, i == 30 || i == 31 ? 4 : 0, 100 * 200.0, (uint64_t)i * SEC);
	ASSERT_EQ(a.state, N);
}

/* Latency shift 200 -> 600 ms: degraded on latency alone (factor .5); errors too:
 * both charts (factor .25). */
TEST(anomaly_latency_and_both)
{
	static const struct row rows[] = {
		{ 100, 2, 600, N, 0 },
		{ 100, 2, 600, D, ANOM_LAT },
		{ 100, 40, 600, D, ANOM_LAT },
		{ 100, 40, 600, D, ANOM_LAT | ANOM_ERR },
	};
	struct anom_cfg c;
	struct anom a;
	uint32_t t;

	anom_cfg_default(&c);
	t = warm(&a, &c);
	RUN_ROWS(&a, &c, t, rows);
	ASSERT_NEAR(anom_factor(&a, &c), 0.25, 1e-12);
}

/* Warm up, then 300 ticks of wavering error rate; returns the state changes. */
static uint32_t waver(struct anom *a, const struct anom_cfg *c)
{
	uint32_t t = warm(a, c), i, changes = 0;
	enum anom_state prev = (enum anom_state)a->state;

	for (i = 0; i < 300; i++) {
		enum anom_state s = anom_tick(a, c, 100, (i / 3) % 2 ? 2 : 12, 100 * 200.0,
		                              (uint64_t)(t + i) * SEC);

		changes += s != prev;
		prev = s;
	}
	return changes;
}

/* Hysteresis: traffic wavering around the limit (3 ticks at 12 %, 3 at 2 %: z swings
 * between ~.05 and ~.09 across the .07 limit) must not flap: at most one transition
 * each way. */
TEST(anomaly_no_flapping)
{
	struct anom_cfg c;
	struct anom a;

	anom_cfg_default(&c);
	ASSERT_LE(waver(&a, &c), 2);
	/* without hysteresis (exit at the limit, leave at once) the same traffic flaps */
	c.exit_k = c.limit_k;
	c.exit_samples = 1;
	c.enter_samples = 1;
	c.alarm_lambda = 0;
	ASSERT_GE(waver(&a, &c), 10);
}

/* No alarm during warm-up, whatever comes; quiet ticks are pooled to min_requests. */
TEST(anomaly_warmup_and_pooling)
{
	struct anom_cfg c;
	struct anom a;
	uint32_t i;

	anom_cfg_default(&c);
	anom_init(&a, 0);
	for (i = 0; i < c.warmup; i++)
		ASSERT_EQ(anom_tick(&a, &c, 100, i < 10 ? 0 : 90, 100 * 5000.0, i * SEC), N);
	ASSERT_EQ(a.samples, c.warmup);
	/* 9 single-request ticks: nothing judged yet; the 10th makes one sample */
	for (i = 0; i < 9; i++) {
		anom_tick(&a, &c, 1, 1, 200, (20 + i) * SEC);
		ASSERT_EQ(a.samples, c.warmup);
	}
	anom_tick(&a, &c, 1, 1, 200, 29 * SEC);
	ASSERT_EQ(a.samples, c.warmup + 1);
	ASSERT_EQ(a.pend_n, 0);
	anom_tick(&a, &c, 0, 0, 0, 30 * SEC); /* an empty tick is no sample */
	ASSERT_EQ(a.samples, c.warmup + 1);
}

/* A lasting shift becomes the new normal after ~1/alarm_lambda samples; with
 * alarm_lambda 0 it never does. */
TEST(anomaly_new_normal)
{
	struct anom_cfg c;
	struct anom a;
	uint32_t t, i;

	anom_cfg_default(&c);
	t = warm(&a, &c);
	for (i = 0; i < 3000 && !(i > 10 && a.state == N); i++)
		anom_tick(&a, &c, 100, 15, 100 * 200.0, (uint64_t)(t + i) * SEC);
	ASSERT_EQ(a.state, N);
	ASSERT_GE(i, 300);
	c.alarm_lambda = 0;
	t = warm(&a, &c);
	for (i = 0; i < 3000; i++)
		anom_tick(&a, &c, 100, 15, 100 * 200.0, (uint64_t)(t + i) * SEC);
	ASSERT_EQ(a.state, D);
}

TEST(anomaly_cfg_check)
{
	struct anom_cfg c;

	anom_cfg_default(&c);
	c.lambda = 0;
	ASSERT(anom_cfg_check(&c) != NULL);
	anom_cfg_default(&c);
	c.exit_k = 4;
	ASSERT(anom_cfg_check(&c) != NULL);
	anom_cfg_default(&c);
	c.factor = 1.5;
	ASSERT(anom_cfg_check(&c) != NULL);
	anom_cfg_default(&c);
	c.enter_samples = 0;
	ASSERT(anom_cfg_check(&c) != NULL);
	ASSERT_STREQ(anom_state_name(ANOM_DEGRADED), "degraded");
}

int main(void)
{
	RUN(anomaly_error_spike);
	RUN(anomaly_no_false_alarms);
	RUN(anomaly_latency_and_both);
	RUN(anomaly_no_flapping);
	RUN(anomaly_warmup_and_pooling);
	RUN(anomaly_new_normal);
	RUN(anomaly_cfg_check);
	return test_summary();
}
