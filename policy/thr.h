/* thr.h: throttling with GCRA cells shared by all worker threads (one CAS per take).
 * Pure: time comes in as nanoseconds; no allocation after thr_init. */
#ifndef THR_H
#define THR_H

#include <stddef.h>
#include <stdint.h>

#include "pay-t.h"
#include "thr-t.h"

struct policy;

/* Cells for p's accounts and endpoints. Returns 0 or -1 (no memory). */
int thr_init(struct thr_state *s, const struct policy *p);
void thr_destroy(struct thr_state *s); /* accepts a zeroed state */

static inline struct thr_cell *thr_account(const struct thr_state *s, int account)
{
	return &s->cells[account];
}

static inline struct thr_cell *thr_endpoint(const struct thr_state *s, int account, int endpoint)
{
	return &s->cells[s->naccounts + account * s->nendpoints + endpoint];
}

/* Index of the first endpoint of p matching rq, or -1. */
int thr_endpoint_of(const struct policy *p, const struct pay_request *rq);

/* Books one request for a class that may use `share` (0..1] of the cell's tolerance
 * (1 - what higher classes reserved). Returns:
 *   0        within budget, booked;
 *   w > 0    over budget by w ns but w <= max_wait_ns: booked, the caller queues it;
 *   -w < 0   over budget by w ns (>= 1) beyond max_wait_ns: nothing booked. */
int64_t thr_take(struct thr_cell *c, uint64_t now_ns, double share, uint64_t max_wait_ns);

/* Gives back one booking (when a second budget refused what the first booked). */
void thr_refund(struct thr_cell *c);

/* Upstream said its bucket is empty at now_ns (a 429 with a rate-limit reason): the
 * cell's burst credit is spent too, so it admits at its rate from here and the burst
 * comes back only as the rate allows, as Stripe's does. Never lowers a booking. */
void thr_drain(struct thr_cell *c, uint64_t now_ns);

/* Control thread: a new emission interval (1 / rate, ns) for an adaptive budget. */
void thr_set_interval(struct thr_cell *c, uint64_t interval_ns);

/* Share of the tolerance in use at now_ns, 0..1. */
double thr_load(const struct thr_cell *c, uint64_t now_ns);

/* Reload: copy the booking state of every account and (account, endpoint) whose names
 * survive from (src, sp) into (dst, dp). */
void thr_carry(struct thr_state *dst, const struct policy *dp, const struct thr_state *src,
               const struct policy *sp);
/* The cell of sp that cell i of dp carries over from (the same account, and endpoint
 * name), or -1. Cells indexed as thr_state's (accounts, then account x endpoint). */
int thr_carry_src(const struct policy *dp, const struct policy *sp, int i);

/* Checks the budgets' invariants: p's cell count, every cell with an emission interval
 * (>= 1 ns) and a tolerance of at least one interval of its configured rate (burst >= 1),
 * and a booking time no further ahead of now_ns than its tolerance plus max_wait_ns:
 * thr_take books nothing beyond that, with max_wait_ns the longest queue wait of a class.
 * (A reload carries bookings made under the old tolerance: pass UINT64_MAX then.)
 * Returns 0, or -1 with the first violation in err. */
int thr_verify(const struct thr_state *s, const struct policy *p, uint64_t now_ns, uint64_t max_wait_ns,
               char *err, size_t errlen);

#endif /* THR_H */
