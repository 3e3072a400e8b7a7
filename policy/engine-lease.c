/* engine-lease.c: the engine's side of leased budgets (engine-lease.h). Pure: no clock,
 * no I/O; workers take with one CAS and allocate nothing; the views' cells are allocated
 * by the control thread when a view is built.
 *
 * Why a counter and not the GCRA cell: in lease mode a budget refills only from what the
 * fleet granted (spoa/fleet-lease.c), never from time, so the fleet's global bucket is
 * the only source of tokens and N nodes together spend one budget. */
#include <stdlib.h>
#include <string.h>

#include "engine-lease.h"
#include "engine-t.h"
#include "policy-t.h"
#include "thr.h"

_Static_assert(POL_LEASE_MAX_CELLS == POL_MAX_ACCOUNTS * (1 + POL_MAX_ENDPOINTS), "lease cells");

/* Takes one token from pool p if it stays at or above `keep` after the take. */
static bool pol_lease_dec(_Atomic int64_t *p, int64_t keep)
{
	int64_t cur = atomic_load_explicit(p, memory_order_relaxed);

	while (cur - 1 >= keep)
		if (atomic_compare_exchange_weak_explicit(p, &cur, cur - 1, memory_order_relaxed,
		                                          memory_order_relaxed))
			return true;
	return false;
}

int pol_lease_take(struct pol_lease_cell *c, double share, int64_t debt_max)
{
	int64_t keep = 0;
	bool top = share >= 1.0;

	atomic_fetch_add_explicit(top ? &c->asked_top : &c->asked, 1, memory_order_relaxed);
	if (top && pol_lease_dec(&c->top, 0))
		return POL_LEASE_TOP;
	if (!top) /* (1 - share) x stock stays for the classes above: floor (1e-9: 1 - 0.8
	           * is 0.19999..., not 0.2), so a stock of one token is not held back */
		keep = (int64_t)((1.0 - share) * (double)atomic_load_explicit(&c->stock, memory_order_relaxed) + 1e-9);
	if (pol_lease_dec(&c->tokens, keep - atomic_load_explicit(&c->credit, memory_order_relaxed)))
		return POL_LEASE_TOKEN;
	if (debt_max > 0 && pol_lease_dec(&c->tokens, -debt_max))
		return POL_LEASE_DEBT;
	return POL_LEASE_NONE;
}

void pol_lease_refund(struct pol_lease_cell *c, int took)
{
	if (took == POL_LEASE_TOP)
		atomic_fetch_add_explicit(&c->top, 1, memory_order_relaxed);
	else if (took != POL_LEASE_NONE)
		atomic_fetch_add_explicit(&c->tokens, 1, memory_order_relaxed);
}

double pol_lease_load(const struct pol_lease_cell *c)
{
	int64_t stock = atomic_load_explicit(&c->stock, memory_order_relaxed);
	int64_t held = atomic_load_explicit(&c->tokens, memory_order_relaxed) +
	               atomic_load_explicit(&c->top, memory_order_relaxed);

	if (stock <= 0)
		return 0;
	if (held <= 0)
		return 1;
	return held >= stock ? 0 : 1.0 - (double)held / (double)stock;
}

void pol_lease_grant(struct pol_lease_cell *c, int64_t n, bool top)
{
	atomic_fetch_add_explicit(top ? &c->top : &c->tokens, n, memory_order_relaxed);
}

int64_t pol_lease_expire(struct pol_lease_cell *c, int64_t n, bool top)
{
	_Atomic int64_t *p = top ? &c->top : &c->tokens;
	int64_t cur = atomic_load_explicit(p, memory_order_relaxed), take;

	do {
		take = cur <= 0 ? 0 : (cur < n ? cur : n);
		if (take == 0)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(p, &cur, cur - take, memory_order_relaxed,
	                                                memory_order_relaxed));
	return take;
}

int64_t pol_lease_set(struct pol_lease_cell *c, int64_t n, bool top)
{
	return atomic_exchange_explicit(top ? &c->top : &c->tokens, n, memory_order_relaxed);
}

int pol_lease_view_init(const struct pol_engine *e, struct pol_view *v)
{
	size_t n = (size_t)v->thr.naccounts * (1 + (size_t)v->thr.nendpoints);

	v->lease = NULL;
	if (!e->lease || n == 0)
		return 0;
	if (!(v->lease = aligned_alloc(64, n * sizeof(*v->lease))))
		return -1;
	memset(v->lease, 0, n * sizeof(*v->lease));
	return 0;
}

void pol_lease_carry(struct pol_view *nv, const struct pol_view *ov)
{
	int i, j, n;

	if (!nv->lease || !ov->lease)
		return;
	n = nv->thr.naccounts * (1 + nv->thr.nendpoints);
	for (i = 0; i < n; i++) {
		struct pol_lease_cell *d = &nv->lease[i], *s;

		if ((j = thr_carry_src(nv->p, ov->p, i)) < 0)
			continue;
		s = &ov->lease[j];
		/* moved, not copied: a worker still on the old view finds none left */
		pol_lease_grant(d, pol_lease_set(s, 0, false), false);
		pol_lease_grant(d, pol_lease_set(s, 0, true), true);
		atomic_store_explicit(&d->stock, atomic_load_explicit(&s->stock, memory_order_relaxed),
		                      memory_order_relaxed);
	}
}

int pol_engine_lease(struct pol_engine *e)
{
	struct pol_view *v = atomic_load(&e->view);

	e->lease = true;
	if (v->lease)
		return 0;
	return pol_lease_view_init(e, v);
}

unsigned pol_engine_lease_cells(struct pol_engine *e, uint16_t *gen)
{
	struct pol_view *v = atomic_load(&e->view);

	*gen = v->gen;
	return v->lease ? (unsigned)(v->thr.naccounts * (1 + v->thr.nendpoints)) : 0;
}

/* The top class's reserve: what a class below it may not lease from the fleet's bucket
 * (the smallest reserved_above of the classes that have one). */
static double pol_lease_reserve(const struct policy *p)
{
	double r = 0;
	int i;

	for (i = 0; i < p->nclasses; i++)
		if (p->classes[i].reserved_above > 0 && (r == 0 || p->classes[i].reserved_above < r))
			r = p->classes[i].reserved_above;
	return r;
}

void pol_engine_lease_info(struct pol_engine *e, unsigned i, struct pol_lease_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	int na = v->thr.naccounts, a, ep;
	const struct pol_budget *b;

	if ((int)i < na) {
		a = (int)i;
		ep = -1;
		b = &p->accounts[a].budget;
	} else {
		a = ((int)i - na) / v->thr.nendpoints;
		ep = ((int)i - na) % v->thr.nendpoints;
		b = &p->thr.endpoints[ep].budget;
	}
	out->account = p->accounts[a].id;
	out->endpoint = ep < 0 ? NULL : p->thr.endpoints[ep].name;
	out->rate = 1e9 / (double)atomic_load_explicit(&v->thr.cells[i].interval_ns, memory_order_relaxed);
	out->burst = b->burst;
	out->reserve = pol_lease_reserve(p);
	out->cell = &v->lease[i];
}
