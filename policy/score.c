/* score.c: scoring of candidate backends by expected net value with latency and load
 * penalties. Pure arithmetic on the decision path. */
#include "score.h"

double score_value(const struct policy *p, const struct score_in *in)
{
	return in->p_auth * (in->amount - in->fee) - p->score.latency_cost * in->latency_ms -
	       p->score.load_cost * in->load;
}

double score_p_auth(const struct pol_backend *b, const struct score_health *h, unsigned region)
{
	uint32_t ppm = atomic_load_explicit(&h->p_auth_ppm, memory_order_relaxed);

	if (ppm)
		return ppm / 1e6;
	if (region == POL_REGION_UNKNOWN)
		region = POL_MAX_REGIONS + 1;
	return b->p_auth[region];
}

double score_latency(const struct pol_backend *b, const struct score_health *h)
{
	uint32_t us = atomic_load_explicit(&h->latency_us, memory_order_relaxed);

	return us ? us / 1e3 : b->latency_ms;
}

int score_best(const double *scores, uint64_t mask)
{
	int best = -1, i;

	while (mask) {
		i = __builtin_ctzll(mask);
		mask &= mask - 1;
		if (best < 0 || scores[i] > scores[best])
			best = i;
	}
	return best;
}
