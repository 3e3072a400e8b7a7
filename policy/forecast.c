/* forecast.c: Holt (level + trend, per second) and additive Holt-Winters (per minute,
 * one seasonal slot per minute of the day) over lazily rolled time buckets.
 * Must not read clocks, do I/O, allocate, log or keep globals. */
#include <math.h>
#include <string.h>

#include "bug.h"
#include "forecast.h"

void fc_cfg_default(struct fc_cfg *c)
{
	c->alpha = 0.3;
	c->beta = 0.05;
	c->hw_alpha = 0.001;
	c->hw_beta = 0;
	c->hw_gamma = 0.4;
	c->season = FC_SEASON_MAX;
}

static int fc_unit(double x)
{
	return x >= 0 && x <= 1;
}

const char *fc_cfg_check(const struct fc_cfg *c)
{
	if (!fc_unit(c->alpha) || !fc_unit(c->beta) || !fc_unit(c->hw_alpha) ||
	    !fc_unit(c->hw_beta) || !fc_unit(c->hw_gamma))
		return "smoothing factors must be in [0, 1]";
	if (c->season < 2 || c->season > FC_SEASON_MAX)
		return "season must be 2..1440 slots";
	return NULL;
}

void fc_init(struct fc *f, const struct fc_cfg *c, int64_t phase_s)
{
	memset(f, 0, sizeof(*f)); /* padding included: saved bytes are deterministic */
	f->magic = FC_MAGIC;
	f->version = FC_VERSION;
	f->m = c->season;
	f->phase_s = phase_s;
}

/* Holt's linear method on one second's count x:
 *   level' = a x + (1 - a)(level + trend)
 *   trend' = b (level' - level) + (1 - b) trend
 * The first whole second sets the level; the trend starts at 0 (see below). */
static void fc_holt(struct fc *f, const struct fc_cfg *c, double x)
{
	if (f->n_sec == 0) {
		f->level = x;
		f->trend = 0;
	} else if (f->n_sec == 1) {
		/* The first second is partial (counting starts whenever the first request
		 * comes), so its difference to the second is no trend: a steady load started
		 * with a phantom trend of most of its rate, which beta = 0.05 took ~20 s to
		 * forget (and forecast shedding acted on). The first whole second sets the
		 * level; the trend starts at 0. */
		f->trend = 0;
		f->level = x;
	} else {
		double l = c->alpha * x + (1 - c->alpha) * (f->level + f->trend);

		f->trend = c->beta * (l - f->level) + (1 - c->beta) * f->trend;
		f->level = l;
	}
	f->n_sec++;
}

/* Additive Holt-Winters on one minute's count x in slot s:
 *   level' = a (x - S[s]) + (1 - a)(level + trend)
 *   trend' = b (level' - level) + (1 - b) trend
 *   S[s]'  = g (x - level') + (1 - g) S[s]
 * The first season only initialises: S[s] holds raw counts and level their running
 * mean; when it completes, S[s] -= mean (classical initialisation), trend = 0. */
static void fc_hw(struct fc *f, const struct fc_cfg *c, uint32_t s, double x)
{
	if (f->n_min < f->m) {
		f->season[s] = x;
		f->w_level += (x - f->w_level) / (double)(f->n_min + 1);
		if (++f->n_min == f->m) {
			uint32_t i;

			for (i = 0; i < f->m; i++)
				f->season[i] -= f->w_level;
			f->w_trend = 0;
		}
		return;
	}
	{
		double l = c->hw_alpha * (x - f->season[s]) +
		           (1 - c->hw_alpha) * (f->w_level + f->w_trend);

		f->w_trend = c->hw_beta * (l - f->w_level) + (1 - c->hw_beta) * f->w_trend;
		f->season[s] = c->hw_gamma * (x - l) + (1 - c->hw_gamma) * f->season[s];
		f->w_level = l;
	}
	f->n_min++;
}

static uint64_t fc_aligned_s(const struct fc *f, uint64_t now_us)
{
	int64_t s = (int64_t)(now_us / 1000000) + f->phase_s;

	return s < 0 ? 0 : (uint64_t)s;
}

void fc_advance(struct fc *f, const struct fc_cfg *c, uint64_t now_us)
{
	uint64_t as = fc_aligned_s(f, now_us), am = as / 60, gap, k;

	if (!f->started || (as < f->sec && f->sec - as > FC_REBASE_S)) {
		f->started = 1;
		f->sec = as;
		f->min = am;
		f->sec_acc = f->min_acc = 0;
		return;
	}
	if (as > f->sec) {
		fc_holt(f, c, f->sec_acc);
		gap = as - f->sec - 1; /* idle seconds */
		for (k = 0; k < gap && k < FC_GAP_MAX_S; k++)
			fc_holt(f, c, 0);
		if (gap > FC_GAP_MAX_S)
			f->level = f->trend = 0; /* where zeros lead; no need to walk there */
		f->sec = as;
		f->sec_acc = 0;
	}
	if (am > f->min) {
		fc_hw(f, c, (uint32_t)(f->min % f->m), f->min_acc);
		gap = am - f->min - 1;
		for (k = 0; k < gap && k < f->m; k++)
			fc_hw(f, c, (uint32_t)((f->min + 1 + k) % f->m), 0);
		f->min = am;
		f->min_acc = 0;
	}
}

void fc_observe(struct fc *f, const struct fc_cfg *c, double count, uint64_t now_us)
{
	fc_advance(f, c, now_us);
	if (count > 0) {
		f->sec_acc += count;
		f->min_acc += count;
	}
}

double fc_short(const struct fc *f, uint32_t h_s)
{
	double v;

	if (!f->n_sec)
		return 0;
	v = f->level + (double)h_s * f->trend;
	return v > 0 ? v : 0;
}

int fc_day_ready(const struct fc *f)
{
	return f->n_min >= f->m;
}

double fc_day(const struct fc *f, uint32_t h_min)
{
	double v;

	if (!fc_day_ready(f))
		return f->w_level > 0 ? f->w_level / 60 : 0;
	/* the last closed minute is min - 1; h minutes after it is min - 1 + h */
	v = f->w_level + (double)h_min * f->w_trend +
	    f->season[(f->min - 1 + h_min) % f->m];
	return v > 0 ? v / 60 : 0;
}

size_t fc_save(const struct fc *f, void *buf, size_t len)
{
	if (len < sizeof(*f))
		return 0;
	memcpy(buf, f, sizeof(*f));
	return sizeof(*f);
}

int fc_verify(const struct fc *f, char *err, size_t errlen)
{
	uint32_t i;

	if (f->magic != FC_MAGIC || f->version != FC_VERSION)
		return pol_verify_fail(err, errlen, "forecast: magic %#x, version %u", f->magic, f->version);
	if (f->m < 2 || f->m > FC_SEASON_MAX || f->started > 1)
		return pol_verify_fail(err, errlen, "forecast: %u seasonal slots, started %u", f->m, f->started);
	if (!isfinite(f->sec_acc) || !isfinite(f->min_acc) || !isfinite(f->level) ||
	    !isfinite(f->trend) || !isfinite(f->w_level) || !isfinite(f->w_trend))
		return pol_verify_fail(err, errlen, "forecast: a level, trend or count is not finite");
	for (i = 0; i < FC_SEASON_MAX; i++)
		if (!isfinite(f->season[i]))
			return pol_verify_fail(err, errlen, "forecast: season slot %u is not finite", i);
	return 0;
}

int fc_restore(struct fc *f, const void *buf, size_t len)
{
	struct fc tmp;

	if (len != sizeof(tmp))
		return -1;
	memcpy(&tmp, buf, sizeof(tmp));
	if (fc_verify(&tmp, NULL, 0) < 0)
		return -1;
	*f = tmp;
	return 0;
}
