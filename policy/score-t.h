/* score-t.h: what scoring knows about a backend beyond the policy file. Types only. */
#ifndef SCORE_T_H
#define SCORE_T_H

#include <stdatomic.h>
#include <stdint.h>

enum score_state {
	SCORE_UP = 0,   /* serve */
	SCORE_PROBE,    /* breaker half-open: a candidate, behind every healthy one */
	SCORE_DOWN,     /* breaker open: not a candidate unless pinned or in panic */
};

/* Per backend, written by the control thread (the learning loop: breakers, success-rate
 * posteriors, latency), read by the workers on every decision. Zero means "nothing
 * learned": the policy's priors apply. Each field is its own atomic, so a reader may see
 * a mix of two updates, which is harmless for a score. */
struct score_health {
	_Atomic uint32_t state;      /* enum score_state */
	_Atomic uint32_t p_auth_ppm; /* learned P(auth) × 1e6, 0 = use the prior (shown by
	                              * the admin getters; decide reads the posteriors) */
	_Atomic uint32_t latency_us; /* learned latency, 0 = use the prior */
	_Atomic uint32_t factor_ppm; /* score factor × 1e6 while degraded, 0 = none (1.0) */
	_Atomic uint32_t why;        /* SCORE_WHY_* bits: why the backend is degraded */
	_Atomic int32_t probes;      /* half-open: probe requests the workers may still send */
};

#define SCORE_WHY_ANOMALY   0x1u /* out of its learned normal (anomaly detector) */
#define SCORE_WHY_EJECT_CAP 0x2u /* its breaker would be open, but the ejection cap refused */

/* One candidate as scoring sees it. */
struct score_in {
	double amount;     /* minor units (the request's, or the policy's nominal amount) */
	double fee;        /* minor units, cost_fee() */
	double p_auth;     /* 0..1 */
	double latency_ms;
	double load;       /* 0..1, share of the account budget in use */
};

#endif /* SCORE_T_H */
