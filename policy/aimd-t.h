/* aimd-t.h: types of the adaptive (AIMD) rate budgets per account or endpoint.
 * Types only: no functions, nothing beyond the C library. */
#ifndef AIMD_T_H
#define AIMD_T_H

#include <stdint.h>

/* Settings, from the policy (per budget kind: account, endpoint, ...). */
struct aimd_cfg {
	double ceiling;       /* req/s configured (e.g. Stripe's 100 per live account) */
	double floor;         /* never below this, req/s, 0 < floor <= ceiling */
	double md;            /* multiplicative decrease on a rate-limit 429, 0 < md < 1 (0.7) */
	double ai_per_s;      /* additive recovery, req/s gained per second (1) */
	uint64_t cooldown_us; /* 429s within this of the last cut are the same overload:
	                       * no further cut; set it above the longest request latency,
	                       * since answers to requests sent before a cut keep arriving
	                       * after it (2 s) */
	/* Recovery after a cut remembers the budget that drew it (w_max): +ai_per_s up to
	 * plateau x w_max, then +probe x ai_per_s up to w_max and no further, until
	 * forget_us without a cut; then +ai_per_s to the ceiling again (a raised true limit
	 * is rediscovered). 0 in any of the three means the default, so a zeroed
	 * (calloc'd) config gets it. */
	double plateau;       /* (0, 1]: fast recovery up to this share of w_max (0.95) */
	double probe;         /* (0, 1]: share of ai_per_s above the plateau (0.3) */
	uint64_t forget_us;   /* w_max forgotten this long after the last cut (300 s) */
	/* Once the budget has held w_max this long without a cut, it probes above it at
	 * ai_per_s (a lifted limit is found in seconds, not forget_us). A probe that draws
	 * a 429 below w_max / md is cheap: back to plateau x w_max, and the next probe
	 * waits twice as long (at most forget_us). 0 means the default (20 s). */
	uint64_t hold_us;
};

/* One budget's state: a plain value, written by the control thread; workers read
 * aimd_limit() of a published copy (or the value the engine publishes). The limit is
 * kept as (value at t_us) and recovery applied lazily from the time passed in. */
struct aimd {
	double limit;         /* req/s as of t_us, before recovery since */
	uint64_t t_us;
	uint64_t last_cut_us;
	uint32_t cuts;        /* multiplicative decreases made */
	uint32_t absorbed;    /* rate-limit 429s inside a cool-down (no cut) */
	uint32_t locks;       /* lock-conflict 429s seen (never cut) */
	uint32_t has_cut;     /* 0 until the first cut: no cool-down before it */
	double w_max;         /* budget just before the last cut, req/s (0: none yet) */
	uint64_t hold_us;     /* wait at w_max before the next probe above it (0: cfg's) */
	uint32_t probes_failed; /* probes above w_max that drew a 429 (cheap cuts) */
};

#endif /* AIMD_T_H */
