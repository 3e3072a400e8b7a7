/* aimd.c: AIMD rate budgets driven by upstream 429s.
 * Must not read clocks, do I/O, allocate, log or keep globals. */
#include <math.h>
#include <stddef.h>

#include "aimd.h"
#include "bug.h"

#define AIMD_PLATEAU 0.95
#define AIMD_PROBE 0.3
#define AIMD_FORGET_US 300000000ull

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

double aimd_limit(const struct aimd *a, const struct aimd_cfg *c, uint64_t now_us)
{
	double v = a->limit, r = c->ai_per_s;
	uint64_t from = a->t_us;

	if (a->w_max > 0) {
		/* remembered: fast to the plateau, slowly to w_max, until forgotten */
		uint64_t fu = c->forget_us ? c->forget_us : AIMD_FORGET_US;
		uint64_t forget = a->last_cut_us > UINT64_MAX - fu ? UINT64_MAX : a->last_cut_us + fu;
		double pl = (c->plateau > 0 ? c->plateau : AIMD_PLATEAU) * a->w_max;
		double dt = secs(from, now_us < forget ? now_us : forget);

		if (v < pl && dt > 0 && r > 0) {
			double fast = (pl - v) / r;

			if (fast > dt)
				fast = dt;
			v += r * fast;
			dt -= fast;
		}
		if (v < a->w_max && dt > 0) {
			v += r * (c->probe > 0 ? c->probe : AIMD_PROBE) * dt;
			if (v > a->w_max)
				v = a->w_max;
		}
		if (forget > from)
			from = forget;
	}
	v += r * secs(from, now_us);
	if (v > c->ceiling)
		v = c->ceiling;
	return v < c->floor ? c->floor : v;
}

bool aimd_on_outcome(struct aimd *a, const struct aimd_cfg *c, enum oc_kind k,
                     uint64_t now_us)
{
	double v;

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
	a->w_max = aimd_limit(a, c, now_us);
	v = a->w_max * c->md;
	a->limit = v < c->floor ? c->floor : v;
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
