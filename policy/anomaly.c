/* anomaly.c: EWMA control charts on a backend's error rate and latency, pooled per
 * tick, with warm-up and hysteresis. Must not read clocks, do I/O, allocate, log or
 * keep globals. */
#include <math.h>
#include <stddef.h>

#include "anomaly.h"
#include "bug.h"

void anom_cfg_default(struct anom_cfg *c)
{
	c->lambda = 0.25;
	c->base_lambda = 0.02;
	c->alarm_lambda = 0.002;
	c->limit_k = 3;
	c->exit_k = 1.5;
	c->warmup = 20;
	c->enter_samples = 2;
	c->exit_samples = 5;
	c->min_requests = 10;
	c->err_min_sd = 0.01;
	c->err_min_delta = 0.05;
	c->lat_min_sd_ms = 5;
	c->lat_min_delta_ms = 50;
	c->lat_min_rise = 0.5;
	c->lat_clip = 4;
	c->factor = 0.5;
	c->lat_confirm = 1.5;
	c->err_priced = true;
}

static int anom_unit(double x)
{
	return x > 0 && x <= 1;
}

const char *anom_cfg_check(const struct anom_cfg *c)
{
	if (!anom_unit(c->lambda) || !anom_unit(c->base_lambda))
		return "lambda must be in (0, 1]";
	if (!(c->alarm_lambda >= 0 && c->alarm_lambda <= 1))
		return "alarm lambda must be in [0, 1]";
	if (!(c->limit_k > 0) || !(c->exit_k >= 0) || c->exit_k > c->limit_k)
		return "limits: need 0 <= exit_k <= limit_k, limit_k > 0";
	if (c->enter_samples < 1 || c->exit_samples < 1)
		return "enter/exit samples must be >= 1";
	if (!(c->err_min_sd >= 0) || !(c->err_min_delta >= 0) ||
	    !(c->lat_min_sd_ms >= 0) || !(c->lat_min_delta_ms >= 0) || !(c->lat_min_rise >= 0) ||
	    !(c->lat_clip >= 0))
		return "minimum sd and delta must be >= 0";
	if (!(c->factor >= 0 && c->factor <= 1))
		return "factor must be in [0, 1]";
	if (!(c->lat_confirm >= 0))
		return "lat_confirm must be >= 0";
	return NULL;
}

void anom_init(struct anom *a, uint64_t now_us)
{
	*a = (struct anom){ .state = ANOM_NORMAL, .since_us = now_us };
}

/* Learns the baseline from a sample x, the mean of n answers, at rate r: the mean, and
 * the variance of one answer (n x the sample mean's squared deviation). */
static void anom_learn(struct anom_chart *ch, double x, double n, double r)
{
	double d = x - ch->mean;

	ch->var = (1 - r) * (ch->var + r * n * d * d);
	ch->mean += r * d;
}

/* One sample (the mean x of n answers) into one chart; returns whether the chart is in
 * alarm afterwards. min_sd floors the sd of a sample; the limit is at least min_delta,
 * and at least rise x the learned mean. */
static int anom_chart_step(struct anom_chart *ch, const struct anom_cfg *c, double x, double n,
                           int alarm, uint32_t samples, double min_sd, double min_delta, double rise)
{
	double sd, sz, ucl, exit, l = c->lambda;

	if (samples <= c->warmup) {
		double r = 1.0 / samples;

		anom_learn(ch, x, n, r > c->base_lambda ? r : c->base_lambda);
		ch->z = ch->mean;
		ch->zw = l / (n * (2 - l));
		return 0;
	}
	ch->z = l * x + (1 - l) * ch->z;
	ch->zw = l * l / n + (1 - l) * (1 - l) * ch->zw;
	sd = sqrt(ch->var / n);
	sz = sd < min_sd ? min_sd * sqrt(l / (2 - l)) : sqrt(ch->var * ch->zw);
	if (rise > 0 && rise * ch->mean > min_delta)
		min_delta = rise * ch->mean;
	ucl = ch->mean + (c->limit_k * sz > min_delta ? c->limit_k * sz : min_delta);
	/* the exit line scales like the limit: exit_k == limit_k means no hysteresis */
	min_delta *= c->exit_k / c->limit_k;
	exit = ch->mean + (c->exit_k * sz > min_delta ? c->exit_k * sz : min_delta);

	if (!alarm) {
		ch->above = ch->z > ucl ? ch->above + 1 : 0;
		if (ch->above >= c->enter_samples) {
			alarm = 1;
			ch->below = 0;
		}
	} else {
		ch->below = ch->z < exit ? ch->below + 1 : 0;
		if (ch->below >= c->exit_samples) {
			alarm = 0;
			ch->above = 0;
		}
	}
	if (!alarm && x <= ucl)
		anom_learn(ch, x, n, c->base_lambda);
	else if (c->alarm_lambda > 0)
		anom_learn(ch, x, n, c->alarm_lambda);
	return alarm;
}

enum anom_state anom_tick(struct anom *a, const struct anom_cfg *c, uint64_t n,
                          uint64_t errors, double lat_sum_ms, uint64_t now_us)
{
	uint8_t alarms = 0;
	double er, lat, np;

	a->pend_n += n;
	a->pend_err += errors < n ? errors : n;
	a->pend_lat_ms += lat_sum_ms > 0 ? lat_sum_ms : 0;
	if (a->pend_n == 0 || a->pend_n < c->min_requests)
		return (enum anom_state)a->state;

	np = (double)a->pend_n;
	er = (double)a->pend_err / np;
	lat = a->pend_lat_ms / np;
	a->pend_n = a->pend_err = 0;
	a->pend_lat_ms = 0;
	a->samples++;

	/* n = 1 for the error chart: it learns the spread of its samples as they come
	 * (scaled per answer, brownout seed 6 moved by -0.4 pt: policy/learning.md) */
	if (anom_chart_step(&a->err, c, er, 1, !!(a->alarms & ANOM_ERR), a->samples,
	                    c->err_min_sd, c->err_min_delta, 0))
		alarms |= ANOM_ERR;
	if (anom_chart_step(&a->lat, c, lat, np, !!(a->alarms & ANOM_LAT), a->samples,
	                    c->lat_min_sd_ms, c->lat_min_delta_ms, c->lat_min_rise))
		alarms |= ANOM_LAT;
	a->alarms = alarms;
	if ((alarms ? ANOM_DEGRADED : ANOM_NORMAL) != a->state) {
		a->state = alarms ? ANOM_DEGRADED : ANOM_NORMAL;
		a->since_us = now_us;
	}
	return (enum anom_state)a->state;
}

double anom_clip_latency(const struct anom *a, const struct anom_cfg *c, double lat_ms)
{
	double cap = c->lat_clip * a->lat.mean;

	if (!(c->lat_clip > 0) || a->samples <= c->warmup || !(cap > 0))
		return lat_ms;
	return lat_ms > cap ? cap : lat_ms;
}

void anom_clear(struct anom *a, uint64_t now_us)
{
	a->err.z = a->err.mean;
	a->lat.z = a->lat.mean;
	a->err.above = a->err.below = a->lat.above = a->lat.below = 0;
	a->pend_n = a->pend_err = 0; /* the pool still holds answers from before */
	a->pend_lat_ms = 0;
	a->alarms = 0;
	if (a->state != ANOM_NORMAL) {
		a->state = ANOM_NORMAL;
		a->since_us = now_us;
	}
}

double anom_score_factor(const struct anom *a, const struct anom_cfg *c, double lat_ms)
{
	double f = 1;

	if ((a->alarms & ANOM_ERR) && c->err_priced) {
		double q = a->err.mean < 1 ? (1 - a->err.z) / (1 - a->err.mean) : 0;

		f *= q < 0 ? 0 : q > 1 ? 1 : q;
	} else if (a->alarms & ANOM_ERR) {
		f *= c->factor;
	}
	if ((a->alarms & ANOM_LAT) && !(c->lat_confirm > 0 && lat_ms < c->lat_confirm * a->lat.mean))
		f *= c->factor;
	return f;
}

const char *anom_state_name(enum anom_state s)
{
	return s == ANOM_DEGRADED ? "degraded" : "normal";
}

static int anom_chart_verify(const struct anom_chart *ch, const char *name, char *err, size_t errlen)
{
	if (!isfinite(ch->mean) || !isfinite(ch->var) || !isfinite(ch->z) || !(ch->var >= 0) || !isfinite(ch->zw) ||
	    !(ch->zw >= 0))
		return pol_verify_fail(err, errlen, "anomaly: %s chart mean %g, variance %g, z %g, weight %g", name,
		                       ch->mean, ch->var, ch->z, ch->zw);
	return 0;
}

int anom_verify(const struct anom *a, char *err, size_t errlen)
{
	if (a->state > ANOM_DEGRADED || (a->alarms & ~(ANOM_ERR | ANOM_LAT)) ||
	    (a->state == ANOM_DEGRADED) != (a->alarms != 0))
		return pol_verify_fail(err, errlen, "anomaly: state %u with alarms %#x", a->state, a->alarms);
	if (a->pend_err > a->pend_n || !isfinite(a->pend_lat_ms) || !(a->pend_lat_ms >= 0))
		return pol_verify_fail(err, errlen, "anomaly: %llu pending errors of %llu requests, %g ms",
		                       (unsigned long long)a->pend_err, (unsigned long long)a->pend_n, a->pend_lat_ms);
	if (anom_chart_verify(&a->err, "error", err, errlen) < 0 || anom_chart_verify(&a->lat, "latency", err, errlen) < 0)
		return -1;
	return 0;
}
