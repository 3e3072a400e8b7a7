/* aimd.c: AIMD rate budgets driven by upstream 429s.
 * Must not read clocks, do I/O, allocate, log or keep globals. */
#include <math.h>
#include <stddef.h>

#include "aimd.h"

void aimd_cfg_default(struct aimd_cfg *c, double ceiling)
{
	c->ceiling = ceiling;
	c->floor = ceiling * 0.05;
	c->md = 0.7;
	c->ai_per_s = 1;
	c->cooldown_us = 2000000;
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
	return NULL;
}

void aimd_init(struct aimd *a, const struct aimd_cfg *c, uint64_t now_us)
{
	*a = (struct aimd){ .limit = c->ceiling, .t_us = now_us };
}

double aimd_limit(const struct aimd *a, const struct aimd_cfg *c, uint64_t now_us)
{
	double v = a->limit;

	if (now_us > a->t_us)
		v += c->ai_per_s * (double)(now_us - a->t_us) / 1e6;
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
	v = aimd_limit(a, c, now_us) * c->md;
	a->limit = v < c->floor ? c->floor : v;
	a->t_us = now_us > a->t_us ? now_us : a->t_us;
	a->last_cut_us = now_us;
	a->has_cut = 1;
	a->cuts++;
	return true;
}
