/* anomaly-t.h: types of the per-backend anomaly detector (EWMA control charts).
 * Types only: no functions, nothing beyond the C library. */
#ifndef ANOMALY_T_H
#define ANOMALY_T_H

#include <stdbool.h>
#include <stdint.h>

enum anom_state {
	ANOM_NORMAL = 0,
	ANOM_DEGRADED,
};

/* Which chart is out of control (bits of struct anom.alarms). */
#define ANOM_ERR 0x01u /* error rate */
#define ANOM_LAT 0x02u /* mean latency */

struct anom_cfg {
	double lambda;         /* EWMA weight of the newest sample, 0 < l <= 1 (0.25) */
	double base_lambda;    /* baseline mean/variance learning rate when in control (0.02) */
	double alarm_lambda;   /* the same while in alarm: a lasting shift becomes the new
	                        * normal after ~1/alarm_lambda samples; 0 = never (0.002) */
	double limit_k;        /* enter when the statistic passes mean + k sigma_z (3) */
	double exit_k;         /* leave when it is back under mean + exit_k sigma_z (1.5) */
	uint32_t warmup;       /* samples that only teach the baseline (20) */
	uint32_t enter_samples;/* consecutive samples above the limit to enter (2) */
	uint32_t exit_samples; /* consecutive samples under the exit line to leave (5) */
	uint32_t min_requests; /* ticks are pooled until they hold this many requests (10) */
	double err_min_sd;     /* floor on the error-rate sd, as a rate (0.01) */
	double err_min_delta;  /* smallest error-rate rise that may alarm (0.05) */
	double lat_min_sd_ms;  /* floor on the latency sd (5 ms) */
	double lat_min_delta_ms; /* smallest latency rise that may alarm (50 ms) */
	double lat_min_rise;   /* and at least this share of the learned mean latency (0.5):
	                        * the mean of a few lognormal answers is skewed, and a
	                        * backend half again as slow as its normal is not broken */
	double lat_clip;       /* answers pool at most this x the normal mean (4; 0 = off):
	                        * anom_clip_latency() */
	double factor;         /* score factor per chart in alarm, 0..1 (0.5) */
	bool err_priced;       /* an error alarm scales the score by the share of calls that
	                        * answer, (1 - rate now) / (1 - normal rate), not by factor */
	double lat_confirm;    /* a latency alarm scales the score only while the latency
	                        * scoring prices is at least this x the chart's normal mean
	                        * (1.5; 0 = always): anom_score_factor() */
};

/* One EWMA chart (Roberts 1959, with an online baseline). A sample is the mean of the
 * n answers pooled into it, so its variance is var / n: var is the spread of one
 * answer (learned as n x the squared deviation of the sample mean), and the limits
 * follow both the backend's own spread and the evidence behind each point. */
struct anom_chart {
	double mean, var; /* in-control baseline: mean, and variance of one answer */
	double z;         /* EWMA statistic */
	double zw;        /* sum of lambda^2 (1 - lambda)^2i / n_i over the samples in z:
	                   * var(z) = var x zw (lambda / (n (2 - lambda)) at a constant n) */
	uint32_t above;   /* consecutive samples above the control limit */
	uint32_t below;   /* in alarm: consecutive samples under the exit line */
};

/* One backend's detector. A plain value: copy it to publish it. */
struct anom {
	uint8_t state;        /* enum anom_state */
	uint8_t alarms;       /* ANOM_ERR | ANOM_LAT */
	uint32_t samples;     /* samples taken (pooled ticks) */
	uint64_t since_us;    /* when the state last changed */
	/* ticks not yet pooled into a sample */
	uint64_t pend_n, pend_err;
	double pend_lat_ms;   /* sum of latencies, ms */
	struct anom_chart err, lat;
};

#endif /* ANOMALY_T_H */
