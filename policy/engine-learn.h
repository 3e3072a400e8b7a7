/* engine-learn.h: the learning loop's control-thread half, internal to the engine: the
 * master state of one view (breakers, posteriors, anomaly charts, forecasts, adaptive
 * budgets), the merge of the workers' outcome rings, and what it publishes into the view
 * (health, probe budgets, posterior snapshots, emission intervals, shed flags).
 * Everything here runs on the control thread only; new/carry/free allocate, tick never. */
#ifndef ENGINE_LEARN_H
#define ENGINE_LEARN_H

#include <stdint.h>

#include "engine-t.h"
#include "state.h"

/* The master state, sized for v's policy and the engine's workers. Not defined in the
 * header: only engine-learn.c touches its fields. */
struct pol_learn *pol_learn_new(const struct pol_view *v);
void pol_learn_free(struct pol_learn *L); /* accepts NULL */

/* Publishes v's initial snapshot (an empty posterior table) and health. */
void pol_learn_attach(struct pol_view *v);

/* Reload: learned state of ov for the backends, accounts, endpoints and classes whose
 * names survive into nv (breakers, anomaly charts, latency, posteriors, adaptive
 * budgets, forecasts, shed flags), then nv's published values from it. */
void pol_learn_carry(struct pol_view *nv, const struct pol_view *ov);

/* One tick: merge every worker's ring into the view in force (events from a retired view
 * are mapped by name; ones from a view already freed are dropped), let time act on the
 * breakers, feed the anomaly charts and forecasters, adapt the budgets, publish.
 * min_seen: the smallest epoch every worker has passed (QSBR), read before the merge. */
void pol_learn_tick(struct pol_engine *e, uint64_t min_seen, uint64_t now_us);

/* Checks the invariants of v's master state: every breaker, anomaly detector, adaptive
 * budget and forecaster (their *_verify), the posterior table and its published copies,
 * shed shares within [0, 1]. Control thread. Returns 0, or -1 with the first violation
 * in err. */
int pol_learn_verify(const struct pol_view *v, char *err, size_t errlen);

/* Merge only (before a swap, so the carried state is complete). */
void pol_learn_drain(struct pol_engine *e, uint64_t now_us);

/* `set breaker <b> open|closed|auto` on the view in force: 0, or -1 (no such backend). */
int pol_learn_override(struct pol_view *v, int backend, int mode, uint64_t now_us);

/* An active probe's result for backend b (control thread): into b's breaker as a success
 * or a failure and into its anomaly chart's current tick, as an outcome would be.
 * latency_ms < 0: unknown. 0, or -1 (no such backend). */
int pol_learn_probe(struct pol_view *v, int backend, bool ok, double latency_ms, uint64_t now_us);

/* Read-only figures for the admin getters. */
struct pol_learn_backend {
	int breaker;        /* enum brk_state, override applied */
	int anomaly;        /* enum anom_state */
	uint32_t trips;
	double open_for_s;  /* time left open, 0 if not open */
};
void pol_learn_backend(const struct pol_view *v, int backend, uint64_t now_us, struct pol_learn_backend *out);

struct pol_learn_forecast {
	double now_rps, next_rps, day_rps; /* nowcast, Holt (horizon), Holt-Winters (next min) */
	double budget_rps;                 /* the account's adaptive budget */
	bool shed;                         /* some of the class is shed */
	double shed_share;                 /* the share of its decisions shed, 0..1 */
};
void pol_learn_forecast(const struct pol_view *v, int account, int cls, uint64_t now_us,
                        struct pol_learn_forecast *out);

/* pol_engine_learn_segs on v's master posteriors. */
int pol_learn_segs(const struct pol_view *v, int b, uint64_t now_us, struct pol_seg_info *out, unsigned max);

/* The control thread's cumulative figures into out (POL_ENGINE_COUNTERS but reloads):
 * breaker openings and exchanges, budget cuts, sheds, decline storms, forks and customer
 * storms, and
 * the unanswered decisions (engine-t.h). Carried over reloads; snapshots keep the
 * openings, cuts and sheds. */
void pol_learn_counts(const struct pol_view *v, struct pol_stats *out);

/* The account's or endpoint's adaptive rate now (cell index as in thr_state). */
double pol_learn_rate(const struct pol_view *v, int cell, uint64_t now_us);

/* ---- learning shared across a fleet (engine-share.h) ---------------------------------- */

/* Another node's outcome counts into v's master posteriors (never into the shared delta).
 * Returns the outcomes applied. */
struct mrg_delta;
uint64_t pol_learn_apply(struct pol_view *v, const struct mrg_delta *d, uint64_t now_us);
/* Another node's breaker for backend opened: POL_SHARE_OPENED, _KEPT, _NONE, or -1. */
int pol_learn_remote_open(struct pol_view *v, const char *backend, uint64_t now_us);

/* ---- snapshots (state.h) ------------------------------------------------------------ */

/* The learned records of v (one per backend, budget cell, account x class, and the
 * totals) and the master posterior entries, copied at now_us into arrays the caller frees
 * with pol_learn_recs_free (and free(*srt)). 0, or -1 when out of memory (nothing to free). */
int pol_learn_save(const struct pol_view *v, uint64_t now_us, struct pol_rec **recs, size_t *n,
                   struct srt_entry **srt, size_t *nsrt);
void pol_learn_recs_free(struct pol_rec *recs, size_t n); /* accepts NULL */

/* Restores one record into v by name, its times moved by shift_us and checked against
 * v's policy: 0, or 1 when dropped (unknown name, wrong size, fails a *_verify). */
int pol_learn_restore_rec(struct pol_view *v, const struct pol_rec *r, int64_t shift_us, uint64_t now_us);
/* One posterior entry (keys hash backend names, so they need no remapping): 0 or 1. */
int pol_learn_restore_srt(struct pol_view *v, const struct srt_entry *e, int64_t shift_us);
/* After the records: the next tick publishes the posteriors at once. */
void pol_learn_restored(struct pol_view *v, uint64_t now_us);

#endif /* ENGINE_LEARN_H */
