/* aimd.c: AIMD rate budgets driven by upstream 429s.
 * Must not read clocks, do I/O, allocate, log or keep globals. */
#include <math.h>
#include <stddef.h>

#include "aimd.h"
#include "bug.h"

#define AIMD_PLATEAU 0.95
#define AIMD_PROBE 0.3
#define AIMD_FORGET_US 300000000ull
#define AIMD_HOLD_US 20000000ull

void aimd_cfg_default(struct aimd_cfg *c, double ceiling)
{
	c->ceiling = ceiling;
	c->floor = ceiling * 0.05;
	c->md = 0.7;
	c->ai_per_s = 1;
	c->cooldown_us = 2000000;
	c->plateau = AIMD_PLATEAU;
	c->probe = AIMD_PROBE;
	c->forget_us = AIMD_FORGET_US;
	c->hold_us = AIMD_HOLD_US;
}

const char *aimd_cfg_check(const struct aimd_cfg *c)
{
	if (!(c->ceiling > 0) || isinf(c->ceiling))
		return "ceiling must be > 0 req/s";
	if (!(c->floor > 0) || c->floor > c->ceiling)
		return "floor must be > 0 and <= ceiling";
	if (!(c->md > 0 && c->md < 1))
		return "decrease factor must be in (0, 1)";
	if (!(c->ai_per_s >= 0) || isinf(c->ai_per_s))
		return "recovery must be >= 0 req/s per second";
	if (!(c->plateau >= 0 && c->plateau <= 1))
		return "plateau must be in (0, 1] (0: default)";
	if (!(c->probe >= 0 && c->probe <= 1))
		return "probe must be in (0, 1] (0: default)";
	return NULL;
}

void aimd_init(struct aimd *a, const struct aimd_cfg *c, uint64_t now_us)
{
	*a = (struct aimd){ .limit = c->ceiling, .t_us = now_us };
}

static double secs(uint64_t from_us, uint64_t to_us)
{
	return to_us > from_us ? (double)(to_us - from_us) / 1e6 : 0;
}

static uint64_t aimd_forget(const struct aimd_cfg *c)
{
	return c->forget_us ? c->forget_us : AIMD_FORGET_US;
}

/* The wait at w_max before probing above it: the budget's own (doubled by failed
 * probes), else the configuration's, at most forget_us. */
static uint64_t aimd_hold(const struct aimd *a, const struct aimd_cfg *c)
{
	uint64_t h = a->hold_us ? a->hold_us : c->hold_us ? c->hold_us : AIMD_HOLD_US;

	return h < aimd_forget(c) ? h : aimd_forget(c);
}

static uint64_t aimd_add_us(uint64_t t, uint64_t d)
{
	return t > UINT64_MAX - d ? UINT64_MAX : t + d;
}

/* Piecewise linear from (limit, t_us): after a cut, +r to plateau x w_max, +probe x r
 * to w_max, held there for aimd_hold(), then +r again (a probe above w_max) from
 * whichever comes first of the end of the hold and the cut's forgetting; without a cut
 * (or once forgotten), +r all the way. */
double aimd_limit(const struct aimd *a, const struct aimd_cfg *c, uint64_t now_us)
{
	double v = a->limit, r = c->ai_per_s;
	uint64_t from = a->t_us;

	if (a->w_max > 0) {
		uint64_t forget = aimd_add_us(a->last_cut_us, aimd_forget(c)), end = now_us < forget ? now_us : forget;
		double pl = (c->plateau > 0 ? c->plateau : AIMD_PLATEAU) * a->w_max;
		double dt = secs(from, end), used = 0;

		if (v < pl && dt > 0 && r > 0) {
			double fast = (pl - v) / r;

			if (fast > dt)
				fast = dt;
			v += r * fast;
			used += fast;
		}
		if (v < a->w_max && dt - used > 0 && r > 0) {
			double pr = r * (c->probe > 0 ? c->probe : AIMD_PROBE), slow = (a->w_max - v) / pr;

			if (slow > dt - used)
				slow = dt - used;
			v += pr * slow;
			used += slow;
			if (v > a->w_max)
				v = a->w_max;
		}
		if (v >= a->w_max) {
			/* reached w_max at from + used: the probe starts a hold later */
			uint64_t reach = aimd_add_us(from, (uint64_t)(used * 1e6 + 0.5));
			uint64_t probe = aimd_add_us(reach, aimd_hold(a, c));

			from = probe < forget ? probe : forget;
		} else if (forget > from) {
			from = forget;
		}
	}
	v += r * secs(from, now_us);
	if (v > c->ceiling)
		v = c->ceiling;
	return v < c->floor ? c->floor : v;
}

bool aimd_on_outcome(struct aimd *a, const struct aimd_cfg *c, enum oc_kind k,
                     uint64_t now_us)
{
	double v, pl;

	if (k == OC_LOCK_CONFLICT) {
		a->locks++;
		return false;
	}
	if (k != OC_RATE_LIMITED)
		return false;
	if (a->has_cut && now_us < a->last_cut_us + c->cooldown_us) {
		a->absorbed++;
		return false;
	}
	v = aimd_limit(a, c, now_us);
	pl = (c->plateau > 0 ? c->plateau : AIMD_PLATEAU) * a->w_max;
	if (a->w_max > 0 && v > a->w_max && v * c->md <= a->w_max &&
	    now_us < aimd_add_us(a->last_cut_us, aimd_forget(c))) {
		/* a probe above w_max failed: the limit is still near w_max, which held
		 * without a 429 for a whole hold; back to the plateau, probe later */
		uint64_t h = aimd_hold(a, c);

		a->limit = pl;
		a->hold_us = h > UINT64_MAX / 2 ? UINT64_MAX : 2 * h;
		a->probes_failed++;
	} else {
		a->w_max = v;
		a->limit = v * c->md;
		a->hold_us = 0;
	}
	if (a->limit < c->floor)
		a->limit = c->floor;
	a->t_us = now_us > a->t_us ? now_us : a->t_us;
	a->last_cut_us = now_us;
	a->has_cut = 1;
	a->cuts++;
	return true;
}

int aimd_verify(const struct aimd *a, const struct aimd_cfg *c, char *err, size_t errlen)
{
	/* not checked against c's floor and ceiling: a reload carries the state as it was
	 * under the old ones, and aimd_limit() clamps */
	if (!isfinite(a->limit) || !(a->limit > 0) || !isfinite(a->w_max) || !(a->w_max >= 0))
		return pol_verify_fail(err, errlen, "aimd: limit %g, w_max %g", a->limit, a->w_max);
	if (!a->has_cut && (a->cuts || a->w_max > 0))
		return pol_verify_fail(err, errlen, "aimd: %u cuts (w_max %g) without a first cut", a->cuts, a->w_max);
	if (a->has_cut && a->last_cut_us > a->t_us)
		return pol_verify_fail(err, errlen, "aimd: cut at %llu, after its limit's time %llu",
		                       (unsigned long long)a->last_cut_us, (unsigned long long)a->t_us);
	return 0;
}
