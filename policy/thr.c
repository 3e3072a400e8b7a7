/* thr.c: GCRA rate budgets with class reserves, as atomic cells shared by the worker
 * threads. Pure: no clock, no allocation after thr_init, no locks (one CAS per take).
 *
 * GCRA: with emission interval T = 1/rate and tolerance tau = burst × T, a request at
 * `now` is booked by tat' = max(tat, now) + T and conforms iff tat' - now <= tau; at most
 * `burst` requests back to back, then one per T. A class that may use share s of the
 * budget conforms iff tat' - now <= s × tau: once the budget is drawn down into the part
 * higher classes reserved, only they get through, while the rate is never exceeded. */
#include <stdlib.h>
#include <string.h>

#include "bug.h"
#include "classify.h"
#include "policy-t.h"
#include "thr.h"

static void thr_cell_init(struct thr_cell *c, const struct pol_budget *b)
{
	double t = 1e9 / b->rate;

	atomic_init(&c->tat, 0);
	atomic_init(&c->interval_ns, t < 1 ? 1 : (uint64_t)t);
	c->tol_ns = (uint64_t)(b->burst * (double)(t < 1 ? 1 : (uint64_t)t));
}

int thr_init(struct thr_state *s, const struct policy *p)
{
	size_t n = (size_t)p->naccounts * (1 + (size_t)p->thr.nendpoints);
	int a, e;

	memset(s, 0, sizeof(*s));
	s->cells = aligned_alloc(64, n * sizeof(*s->cells));
	if (!s->cells)
		return -1;
	s->naccounts = p->naccounts;
	s->nendpoints = p->thr.nendpoints;
	for (a = 0; a < p->naccounts; a++) {
		thr_cell_init(thr_account(s, a), &p->accounts[a].budget);
		for (e = 0; e < p->thr.nendpoints; e++)
			thr_cell_init(thr_endpoint(s, a, e), &p->thr.endpoints[e].budget);
	}
	return 0;
}

void thr_destroy(struct thr_state *s)
{
	free(s->cells);
	s->cells = NULL;
}

int thr_endpoint_of(const struct policy *p, const struct pay_request *rq)
{
	int i;

	if (!rq->path.ptr)
		return -1;
	for (i = 0; i < p->thr.nendpoints; i++) {
		const struct pol_endpoint *ep = &p->thr.endpoints[i];

		if (cls_method_match(ep->method, rq->method) && cls_path_match(ep->path, rq->path.ptr, rq->path.len))
			return i;
	}
	return -1;
}

int64_t thr_take(struct thr_cell *c, uint64_t now_ns, double share, uint64_t max_wait_ns)
{
	uint64_t old = atomic_load_explicit(&c->tat, memory_order_relaxed), ntat, limit;
	uint64_t iv = atomic_load_explicit(&c->interval_ns, memory_order_relaxed);
	int64_t over;

	limit = (uint64_t)(share * (double)c->tol_ns);
	do {
		ntat = (old > now_ns ? old : now_ns) + iv;
		over = (int64_t)(ntat - now_ns - limit);
		if (ntat - now_ns <= limit)
			over = 0;
		else if ((uint64_t)over > max_wait_ns)
			return -over;
	} while (!atomic_compare_exchange_weak_explicit(&c->tat, &old, ntat, memory_order_relaxed,
	                                                memory_order_relaxed));
	return over;
}

void thr_refund(struct thr_cell *c)
{
	atomic_fetch_sub_explicit(&c->tat, atomic_load_explicit(&c->interval_ns, memory_order_relaxed),
	                          memory_order_relaxed);
}

void thr_drain(struct thr_cell *c, uint64_t now_ns)
{
	uint64_t old = atomic_load_explicit(&c->tat, memory_order_relaxed), full = now_ns + c->tol_ns;

	while (old < full && !atomic_compare_exchange_weak_explicit(&c->tat, &old, full, memory_order_relaxed,
	                                                            memory_order_relaxed))
		;
}

/* The tolerance stays the same time (burst x the configured interval): a budget cut by
 * the adaptive loop also admits proportionally fewer requests back to back. */
void thr_set_interval(struct thr_cell *c, uint64_t interval_ns)
{
	atomic_store_explicit(&c->interval_ns, interval_ns ? interval_ns : 1, memory_order_relaxed);
}

double thr_load(const struct thr_cell *c, uint64_t now_ns)
{
	uint64_t tat = atomic_load_explicit(&c->tat, memory_order_relaxed);
	double l;

	if (tat <= now_ns || !c->tol_ns)
		return 0;
	l = (double)(tat - now_ns) / (double)c->tol_ns;
	return l > 1 ? 1 : l;
}

static int thr_find_account(const struct policy *p, const char *id)
{
	int i;

	for (i = 0; i < p->naccounts; i++)
		if (strcmp(p->accounts[i].id, id) == 0)
			return i;
	return -1;
}

static int thr_find_endpoint(const struct policy *p, const char *name)
{
	int i;

	for (i = 0; i < p->thr.nendpoints; i++)
		if (strcmp(p->thr.endpoints[i].name, name) == 0)
			return i;
	return -1;
}

static void thr_copy(struct thr_cell *dst, const struct thr_cell *src)
{
	atomic_store_explicit(&dst->tat, atomic_load_explicit(&src->tat, memory_order_relaxed),
	                      memory_order_relaxed);
}

/* The booking time is carried as is: a debt of d ns stays d ns under a new rate. */
int thr_carry_src(const struct policy *dp, const struct policy *sp, int i)
{
	int na = dp->naccounts, ne = dp->thr.nendpoints, sa, se;

	if (i < na)
		return thr_find_account(sp, dp->accounts[i].id);
	if ((sa = thr_find_account(sp, dp->accounts[(i - na) / ne].id)) < 0 ||
	    (se = thr_find_endpoint(sp, dp->thr.endpoints[(i - na) % ne].name)) < 0)
		return -1;
	return sp->naccounts + sa * sp->thr.nendpoints + se;
}

void thr_carry(struct thr_state *dst, const struct policy *dp, const struct thr_state *src,
               const struct policy *sp)
{
	int i, j;

	for (i = 0; i < dp->naccounts * (1 + dp->thr.nendpoints); i++)
		if ((j = thr_carry_src(dp, sp, i)) >= 0)
			thr_copy(&dst->cells[i], &src->cells[j]);
}

int thr_verify(const struct thr_state *s, const struct policy *p, uint64_t now_ns, uint64_t max_wait_ns,
               char *err, size_t errlen)
{
	int a, e, n = p->naccounts * (1 + p->thr.nendpoints);

	if (!s->cells || s->naccounts != p->naccounts || s->nendpoints != p->thr.nendpoints)
		return pol_verify_fail(err, errlen, "budgets: %d accounts x %d endpoints for a policy of %d x %d",
		                       s->naccounts, s->nendpoints, p->naccounts, p->thr.nendpoints);
	for (a = 0; a < n; a++) {
		const struct thr_cell *c = &s->cells[a];
		const struct pol_budget *b = a < p->naccounts ? &p->accounts[a].budget
		                             : &p->thr.endpoints[(a - p->naccounts) % p->thr.nendpoints].budget;
		double t = 1e9 / b->rate;
		uint64_t iv = atomic_load_explicit(&c->interval_ns, memory_order_relaxed);
		uint64_t tat = atomic_load_explicit(&c->tat, memory_order_relaxed);

		e = a < p->naccounts ? -1 : (a - p->naccounts) % p->thr.nendpoints;
		if (iv < 1 || c->tol_ns < (t < 1 ? 1 : (uint64_t)t))
			return pol_verify_fail(err, errlen, "budgets: cell %d (endpoint %d): interval %llu ns, tolerance %llu ns",
			                       a, e, (unsigned long long)iv, (unsigned long long)c->tol_ns);
		if (tat > now_ns && tat - now_ns > c->tol_ns && tat - now_ns - c->tol_ns > max_wait_ns)
			return pol_verify_fail(err, errlen, "budgets: cell %d (endpoint %d) booked %llu ns ahead, tolerance %llu ns",
			                       a, e, (unsigned long long)(tat - now_ns), (unsigned long long)c->tol_ns);
	}
	return 0;
}
