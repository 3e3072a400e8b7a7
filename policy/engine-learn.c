/* engine-learn.c: the control thread's half of the learning loop. Merges the outcome
 * events workers push into their rings, feeds the pure modules (brk_, srt_, anom_, fc_,
 * aimd_), and publishes what decide reads: health and probe budgets per backend, a
 * posterior snapshot, adapted emission intervals, shed flags per account and class.
 * Control thread only; allocation in new/carry only, never in a tick; no clock, no I/O.
 *
 * Posterior snapshots: the master table is copied into one of two published tables,
 * alternately; a table is rewritten only once every worker has passed a quiescent point
 * since it was unpublished (the engine's QSBR epochs, as for views). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aimd.h"
#include "anomaly.h"
#include "breaker.h"
#include "bug.h"
#include "engine-learn.h"
#include "engine-share.h"
#include "forecast.h"
#include "outcome.h"
#include "pstr.h"
#include "srate.h"
#include "thr.h"

#define POL_FC_Z 2.0     /* forecasts are taken at their lower POL_FC_Z-sigma bound */
#define POL_FC_WARMUP_S 5 /* seconds of counts before a forecast trend is believed */
#define POL_ANOM_IDLE_US (10 * 1000000ULL) /* a degraded backend with no sample this long is
                                            * given another chance */

/* Decline shares on two time scales (struct pol_share2): over the last ~POL_SHARE_FAST_S
 * against the last ~POL_SHARE_SLOW_S. A share that rose on every backend at once (a
 * decline storm) is the customers' or the issuers', not a backend's (pol_cust_update,
 * pol_storm_update). */
#define POL_SHARE_FAST_S 5.0
#define POL_SHARE_SLOW_S 600.0
#define POL_SHARE_MIN_FAST 50.0  /* answers in the fast sum before it is believed */
#define POL_SHARE_MIN_SLOW 500.0 /* ... in the slow one */
#define POL_STORM_Z 1.0          /* a storm's declines: beyond this many Poisson sds of noise */
#define POL_SHARE_MID_S 20.0     /* ~: the storm guard's third sum (thin backends, pol_storm_level) */
#define POL_STORM_Z_ONE 2.0      /* ... with one busy backend only (its many answers: more tests) */
#define POL_STORM_THIN_SLOW 100.0 /* answers in a thin backend's slow sum before it is pooled */
#define POL_STORM_LLR 1.0        /* the thin backends' evidence against the storm, in nats */
#define POL_STORM_HOLD_S 300.0   /* a storm's level is kept out of the slow sums this long at most */
#define POL_CUST_EXCESS_MIN 1.25 /* a backend's customer declines over its own long-run share by
                                  * less than this are the mix of segments it serves moving */
#define POL_FORK_R 2.0           /* a backend's own soft declines at this r (2 sds) fork its posteriors */
#define POL_FORK_CALM 1.25       /* ... and at most this r (1 sd), with answers again, end the fork */
#define POL_FORK_ONSET_S 2.0     /* ... once that has held this long, every tick (a storm on every
                                  * backend rises on the others meanwhile) */
#define POL_FORK_RETEST_S 15.0   /* a fork is re-tested (a fresh one) this long after it began, */
#define POL_FORK_RETEST_MAX_S 120.0 /* then after twice as long each time, up to this */

#define POL_UNANS_WITNESS_US (10 * 1000000ULL) /* missing answers teach only while some
                                                * answer came back this recently */
#define POL_UNANS_FED_SLOTS 64                  /* seconds of fed failures that late answers
                                                * may still claim (a power of two) */

struct pol_agg {
	uint64_t n, err;
	double lat_ms;
};

/* One kind of decline as a share of the answers it is counted among, on two time scales:
 * decayed sums of both over ~POL_SHARE_FAST_S and ~POL_SHARE_SLOW_S, and this tick's
 * counts (pol_share2_roll folds them in at the tick); the storm guard also reads a third,
 * over ~POL_SHARE_MID_S. */
struct pol_share2 {
	double dec_fast, ans_fast, dec_slow, ans_slow;
	double dec_mid, ans_mid;
	uint32_t dec_tick, ans_tick;
};

/* A storm guard's state (pol_storm_update): the weight of the answers it watches, and
 * since when it is below 1 (0: it is 1). */
struct pol_storm {
	double w;
	uint64_t since_us;
};

/* A fork of a backend's posteriors (pol_fork_update): 0, or the srt code its answers are
 * learned under while a rise of its own soft declines lasts; which fork that is (gen), and
 * when the episode and this fork of it began. */
struct pol_fork {
	uint32_t code, gen;
	uint64_t since_us, at_us;
	uint64_t rise_us; /* unforked: since when its rise has held (0: it does not) */
	uint64_t calm_us; /* no fork before this (a storm on several backends ended the last) */
	double retest_s;
};

/* A backend's current run of judged ticks whose missing share reached min_share. */
struct pol_unans_run {
	uint32_t decided, missing;
	uint32_t pending;       /* missing ones not fed yet (the run is below min_calls) */
	uint32_t row;           /* missing ones of the run's last ticks without any answer */
};

/* A segment's calls on a backend (pol_sega_cell): discounted calls with an answer
 * the agent saw, those that timed out and those that failed fast (a PSP error with a
 * status in time: a brownout's 500s, an outage's 503s), as of t_us. */
struct pol_sega {
	double n, to, er;
	uint64_t t_us;
	uint64_t first_us; /* when the fast error that took er to POL_SEGA_LOCAL_MIN was sent */
	uint64_t sent_us;  /* when its last call was sent */
	bool on;       /* held answer_min_timeouts timeouts since they last decayed away */
	bool on_er;    /* the same for its fast errors */
};

/* a segment's share answered relative to its backend's, for fast errors, counts at or
 * below this: a brownout of everything (500s on every segment alike) moves no segment
 * by the noise of a few errors more here or there */
#define POL_SEGA_ER_DEADBAND 0.9

/* fast errors that make a segment's errors local (pol_sega_scope) */
#define POL_SEGA_LOCAL_MIN 3.0

struct pol_learn {
	int nb, na, nc, ne, ncells;
	unsigned nworkers;
	uint64_t tmax;                          /* latest time seen: every module sees time advance */
	struct brk brk[POL_MAX_BACKENDS];
	struct pol_sega *sega;                  /* [backend][POL_SEGA_CELLS], NULL: off */
	struct pol_sega sega_be[POL_MAX_BACKENDS]; /* the same over all of a backend's segments */
	uint8_t sega_local[POL_MAX_BACKENDS];    /* its errors are some segments' own (pol_sega_scope) */
	struct anom anom[POL_MAX_BACKENDS];
	struct pol_agg agg[POL_MAX_BACKENDS];   /* this tick's answers, for the anomaly charts */
	double lat_ms[POL_MAX_BACKENDS];        /* EWMA of answered calls, 0 = none yet */
	uint64_t lat_seen_us[POL_MAX_BACKENDS]; /* last tick with an answered call */
	uint8_t shown[POL_MAX_BACKENDS];        /* breaker state published last */
	uint32_t closes_seen[POL_MAX_BACKENDS]; /* brk.probe_closes at the last tick */
	uint64_t probe_batch_us[POL_MAX_BACKENDS];
	uint32_t anom_samples[POL_MAX_BACKENDS]; /* anom.samples at anom_seen_us */
	uint64_t anom_seen_us[POL_MAX_BACKENDS];
	struct srt_table srt, pub[2];           /* master, and the two published copies */
	void *srt_mem[3];
	int pub_cur;                            /* which of pub[] workers read */
	uint64_t pub_free_epoch;                /* the other may be rewritten once min_seen >= this */
	uint64_t pub_at_us, srt_dirty;
	struct aimd *aimd;                      /* per thr cell: accounts, then account x endpoint */
	struct aimd_cfg *acfg;
	uint64_t *interval_ns;                  /* published emission intervals */
	struct fc *fc;                          /* [account][class] */
	uint64_t *demand_seen;                  /* [account][class]: workers' counters at the last tick */
	double *shed_share;                     /* [account][class]: share shed, smoothed, 0..1 */
	uint64_t shed_at_us;                    /* the last pol_forecasts (for the release) */
	uint8_t order[POL_MAX_CLASSES];         /* classes by shed_order, most protected first */
	uint64_t opens, cuts, sheds;            /* cumulative, carried over reloads */
	/* unanswered decisions (engine-t.h): each backend's ticks are judged in order, from
	 * its unans_next, once its own grace has passed */
	bool unans_started[POL_MAX_BACKENDS];
	uint64_t unans_next[POL_MAX_BACKENDS];
	uint64_t unans_witness_us;              /* when a judged tick last had an answer, 0 never */
	struct pol_unans_run run[POL_MAX_BACKENDS];
	uint32_t fed_tag[POL_MAX_BACKENDS][POL_UNANS_FED_SLOTS];  /* second + 1 */
	uint32_t fed_left[POL_MAX_BACKENDS][POL_UNANS_FED_SLOTS]; /* failures fed, not yet claimed */
	uint64_t unans_missing, unans_fed, unans_late; /* cumulative */
	uint64_t unans_forgiven;                /* late answers that took a fed failure back */
	/* decline shares (struct pol_share2), rolled at share_at_us: customer declines among
	 * issuer answers on the whole engine and the weight they count at (pol_cust_update;
	 * < 0: not set yet); per backend, soft declines and PSP errors among what the
	 * posteriors count in full, and the weight of every issuer answer while a storm on
	 * several backends lasts (pol_storm_update; 1: none); the same per backend and
	 * currency of the policy, and the weight of that currency's answers */
	uint64_t share_at_us;
	struct pol_share2 cust;
	double cust_w;
	/* per backend, customer declines among its issuer answers, the share of them beyond
	 * its own long-run share counted as failures while its peers' share stays calm, and
	 * the hold of its slow sums while that lasts (pol_cust_excess_update) */
	struct pol_share2 cust_b[POL_MAX_BACKENDS];
	double cust_x[POL_MAX_BACKENDS];
	struct pol_storm cust_hold[POL_MAX_BACKENDS];
	struct pol_storm cust_all; /* a storm of them on several backends (pol_storm_level) */
	struct pol_fork fork[POL_MAX_BACKENDS];
	struct pol_share2 storm[POL_MAX_BACKENDS];
	struct pol_storm storm_all;
	int ncur;
	struct pol_share2 *storm_cur;           /* [currency][backend] */
	struct pol_storm *storm_c;              /* [currency] */
	uint64_t storms; /* storms started (a guard left 1 while none was below): decline_storms */
	uint64_t forks;       /* forks started (not their re-tests): decline_forks */
	uint64_t exchanges;   /* ejected breakers closed for a worse backend: breaker_exchanges */
	uint64_t cust_storms; /* a backend's customer excess started counting: customer_storms */
	/* learning shared with a fleet (engine-share.h) */
	uint8_t remote_open[POL_MAX_BACKENDS];  /* opened by another node's breaker: not published */
	uint64_t opened_new;                    /* bit b: b's breaker opened here since the last tick */
};

/* ---- construction ------------------------------------------------------------------- */

void pol_learn_free(struct pol_learn *L)
{
	int i;

	if (!L)
		return;
	for (i = 0; i < 3; i++)
		free(L->srt_mem[i]);
	free(L->aimd);
	free(L->acfg);
	free(L->interval_ns);
	free(L->fc);
	free(L->demand_seen);
	free(L->shed_share);
	free(L->sega);
	free(L->storm_cur);
	free(L->storm_c);
	free(L);
}

static const struct pol_budget *pol_cell_budget(const struct policy *p, int cell)
{
	if (cell < p->naccounts)
		return &p->accounts[cell].budget;
	return &p->thr.endpoints[(cell - p->naccounts) % p->thr.nendpoints].budget;
}

struct pol_learn *pol_learn_new(const struct pol_view *v)
{
	const struct policy *p = v->p;
	struct pol_learn *L = calloc(1, sizeof(*L));
	size_t mem = srt_mem_size(p->learn.cfg.max_segments), nac;
	int i, j;

	if (!L)
		return NULL;
	L->cust_w = -1; /* learning.customer_declines until the first tick */
	L->storm_all.w = 1;
	L->nb = p->nbackends;
	L->ncur = p->ncurrencies;
	L->na = p->naccounts;
	L->nc = p->nclasses;
	L->ne = p->thr.nendpoints;
	L->ncells = p->naccounts * (1 + p->thr.nendpoints);
	nac = (size_t)L->na * (size_t)L->nc;
	for (i = 0; i < 3; i++)
		if (!mem || !(L->srt_mem[i] = malloc(mem)) ||
		    srt_init(i ? &L->pub[i - 1] : &L->srt, &p->learn.cfg, L->srt_mem[i], mem))
			goto fail;
	L->aimd = calloc((size_t)L->ncells, sizeof(*L->aimd));
	L->acfg = calloc((size_t)L->ncells, sizeof(*L->acfg));
	L->interval_ns = calloc((size_t)L->ncells, sizeof(*L->interval_ns));
	L->fc = calloc(nac, sizeof(*L->fc));
	L->demand_seen = calloc(nac, sizeof(*L->demand_seen));
	L->shed_share = calloc(nac, sizeof(*L->shed_share));
	L->storm_cur = calloc((size_t)(L->ncur ? L->ncur : 1) * (size_t)L->nb, sizeof(*L->storm_cur));
	L->storm_c = calloc(L->ncur ? (size_t)L->ncur : 1, sizeof(*L->storm_c));
	if (!L->aimd || !L->acfg || !L->interval_ns || !L->fc || !L->demand_seen || !L->shed_share ||
	    !L->storm_cur || !L->storm_c)
		goto fail;
	for (i = 0; i < L->ncur; i++)
		L->storm_c[i].w = 1;
	for (i = 0; i < L->nb; i++)
		L->cust_hold[i].w = 1;
	L->cust_all.w = 1;
	if (p->learn.answer_half_life_s > 0 && !(L->sega = calloc((size_t)L->nb * POL_SEGA_CELLS, sizeof(*L->sega))))
		goto fail;
	for (i = 0; i < L->nb; i++) {
		const char *n = p->backends[i].name;

		brk_init(&L->brk[i], &p->breaker.cfg, pstr_hash(n, (uint32_t)strlen(n), 0x6b72656b), 0);
		anom_init(&L->anom[i], 0);
	}
	for (i = 0; i < L->ncells; i++) {
		const struct pol_budget *b = pol_cell_budget(p, i);
		struct aimd_cfg *c = &L->acfg[i];

		c->ceiling = b->rate;
		c->floor = b->rate * p->adaptive.floor_share;
		c->md = p->adaptive.md;
		c->ai_per_s = b->rate * p->adaptive.ai_share;
		c->cooldown_us = p->adaptive.cooldown_us;
		c->plateau = p->adaptive.plateau;
		c->probe = p->adaptive.probe;
		c->forget_us = p->adaptive.forget_us;
		c->hold_us = p->adaptive.hold_us;
		aimd_init(&L->aimd[i], c, 0);
		L->interval_ns[i] = atomic_load(&v->thr.cells[i].interval_ns);
	}
	for (i = 0; i < (int)nac; i++)
		fc_init(&L->fc[i], &p->forecast.cfg, 0);
	/* insertion sort: most protected (highest shed_order) first, file order on ties */
	for (i = 0; i < L->nc; i++) {
		for (j = i; j > 0 && p->classes[L->order[j - 1]].shed_order < p->classes[i].shed_order; j--)
			L->order[j] = L->order[j - 1];
		L->order[j] = (uint8_t)i;
	}
	return L;
fail:
	pol_learn_free(L);
	return NULL;
}

/* ---- publishing ------------------------------------------------------------------------- */

static void pol_store_u32(_Atomic uint32_t *a, uint32_t v)
{
	if (atomic_load_explicit(a, memory_order_relaxed) != v)
		atomic_store_explicit(a, v, memory_order_relaxed);
}

/* The posterior mean of backend b over all its traffic, with the policy's prior for an
 * unknown card region: what `show backends` prints. 0 = nothing learned. */
static uint32_t pol_backend_ppm(const struct pol_view *v, int b, uint64_t now_us)
{
	const struct policy *p = v->p;
	const struct pol_learn *L = v->L;
	struct srt_seg seg = { v->bcode[b], 0, 0, 0, 0 };
	struct srt_post post;
	double m = p->learn.prior_weight, p0 = p->backends[b].p_auth[POL_MAX_REGIONS + 1], s, f, mean;

	srt_lookup(&L->srt, &seg, now_us, &post);
	s = post.a - L->srt.cfg.prior_a;
	f = post.b - L->srt.cfg.prior_b;
	if (post.level < 0 || s + f <= 0)
		return 0;
	mean = (p0 * m + s) / (m + s + f);
	return (uint32_t)(mean * 1e6) ? (uint32_t)(mean * 1e6) : 1;
}

/* ---- a segment's answered share ------------------------------------------------------ */

/* Cell c (backend b's row) decayed to now, then published as the share of its calls
 * answered, to / (n + answer_prior) timed out (0 = all answered: under 1 % timed out),
 * once it held answer_min_timeouts and until its timeouts decayed away; its fast errors
 * likewise, on their own count (a backend's background 500s leave its timed-out share as
 * it was), and the two shares multiplied. */
static void pol_sega_decay(const struct policy *p, struct pol_sega *c, uint64_t now_us)
{
	if (now_us > c->t_us) {
		double d = exp2(-(double)(now_us - c->t_us) / (p->learn.answer_half_life_s * 1e6));

		c->n *= d;
		c->to *= d;
		c->er *= d;
		c->t_us = now_us;
	}
	if (c->to < 0.01)
		c->to = 0;
	if (c->er < 0.01)
		c->er = 0;
}

/* share of a segment's calls answered (1 - failed / (n + answer_prior)) relative to its
 * backend's: failures on every segment alike are the backend's (breaker, anomaly
 * chart), a segment's own are its */
static double pol_sega_rel(const struct policy *p, double failed, double n, double be_failed, double be_n)
{
	return (1 - failed / (n + p->learn.answer_prior)) /
	       (1 - fmin(be_failed / (be_n + p->learn.answer_prior), 0.99));
}

static void pol_sega_publish(struct pol_view *v, struct pol_sega *c, size_t at, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_sega *be = &v->L->sega_be[at / POL_SEGA_CELLS];
	double f;
	uint32_t was, now;

	pol_sega_decay(p, c, now_us);
	pol_sega_decay(p, be, now_us);
	c->on = c->to > 0 && (c->on || c->to >= p->learn.answer_min_timeouts);
	c->on_er = c->er > 0 && (c->on_er || c->er >= p->learn.answer_min_timeouts);
	f = pol_sega_rel(p, c->on ? c->to : 0, c->n, be->to, be->n);
	if (c->on_er) {
		double fe = pol_sega_rel(p, c->er, c->n, be->er, be->n);

		f *= fe <= POL_SEGA_ER_DEADBAND ? fe : 1;
	}
	was = atomic_load_explicit(&v->sega[at], memory_order_relaxed);
	now = f < 0.99 ? (uint32_t)(f * 1e6) + 1 : 0;
	if (!was != !now) /* control thread only: a plain read-modify-write */
		atomic_store_explicit(&v->sega_live, atomic_load_explicit(&v->sega_live, memory_order_relaxed) +
		                      (now ? 1u : -1u), memory_order_relaxed);
	pol_store_u32(&v->sega[at], now);
}

/* An answer for a segment on backend b: answered, timed out (a PSP error that came after
 * its decision was judged missing, or without any status: the backend never answered it
 * in time) or failed fast (a PSP error in time and not a 504: a brownout's 500, an
 * outage's 503; the payment does not go through there either. A 504 in time is a slow
 * backend's, counted as before: an answered call, not a failure). Missing answers have
 * no segment; their late 504s do. A probe's fast error (sent while the breaker was open
 * or half-open) is not counted: a few probes of a backend still down, set against its
 * calls from before the trip, made their segments look failing alone (a 503 outage of
 * everything looked scoped, and its breaker held). Returns whether it failed. */
static bool pol_sega_add(struct pol_view *v, int b, uint32_t curcode, const struct pol_event *ev,
                         const struct oc_class *oc, uint64_t sent, uint64_t t)
{
	struct pol_learn *L = v->L;
	size_t at = (size_t)b * POL_SEGA_CELLS + pol_sega_cell(curcode, ev->country, ev->brand, ev->funding);
	struct pol_sega *c = &L->sega[at];
	bool to = oc->kind == OC_PSP_ERROR && (ev->late || (oc->flags & OC_F_TIMEOUT));
	bool er = oc->kind == OC_PSP_ERROR && !to && !(oc->flags & OC_F_GW_TIMEOUT);

	if (er && L->brk[b].state >= BRK_HALF_OPEN && sent >= L->brk[b].since_us)
		return false; /* a probe's */
	if (!c->t_us)
		c->t_us = t;
	pol_sega_decay(v->p, &L->sega_be[b], t);
	L->sega_be[b].n += 1;
	L->sega_be[b].to += to;
	L->sega_be[b].er += er;
	pol_sega_publish(v, c, at, t);
	if (c->n + 1 > v->p->learn.answer_max_n) {
		double d = fmax(v->p->learn.answer_max_n - 1, 0) / c->n;

		c->n *= d;
		c->to *= d;
		c->er *= d;
	}
	if (er && c->er < POL_SEGA_LOCAL_MIN && c->er + 1 >= POL_SEGA_LOCAL_MIN)
		c->first_us = sent;
	if (sent > c->sent_us)
		c->sent_us = sent;
	c->n += 1;
	c->to += to;
	c->er += er;
	if (to || er)
		pol_sega_publish(v, c, at, t);
	return to || er;
}

/* Backend b's failures are its scored-away segments' own (brk.scoped): some segment's
 * published answered share is at or below breaker.scope_factor (its failures moved it
 * already), and another answered at least answer_min_timeouts calls (decayed to now; an
 * open breaker's, to when it opened) without a failure. A backend failing across its
 * segments has no such segment: a hang or an outage of everything answers nothing, a
 * latency incident or a wide tail times out on every segment alike, a brownout of
 * everything fails every segment alike (the share is relative to the backend's, so none
 * collapses). Calls queued behind a segment's hung calls (HAProxy's maxconn) stop the
 * other segments' answers too, and then the breaker judges as before.
 * Its errors are local (sega_local: the error chart's alarm does not score the backend
 * down) on weaker evidence, as they come: some segment failed fast POL_SEGA_LOCAL_MIN
 * times, at least twice the backend's share of fast errors (so the failing segments
 * carry at most half its calls), and such a segment without a failure answered since
 * that segment's errors reached POL_SEGA_LOCAL_MIN (at an outage's first errors, every
 * other segment looks clean: the backend's share, over older calls than a segment's
 * capped count, lags; by send time: calls sent before an outage answer well after its
 * first fast 503s; and not since its first error: a background 500 seconds before). */
static void pol_sega_scope(struct pol_view *v, int b, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	const struct pol_sega *row = &L->sega[(size_t)b * POL_SEGA_CELLS];
	const struct pol_sega *be = &L->sega_be[b];
	const struct brk *k = &L->brk[b];
	double be_share = be->er / (be->n + p->learn.answer_prior);
	bool away = false, normal = false;
	uint64_t local_us = UINT64_MAX, clean_us = 0; /* sent: a local one's first error, the last clean call */
	unsigned i;

	if (k->state == BRK_OPEN && k->since_us < now_us)
		now_us = k->since_us; /* open: how the segments answered up to the trip */

	for (i = 0; i < POL_SEGA_CELLS && !(away && normal && clean_us > local_us); i++) {
		uint32_t f = atomic_load_explicit(&v->sega[(size_t)b * POL_SEGA_CELLS + i], memory_order_relaxed);
		const struct pol_sega *c = &row[i];

		if (pol_sega_away(f, p->breaker.scope_factor))
			away = true;
		if (c->er >= POL_SEGA_LOCAL_MIN && c->er / (c->n + p->learn.answer_prior) >= 2 * be_share) {
			if (c->first_us < local_us)
				local_us = c->first_us;
		} else if (c->to <= 0 && !c->on_er && c->n >= p->learn.answer_min_timeouts && c->t_us &&
		           c->n * exp2(-(double)(now_us > c->t_us ? now_us - c->t_us : 0) /
		                       (p->learn.answer_half_life_s * 1e6)) >= p->learn.answer_min_timeouts) {
			normal = true;
			if (c->er <= 0 && c->sent_us > clean_us)
				clean_us = c->sent_us;
		}
	}
	L->brk[b].scoped = away && normal;
	L->sega_local[b] = clean_us > local_us;
}

/* Backend b's breaker learns whether its failures are scoped, the error chart whether its
 * errors are local (pol_sega_scope). */
static void pol_scope_update(struct pol_view *v, int b, uint64_t now_us)
{
	if (v->p->breaker.scope_factor > 0 && (v->L->sega_be[b].to > 0 || v->L->sega_be[b].er > 0)) {
		pol_sega_scope(v, b, now_us);
	} else {
		v->L->brk[b].scoped = 0;
		v->L->sega_local[b] = 0;
	}
}

/* Every cell that holds timeouts decays toward answered (once per tick); then each
 * backend's breaker learns whether its failures are scoped. */
static void pol_sega_tick(struct pol_view *v, uint64_t now_us)
{
	struct pol_learn *L = v->L;
	size_t i, n;
	int b;

	if (!L->sega) { /* no cells, no scope (a reload may have switched them off) */
		for (b = 0; b < L->nb; b++) {
			L->brk[b].scoped = 0;
			L->sega_local[b] = 0;
		}
		return;
	}
	n = (size_t)L->nb * POL_SEGA_CELLS;
	for (i = 0; i < n; i++)
		if (L->sega[i].to > 0 || L->sega[i].er > 0)
			pol_sega_publish(v, &L->sega[i], i, now_us);
	for (b = 0; b < L->nb; b++)
		pol_scope_update(v, b, now_us);
}

/* Health of every backend from its breaker and anomaly chart. */
static void pol_publish_backends(struct pol_view *v, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	int b;

	for (b = 0; b < L->nb; b++) {
		struct score_health *h = &v->health[b];
		enum brk_state st = brk_state_at(&L->brk[b], now_us);
		double f = 1;
		uint32_t why = 0, state;

		state = st == BRK_OPEN ? SCORE_DOWN : st == BRK_HALF_OPEN ? SCORE_PROBE : SCORE_UP;
		if (st == BRK_HALF_OPEN) {
			/* a new batch of probes on entering half-open, and again when a batch got no
			 * verdict within probe_timeout (lost answers, HAProxy answering locally) */
			if (L->shown[b] != BRK_HALF_OPEN ||
			    now_us - L->probe_batch_us[b] >= p->breaker.cfg.probe_timeout_us) {
				atomic_store_explicit(&h->probes, (int32_t)p->breaker.cfg.probes, memory_order_relaxed);
				L->probe_batch_us[b] = now_us;
			}
		} else if (atomic_load_explicit(&h->probes, memory_order_relaxed)) {
			atomic_store_explicit(&h->probes, 0, memory_order_relaxed);
		}
		if (st == BRK_OPEN && L->shown[b] != BRK_OPEN) {
			L->opens++;
			/* shared with a fleet when this node's own evidence opened it */
			if (!L->remote_open[b] && L->brk[b].override == BRK_OVR_AUTO)
				L->opened_new |= 1ull << b;
			L->remote_open[b] = 0;
		}
		L->shown[b] = (uint8_t)st;
		if (st == BRK_DEGRADED) {
			f *= p->breaker.degraded_factor;
			why |= SCORE_WHY_EJECT_CAP;
		}
		if (p->anomaly.enabled && L->anom[b].state == ANOM_DEGRADED) {
			/* local, the errors are some segments' own and priced there (pol_p_answered):
			 * the error alarm does not score the other segments down. (Not merely
			 * scoped by a segment's timeouts: the chart's errors are then the missing
			 * answers and 504s, and holding its penalty lost hangs of some segments.) */
			struct anom a = L->anom[b];
			double af;

			if (L->sega_local[b])
				a.alarms &= (uint8_t)~ANOM_ERR;
			af = anom_score_factor(&a, &p->anomaly.cfg, L->lat_ms[b] > 0 ? L->lat_ms[b] : p->backends[b].latency_ms);

			f *= af;
			why |= af < 1 ? SCORE_WHY_ANOMALY : 0;
		}
		pol_store_u32(&h->why, why);
		pol_store_u32(&h->factor_ppm, f < 1 ? (uint32_t)(f * 1e6) + 1 : 0);
		pol_store_u32(&h->latency_us, L->lat_ms[b] > 0 ? (uint32_t)(L->lat_ms[b] * 1e3) + 1 : 0);
		pol_store_u32(&h->p_auth_ppm, pol_backend_ppm(v, b, now_us));
		pol_store_u32(&h->state, state);
	}
}

static double pol_cell_rate(const struct pol_view *v, int cell, uint64_t now_us)
{
	const struct pol_learn *L = v->L;

	if (!v->p->adaptive.enabled)
		return L->acfg[cell].ceiling;
	return aimd_limit(&L->aimd[cell], &L->acfg[cell], now_us);
}

double pol_learn_rate(const struct pol_view *v, int cell, uint64_t now_us)
{
	return cell >= 0 && cell < v->L->ncells ? pol_cell_rate(v, cell, now_us) : 0;
}

/* Adapted rates into the GCRA cells, when they moved by more than 0.1 %. */
static void pol_publish_budgets(struct pol_view *v, uint64_t now_us)
{
	struct pol_learn *L = v->L;
	int c;

	for (c = 0; c < L->ncells; c++) {
		double iv = 1e9 / pol_cell_rate(v, c, now_us);
		uint64_t n = iv < 1 ? 1 : (uint64_t)iv, o = L->interval_ns[c];

		if (n != o && (n > o ? n - o : o - n) * 1000 > o) {
			thr_set_interval(&v->thr.cells[c], n);
			L->interval_ns[c] = n;
		}
	}
}

/* The forecast of one (account, class) as parts that add up across classes: Holt now,
 * 1 s and horizon_s ahead (its trend trusted only after POL_FC_WARMUP_S seconds: Holt's
 * first trend comes from two raw counts), the daily shape for the next minute once it is
 * learned, and the requests counted so far in the open second (a nowcast is made of the
 * account's sum, below). Requests per second, except FC_P_OPEN (a count). */
enum { FC_P_NOW, FC_P_NEXT, FC_P_HORIZON, FC_P_DAY, FC_P_OPEN, FC_P_N };

static void pol_demand_parts(const struct policy *p, const struct fc *f, double part[FC_P_N])
{
	bool warm = f->n_sec >= POL_FC_WARMUP_S;

	part[FC_P_NOW] = fc_short(f, 0);
	part[FC_P_NEXT] = warm ? fc_short(f, 1) : part[FC_P_NOW];
	part[FC_P_HORIZON] = warm ? fc_short(f, p->forecast.horizon_s) : part[FC_P_NOW];
	part[FC_P_DAY] = fc_day_ready(f) ? fc_day(f, 1) : 0;
	part[FC_P_OPEN] = f->sec_acc;
}

/* The open second's pace from a count: its lower 2-sigma bound (Poisson), once a quarter
 * of the second has passed; quick on a surge, deaf to the noise of a few requests. */
static double pol_nowcast(double count, uint64_t now_us)
{
	double frac = (double)(now_us % 1000000) / 1e6;

	if (frac < 0.25 || !(count > 4 * sqrt(count)))
		return 0;
	return (count - 2 * sqrt(count)) / frac;
}

/* Expected requests per second of one (account, class) on its own: the worst of its
 * parts (for the admin's `show forecast`; shedding works on the account's sums). */
static double pol_demand(const struct policy *p, const struct fc *f, uint64_t now_us,
                         struct pol_learn_forecast *out)
{
	double part[FC_P_N], d, now;

	pol_demand_parts(p, f, part);
	d = fmax(part[FC_P_NOW], fmax(part[FC_P_NEXT], part[FC_P_HORIZON]));
	now = pol_nowcast(part[FC_P_OPEN], now_us);
	if (out) {
		out->now_rps = now;
		out->next_rps = d;
		out->day_rps = part[FC_P_DAY];
	}
	return fmax(d, fmax(now, part[FC_P_DAY]));
}

/* Shed shares of one account from its classes' forecasts (target[c], 0..1).
 *
 * Demand: each part (Holt now, 1 s, horizon; the day's shape; the nowcast) is summed over
 * the classes first, and the account's demand D is the worst of these sums; a class's own
 * demand d_c is its term of that sum. (The worst per class, then summed, stacked the
 * noise of every class's forecast: at a few requests per second it read ~1 req/s over the
 * truth and shed all day in seasonal-week.)
 *
 * Excess: E = D - headroom x budget. Only E is shed, from the least protected class up: a
 * class takes s_c = min(E, d_c), E -= s_c, and sheds the share s_c / d_c of its decisions.
 * The most protected shed_order is never shed by a forecast (the budget's reserves protect
 * it). A proportional share, not a whole class: peaks a few per cent over the budget cost
 * a few per cent of the lowest class, not all of it.
 *
 * Offered demand includes clients' retries of shed requests, on purpose: they are requests
 * the budget would have to carry if admitted. Since only the excess is shed, retries can
 * raise the number of shed attempts but never push the admitted rate under the line
 * (with whole-class shedding they kept the class shed: its retries alone held the demand
 * over the exit line). Returns D. */
static double pol_shed_targets(const struct policy *p, const struct pol_learn *L, int a, double line,
                               uint64_t now_us, double *target)
{
	const struct fc_cfg *fc = &p->forecast.cfg;
	double part[POL_MAX_CLASSES][FC_P_N], sum[FC_P_N] = { 0 }, lb[FC_P_N], D, E, nowcast;
	double sd_sec, sd_min;
	int c, k, j, best = FC_P_NOW;

	for (c = 0; c < L->nc; c++) {
		target[c] = 0;
		pol_demand_parts(p, &L->fc[a * L->nc + c], part[c]);
		for (j = 0; j < FC_P_N; j++)
			sum[j] += part[c][j];
	}
	/* Each sum at its lower 2-sigma bound, like the nowcast: counts are Poisson, so an
	 * exponential smoothing with weight w of counts at rate D has variance D w / (2 - w)
	 * per interval. Per second at a few requests per second that is +-1 req/s on 7,
	 * more than the headroom: the bare estimates shed on noise. Per minute (the day's
	 * shape, gamma) it is small, which is how a seasonal peak is shed ahead of time. */
	sd_sec = sqrt(fmax(sum[FC_P_NOW], 0) * fc->alpha / (2 - fc->alpha));
	sd_min = sqrt(fmax(sum[FC_P_DAY], 0) / 60 * fc->hw_gamma / (2 - fc->hw_gamma));
	for (j = FC_P_NOW; j < FC_P_OPEN; j++)
		lb[j] = sum[j] - POL_FC_Z * (j == FC_P_DAY ? sd_min : sd_sec);
	/* the nowcast of the account's open second (already a lower bound), shared out by
	 * the classes' counts */
	nowcast = pol_nowcast(sum[FC_P_OPEN], now_us);
	for (j = FC_P_NOW; j < FC_P_OPEN; j++)
		if (lb[j] > lb[best])
			best = j;
	D = lb[best];
	if (nowcast > D) {
		best = FC_P_OPEN;
		D = nowcast;
	}
	E = D - line;
	for (k = L->nc - 1; k >= 0 && E > 0; k--) {
		double d_c, s_c;

		c = L->order[k];
		if (p->classes[c].most_protected)
			break;
		/* the class's own estimate (not lower-bounded: it sizes the share) */
		d_c = best == FC_P_OPEN ? nowcast * part[c][FC_P_OPEN] / sum[FC_P_OPEN] : part[c][best];
		if (!(d_c > 0))
			continue;
		s_c = E < d_c ? E : d_c;
		target[c] = s_c / d_c;
		E -= s_c;
	}
	return D;
}

/* Forecasts from the workers' decision counters, then the shed shares. A share rises to
 * its target at once (a surge must be met within a tick) and falls towards it with the
 * time constant min_shed_ms, so a forecast that wobbles from tick to tick does not make
 * the share flap; it drops to 0 once the account's demand is under exit_ratio x the line
 * (or the share is under 0.1 %). Published as a fraction of 2^32 per account and class;
 * decide draws against it. */
static void pol_forecasts(struct pol_engine *e, struct pol_view *v, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	double keep = 0, target[POL_MAX_CLASSES];
	int a, c;
	unsigned w;

	for (a = 0; a < L->na; a++)
		for (c = 0; c < L->nc; c++) {
			uint64_t tot = 0;
			int i = a * L->nc + c;

			for (w = 0; w < e->nworkers; w++)
				tot += atomic_load_explicit(&v->demand[(size_t)w * v->demand_stride + (size_t)i],
				                            memory_order_relaxed);
			fc_observe(&L->fc[i], &p->forecast.cfg, (double)(tot - L->demand_seen[i]), now_us);
			L->demand_seen[i] = tot;
		}
	if (L->shed_at_us && now_us > L->shed_at_us)
		keep = p->forecast.min_shed_ms ? exp(-(double)(now_us - L->shed_at_us) / (p->forecast.min_shed_ms * 1e3)) : 0;
	else if (L->shed_at_us)
		keep = 1;
	L->shed_at_us = now_us;
	for (a = 0; a < L->na; a++) {
		double line = p->forecast.headroom * pol_cell_rate(v, a, now_us), D = 0;

		if (p->forecast.enabled)
			D = pol_shed_targets(p, L, a, line, now_us, target);
		else
			memset(target, 0, sizeof(target));
		for (c = 0; c < L->nc; c++) {
			double *sh = &L->shed_share[a * L->nc + c], was = *sh;
			uint32_t q;

			if (target[c] >= *sh)
				*sh = target[c];
			else
				*sh = target[c] + (*sh - target[c]) * keep;
			if (*sh < 0.001 || (target[c] == 0 && D < p->forecast.exit_ratio * line) || !p->forecast.enabled)
				*sh = target[c] >= 0.001 ? target[c] : 0;
			if (*sh > 0 && was == 0)
				L->sheds++;
			q = *sh >= 1 ? POL_SHED_ALL : (uint32_t)(*sh * 4294967296.0);
			if (q != atomic_load_explicit(&v->shed[a][c], memory_order_relaxed))
				atomic_store_explicit(&v->shed[a][c], q, memory_order_relaxed);
		}
	}
}

/* v->tested: the backends whose own evidence has reached min_n (see engine-t.h). */
static void pol_latch_tested(struct pol_view *v, uint64_t now_us)
{
	uint64_t tested = atomic_load_explicit(&v->tested, memory_order_relaxed), was = tested;
	int i;

	for (i = 0; i < v->p->nbackends; i++) {
		struct srt_seg seg = { v->bcode[i], 0, 0, 0, 0 };

		if (!(tested & 1ULL << i) && srt_count(&v->L->srt, &seg, SRT_L_BACKEND, now_us) >= v->L->srt.cfg.min_n)
			tested |= 1ULL << i;
	}
	if (tested != was)
		atomic_store_explicit(&v->tested, tested, memory_order_relaxed);
}

static void pol_publish_srt(struct pol_engine *e, struct pol_view *v, uint64_t min_seen, uint64_t now_us)
{
	struct pol_learn *L = v->L;
	int k = 1 - L->pub_cur;

	if (!L->srt_dirty || now_us - L->pub_at_us < (uint64_t)v->p->learn.publish_ms * 1000 ||
	    min_seen < L->pub_free_epoch)
		return;
	srt_copy(&L->pub[k], &L->srt);
	pol_latch_tested(v, now_us);
	atomic_store(&v->srt_pub, &L->pub[k]);
	L->pub_free_epoch = atomic_fetch_add(&e->epoch, 1) + 1;
	L->pub_cur = k;
	L->pub_at_us = now_us;
	L->srt_dirty = 0;
}

void pol_learn_attach(struct pol_view *v)
{
	struct pol_learn *L = v->L;

	L->pub_cur = 0;
	atomic_store(&v->srt_pub, &L->pub[0]);
	pol_publish_backends(v, L->tmax);
	pol_publish_budgets(v, L->tmax);
}

/* ---- merging outcomes ------------------------------------------------------------------ */

static int pol_map_name(const char *name, const char *base, size_t stride, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(base + (size_t)i * stride, name) == 0)
			return i;
	return -1;
}

#define POL_FIND_BACKEND(pp, nm) \
	pol_map_name((nm), (pp)->backends[0].name, sizeof((pp)->backends[0]), (pp)->nbackends)
#define POL_FIND_ACCOUNT(pp, nm) \
	pol_map_name((nm), (pp)->accounts[0].id, sizeof((pp)->accounts[0]), (pp)->naccounts)
#define POL_FIND_ENDPOINT(pp, nm) \
	pol_map_name((nm), (pp)->thr.endpoints[0].name, sizeof((pp)->thr.endpoints[0]), (pp)->thr.nendpoints)
#define POL_FIND_CLASS(pp, nm) \
	pol_map_name((nm), (pp)->classes[0].name, sizeof((pp)->classes[0]), (pp)->nclasses)

static bool pol_may_open(const struct pol_learn *L, const struct policy *p, uint64_t now_us)
{
	const struct brk *all[POL_MAX_BACKENDS];
	int i;

	for (i = 0; i < L->nb; i++)
		all[i] = &L->brk[i];
	return brk_may_open(all, (size_t)L->nb, p->breaker.max_ejected_permille, now_us);
}

/* The ejection cap full, a backend failing well beyond one that is ejected takes its
 * place (brk_exchange): counted in breaker_exchanges. */
static void pol_brk_exchange(struct pol_learn *L, const struct policy *p, uint64_t now_us)
{
	struct brk *all[POL_MAX_BACKENDS];
	int i;

	for (i = 0; i < L->nb; i++)
		all[i] = &L->brk[i];
	L->exchanges += brk_exchange(all, (size_t)L->nb, &p->breaker.cfg, p->breaker.max_ejected_permille, now_us) >= 0;
}

/* ---- unanswered decisions ------------------------------------------------------------ */

/* Feeds k missing answers of tick s to backend b's breaker and anomaly chart as PSP errors
 * (a timeout: latency at least the grace delay), and remembers them per second so that a
 * late answer can claim one back. The last `row` of them came from ticks without any
 * answer and may extend a run of consecutive failures; the others were missing among
 * answered calls: fed at once after the grace they would look like k failures in a row
 * (a surge that slowed a few answers past the grace opened healthy backends' breakers
 * by `consecutive`: 10 missing of 19 in one tick), so they count in the rates only.
 * They were decided in tick s or before it: once a call sent after that tick came back
 * well, the backend answered after them and none of them is in a row either (a surge
 * queued in HAProxy past the grace: a tick whose decisions all waited, between ticks
 * answered in time; a hung backend answers nothing sent after it hung). */
static void pol_unans_fail(struct pol_view *v, int b, uint64_t s, uint32_t k, uint32_t row, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	uint32_t sec = (uint32_t)(s * POL_UNANS_TICK_US / 1000000), i = sec & (POL_UNANS_FED_SLOTS - 1), j;

	if (L->fed_tag[b][i] != sec + 1) {
		L->fed_tag[b][i] = sec + 1;
		L->fed_left[b][i] = 0;
	}
	if (p->breaker.cfg.reorder_us && L->brk[b].ok_sent_us > (s + 1) * POL_UNANS_TICK_US)
		row = 0;
	L->fed_left[b][i] += k;
	L->unans_fed += k;
	L->agg[b].n += k;
	L->agg[b].err += k;
	L->agg[b].lat_ms += (double)k * (double)(atomic_load_explicit(&v->unans_grace_b_us[b], memory_order_relaxed) / 1000);
	for (j = 0; j < k; j++)
		brk_record_sent(&L->brk[b], &p->breaker.cfg, j + row >= k ? BRK_EV_FAILURE : BRK_EV_FAILURE_APART,
		                s * POL_UNANS_TICK_US, pol_may_open(L, p, now_us), now_us);
}

/* A late answer (decided in tick dtick) to backend b: true when it was fed as missing (the
 * failure stands for it; it must not teach again). The run that fed it may have begun a
 * few seconds before it was fed: the answer's second and the two after it are searched. */
static bool pol_unans_claim(struct pol_learn *L, int b, uint32_t dtick)
{
	uint32_t sec = (uint32_t)((uint64_t)dtick * POL_UNANS_TICK_US / 1000000), k;

	L->unans_late++;
	for (k = 0; k < 3; k++) {
		uint32_t i = (sec + k) & (POL_UNANS_FED_SLOTS - 1);

		if (L->fed_tag[b][i] == sec + k + 1 && L->fed_left[b][i]) {
			L->fed_left[b][i]--;
			return true;
		}
	}
	return false;
}

/* Tick s of backend b: dec decisions, ans answers in time. Missing answers are no proof of
 * failure (a client that hung up, a pay-response group that failed or is not configured),
 * so they teach only in runs: consecutive judged ticks (ticks without decisions neither
 * break nor extend one) whose missing share is at least min_share; once a run holds
 * min_calls decisions its missing ones are fed, then each tick's as it is judged. A
 * half-open breaker's probes count at once: a probe that is never answered failed. */
static void pol_unans_tick(struct pol_view *v, int b, uint64_t s, uint32_t dec, uint32_t ans, bool dormant,
                           uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	struct pol_unans_run *r = &L->run[b];
	uint32_t miss = dec > ans ? dec - ans : 0;

	L->unans_missing += miss;
	if (dormant || !miss || (double)miss < p->learn.unans.min_share * dec) {
		*r = (struct pol_unans_run){ 0, 0, 0, 0 };
		return;
	}
	r->decided += dec;
	r->missing += miss;
	r->pending += miss;
	r->row = ans ? 0 : r->row + miss;
	if (r->decided < p->learn.unans.min_calls && brk_state_at(&L->brk[b], now_us) != BRK_HALF_OPEN)
		return;
	pol_unans_fail(v, b, s, r->pending, r->row < r->pending ? r->row : r->pending, now_us);
	r->pending = 0;
}

/* Backend b's grace: a decision is missing once max(grace_ms, grace_latency x the
 * backend's learned latency) has passed, capped at max_grace_ms. A backend that is
 * slow but answers (a latency creep, a wide spread) is not judged missing for it; a hung
 * one stops answering, so its learned latency (answered calls only) stays where it was. */
static uint64_t pol_unans_grace(const struct pol_view *v, int b)
{
	const struct policy *p = v->p;
	const struct pol_learn *L = v->L;
	double lat = L->lat_ms[b] > 0 ? L->lat_ms[b] : p->backends[b].latency_ms;
	double g = p->learn.unans.grace_latency * lat * 1000.0;

	if (!(g > (double)v->unans_grace_us))
		return v->unans_grace_us;
	return g < (double)v->unans_max_grace_us ? (uint64_t)g : v->unans_max_grace_us;
}

/* Judges, per backend, every tick s whose answers are all in: the workers stop counting
 * answers for s at (s + 1) tick + the backend's grace (later ones are flagged late), and
 * one more tick of margin covers a worker's clock read just before that; once judged, the
 * tick is published in unans_done, so a grace that grows later never reopens it. Ticks
 * older than the workers' ring are lost (a control thread that stalled), never misread:
 * each cell's tag names its tick. The ring outlasts max_grace_ms (engine.c). */
static void pol_unans_judge(struct pol_engine *e, struct pol_view *v, uint64_t now_us)
{
	struct pol_learn *L = v->L;
	uint64_t last, s;
	unsigned w, slots = v->unans_slots;
	int b, nb = L->nb;

	if (!v->unans)
		return;
	for (b = 0; b < nb; b++) {
		uint64_t grace = pol_unans_grace(v, b);

		atomic_store_explicit(&v->unans_grace_b_us[b], grace, memory_order_relaxed);
		if (now_us < grace + 2 * (uint64_t)POL_UNANS_TICK_US)
			continue;
		last = (now_us - grace) / POL_UNANS_TICK_US - 2;
		if (!L->unans_started[b] || L->unans_next[b] + slots - 4 < last) {
			L->unans_next[b] = L->unans_started[b] && last > slots - 4 ? last - (slots - 4) : last;
			L->unans_started[b] = true;
		}
		for (s = L->unans_next[b]; s <= last; s++) {
			uint32_t dec = 0, ans = 0, tag = (uint32_t)s + 1;

			for (w = 0; w < e->nworkers; w++) {
				struct pol_unans_cell *c =
					&v->unans[((size_t)w * (size_t)nb + (size_t)b) * slots + (s & (slots - 1))];
				uint32_t d, a;

				if (atomic_load_explicit(&c->tag, memory_order_acquire) != tag)
					continue;
				d = atomic_load_explicit(&c->decided, memory_order_relaxed);
				a = atomic_load_explicit(&c->answered, memory_order_relaxed);
				atomic_thread_fence(memory_order_acquire);
				if (atomic_load_explicit(&c->tag, memory_order_relaxed) != tag)
					continue; /* reused meanwhile: lost, not misread */
				dec += d;
				ans += a;
			}
			if (ans)
				L->unans_witness_us = now_us;
			if (dec)
				pol_unans_tick(v, b, s, dec, ans,
				               !L->unans_witness_us || now_us - L->unans_witness_us > POL_UNANS_WITNESS_US,
				               now_us);
		}
		if (L->unans_next[b] <= last + 1) {
			L->unans_next[b] = last + 1;
			atomic_store_explicit(&v->unans_done[b], (uint32_t)(last + 1), memory_order_relaxed);
		}
	}
}

/* One event into the master state of cur; src is the view the worker held. */
static void pol_learn_event(struct pol_view *cur, const struct pol_view *src, const struct pol_event *ev,
                            struct pol_share *share)
{
	const struct policy *p = cur->p, *sp = src->p;
	struct pol_learn *L = cur->L;
	struct oc_class oc = { (enum oc_kind)ev->kind, (enum oc_rl)ev->rl, ev->flags };
	enum brk_event bev;
	uint64_t t = ev->t_us > L->tmax ? (L->tmax = ev->t_us) : L->tmax;
	uint64_t sent;
	int b = ev->backend, ep = ev->endpoint == 0xff ? -1 : ev->endpoint;
	bool health, claimed;
	double lat;

	if (b >= sp->nbackends || (src != cur && (b = POL_FIND_BACKEND(p, sp->backends[b].name)) < 0))
		return;
	if (ep >= sp->thr.nendpoints || (ep >= 0 && src != cur && (ep = POL_FIND_ENDPOINT(p, sp->thr.endpoints[ep].name)) < 0))
		ep = -1;
	/* a late answer already counted as missing teaches health once, not twice */
	claimed = ev->late && src == cur && pol_unans_claim(L, b, ev->dtick);
	health = !claimed;

	/* 429s and client errors say nothing about a backend's health or latency */
	if (health && oc.kind != OC_RATE_LIMITED && oc.kind != OC_LOCK_CONFLICT && oc.kind != OC_CLIENT_ERROR) {
		double typical = L->lat_ms[b] > 0 ? L->lat_ms[b] : p->backends[b].latency_ms;

		/* A PSP error's latency says how fast it failed, not how fast the backend
		 * answers: an outage's instant 503s taught the latency chart's baseline that the
		 * backend was quick, and its normal latency afterwards alarmed as a slowdown for
		 * minutes (regional-outage: degraded from the breaker's close to the end). A
		 * slow error (a timeout) still counts as slow. */
		lat = ev->latency_ms >= 0 ? ev->latency_ms : typical;
		if (oc.kind == OC_PSP_ERROR && lat < typical)
			lat = typical;
		L->agg[b].n++;
		L->agg[b].err += oc.kind == OC_PSP_ERROR;
		L->agg[b].lat_ms += anom_clip_latency(&L->anom[b], &p->anomaly.cfg, lat);
	}
	/* a late answer is a latency measurement too (a slow backend's slowest ones are late),
	 * even when the chart already took it as an error: without it the learned latency,
	 * and so the backend's grace, would follow only the answers fast enough to be in time */
	if (ev->latency_ms >= 0 && (oc.kind == OC_SUCCESS || oc.kind == OC_DECLINE_CUSTOMER || oc.kind == OC_DECLINE_SOFT))
		L->lat_ms[b] = L->lat_ms[b] > 0 ? L->lat_ms[b] + p->learn.latency_alpha * (ev->latency_ms - L->lat_ms[b])
		                                : ev->latency_ms;
	/* the segment's answered share: every answer that says something of the backend; a
	 * failure may make the breaker's failures this segment's own (pol_sega_scope), which
	 * the breaker must know before it counts it */
	sent = ev->latency_ms > 0 && (uint64_t)ev->latency_ms * 1000 < t ? t - (uint64_t)ev->latency_ms * 1000 : t;
	if (L->sega && ev->seg && oc.kind != OC_RATE_LIMITED && oc.kind != OC_LOCK_CONFLICT &&
	    oc.kind != OC_CLIENT_ERROR &&
	    pol_sega_add(cur, b, ev->cur < sp->ncurrencies ? sp->currencies[ev->cur] : 0, ev, &oc, sent, t))
		pol_scope_update(cur, b, t);
	bev = brk_event_of(&oc);
	/* a late success whose decision was fed as missing takes its failure back, then
	 * counts as what it was (brk_forgive; nothing when the failure left the window or
	 * the breaker is open) */
	if (claimed && (bev == BRK_EV_SUCCESS || bev == BRK_EV_SLOW) && brk_forgive(&L->brk[b], &p->breaker.cfg, t)) {
		L->unans_forgiven++;
		health = true;
	}
	/* in a row by send order, not answer order (brk_record_sent): the call left about
	 * its latency before its answer */
	if (health && bev != BRK_EV_NONE)
		brk_record_sent(&L->brk[b], &p->breaker.cfg, bev, sent, bev != BRK_EV_SUCCESS && pol_may_open(L, p, t), t);

	/* posteriors: PSP errors are the breaker's signal, not the issuer's, unless asked */
	if (ev->seg && (oc.kind != OC_PSP_ERROR || p->learn.errors_count)) {
		struct srt_seg seg = { L->fork[b].code ? L->fork[b].code : cur->bcode[b],
		                       ev->cur < sp->ncurrencies ? sp->currencies[ev->cur] : 0, ev->country, ev->brand,
		                       ev->funding };

		double cw = L->cust_w >= 0 ? L->cust_w : p->learn.customer_weight;
		/* ... or the backend's own excess of them (pol_cust_excess_update) */
		double cx = L->cust_x[b];
		/* the storm guards' weight: the engine's, and its currency's (an event decided
		 * under the policy before a reload is not counted per currency) */
		int c = src == cur && ev->cur < L->ncur ? ev->cur : -1;
		double sw = c >= 0 ? fmin(L->storm_all.w, L->storm_c[c].w) : L->storm_all.w;
		bool soft = oc.kind == OC_DECLINE_SOFT || oc.kind == OC_PSP_ERROR;
		/* a fork's answers are this node's episode, not what the fleet's posteriors hold */
		bool shared = share && !L->fork[b].code;

		/* an issuer's answer: the customer-decline guards' denominator */
		bool issuer = oc.kind == OC_SUCCESS || oc.kind == OC_DECLINE_SOFT || oc.kind == OC_DECLINE_CUSTOMER;

		L->cust.ans_tick += issuer;
		L->cust.dec_tick += oc.kind == OC_DECLINE_CUSTOMER;
		L->cust_b[b].ans_tick += issuer;
		L->cust_b[b].dec_tick += oc.kind == OC_DECLINE_CUSTOMER;
		cw = cw + (1 - cw) * cx;
		/* the storm guard watches what the posteriors count in full: successes against
		 * soft declines (and PSP errors when they count); customer declines have their own */
		L->storm[b].dec_tick += soft;
		L->storm[b].ans_tick += oc.kind == OC_SUCCESS || soft;
		if (c >= 0) {
			L->storm_cur[c * L->nb + b].dec_tick += soft;
			L->storm_cur[c * L->nb + b].ans_tick += oc.kind == OC_SUCCESS || soft;
		}
		/* a customer-fault decline counts at customer_declines, less while such declines
		 * rise everywhere at once (pol_cust_update; policy/learning.md); the fleet's
		 * counts are whole, so it is shared as a failure while its weight is >= 0.5 */
		if (oc.kind == OC_DECLINE_CUSTOMER && cw * sw > 0) {
			srt_add(&L->srt, &seg, 0, cw * sw, t);
			L->srt_dirty++;
			if (shared && cw * sw >= 0.5)
				pol_share_add(share, p->backends[b].name, &seg, false);
		} else if (sw < 1 && (oc.kind == OC_SUCCESS || soft)) {
			/* a storm on several backends (on the engine or the answer's currency):
			 * every answer counts less, successes too, so that the standings before it
			 * hold (pol_storm_update) */
			if (sw > 0) {
				srt_add(&L->srt, &seg, oc.kind == OC_SUCCESS ? sw : 0,
				        oc.kind == OC_SUCCESS ? 0 : sw, t);
				L->srt_dirty++;
				if (shared && sw >= 0.5)
					pol_share_add(share, p->backends[b].name, &seg, oc.kind == OC_SUCCESS);
			}
		} else if (srt_add_outcome(&L->srt, &seg, oc.kind, t)) {
			L->srt_dirty++;
			if (shared) /* the same count, for the fleet (srt_add_outcome's rule) */
				pol_share_add(share, p->backends[b].name, &seg, oc.kind == OC_SUCCESS);
		}
	}

	/* budgets: global-* (and reasons we do not know) cut the account, endpoint-* the
	 * account's budget for that endpoint; resource-specific limits are per object */
	if (p->adaptive.enabled && (oc.kind == OC_RATE_LIMITED || oc.kind == OC_LOCK_CONFLICT)) {
		int a = p->backends[b].account_idx, cell = a;

		if (oc.rl == OC_RL_RESOURCE)
			cell = -1;
		else if ((oc.rl == OC_RL_ENDPOINT_RATE || oc.rl == OC_RL_ENDPOINT_CONCURRENCY) && ep >= 0)
			cell = L->na + a * L->ne + ep;
		if (cell >= 0 && aimd_on_outcome(&L->aimd[cell], &L->acfg[cell], oc.kind, t))
			L->cuts++;
		/* Stripe's bucket is empty now, whatever burst the cell thinks is left: after a
		 * cut it kept ~1 s of credit and sent bursts at 130/s into a 75/s limit
		 * (flash-sale-shared: a second cut 4 s after the first) */
		if (cell >= 0 && oc.kind == OC_RATE_LIMITED)
			thr_drain(&cur->thr.cells[cell], t * 1000);
	}
}

static const struct pol_view *pol_view_of_gen(const struct pol_engine *e, const struct pol_view *cur, uint16_t gen)
{
	const struct pol_view *v;

	if (cur->gen == gen)
		return cur;
	for (v = e->retired; v; v = v->next_retired)
		if (v->gen == gen)
			return v;
	return NULL;
}

void pol_learn_drain(struct pol_engine *e, uint64_t now_us)
{
	struct pol_view *cur = atomic_load(&e->view);
	unsigned w;

	(void)now_us;
	for (w = 0; w < e->nworkers; w++) {
		struct pol_ring *r = &e->rings[w];
		uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);

		for (; t != h; t++) {
			const struct pol_event *ev = &r->ev[t & (POL_RING_SIZE - 1)];
			const struct pol_view *src = pol_view_of_gen(e, cur, ev->gen);

			if (src)
				pol_learn_event(cur, src, ev, e->share);
		}
		atomic_store_explicit(&r->tail, t, memory_order_release);
	}
}

/* ---- the tick ------------------------------------------------------------------------- */

/* Folds this tick's counts into the decayed sums, df, dm and ds the decay since the last
 * roll; into the slow ones at weight ws. */
static void pol_share2_roll(struct pol_share2 *s, double df, double dm, double ds, double ws)
{
	s->dec_fast = s->dec_fast * df + s->dec_tick;
	s->ans_fast = s->ans_fast * df + s->ans_tick;
	s->dec_mid = s->dec_mid * dm + s->dec_tick;
	s->ans_mid = s->ans_mid * dm + s->ans_tick;
	s->dec_slow = s->dec_slow * ds + s->dec_tick * ws;
	s->ans_slow = s->ans_slow * ds + s->ans_tick * ws;
	s->dec_tick = s->ans_tick = 0;
}

/* Enough answers in both sums, and some declines in the slow one, for their ratio to mean
 * something. */
static bool pol_share2_ready(const struct pol_share2 *s)
{
	return s->ans_fast >= POL_SHARE_MIN_FAST && s->ans_slow >= POL_SHARE_MIN_SLOW && s->dec_slow > 0;
}

/* The weight at which a storm guard's answers enter the slow sums: the weight they count
 * at in the posteriors, so that the long-run share a storm is measured against does not
 * take the storm in (a 10 min share took in a third of a 100 s storm's rise and the
 * guard let go halfway through; a thin backend's young slow share took in all of it at
 * once); but in full after POL_STORM_HOLD_S, so that a lasting change on every backend
 * becomes the new long-run share and the posteriors learn again. */
static double pol_storm_fold(const struct pol_storm *g, uint64_t now_us)
{
	return g->w < 1 && now_us >= g->since_us && now_us - g->since_us < (uint64_t)(POL_STORM_HOLD_S * 1e6) ? g->w
	                                                                                               : 1;
}

/* Rolls every decline share (struct pol_share2) to now_us, on one clock. */
static void pol_shares_roll(struct pol_learn *L, uint64_t now_us)
{
	double dt = L->share_at_us && now_us > L->share_at_us ? (double)(now_us - L->share_at_us) / 1e6 : 0;
	double df = exp(-dt / POL_SHARE_FAST_S), dm = exp(-dt / POL_SHARE_MID_S), ds = exp(-dt / POL_SHARE_SLOW_S);
	double wall = pol_storm_fold(&L->storm_all, now_us);
	int b, c;

	if (!L->share_at_us || now_us > L->share_at_us)
		L->share_at_us = now_us;
	pol_share2_roll(&L->cust, df, dm, ds, 1);
	for (b = 0; b < L->nb; b++)
		pol_share2_roll(&L->cust_b[b], df, dm, ds,
		                fmin(pol_storm_fold(&L->cust_all, now_us), pol_storm_fold(&L->cust_hold[b], now_us)));
	for (b = 0; b < L->nb; b++)
		pol_share2_roll(&L->storm[b], df, dm, ds, wall);
	for (c = 0; c < L->ncur; c++) {
		double wc = fmin(wall, pol_storm_fold(&L->storm_c[c], now_us));

		for (b = 0; b < L->nb; b++) /* a fork's episode stays out of its backend's long-run share */
			pol_share2_roll(&L->storm_cur[c * L->nb + b], df, dm, ds, L->fork[b].code ? 0 : wc);
	}
}

/* The weight of the next customer declines: learning.customer_declines, scaled down while
 * the share of issuer answers that are customer declines is above its long-run level on
 * the whole engine: from 1.25x that level to 2x, the weight goes from full to 0. A backend
 * that declines more than the others keeps its weight (its share is the long-run one); a
 * storm of customers' declines on every backend counted against the backend in use only
 * (its capped window moves in seconds, the others' do not) and flipped traffic to a worse
 * one. A rise on one backend alone is that backend's: pol_cust_excess_update. */
static void pol_cust_update(struct pol_learn *L, const struct policy *p)
{
	const struct pol_share2 *s = &L->cust;
	double w = p->learn.customer_weight;

	if (pol_share2_ready(s)) {
		double r = (s->dec_fast / s->ans_fast) / (s->dec_slow / s->ans_slow);

		w *= r <= 1.25 ? 1 : r >= 2 ? 0 : (2 - r) / 0.75;
	}
	L->cust_w = w;
}

/* Soft declines that rise on several backends at once are the issuers', not a backend's: a
 * storm of them on every backend counted against the backends in use only (their capped
 * windows move in seconds, a thinly used backend's do not), moved traffic to a worse
 * backend and left the better one scored on the storm for good, since it got no traffic
 * to correct it (world 2000039: psp4, 95 % authorised, 54 % of traffic before the storm,
 * none after; checkout 89.7 % against the oracle's 93.4 %). Per backend with enough
 * answers in both sums (successes, soft declines and counted PSP errors: what the
 * posteriors count in full), r = its declines over ~5 s beyond noise (below) / what its
 * decline share over ~10 min expects of them; the lowest r over at least two such
 * backends is the storm's level (one backend's own drift raises only its r); from 1.5 to
 * 2.5 the weight of every answer in the posteriors falls from 1 to 0, successes too, so
 * the standings before the storm hold.
 *
 * The special problem of concentrated traffic: with ~95 % on one backend the others see a
 * few exploration answers a second, never 50 in 5 s, and a storm everywhere read as the
 * busy backend's own drift (issue 11, worlds 2000126, 3000057). With one busy backend, the
 * thin ones (>= POL_STORM_THIN_SLOW answers in their slow sum) are pooled over ~20 s: D
 * their declines, E what their slow shares expect; the busy backend's own ratio over the
 * same ~20 s is R. Poisson log-likelihood of "a storm at R on the thin ones too" against
 * "calm": llr = D ln R - (R - 1) E. The busy backend's level counts for two when the pool
 * cannot tell them apart and the busy backend's rise has lasted (R >= 1.5, llr >=
 * -POL_STORM_LLR: a storm left standing costs traffic for the rest of the run, a drift
 * held back costs the seconds the pool needs to reject it, R - 1 - ln R nats per decline
 * the pool expects), or when the pool says storm (llr >= POL_STORM_LLR); the busy backend's r is
 * then taken beyond POL_STORM_Z_ONE sds (its answers are many: at 1 sd, noise held a
 * world without incidents). policy/learning.md. */
static double pol_storm_ratio(double dec, double e, double z)
{
	return fmax(dec - z * sqrt(e), 0) / e;
}

/* The thin backends' pooled ~20 s sums, backend skip (-1: none) left out: a backend
 * without enough answers for its own ratio (!pol_share2_ready) but with
 * POL_STORM_THIN_SLOW in its slow sum and some declines adds its ~20 s declines to *d and
 * what its slow share expects of them to *e. Returns how many were pooled. */
static int pol_thin_pool(const struct pol_share2 *sh, int nb, int skip, double *d, double *e)
{
	int b, n = 0;

	*d = *e = 0;
	for (b = 0; b < nb; b++) {
		const struct pol_share2 *s = &sh[b];

		if (b == skip || pol_share2_ready(s) || !(s->ans_slow >= POL_STORM_THIN_SLOW && s->dec_slow > 0))
			continue;
		*d += s->dec_mid;
		*e += s->ans_mid * s->dec_slow / s->ans_slow;
		n++;
	}
	return n;
}

static double pol_storm_level(const struct pol_share2 *sh, int nb)
{
	double r, rmin = 0, rone = 0, rmid = 0, dthin, ethin;
	int b, n = 0, nthin = pol_thin_pool(sh, nb, -1, &dthin, &ethin);

	for (b = 0; b < nb; b++) {
		const struct pol_share2 *s = &sh[b];
		double e, share;

		if (!pol_share2_ready(s))
			continue;
		/* the fast sum's declines beyond POL_STORM_Z Poisson sds of what the slow share expects of
		 * them: at ~50 answers and a 5 % share, noise alone doubles r now and then, on two
		 * backends at once within minutes (a world without incidents lost 0.3 pt) */
		share = s->dec_slow / s->ans_slow;
		e = s->ans_fast * share;
		r = pol_storm_ratio(s->dec_fast, e, POL_STORM_Z);
		if (!n++ || r < rmin) {
			rmin = r;
			rone = pol_storm_ratio(s->dec_fast, e, POL_STORM_Z_ONE);
			rmid = s->dec_mid / (s->ans_mid * share);
		}
	}
	if (n == 1 && nthin > 0 && rone > 1.5 && rmid > 1) {
		double llr = dthin * log(rmid) - (rmid - 1) * ethin;

		if ((rmid >= 1.5 && llr >= -POL_STORM_LLR) || llr >= POL_STORM_LLR) {
			rmin = rone;
			n++;
		}
	}
	if (n < 2)
		rmin = 0;
	return rmin <= 1.5 ? 1 : rmin >= 2.5 ? 0 : 2.5 - rmin;
}

static void pol_storm_set(struct pol_storm *g, double w, uint64_t now_us)
{
	if (w < 1 && g->w >= 1)
		g->since_us = now_us;
	g->w = w;
}

/* Whether a peer of backend b reads calm on its decline share sh[] (one per backend): a
 * peer with enough answers in both sums whose fast share is under 1.5x its long-run one
 * beyond POL_STORM_Z sds, or, when none has enough, the thin peers' pooled ~20 s sums
 * rejecting a rise like b's own over them (llr <= -POL_STORM_LLR, as in pol_storm_level).
 * No peer to compare with: not calm. */
static bool pol_peer_calm(const struct pol_share2 *sh, int nb, int b)
{
	const struct pol_share2 *s = &sh[b];
	double dthin, ethin, rmid;
	int c;

	for (c = 0; c < nb; c++) {
		const struct pol_share2 *o = &sh[c];

		if (c != b && pol_share2_ready(o) &&
		    pol_storm_ratio(o->dec_fast, o->ans_fast * o->dec_slow / o->ans_slow, POL_STORM_Z) < 1.5)
			return true;
	}
	pol_thin_pool(sh, nb, b, &dthin, &ethin);
	if (!(ethin > 0) || !(s->ans_mid > 0) || !(s->dec_slow > 0))
		return false;
	rmid = s->dec_mid / (s->ans_mid * s->dec_slow / s->ans_slow);
	return rmid > 1 && dthin * log(rmid) - (rmid - 1) * ethin <= -POL_STORM_LLR;
}

/* Customer declines that rise on one backend only are that backend's: an acquirer whose
 * "insufficient funds" answers double while its peers', for the same customers, do not is
 * declining cards the others authorise (world 1000105: a storm of them on the busiest
 * backend, 50 % declined for two minutes; counted at learning.customer_declines = 0, the
 * segments stayed on it and checkout fell 20 pt below the oracle's). Per backend b with
 * enough answers in both sums, r = its customer declines over ~5 s beyond POL_STORM_Z_ONE
 * Poisson sds of what its own ~10 min share expects, and POL_STORM_Z_ONE^2 more (a thin
 * backend expects one or two: four by chance is no storm), over that expectation; when r
 * > POL_CUST_EXCESS_MIN and a peer reads calm, the share 1 - POL_CUST_EXCESS_MIN / r of
 * its customer declines counts as failures: about what it declines beyond its long-run
 * share, not the share every backend declines. A
 * peer reads calm when it has enough answers itself and its r (at POL_STORM_Z) is under
 * 1.5, or, when none has, the thin peers' pooled ~20 s sums reject a rise like b's
 * (llr <= -POL_STORM_LLR, pol_storm_level). No peer to compare with: nothing counts, as
 * before (the customers' cards, for all anyone can tell). A storm of customer declines on
 * several backends (pol_storm_level over these shares, as for soft declines) counts
 * nothing, and their slow sums take it in at that guard's weight; with
 * learning.customer_declines > 0 it is also discounted on the whole engine
 * (pol_cust_update). While b's excess counts, its answers enter its slow sums at 1 -
 * excess, for up to POL_STORM_HOLD_S as the soft guard's, so the long-run share does
 * not take the excess in. */
static void pol_cust_excess_update(struct pol_learn *L, uint64_t now_us)
{
	int b;

	pol_storm_set(&L->cust_all, pol_storm_level(L->cust_b, L->nb), now_us);
	for (b = 0; b < L->nb; b++) {
		const struct pol_share2 *s = &L->cust_b[b];
		double r = 0, x = 0;

		if (pol_share2_ready(s)) {
			double e = s->ans_fast * s->dec_slow / s->ans_slow;

			r = fmax(s->dec_fast - POL_STORM_Z_ONE * sqrt(e) - POL_STORM_Z_ONE * POL_STORM_Z_ONE, 0) / e;
		}
		if (r > POL_CUST_EXCESS_MIN && L->cust_all.w >= 1 && pol_peer_calm(L->cust_b, L->nb, b))
			x = 1 - POL_CUST_EXCESS_MIN / r;
		L->cust_storms += x > 0 && !(L->cust_x[b] > 0);
		L->cust_x[b] = x;
		pol_storm_set(&L->cust_hold[b], 1 - x, now_us);
	}
}

static bool pol_is_bcode(const struct pol_view *v, uint32_t code)
{
	int b;

	for (b = 0; b < v->L->nb; b++)
		if (v->bcode[b] == code)
			return true;
	return false;
}

/* Soft declines that rise on one backend alone fork its posteriors (issue 11: a backend
 * left during a storm of its own never came back). Counted in its own posteriors, such a
 * storm moves traffic away as it should, but then the backend gets only exploration's few
 * answers, and its segments keep the storm's estimates long after it ended: world 3000003,
 * psp0 storming at 45 % of its rate for 107 s, none of its traffic back in the 120 s
 * after (the oracle's back at once), checkout 1.7 pt below the oracle's. A fork learns the
 * episode apart: while it lasts, the backend's answers go to its posteriors under another
 * srt code (pol_view.fork_code), and decide reads a segment's fork key at the level of the
 * backend's own lookup, laid on top of the standings before the episode worth at most
 * `min_n` (pol_p_auth): a few storm answers weigh against at most min_n old ones. A
 * re-test is a fresh fork (another code, no outcomes yet): decide reads the standings
 * before the episode again, traffic returns, and the new fork learns what the backend
 * does now, after POL_FORK_RETEST_S, then twice as long each time up to
 * POL_FORK_RETEST_MAX_S.
 *
 * Counted over payments' answers only (those of the policy's currencies): operations on
 * existing objects follow their pins to a storming backend and answer 200, and read as
 * the storm's end. Begins: the backend's soft declines over ~5 s beyond POL_STORM_Z_ONE
 * Poisson sds of what its ~10 min share expects reach POL_FORK_R times that expectation,
 * some peer reads calm (pol_peer_calm) and the storm guard does not hold, for
 * POL_FORK_ONSET_S in a row (a storm on every backend rises on the others meanwhile).
 * Ends: with enough answers again, that ratio at POL_STORM_Z is under POL_FORK_CALM; after
 * POL_STORM_HOLD_S (a lasting change, an auth drift, is then the backend's own and its
 * keys learn it); or when the storm guard holds and no peer reads calm (a storm on several
 * backends after all: no new fork on this backend for POL_SHARE_MID_S, while the guard's
 * level may flicker). While forked its per-currency long-run shares are held
 * (pol_shares_roll) and its answers are not shared with a fleet. policy/learning.md. */
static void pol_fork_update(struct pol_view *v, uint64_t now_us)
{
	struct pol_learn *L = v->L;
	struct pol_share2 pay[POL_MAX_BACKENDS];
	int b, c;

	/* payments' answers only (those of the policy's currencies): operations on existing
	 * objects (captures, reads) follow their pins to a backend whatever it declines, and
	 * their successes read as the storm's end */
	memset(pay, 0, sizeof(pay[0]) * (size_t)L->nb);
	for (c = 0; c < L->ncur; c++)
		for (b = 0; b < L->nb; b++) {
			const struct pol_share2 *o = &L->storm_cur[c * L->nb + b];

			pay[b].dec_fast += o->dec_fast;
			pay[b].ans_fast += o->ans_fast;
			pay[b].dec_mid += o->dec_mid;
			pay[b].ans_mid += o->ans_mid;
			pay[b].dec_slow += o->dec_slow;
			pay[b].ans_slow += o->ans_slow;
		}
	for (b = 0; b < L->nb; b++) {
		struct pol_fork *f = &L->fork[b];
		const struct pol_share2 *s = &pay[b];
		bool ready = pol_share2_ready(s), fresh = false;
		double e = ready ? s->ans_fast * s->dec_slow / s->ans_slow : 0;

		if (!f->code) {
			bool rise = ready && pol_storm_ratio(s->dec_fast, e, POL_STORM_Z_ONE) >= POL_FORK_R &&
			            L->storm_all.w >= 1 && pol_peer_calm(pay, L->nb, b);

			if (!rise)
				f->rise_us = 0;
			else if (!f->rise_us)
				f->rise_us = now_us;
			if (rise && now_us - f->rise_us >= (uint64_t)(POL_FORK_ONSET_S * 1e6) && now_us >= f->calm_us) {
				f->rise_us = 0;
				f->since_us = now_us;
				f->retest_s = POL_FORK_RETEST_S;
				fresh = true;
				L->forks++;
			}
		} else if (L->storm_all.w < 1 && !pol_peer_calm(pay, L->nb, b)) {
			/* the storm guard holds every backend's answers: not this one's own after
			 * all, and the guard's level may flicker about its threshold a while */
			f->code = 0;
			f->calm_us = now_us + (uint64_t)(POL_SHARE_MID_S * 1e6);
		} else if (now_us - f->since_us >= (uint64_t)(POL_STORM_HOLD_S * 1e6) ||
		           (ready && now_us - f->at_us >= (uint64_t)(POL_SHARE_FAST_S * 1e6) &&
		            pol_storm_ratio(s->dec_fast, e, POL_STORM_Z) < POL_FORK_CALM)) {
			f->code = 0;
		} else if (now_us - f->at_us >= (uint64_t)(f->retest_s * 1e6)) {
			f->retest_s = fmin(2 * f->retest_s, POL_FORK_RETEST_MAX_S);
			fresh = true;
		}
		if (fresh) {
			const char *name = v->p->backends[b].name;
			char key[POL_NAME_MAX + 16];
			int n;

			do { /* never 0, never a backend's own code */
				n = snprintf(key, sizeof(key), "%s\x1f%u", name, ++f->gen);
				f->code = srt_code(key, n > 0 ? (size_t)n : 0);
			} while (!f->code || pol_is_bcode(v, f->code));
			f->at_us = now_us;
		}
		atomic_store_explicit(&v->fork_code[b], f->code, memory_order_relaxed);
	}
}

/* The engine's storm guard over every answer, and one per currency over that currency's
 * answers (a storm of one currency's cards on every backend, world 1000024: the busy
 * backend's share rose with it, a backend that took other currencies' traffic rose less
 * and held the engine's level under 1.5). */
static void pol_storm_update(struct pol_learn *L, uint64_t now_us)
{
	bool was = L->storm_all.w < 1, is;
	int c;

	pol_storm_set(&L->storm_all, pol_storm_level(L->storm, L->nb), now_us);
	is = L->storm_all.w < 1;
	for (c = 0; c < L->ncur; c++) {
		was |= L->storm_c[c].w < 1;
		pol_storm_set(&L->storm_c[c], pol_storm_level(&L->storm_cur[c * L->nb], L->nb), now_us);
		is |= L->storm_c[c].w < 1;
	}
	L->storms += is && !was;
}

void pol_learn_tick(struct pol_engine *e, uint64_t min_seen, uint64_t now_us)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	int b;

	pol_learn_drain(e, now_us);
	if (now_us < L->tmax)
		now_us = L->tmax;
	L->tmax = now_us;
	pol_shares_roll(L, now_us);
	pol_cust_update(L, p);
	pol_cust_excess_update(L, now_us);
	pol_storm_update(L, now_us);
	pol_fork_update(v, now_us);
	pol_unans_judge(e, v, now_us);
	pol_brk_exchange(L, p, now_us);
	for (b = 0; b < L->nb; b++) {
		struct anom *a = &L->anom[b];
		bool closed_by_probes;

		brk_update(&L->brk[b], &p->breaker.cfg, pol_may_open(L, p, now_us), now_us);

		if (p->anomaly.enabled)
			anom_tick(a, &p->anomaly.cfg, L->agg[b].n, L->agg[b].err, L->agg[b].lat_ms, now_us);
		if (L->agg[b].n)
			L->lat_seen_us[b] = now_us;
		L->agg[b] = (struct pol_agg){ 0, 0, 0 };
		if (a->samples != L->anom_samples[b]) {
			L->anom_samples[b] = a->samples;
			L->anom_seen_us[b] = now_us;
		}
		/* an alarm (and the evidence pooled towards one) ends when the breaker's probes
		 * just proved the backend healthy, or when the penalty has kept all traffic (and
		 * so all evidence) away for a while. The proof is the breaker's count of probe
		 * closes, not the state this tick samples: probes answered between two ticks can
		 * take it from open through half-open to closed unseen (test-probes.sh saw GBP
		 * kept off a recovered backend by the alarm's penalty). */
		closed_by_probes = L->brk[b].probe_closes != L->closes_seen[b];
		L->closes_seen[b] = L->brk[b].probe_closes;
		if (closed_by_probes ||
		    (a->state == ANOM_DEGRADED && now_us - L->anom_seen_us[b] >= POL_ANOM_IDLE_US)) {
			anom_clear(a, now_us);
			L->anom_seen_us[b] = now_us;
		}
		/* Learned latency likewise: the probes that close a breaker carry the incident's
		 * delays (requests HAProxy held while the backend hung), and a backend scored
		 * down for its latency gets no answer that could correct it. Back to the policy's
		 * latency_ms then, so that the backend can win traffic and be measured anew. */
		if (closed_by_probes ||
		    (L->lat_ms[b] > 0 && now_us - L->lat_seen_us[b] >= POL_ANOM_IDLE_US))
			L->lat_ms[b] = 0;
	}
	pol_publish_backends(v, now_us);
	pol_sega_tick(v, now_us);
	for (b = 0; b < L->nb; b++)
		if (e->share && (L->opened_new >> b & 1))
			pol_share_note_open(e->share, p->backends[b].name);
	L->opened_new = 0;
	pol_publish_budgets(v, now_us);
	pol_forecasts(e, v, now_us);
	pol_publish_srt(e, v, min_seen, now_us);
}

/* ---- learning shared across a fleet -------------------------------------------------------- */

uint64_t pol_learn_apply(struct pol_view *v, const struct mrg_delta *d, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	uint64_t t = now_us > L->tmax ? (L->tmax = now_us) : L->tmax, n = 0;
	uint32_t i;
	int b;

	for (i = 0; i < d->cap; i++) {
		const struct mrg_cell *c = &d->cell[i];
		struct srt_seg seg;

		if (!c->used || (c->s == 0 && c->f == 0) || (b = POL_FIND_BACKEND(p, c->k.backend)) < 0)
			continue;
		seg = (struct srt_seg){ v->bcode[b], c->k.cur, c->k.cty, c->k.brand, c->k.fund };
		srt_add(&L->srt, &seg, c->s, c->f, t);
		n += (uint64_t)c->s + c->f;
	}
	if (n)
		L->srt_dirty++;
	return n;
}

int pol_learn_remote_open(struct pol_view *v, const char *backend, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	uint64_t t = now_us > L->tmax ? (L->tmax = now_us) : L->tmax;
	int b = POL_FIND_BACKEND(p, backend);

	if (b < 0)
		return -1;
	switch (brk_remote_open(&L->brk[b], &p->breaker.cfg, pol_may_open(L, p, t), t)) {
	case BRK_REMOTE_OPENED:
		/* to the workers now, as a tick would (not to the fleet again) */
		L->remote_open[b] = 1;
		pol_publish_backends(v, t);
		return POL_SHARE_OPENED;
	case BRK_REMOTE_KEPT:
		return POL_SHARE_KEPT;
	default:
		return POL_SHARE_NONE;
	}
}

/* ---- reload ------------------------------------------------------------------------------ */

void pol_learn_carry(struct pol_view *nv, const struct pol_view *ov)
{
	const struct policy *np = nv->p, *op = ov->p;
	struct pol_learn *N = nv->L;
	const struct pol_learn *O = ov->L;
	int i, j, c, k;

	N->tmax = O->tmax;
	N->opens = O->opens;
	N->cuts = O->cuts;
	N->sheds = O->sheds;
	N->shed_at_us = O->shed_at_us;
	N->unans_missing = O->unans_missing;
	N->unans_fed = O->unans_fed;
	N->unans_late = O->unans_late;
	N->unans_forgiven = O->unans_forgiven;
	N->unans_witness_us = O->unans_witness_us;
	/* the customer declines' share (pol_cust_update), so a storm under way stays one;
	 * the weight is the new policy's from the next tick */
	N->share_at_us = O->share_at_us;
	N->cust = O->cust;
	N->cust_all = O->cust_all;
	N->storm_all = O->storm_all;
	N->storms = O->storms;
	N->forks = O->forks;
	N->exchanges = O->exchanges;
	N->cust_storms = O->cust_storms;
	for (c = 0; c < N->ncur; c++) {
		for (k = 0; k < O->ncur && op->currencies[k] != np->currencies[c]; k++)
			;
		if (k == O->ncur)
			continue;
		N->storm_c[c] = O->storm_c[k];
		for (i = 0; i < N->nb; i++)
			if ((j = POL_FIND_BACKEND(op, np->backends[i].name)) >= 0)
				N->storm_cur[c * N->nb + i] = O->storm_cur[k * O->nb + j];
	}
	for (i = 0; i < N->nb; i++) {
		if ((j = POL_FIND_BACKEND(op, np->backends[i].name)) < 0)
			continue;
		N->brk[i] = O->brk[j]; /* a new window shape is taken by brk_update */
		N->brk[i].scoped = 0;  /* judged again from the new view's cells (pol_sega_tick) */
		N->anom[i] = O->anom[j];
		N->lat_ms[i] = O->lat_ms[j];
		N->lat_seen_us[i] = O->lat_seen_us[j];
		N->shown[i] = O->shown[j];
		N->closes_seen[i] = O->closes_seen[j];
		N->storm[i] = O->storm[j];
		N->cust_b[i] = O->cust_b[j];
		N->cust_x[i] = O->cust_x[j];
		N->cust_hold[i] = O->cust_hold[j];
		N->fork[i] = O->fork[j];
		atomic_store_explicit(&nv->fork_code[i], N->fork[i].code, memory_order_relaxed);
		N->probe_batch_us[i] = O->probe_batch_us[j];
	}
	/* Posterior keys hash backend names and currency codes, not indices: the table
	 * carries over whole when its size is unchanged (else a cold start). */
	if (N->srt.cap == O->srt.cap) {
		struct srt_cfg cfg = N->srt.cfg;
		uint32_t limit = N->srt.limit;

		srt_copy(&N->srt, &O->srt);
		N->srt.cfg = cfg;
		N->srt.limit = limit;
		srt_copy(&N->pub[0], &N->srt);
		/* what was tested still is: no round of exploring toward it after a reload */
		pol_latch_tested(nv, N->tmax);
	}
	for (i = 0; i < N->na; i++) {
		if ((j = POL_FIND_ACCOUNT(op, np->accounts[i].id)) < 0)
			continue;
		N->aimd[i] = O->aimd[j];
		for (k = 0; k < N->ne; k++) {
			int ok = POL_FIND_ENDPOINT(op, np->thr.endpoints[k].name);

			if (ok >= 0)
				N->aimd[N->na + i * N->ne + k] = O->aimd[O->na + j * O->ne + ok];
		}
		for (c = 0; c < N->nc; c++) {
			int oc = POL_FIND_CLASS(op, np->classes[c].name);

			if (oc < 0)
				continue;
			/* a new season length starts that forecaster over */
			if (O->fc[j * O->nc + oc].m == np->forecast.cfg.season)
				N->fc[i * N->nc + c] = O->fc[j * O->nc + oc];
			N->shed_share[i * N->nc + c] = O->shed_share[j * O->nc + oc];
			atomic_store(&nv->shed[i][c], atomic_load(&ov->shed[j][oc]));
		}
	}
	pol_publish_backends(nv, N->tmax);
	pol_publish_budgets(nv, N->tmax);
}

/* ---- admin --------------------------------------------------------------------------------- */

int pol_learn_override(struct pol_view *v, int b, int mode, uint64_t now_us)
{
	struct pol_learn *L = v->L;

	if (b < 0 || b >= L->nb || mode < BRK_OVR_AUTO || mode > BRK_OVR_CLOSED)
		return -1;
	if (now_us < L->tmax)
		now_us = L->tmax;
	brk_set_override(&L->brk[b], &v->p->breaker.cfg, (enum brk_override)mode, now_us);
	pol_publish_backends(v, now_us);
	return 0;
}

int pol_learn_probe(struct pol_view *v, int b, bool ok, double latency_ms, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	enum brk_event ev;
	double typical;

	if (b < 0 || b >= L->nb)
		return -1;
	if (now_us < L->tmax)
		now_us = L->tmax;
	L->tmax = now_us;
	/* A probe is not a payment: a health URL answers in a few ms where a payment takes
	 * hundreds, so its own latency would pull the chart's mean down whenever payments
	 * are few and alarm as a slowdown when they come back. It counts at the typical
	 * latency, or its own when slower (a probe slower than payments is news); the
	 * learned latency scoring uses is not touched. A failure likewise (as
	 * pol_learn_event treats a PSP error). Slower than breaker.slow_ms: a slow call. */
	typical = L->lat_ms[b] > 0 ? L->lat_ms[b] : p->backends[b].latency_ms;
	if (latency_ms < typical)
		latency_ms = typical;
	L->agg[b].n++;
	L->agg[b].err += !ok;
	L->agg[b].lat_ms += latency_ms;
	ev = !ok ? BRK_EV_FAILURE :
	     p->breaker.slow_ms > 0 && latency_ms >= (double)p->breaker.slow_ms ? BRK_EV_SLOW : BRK_EV_SUCCESS;
	brk_record(&L->brk[b], &p->breaker.cfg, ev, ev != BRK_EV_SUCCESS && pol_may_open(L, p, now_us), now_us);
	return 0;
}

void pol_learn_backend(const struct pol_view *v, int b, uint64_t now_us, struct pol_learn_backend *out)
{
	const struct pol_learn *L = v->L;

	out->breaker = (int)brk_state_at(&L->brk[b], now_us);
	out->anomaly = L->anom[b].state;
	out->trips = L->brk[b].trips;
	out->open_for_s = (double)brk_retry_in_us(&L->brk[b], now_us) / 1e6;
}

void pol_learn_forecast(const struct pol_view *v, int a, int c, uint64_t now_us, struct pol_learn_forecast *out)
{
	const struct pol_learn *L = v->L;

	pol_demand(v->p, &L->fc[a * L->nc + c], now_us, out);
	out->budget_rps = pol_cell_rate(v, a, now_us);
	out->shed_share = L->shed_share[a * L->nc + c];
	out->shed = out->shed_share > 0;
}

void pol_learn_counts(const struct pol_view *v, struct pol_stats *out)
{
	const struct pol_learn *L = v->L;

	out->breaker_opens = L->opens;
	out->budget_cuts = L->cuts;
	out->sheds = L->sheds;
	out->decline_storms = L->storms;
	out->decline_forks = L->forks;
	out->breaker_exchanges = L->exchanges;
	out->customer_storms = L->cust_storms;
	out->unanswered = L->unans_missing;
	out->unanswered_fed = L->unans_fed;
	out->unanswered_late = L->unans_late;
	out->unanswered_forgiven = L->unans_forgiven;
}

/* ---- invariants ------------------------------------------------------------------------ */

int pol_learn_verify(const struct pol_view *v, char *err, size_t errlen)
{
	const struct pol_learn *L = v->L;
	size_t off;
	int i;

	if (!L || L->nb != v->p->nbackends || L->na != v->p->naccounts || L->nc != v->p->nclasses)
		return pol_verify_fail(err, errlen, "learn: state sized for another policy");
	for (i = 0; i < L->nb; i++) {
		if (brk_verify(&L->brk[i], err, errlen) < 0 || anom_verify(&L->anom[i], err, errlen) < 0)
			goto backend;
	}
	for (i = 0; i < L->ncells; i++)
		if (aimd_verify(&L->aimd[i], &L->acfg[i], err, errlen) < 0)
			goto cell;
	for (i = 0; i < L->na * L->nc; i++) {
		if (fc_verify(&L->fc[i], err, errlen) < 0)
			goto forecast;
		if (!(L->shed_share[i] >= 0 && L->shed_share[i] <= 1))
			return pol_verify_fail(err, errlen, "learn: shed share %g of forecast %d", L->shed_share[i], i);
	}
	if (srt_verify(&L->srt, err, errlen) < 0 || srt_verify(&L->pub[0], err, errlen) < 0 ||
	    srt_verify(&L->pub[1], err, errlen) < 0)
		return -1;
	return 0;
	/* say whose structure it was, after what its verify said */
backend:
	off = strlen(err);
	snprintf(err + off, errlen - off, " (backend %s)", v->p->backends[i].name);
	return -1;
cell:
	off = strlen(err);
	snprintf(err + off, errlen - off, " (budget cell %d)", i);
	return -1;
forecast:
	off = strlen(err);
	snprintf(err + off, errlen - off, " (forecast %d)", i);
	return -1;
}

/* ---- snapshots (state.h) ---------------------------------------------------------------
 * Each record's value is one of these flat structs, zeroed before it is filled (no
 * stray padding bytes in a file). Times are on the engine clock of the capture; restore
 * moves them by shift_us (pol_shift) and checks every module value before taking it. */

struct pol_rec_backend {
	struct brk brk;
	struct anom anom;
	double lat_ms;
	uint64_t lat_seen_us, probe_batch_us, anom_seen_us;
	uint32_t anom_samples;
	uint32_t shown;
};

struct pol_rec_cell {
	struct aimd a;
	int64_t debt_ns;        /* the GCRA cell's tat - now: budget already booked ahead */
};

struct pol_rec_forecast {
	struct fc fc;
	double shed_share;
};

struct pol_rec_totals {
	uint64_t opens, cuts, sheds, unans_missing, unans_fed, unans_late;
	uint64_t shed_at_us, unans_witness_us; /* times */
};

/* A saved time on the new clock. 0 stays 0 ("never"); a time that would fall before
 * the clock's origin is clamped to 1 (the new process's clock may have started later
 * than the saved age: such an age is shortened to the process's uptime). */
static uint64_t pol_shift(uint64_t t, int64_t shift_us)
{
	int64_t r;

	if (!t)
		return 0;
	if (shift_us >= 0)
		return t + (uint64_t)shift_us >= t ? t + (uint64_t)shift_us : UINT64_MAX;
	r = (int64_t)(t > (uint64_t)INT64_MAX ? INT64_MAX : t) + shift_us;
	return r > 0 ? (uint64_t)r : 1;
}

static int pol_rec_add(struct pol_rec *recs, size_t *n, uint8_t kind, const char *name, const char *name2,
                       const void *val, uint32_t len)
{
	struct pol_rec *r = &recs[(*n)++];
	void *m = malloc(len);

	memset(r, 0, sizeof(*r));
	if (!m)
		return -1;
	memcpy(m, val, len);
	r->kind = kind;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->name2, sizeof(r->name2), "%s", name2);
	r->len = len;
	r->val = m;
	return 0;
}

void pol_learn_recs_free(struct pol_rec *recs, size_t n)
{
	size_t i;

	if (!recs)
		return;
	for (i = 0; i < n; i++)
		free((void *)recs[i].val);
	free(recs);
}

int pol_learn_save(const struct pol_view *v, uint64_t now_us, struct pol_rec **recs_out, size_t *n_out,
                   struct srt_entry **srt_out, size_t *nsrt_out)
{
	const struct policy *p = v->p;
	const struct pol_learn *L = v->L;
	size_t cap = (size_t)L->nb + (size_t)L->ncells + (size_t)L->na * (size_t)L->nc + 1, n = 0, ns = 0, i;
	struct pol_rec *recs = calloc(cap, sizeof(*recs));
	struct srt_entry *srt = calloc(L->srt.used ? L->srt.used : 1, sizeof(*srt));
	union {
		struct pol_rec_backend b;
		struct pol_rec_cell c;
		struct pol_rec_forecast f;
		struct pol_rec_totals t;
	} *u = malloc(sizeof(*u));
	int a, c, k;

	if (!recs || !srt || !u)
		goto fail;
	for (a = 0; a < L->nb; a++) {
		memset(u, 0, sizeof(*u));
		u->b.brk = L->brk[a];
		u->b.anom = L->anom[a];
		u->b.lat_ms = L->lat_ms[a];
		u->b.lat_seen_us = L->lat_seen_us[a];
		u->b.probe_batch_us = L->probe_batch_us[a];
		u->b.anom_seen_us = L->anom_seen_us[a];
		u->b.anom_samples = L->anom_samples[a];
		u->b.shown = L->shown[a];
		if (pol_rec_add(recs, &n, POL_REC_BACKEND, p->backends[a].name, "", &u->b, sizeof(u->b)))
			goto fail;
	}
	for (k = 0; k < L->ncells; k++) {
		uint64_t tat = atomic_load_explicit(&v->thr.cells[k].tat, memory_order_relaxed), now_ns = now_us * 1000;

		a = k < L->na ? k : (k - L->na) / L->ne;
		memset(u, 0, sizeof(*u));
		u->c.a = L->aimd[k];
		u->c.debt_ns = tat > now_ns ? (int64_t)(tat - now_ns) : 0;
		if (pol_rec_add(recs, &n, POL_REC_CELL, p->accounts[a].id,
		                k < L->na ? "" : p->thr.endpoints[(k - L->na) % L->ne].name, &u->c, sizeof(u->c)))
			goto fail;
	}
	for (a = 0; a < L->na; a++)
		for (c = 0; c < L->nc; c++) {
			memset(u, 0, sizeof(*u));
			u->f.fc = L->fc[a * L->nc + c];
			u->f.shed_share = L->shed_share[a * L->nc + c];
			if (pol_rec_add(recs, &n, POL_REC_FORECAST, p->accounts[a].id, p->classes[c].name, &u->f,
			                sizeof(u->f)))
				goto fail;
		}
	memset(u, 0, sizeof(*u));
	u->t = (struct pol_rec_totals){ L->opens, L->cuts, L->sheds, L->unans_missing, L->unans_fed, L->unans_late,
	                                L->shed_at_us, L->unans_witness_us };
	if (pol_rec_add(recs, &n, POL_REC_TOTALS, "", "", &u->t, sizeof(u->t)))
		goto fail;
	for (i = 0; i < L->srt.cap; i++)
		if (L->srt.e[i].key && ns < L->srt.used)
			srt[ns++] = L->srt.e[i];
	free(u);
	*recs_out = recs;
	*n_out = n;
	*srt_out = srt;
	*nsrt_out = ns;
	return 0;
fail:
	free(u);
	pol_learn_recs_free(recs, n);
	free(srt);
	return -1;
}

/* The breaker's window on the new clock: the newest bucket's index moves with the time,
 * and the buckets rotate with it (bucket[epoch % n] is the newest). */
static void pol_brk_shift(struct brk *b, uint64_t bucket_us, int64_t shift_us)
{
	struct brk_bucket old[BRK_MAX_BUCKETS];
	uint64_t ne = pol_shift(b->epoch * bucket_us, shift_us) / bucket_us;
	unsigned n = b->nbuckets, i;

	memcpy(old, b->bucket, sizeof(old));
	for (i = 0; i < n; i++)
		b->bucket[(ne % n + n - i) % n] = old[(b->epoch % n + n - i) % n]; /* i < n: no wrap below 0 */
	b->epoch = ne;
	b->since_us = pol_shift(b->since_us, shift_us);
	b->open_until_us = pol_shift(b->open_until_us, shift_us);
	b->probe_batch_us = pol_shift(b->probe_batch_us, shift_us);
	b->ok_sent_us = pol_shift(b->ok_sent_us, shift_us);
	b->ok_at_us = pol_shift(b->ok_at_us, shift_us);
	b->fail_us = pol_shift(b->fail_us, shift_us);
}

static bool pol_finite_nonneg(double x)
{
	return x >= 0 && !isinf(x);
}

int pol_learn_restore_rec(struct pol_view *v, const struct pol_rec *r, int64_t shift_us, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pol_learn *L = v->L;
	int a, c, k;

	switch (r->kind) {
	case POL_REC_BACKEND: {
		struct pol_rec_backend b;

		if (r->len != sizeof(b) || (a = POL_FIND_BACKEND(p, r->name)) < 0)
			return 1;
		memcpy(&b, r->val, sizeof(b));
		b.brk.scoped = 0; /* the engine's verdict of the moment (a snapshot before it: padding) */
		if (b.brk.trip_permille > 1000) /* likewise padding before it: read as failing in full */
			b.brk.trip_permille = 1000;
		if (brk_verify(&b.brk, NULL, 0) || anom_verify(&b.anom, NULL, 0) || !pol_finite_nonneg(b.lat_ms) ||
		    b.shown > BRK_OPEN)
			return 1;
		pol_brk_shift(&b.brk, p->breaker.cfg.bucket_us, shift_us);
		b.anom.since_us = pol_shift(b.anom.since_us, shift_us);
		L->brk[a] = b.brk;
		L->anom[a] = b.anom;
		L->lat_ms[a] = b.lat_ms;
		L->lat_seen_us[a] = pol_shift(b.lat_seen_us, shift_us);
		L->probe_batch_us[a] = pol_shift(b.probe_batch_us, shift_us);
		L->anom_seen_us[a] = pol_shift(b.anom_seen_us, shift_us);
		L->anom_samples[a] = b.anom_samples;
		L->shown[a] = (uint8_t)b.shown;
		L->closes_seen[a] = b.brk.probe_closes; /* a close before the capture is old news */
		return 0;
	}
	case POL_REC_CELL: {
		struct pol_rec_cell cl;
		uint64_t tol;

		if (r->len != sizeof(cl) || (a = POL_FIND_ACCOUNT(p, r->name)) < 0)
			return 1;
		if (!r->name2[0]) {
			k = a;
		} else {
			int ep = POL_FIND_ENDPOINT(p, r->name2);

			if (ep < 0)
				return 1;
			k = L->na + a * L->ne + ep;
		}
		memcpy(&cl, r->val, sizeof(cl));
		cl.a.t_us = pol_shift(cl.a.t_us, shift_us);
		cl.a.last_cut_us = pol_shift(cl.a.last_cut_us, shift_us);
		if (aimd_verify(&cl.a, &L->acfg[k], NULL, 0) || cl.debt_ns < 0)
			return 1;
		L->aimd[k] = cl.a;
		/* the booked debt, within the cell's tolerance (a token level, not a time) */
		tol = v->thr.cells[k].tol_ns;
		atomic_store(&v->thr.cells[k].tat, now_us * 1000 + ((uint64_t)cl.debt_ns < tol ? (uint64_t)cl.debt_ns : tol));
		return 0;
	}
	case POL_REC_FORECAST: {
		struct pol_rec_forecast f;

		if (r->len != sizeof(f) || (a = POL_FIND_ACCOUNT(p, r->name)) < 0 ||
		    (c = POL_FIND_CLASS(p, r->name2)) < 0)
			return 1;
		memcpy(&f, r->val, sizeof(f));
		/* a new season length starts that forecaster over, as on reload */
		if (fc_verify(&f.fc, NULL, 0) || f.fc.m != p->forecast.cfg.season || !(f.shed_share >= 0) ||
		    !(f.shed_share <= 1))
			return 1;
		/* aligned seconds = now_us / 1e6 + phase_s must keep following the day */
		f.fc.phase_s -= shift_us / 1000000;
		L->fc[a * L->nc + c] = f.fc;
		L->shed_share[a * L->nc + c] = f.shed_share;
		atomic_store(&v->shed[a][c], f.shed_share >= 1 ? POL_SHED_ALL : (uint32_t)(f.shed_share * 4294967296.0));
		return 0;
	}
	case POL_REC_TOTALS: {
		struct pol_rec_totals t;

		if (r->len != sizeof(t))
			return 1;
		memcpy(&t, r->val, sizeof(t));
		L->opens = t.opens;
		L->cuts = t.cuts;
		L->sheds = t.sheds;
		L->unans_missing = t.unans_missing;
		L->unans_fed = t.unans_fed;
		L->unans_late = t.unans_late;
		L->shed_at_us = pol_shift(t.shed_at_us, shift_us);
		L->unans_witness_us = pol_shift(t.unans_witness_us, shift_us);
		return 0;
	}
	default:
		return 1;
	}
}

int pol_learn_restore_srt(struct pol_view *v, const struct srt_entry *e, int64_t shift_us)
{
	return srt_put(&v->L->srt, e->key, pol_shift(e->t_us, shift_us), e->s, e->f) ? 1 : 0;
}

void pol_learn_restored(struct pol_view *v, uint64_t now_us)
{
	struct pol_learn *L = v->L;

	if (now_us > L->tmax)
		L->tmax = now_us;
	L->srt_dirty++;
	L->pub_at_us = 0;
	pol_publish_backends(v, L->tmax);
	pol_publish_budgets(v, L->tmax);
}

/* ---- admin: posteriors by segment ------------------------------------------------------ */

int pol_learn_segs(const struct pol_view *v, int b, uint64_t now_us, struct pol_seg_info *out, unsigned max)
{
	const struct policy *p = v->p;
	struct pol_seg_info all[1 + POL_MAX_CURRENCIES], t;
	unsigned n = 0, i, j;
	int c;

	if (b < 0 || b >= p->nbackends)
		return -1;
	for (c = -1; c < p->ncurrencies; c++) {
		struct srt_seg seg = { v->bcode[b], c < 0 ? 0 : p->currencies[c], 0, 0, 0 };
		struct srt_post post;
		struct pol_seg_info *o = &all[n];

		srt_level_post(&v->L->srt, &seg, c < 0 ? SRT_L_BACKEND : SRT_L_CURRENCY, now_us, &post);
		if (c >= 0 && post.level < 0)
			continue; /* nothing learned in that currency */
		memset(o->currency, 0, sizeof(o->currency));
		if (c >= 0) { /* 24-bit packed lower-case code, first letter highest (load.c) */
			o->currency[0] = (char)(seg.currency >> 16 & 0xff);
			o->currency[1] = (char)(seg.currency >> 8 & 0xff);
			o->currency[2] = (char)(seg.currency & 0xff);
		}
		o->n = post.n;
		o->mean = srt_mean(&post);
		o->sd = srt_sd(&post);
		n++;
	}
	/* the whole traffic first, then the currencies by observations (insertion sort: a few
	 * dozen at most) */
	for (i = 2; i < n; i++) {
		t = all[i];
		for (j = i; j > 1 && all[j - 1].n < t.n; j--)
			all[j] = all[j - 1];
		all[j] = t;
	}
	if (n > max)
		n = max;
	memcpy(out, all, n * sizeof(*out));
	return (int)n;
}
