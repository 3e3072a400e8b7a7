/* aimd.h: adaptive rate budgets: multiplicative decrease on rate-limit 429s (once per
 * cool-down), additive recovery per second up to the ceiling, never below the floor.
 * Recovery remembers the budget at the last cut (w_max): fast up to a plateau below
 * it, slowly up to it, held there, then probing above it (aimd-t.h).
 * Pure: time is passed in; no clock, no I/O, no allocation, no globals. */
#ifndef AIMD_H
#define AIMD_H

#include <stdbool.h>
#include <stddef.h>

#include "aimd-t.h"
#include "outcome-t.h"

/* Fill c with the defaults noted in aimd-t.h for a budget of `ceiling` req/s (floor:
 * 5 % of it). */
void aimd_cfg_default(struct aimd_cfg *c, double ceiling);

/* NULL if c is usable, else a static message. */
const char *aimd_cfg_check(const struct aimd_cfg *c);

/* A budget at its ceiling. */
void aimd_init(struct aimd *a, const struct aimd_cfg *c, uint64_t now_us);

/* The budget at now_us, req/s: the limit at t_us plus recovery since (ai_per_s per
 * second up to plateau x w_max, probe x ai_per_s per second up to w_max, ai_per_s
 * again from the end of the hold at w_max or last cut + forget_us, whichever comes
 * first; without a cut, ai_per_s all the way), at most
 * ceiling and at least floor (a reload that moved ceiling or floor applies at once).
 * Read-only. */
double aimd_limit(const struct aimd *a, const struct aimd_cfg *c, uint64_t now_us);

/* Learn from an outcome of this budget's kind. OC_RATE_LIMITED cuts: w_max <-
 * aimd_limit(now), limit <- max(floor, w_max * md), unless the last cut is less than
 * cooldown_us old (the same overload: counted in `absorbed`), or the budget is probing
 * above w_max by less than 1/md, before the cut is forgotten (a failed probe: limit <-
 * plateau x w_max, w_max kept, the next hold twice as long, `probes_failed`). OC_LOCK_CONFLICT (429 without
 * Stripe-Rate-Limited-Reason: another request holds the object) is counted and never
 * cuts; other kinds are ignored. Returns true if it cut. */
bool aimd_on_outcome(struct aimd *a, const struct aimd_cfg *c, enum oc_kind k,
                     uint64_t now_us);

/* Checks the budget's invariants: a finite positive limit, a finite w_max >= 0, no cut
 * counted (or remembered) without a first cut, no cut after the limit's time.
 * Returns 0, or -1 with the first violation in err. */
int aimd_verify(const struct aimd *a, const struct aimd_cfg *c, char *err, size_t errlen);

#endif /* AIMD_H */
