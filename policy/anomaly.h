/* anomaly.h: per-backend anomaly detection on error rate and latency (EWMA control
 * charts with hysteresis), giving a score factor.
 * Pure: time is passed in, no clock, no I/O, no allocation, no globals. */
#ifndef ANOMALY_H
#define ANOMALY_H

#include <stddef.h>

#include "anomaly-t.h"

/* Fill c with the defaults noted in anomaly-t.h. */
void anom_cfg_default(struct anom_cfg *c);

/* NULL if c is usable, else a static message. */
const char *anom_cfg_check(const struct anom_cfg *c);

void anom_init(struct anom *a, uint64_t now_us);

/* Feed one tick's aggregate for the backend: n requests, of which `errors` failed
 * (PSP errors: the caller classifies), and the sum of their latencies in ms. Ticks are
 * pooled until they hold min_requests requests, so a quiet backend is judged on enough
 * data; a pooled sample x (error rate errors/n, mean latency) then updates each chart:
 *
 *   z <- lambda x + (1 - lambda) z                    (the EWMA statistic)
 *   sigma_z = max(sd, min_sd) sqrt(lambda / (2 - lambda))   (its steady-state sd)
 *   alarm  when z > mean + max(limit_k sigma_z, min_delta) for enter_samples in a row
 *   clear  when z < mean + max(exit_k sigma_z, min_delta exit_k / limit_k)
 *          for exit_samples in a row
 *
 * and the baseline (mean, var) learns x at base_lambda when the chart is in control
 * and x is under the limit, at alarm_lambda otherwise (West's EWM variance:
 * var <- (1 - r)(var + r d^2), mean <- mean + r d, d = x - mean). During warm-up only
 * the baseline learns, at max(base_lambda, 1/samples) (a plain mean at first).
 * Only upward shifts alarm: fewer errors or faster answers are never anomalies.
 * Returns the state after the tick. */
enum anom_state anom_tick(struct anom *a, const struct anom_cfg *c, uint64_t n,
                          uint64_t errors, double lat_sum_ms, uint64_t now_us);

/* One answer's latency as the latency chart should pool it: at most lat_clip x the
 * learned normal mean once warmed up (winsorised). The mean of a few answers from a
 * widely spread (lognormal) backend is dominated by its rare slow ones, and its
 * variance, learned online, mostly underestimated: clipped, a hang still shows as
 * lat_clip x the normal, while one slow answer in thirty moves the mean by at most
 * lat_clip / 30 of it. */
double anom_clip_latency(const struct anom *a, const struct anom_cfg *c, double lat_ms);

/* Forget an alarm without changing the baselines: the backend was shown healthy another
 * way (its breaker's probes succeeded) or has had no traffic to judge it on for a long
 * time (a degraded backend scored down may get none, and could never clear). The charts
 * restart in control, at their baselines, and the requests pooled so far are dropped. */
void anom_clear(struct anom *a, uint64_t now_us);

/* The factor scoring applies (engine-learn.c): 1 when normal; per chart in alarm, for
 * the error chart the share of calls answered relative to the normal share,
 * (1 - rate) / (1 - normal rate) in [0, 1] (c->err_priced; else c->factor), times, for
 * the latency chart, c->factor (so factor^2 with both and neither priced nor confirmed)
 * - but a latency alarm counts only while lat_ms, the latency scoring prices (the
 * backend's learned latency), is at least c->lat_confirm x the chart's normal mean
 * (c->lat_confirm 0: always). Scoring already charges latency_cost for every ms of
 * lat_ms; the factor stands for what the price does not see (a backend on its way to hanging: timeouts, lost answers). A chart
 * whose clipped ~10-answer point crossed mean + 0.5 mean on a backend with spread-out
 * healthy latency (lognormal sigma ~1.2: such points cross it now and then) while its
 * ~40-answer learned latency stays near the normal is not that, and halving its P(auth)
 * sent cards to a dearer backend that authorises less (issue 11). */
double anom_score_factor(const struct anom *a, const struct anom_cfg *c, double lat_ms);

/* "normal" or "degraded". */
const char *anom_state_name(enum anom_state s);

/* Checks the detector's invariants: a known state, alarms only of known charts and only
 * while degraded (and degraded only with one), charts finite with a variance >= 0,
 * pending errors never more than pending requests. Returns 0, or -1 with the first
 * violation in err. */
int anom_verify(const struct anom *a, char *err, size_t errlen);

#endif /* ANOMALY_H */
