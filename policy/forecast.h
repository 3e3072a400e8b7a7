/* forecast.h: short-horizon (Holt, 1 s) and daily-shape (Holt-Winters additive, 1 min)
 * forecasts of a request rate. Pure: time is passed in; no clock, no I/O, no
 * allocation, no globals. */
#ifndef FORECAST_H
#define FORECAST_H

#include <stddef.h>

#include "forecast-t.h"

/* Fill c with the defaults noted in forecast-t.h. */
void fc_cfg_default(struct fc_cfg *c);

/* NULL if c is usable, else a static message. */
const char *fc_cfg_check(const struct fc_cfg *c);

/* An empty forecaster with c->season slots. phase_s is added to now_us / 1e6 to place
 * minutes in the day: pass (wall-clock seconds - monotonic seconds) at start so slot k
 * is minute k of the UTC day, or 0 when only the shape matters. */
void fc_init(struct fc *f, const struct fc_cfg *c, int64_t phase_s);

/* Count `count` requests (>= 0) at now_us. Boundaries are rolled lazily: when now_us
 * is in a later second, the open second is closed and fed to Holt, and every idle
 * second in between is fed as a zero; likewise minutes for Holt-Winters. Long gaps are
 * bounded work: at most FC_GAP_MAX_S zero seconds (after which Holt is at its fixed
 * point, level = trend = 0) and at most one season of zero minutes. A now_us earlier
 * than the open second counts into it; one more than FC_REBASE_S earlier (a restored
 * state under a new monotonic clock) re-anchors the clock without learning. */
void fc_observe(struct fc *f, const struct fc_cfg *c, double count, uint64_t now_us);

/* Roll boundaries up to now_us without counting (call once per tick so idle seconds
 * are learned even when nothing arrives). */
void fc_advance(struct fc *f, const struct fc_cfg *c, uint64_t now_us);

#define FC_GAP_MAX_S 600
#define FC_REBASE_S  5

/* Holt: expected requests per second h seconds after the last closed second,
 * level + h trend, never below 0. 0 before anything was learned. */
double fc_short(const struct fc *f, uint32_t h_s);

/* Holt-Winters: expected requests per second during the minute h_min minutes after
 * the last closed one, (level + h trend + season[slot]) / 60, never below 0. Before a
 * whole season is learned, the mean of the minutes seen so far (no shape). */
double fc_day(const struct fc *f, uint32_t h_min);

/* Whether a whole season has been learned (fc_day has a shape). */
int fc_day_ready(const struct fc *f);

/* Save: copy the state into buf (len >= sizeof(struct fc)). Returns the bytes
 * written, or 0 if buf is too small. */
size_t fc_save(const struct fc *f, void *buf, size_t len);

/* Restore from buf; checks size, magic, version, m and that every number is finite
 * (a corrupt or foreign snapshot means a cold start, never a crash). Returns 0, or -1
 * with *f untouched. Call fc_advance with the new clock next: a far-off time
 * re-anchors (FC_REBASE_S) and the caller may adjust f->phase_s first. */
int fc_restore(struct fc *f, const void *buf, size_t len);

/* Checks the forecaster's invariants (what fc_restore demands of a saved state): magic
 * and version, 2 <= m <= FC_SEASON_MAX, every number finite. Returns 0, or -1 with the
 * first violation in err (err may be NULL). */
int fc_verify(const struct fc *f, char *err, size_t errlen);

#endif /* FORECAST_H */
