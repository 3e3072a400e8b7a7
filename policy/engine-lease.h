/* engine-lease.h: budgets leased in slices from a fleet's global token buckets, engine
 * side. Workers take leased tokens wait-free (one CAS, no lock, no allocation); the
 * control thread (spoa/fleet-lease.c) grants, counts and expires them. */
#ifndef ENGINE_LEASE_H
#define ENGINE_LEASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pol_engine;

/* Lease cells of a view at most: POL_MAX_ACCOUNTS x (1 + POL_MAX_ENDPOINTS), checked in
 * engine-lease.c (spoa/ sees no policy-t.h). */
#define POL_LEASE_MAX_CELLS (64 * (1 + 32))

/* One leased budget (an account, or an account × endpoint: indexed as the GCRA cells,
 * thr_state). `tokens` may go below 0 by a small debt: a request of a class that may
 * queue books a token the next grant pays (pol_lease_take). One cell per cache line. */
struct pol_lease_cell {
	_Atomic int64_t tokens;     /* leased: any class within its share */
	_Atomic int64_t top;        /* leased from the fleet's reserve: the top class only */
	_Atomic int64_t stock;      /* control thread: the level it leases for (scale of the
	                             * class reserves) */
	_Atomic int64_t credit;     /* control thread: tokens that may be spent ahead of their
	                             * grant while the fleet's bucket is not short (the
	                             * next grants pay them): an idle budget's first requests
	                             * need not wait for a lease */
	_Atomic uint64_t asked;     /* take attempts of the other classes (workers) */
	_Atomic uint64_t asked_top; /* ... of the top class (a class with no reserve above it) */
} __attribute__((aligned(64)));

/* What pol_lease_take took (give it to pol_lease_refund). */
enum { POL_LEASE_NONE, POL_LEASE_TOKEN, POL_LEASE_TOP, POL_LEASE_DEBT };

/* Worker: one token for a class that may use `share` (0..1] of the stock (1 = the top
 * class: its own pool first, then the common one down to 0; another class leaves
 * (1 - share) × stock to the classes above it). debt_max > 0: when no token is left,
 * book one ahead (tokens down to -debt_max): POL_LEASE_DEBT, the caller queues it.
 * Counts the attempt (the demand the control thread leases for). */
int pol_lease_take(struct pol_lease_cell *c, double share, int64_t debt_max);
void pol_lease_refund(struct pol_lease_cell *c, int took);

/* The leased budget's load, as thr_load is the GCRA cell's (the cost model's budget
 * load, admin, metrics): 1 - tokens held / the stock the node leases for, 0..1; 0 with no
 * stock (no demand), 1 with none held (the fleet's bucket short) or a debt. Reads only. */
double pol_lease_load(const struct pol_lease_cell *c);

/* Control thread. */
void pol_lease_grant(struct pol_lease_cell *c, int64_t n, bool top);
/* Removes up to n tokens (never below 0); returns how many it removed. */
int64_t pol_lease_expire(struct pol_lease_cell *c, int64_t n, bool top);
/* Replaces the pool's level by n (fallback: a local refill); returns the level before. */
int64_t pol_lease_set(struct pol_lease_cell *c, int64_t n, bool top);

/* Turns leases on before workers decide: every view from now on books its budgets on
 * lease cells instead of its GCRA cells. Returns 0 or -1 (no memory). */
int pol_engine_lease(struct pol_engine *e);

/* A budget of the current view, for the control thread to lease. */
struct pol_lease_info {
	const char *account;      /* the account's id */
	const char *endpoint;     /* the endpoint's name; NULL for the account's own budget */
	double rate;              /* per second, as adapted now (the GCRA cell's interval) */
	double burst;             /* capacity of the global bucket */
	double reserve;           /* share of the bucket only the top class may lease */
	struct pol_lease_cell *cell;
};
/* The current view's lease cells (0 when off) and its generation (a reload changes it:
 * grants asked under another generation are dropped). */
unsigned pol_engine_lease_cells(struct pol_engine *e, uint16_t *gen);
void pol_engine_lease_info(struct pol_engine *e, unsigned i, struct pol_lease_info *out);

/* engine.c only: a view's lease cells (none when leases are off). Returns 0 or -1. */
struct pol_view;
int pol_lease_view_init(const struct pol_engine *e, struct pol_view *v);
/* engine.c only, at a reload: the tokens each budget holds (and its stock) move from the
 * old view's cells to the same account (and endpoint) in the new view; a worker still
 * deciding on the old view finds none left there, so no token is spent twice. */
void pol_lease_carry(struct pol_view *nv, const struct pol_view *ov);

#endif /* ENGINE_LEASE_H */
