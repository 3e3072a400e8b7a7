/* score.h: expected net value of sending a request to a backend. Pure. */
#ifndef SCORE_H
#define SCORE_H

#include <stdint.h>

#include "policy-t.h"
#include "score-t.h"

/* P(auth) × (amount - fee) - latency_cost × latency_ms - load_cost × load, in minor
 * units: what the merchant expects to keep, minus what slowness and a full budget cost. */
double score_value(const struct policy *p, const struct score_in *in);

/* P(auth) for backend b and card region: the learned value if any, else the prior. */
double score_p_auth(const struct pol_backend *b, const struct score_health *h, unsigned region);

/* Latency in ms for b: learned if any, else the prior. */
double score_latency(const struct pol_backend *b, const struct score_health *h);

/* Index of the best score among the backends in mask (n scores), or -1 if mask is
 * empty. Ties go to the lowest index (the order of the policy file), so equal backends
 * get a stable, documented answer. */
int score_best(const double *scores, uint64_t mask);

#endif /* SCORE_H */
