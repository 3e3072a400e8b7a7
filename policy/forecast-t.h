/* forecast-t.h: types of the request-rate forecasters (Holt per second, Holt-Winters
 * per minute with a daily season). Types only: nothing beyond the C library. */
#ifndef FORECAST_T_H
#define FORECAST_T_H

#include <stdint.h>

#define FC_SEASON_MAX 1440     /* one day of one-minute slots (~11.5 KB of state) */
#define FC_MAGIC      0x50464331u /* "PFC1" */
#define FC_VERSION    1u

/* Smoothing settings, from the policy. Not part of the saved state: a reload may
 * retune them and keep learning. */
struct fc_cfg {
	double alpha, beta;            /* Holt, per second: level and trend (0.3, 0.05) */
	double hw_alpha, hw_beta, hw_gamma; /* Holt-Winters, per minute (0.001, 0, 0.4):
	                                * a slow level (~17 h) so the season, not the
	                                * level, takes the shape of the day; no trend by
	                                * default (a day-ahead trend extrapolates
	                                * intraday slopes) */
	uint32_t season;               /* slots m, 2..FC_SEASON_MAX (1440) */
};

/* One forecaster's whole state: flat, fixed size, no pointers, zeroed padding, so
 * saving is a memcpy and restoring is a memcpy plus fc_restore()'s checks. Times are
 * "aligned seconds": now_us / 1e6 + phase_s (see fc_init). */
struct fc {
	uint32_t magic;    /* FC_MAGIC */
	uint32_t version;  /* FC_VERSION */
	uint32_t m;        /* seasonal slots in use */
	uint32_t started;  /* 0 until the first observation */
	int64_t phase_s;   /* added to monotonic seconds so minute slots follow the day */
	uint64_t sec;      /* aligned second being accumulated */
	uint64_t min;      /* aligned minute being accumulated */
	double sec_acc;    /* requests counted in `sec` so far */
	double min_acc;    /* requests counted in `min` so far */
	/* Holt on per-second counts */
	double level, trend;
	uint64_t n_sec;    /* seconds learned */
	/* Holt-Winters on per-minute counts */
	double w_level, w_trend;
	uint64_t n_min;    /* minutes learned; the first m only initialise the season */
	double season[FC_SEASON_MAX];
};

#endif /* FORECAST_T_H */
