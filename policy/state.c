/* state.c: the engine's learned state and pins as records (state.h), for snapshots:
 * capture and import on the control thread, the pin scan from any thread. Pure: no
 * clock, no I/O, no format; allocation only in capture (never on the decision path). */
#include <stdlib.h>
#include <string.h>

#include "engine-learn.h"
#include "engine-t.h"
#include "pin.h"
#include "policy.h"
#include "state.h"

struct pol_state {
	struct pol_engine *e;       /* its pin tables held (pol_engine_pins_hold) */
	struct pol_view *v;         /* held (v->holds) until pol_state_free */
	uint64_t now_us;
	uint64_t fingerprint;
	struct pol_rec *recs;
	size_t nrecs;
	struct srt_entry *srt;
	size_t nsrt;
};

/* ---- fingerprint ----------------------------------------------------------------------- */

static uint64_t fp_mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

static uint64_t fp_num(uint64_t h, double d)
{
	uint64_t x;

	memcpy(&x, &d, sizeof(x));
	return fp_mix(h, x);
}

/* What learned values mean depends on these: the modules' settings (a window, a
 * half-life, a season) and the layout of the values themselves (a binary whose structs
 * differ must not read them). Budgets are not in it: a budget record is checked against
 * the new ceiling on import instead. */
static uint64_t pol_fingerprint(const struct policy *p)
{
	const struct brk_cfg *b = &p->breaker.cfg;
	const struct srt_cfg *s = &p->learn.cfg;
	const struct anom_cfg *a = &p->anomaly.cfg;
	const struct fc_cfg *f = &p->forecast.cfg;
	uint64_t h = 0x5041595350304131ULL;

	h = fp_mix(h, sizeof(struct brk));
	h = fp_mix(h, sizeof(struct anom));
	h = fp_mix(h, sizeof(struct aimd));
	h = fp_mix(h, sizeof(struct fc));
	h = fp_mix(h, sizeof(struct srt_entry));
	h = fp_mix(h, b->bucket_us);
	h = fp_mix(h, b->buckets);
	h = fp_num(h, s->half_life_s);
	h = fp_num(h, s->prior_a);
	h = fp_num(h, s->prior_b);
	h = fp_num(h, p->learn.prior_weight);
	h = fp_num(h, a->lambda);
	h = fp_num(h, a->base_lambda);
	h = fp_num(h, a->alarm_lambda);
	h = fp_num(h, f->alpha);
	h = fp_num(h, f->beta);
	h = fp_num(h, f->hw_alpha);
	h = fp_num(h, f->hw_beta);
	h = fp_num(h, f->hw_gamma);
	h = fp_mix(h, f->season);
	h = fp_num(h, p->adaptive.md);
	h = fp_num(h, p->adaptive.ai_share);
	h = fp_num(h, p->adaptive.floor_share);
	return h;
}

uint64_t pol_state_engine_fingerprint(struct pol_engine *e)
{
	return pol_fingerprint(atomic_load(&e->view)->p);
}

/* ---- capture --------------------------------------------------------------------------- */

struct pol_state *pol_state_capture(struct pol_engine *e, uint64_t now_us)
{
	struct pol_state *st = calloc(1, sizeof(*st));
	struct pol_view *v = atomic_load(&e->view);

	if (!st)
		return NULL;
	if (pol_learn_save(v, now_us, &st->recs, &st->nrecs, &st->srt, &st->nsrt)) {
		free(st);
		return NULL;
	}
	st->e = e;
	st->v = v;
	st->now_us = now_us;
	st->fingerprint = pol_fingerprint(v->p);
	atomic_fetch_add(&v->holds, 1);
	pol_engine_pins_hold(e, 1);
	return st;
}

void pol_state_free(struct pol_state *st)
{
	if (!st)
		return;
	pol_learn_recs_free(st->recs, st->nrecs);
	free(st->srt);
	pol_engine_pins_hold(st->e, -1);
	atomic_fetch_sub(&st->v->holds, 1);
	free(st);
}

uint64_t pol_state_now_us(const struct pol_state *st) { return st->now_us; }
uint64_t pol_state_fingerprint(const struct pol_state *st) { return st->fingerprint; }
size_t pol_state_nrecs(const struct pol_state *st) { return st->nrecs; }
const struct pol_rec *pol_state_rec(const struct pol_state *st, size_t i) { return &st->recs[i]; }
size_t pol_state_nsrt(const struct pol_state *st) { return st->nsrt; }
const struct srt_entry *pol_state_srt(const struct pol_state *st, size_t i) { return &st->srt[i]; }

/* ---- pins ------------------------------------------------------------------------------
 * The engine's tables (pol_engine_pins_each), held by the capture. */

struct pol_pin_walk {
	struct pol_pin_rec r;
	pol_pin_cb cb;
	void *arg;
	int rc;                     /* the first non-zero cb result: the rest is skipped */
};

static void pol_pin_visit(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                          uint32_t age_s)
{
	struct pol_pin_walk *w = arg;

	if (w->rc)
		return;
	w->r = (struct pol_pin_rec){ (uint8_t)table, backend, account, key, age_s };
	w->rc = w->cb(w->arg, &w->r);
}

int pol_state_foreach_pin(const struct pol_state *st, pol_pin_cb cb, void *arg)
{
	struct pol_pin_walk w = { { 0 }, cb, arg, 0 };

	pol_engine_pins_each(st->e, st->now_us, pol_pin_visit, &w);
	return w.rc;
}

/* ---- import ---------------------------------------------------------------------------- */

void pol_state_import_begin(struct pol_state_import *im, struct pol_engine *e, uint64_t now_us,
                            uint64_t saved_now_us, uint64_t elapsed_us, bool learned)
{
	memset(im, 0, sizeof(*im));
	im->e = e;
	im->now_us = now_us;
	im->learned = learned;
	im->age_extra_s = (uint32_t)(elapsed_us / 1000000 > UINT32_MAX ? UINT32_MAX : elapsed_us / 1000000);
	/* saved time t happened (now_saved - t) + elapsed before now */
	im->shift_us = (int64_t)now_us - (int64_t)elapsed_us - (int64_t)saved_now_us;
}

int pol_state_restore_pin(struct pol_state_import *im, const struct pol_pin_rec *r)
{
	uint64_t age = (uint64_t)r->age_s + im->age_extra_s;
	int rc = -1;

	if (r->kind < POL_PIN_TABLES && r->backend && r->account)
		rc = pol_engine_pin_restore(im->e, r->kind, r->key, r->backend, r->account,
		                            age > UINT32_MAX ? UINT32_MAX : (uint32_t)age, im->now_us);
	switch (rc) {
	case POL_PIN_REMAPPED:
		im->pins_remapped++;
		/* fall through */
	case POL_PIN_KEPT:
		im->pins++;
		return 0;
	case POL_PIN_GONE:
		im->pins++;
		im->pins_gone++;
		return 0;
	default:
		im->pins_dropped++;
		return 1;
	}
}

int pol_state_restore_rec(struct pol_state_import *im, const struct pol_rec *r)
{
	if (!im->learned || pol_learn_restore_rec(atomic_load(&im->e->view), r, im->shift_us, im->now_us)) {
		im->recs_dropped++;
		return 1;
	}
	im->recs++;
	return 0;
}

int pol_state_restore_srt(struct pol_state_import *im, const struct srt_entry *e)
{
	if (!im->learned || pol_learn_restore_srt(atomic_load(&im->e->view), e, im->shift_us)) {
		im->srt_dropped++;
		return 1;
	}
	im->srt++;
	return 0;
}

void pol_state_import_end(struct pol_state_import *im)
{
	pol_learn_restored(atomic_load(&im->e->view), im->now_us);
	pol_tick(im->e, im->now_us);
}
