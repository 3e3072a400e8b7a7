/* engine.c: the engine's entry points: views published with one atomic pointer and
 * reclaimed by quiescent-state epochs, and decide/observe on worker threads.
 * No clock, no I/O, no locks; allocation only in new/swap/tick (control thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-t.h"
#include "policy.h"

static void pol_view_free(struct pol_view *v)
{
	if (!v)
		return;
	pol_free(v->p);
	free(v);
}

static struct pol_view *pol_view_new(struct pol_engine *e, struct policy *p, char *err, size_t errlen)
{
	struct pol_view *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "%s: out of memory", p->file);
		pol_free(p);
		return NULL;
	}
	v->p = p;
	v->gen = e->next_gen++;
	return v;
}

struct pol_engine *pol_engine_new(struct policy *p, unsigned nworkers, char *err, size_t errlen)
{
	struct pol_engine *e = calloc(1, sizeof(*e));
	struct pol_view *v;
	unsigned i;

	if (!e || nworkers == 0 ||
	    !(e->workers = aligned_alloc(64, sizeof(*e->workers) * nworkers))) {
		snprintf(err, errlen, "%s", nworkers ? "out of memory" : "no worker");
		goto fail;
	}
	memset(e->workers, 0, sizeof(*e->workers) * nworkers);
	e->nworkers = nworkers;
	for (i = 0; i < nworkers; i++)
		atomic_init(&e->workers[i].seen, POL_OFFLINE);
	atomic_init(&e->epoch, 1);
	v = pol_view_new(e, p, err, errlen);
	p = NULL;
	if (!v)
		goto fail;
	atomic_init(&e->view, v);
	return e;
fail:
	pol_free(p);
	if (e)
		free(e->workers);
	free(e);
	return NULL;
}

void pol_engine_free(struct pol_engine *e)
{
	struct pol_view *v, *n;

	if (!e)
		return;
	for (v = e->retired; v; v = n) {
		n = v->next_retired;
		pol_view_free(v);
	}
	pol_view_free(atomic_load(&e->view));
	free(e->workers);
	free(e);
}

/* Frees the retired views no worker can still hold. */
static void pol_reclaim(struct pol_engine *e)
{
	struct pol_view **pv = &e->retired, *v;
	uint64_t min = POL_OFFLINE;
	unsigned i;

	for (i = 0; i < e->nworkers; i++) {
		uint64_t s = atomic_load(&e->workers[i].seen);

		if (s < min)
			min = s;
	}
	while ((v = *pv)) {
		if (v->retired_epoch <= min) {
			*pv = v->next_retired;
			pol_view_free(v);
		} else {
			pv = &v->next_retired;
		}
	}
}

int pol_engine_swap(struct pol_engine *e, struct policy *p, char *err, size_t errlen)
{
	struct pol_view *nv = pol_view_new(e, p, err, errlen), *old;

	if (!nv)
		return -1;
	old = atomic_exchange(&e->view, nv);
	old->retired_epoch = atomic_fetch_add(&e->epoch, 1) + 1;
	old->next_retired = e->retired;
	e->retired = old;
	return 0;
}

/* A worker coming back from idle announces the epoch before it reads the view, so the
 * control thread cannot free what it is about to read. */
static struct pol_view *pol_enter(struct pol_engine *e, struct pol_worker *w)
{
	if (atomic_load_explicit(&w->seen, memory_order_relaxed) == POL_OFFLINE)
		atomic_store(&w->seen, atomic_load(&e->epoch));
	return atomic_load(&e->view);
}

static void pol_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

void pol_decide(struct pol_engine *e, unsigned worker, const struct pay_request *rq,
                uint64_t now_us, struct pay_verdict *out)
{
	struct pol_worker *w = &e->workers[worker];
	struct pol_view *v = pol_enter(e, w);
	const struct policy *p = v->p;
	int n;

	memset(out, 0, sizeof(*out));
	out->backend = p->backends[p->default_backend].name;
	out->class_name = p->classes[p->default_class].name;
	out->prio = p->classes[p->default_class].prio;
	out->offset_ms = p->classes[p->default_class].offset_ms;
	out->verdict = PAY_ALLOW;
	memcpy(out->reason, "default", 8);
	out->reason_len = 7;
	n = snprintf(out->decision, sizeof(out->decision), "%04x%02x%02x%012llx", v->gen, worker & 0xff,
	             p->default_backend, (unsigned long long)++w->seq);
	out->decision_len = (uint8_t)n;
	pol_count(&w->c.decisions);
	pol_count(&w->c.allow);
}

void pol_observe(struct pol_engine *e, unsigned worker, const struct pay_outcome *o, uint64_t now_us)
{
	struct pol_worker *w = &e->workers[worker];

	(void)pol_enter(e, w);
	pol_count(&w->c.observed);
}

void pol_quiesce(struct pol_engine *e, unsigned worker)
{
	atomic_store_explicit(&e->workers[worker].seen, atomic_load(&e->epoch), memory_order_release);
}

void pol_worker_idle(struct pol_engine *e, unsigned worker)
{
	atomic_store(&e->workers[worker].seen, POL_OFFLINE);
}

void pol_tick(struct pol_engine *e, uint64_t now_us)
{
	pol_reclaim(e);
}
