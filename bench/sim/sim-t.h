/* sim-t.h: the decision-quality simulator's types (scenario, true backend model, traffic,
 * per-run state and results). Types only; included by bench/payspoa-sim.c alone.
 *
 * Units, everywhere in the simulator: simulated time in microseconds (uint64_t, 0 = the
 * scenario's start), scenario times in seconds (double), money in minor units of the
 * presentment currency until it is summed, then in US cents (each currency's `usd`
 * factor converts: 1 minor unit = usd US cents). */
#ifndef SIM_T_H
#define SIM_T_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_NAME        48  /* bytes of a name, with NUL */
#define SIM_CODE        8   /* currency, country: with NUL */
#define SIM_MAX_CUR     16
#define SIM_MAX_BACKENDS 8
#define SIM_MAX_ACCOUNTS SIM_MAX_BACKENDS
#define SIM_MAX_FEE_ROWS 8
#define SIM_MAX_AUTH    16  /* auth rules per backend */
#define SIM_MAX_CLASSES 8
#define SIM_MAX_SEGS    32
#define SIM_MAX_INCIDENTS 16
#define SIM_MAX_SURGES  8
#define SIM_MAX_STRATS  8
#define SIM_OBJ_RING    4096 /* created objects a strategy remembers for later operations */

/* A segment pattern: each field "" matches anything ("*" in the file). */
struct sim_match {
	char cur[SIM_CODE];
	char region[SIM_NAME];
	char brand[SIM_NAME];
	char funding[SIM_NAME];
};

struct sim_fee_row {
	char region[SIM_NAME];  /* "" = any */
	char funding[SIM_NAME]; /* "" = any */
	double pct, fixed;
	bool has_fixed, all_in;
};

/* The true fee schedule of a backend: what the PSP really charges on an authorised
 * payment, computed by the simulator (never by the engine's cost model). */
struct sim_fee {
	double pct;            /* percent of the amount */
	double fixed;          /* minor units of the presentment currency */
	double cross_border;   /* percent, card region != backend region (unless all_in) */
	double fx;             /* percent, currency not among the backend's settlement ones */
	int nrows;
	struct sim_fee_row rows[SIM_MAX_FEE_ROWS]; /* first match replaces pct (and fixed) */
};

struct sim_auth_rule {
	struct sim_match m;
	double p;
};

/* One backend's true behaviour outside incidents. */
struct sim_backend {
	char name[SIM_NAME];    /* must equal the policy's (and HAProxy's) backend name */
	char account[SIM_NAME];
	char region[SIM_NAME];  /* the entity's region, for cross-border fees */
	int acct;               /* index into scenario accounts (shared rate limit) */
	uint32_t currencies;    /* bit = scenario currency index: presentment served */
	uint32_t settlement;    /* bit = scenario currency index: settled without FX */
	struct sim_fee fee;
	double auth;            /* P(auth) when no rule matches */
	int nauth;
	struct sim_auth_rule auth_rules[SIM_MAX_AUTH]; /* first match wins */
	double lat_median_ms, lat_sigma; /* lognormal latency */
	double timeout_ms;      /* HAProxy `timeout server`: the client sees 504 after it */
	double load_ms;         /* latency grows with load: median + load_ms per request in flight there */
	double error_rate;      /* baseline share of 500s */
	double soft_declines;   /* share of declines that are soft (generic, do_not_honor) where this
	                         * backend is a segment's best; the customer's declines are the same
	                         * on every backend, a worse one's extra declines soft (sim_p_customer) */
};

/* A Stripe account's true rate limit: token bucket, 429 + global-rate when empty. */
struct sim_account {
	char name[SIM_NAME];
	double rate, burst;     /* requests/s, requests */
};

/* A true per-endpoint limit of one account (Stripe limits some endpoints below the
 * account's global rate): its own token bucket, 429 + `endpoint-rate` when empty. */
#define SIM_MAX_ENDPOINTS 24
struct sim_endpoint {
	int acct;
	char method[8];         /* "" = any */
	char path[96];          /* glob (fnmatch) against the request's path */
	double rate, burst;
	uint32_t classes;       /* bit = class index whose requests it counts (set at load) */
};

struct sim_currency {
	char code[SIM_CODE];
	double usd;             /* US cents per minor unit */
};

enum sim_kind {
	SIM_CHARGE = 0,  /* creates a payment: issuer decides, fees on success, object made */
	SIM_OBJECT,      /* an operation on an object created earlier: must reach its account */
	SIM_PLAIN,       /* anything else: succeeds when the backend is healthy */
};

struct sim_class {
	char name[SIM_NAME];    /* "checkout" is the class checkout success is about */
	double share;
	enum sim_kind kind;
	char method[8];
	char path[96];          /* "{id}" is replaced by an object id for SIM_OBJECT */
	char hint[SIM_NAME];    /* X-Pay-Class, "" = none */
};

struct sim_segment {
	int cur;                /* scenario currency index */
	char country[SIM_CODE];
	char region[SIM_NAME];
	char brand[SIM_NAME];
	char funding[SIM_NAME];
	double share;
	double amount_median;   /* minor units */
	double amount_sigma;    /* lognormal sigma */
};

struct sim_surge {
	double start_s, end_s, ramp_s, factor;
};

enum sim_incident_kind {
	SIM_INC_OUTAGE = 0,   /* every request fails: fast 503s or timeouts */
	SIM_INC_BROWNOUT,     /* error_rate of requests answer 500 */
	SIM_INC_LATENCY,      /* latency multiplied by factor (timeouts follow) */
	SIM_INC_AUTH_DRIFT,   /* P(auth) of matching segments moves linearly to `to` */
	SIM_INC_DECLINES,     /* customers' cards decline: P(auth) × factor, hard declines */
	SIM_INC_RATE_LIMIT,   /* the account's true rate limit becomes `rate` */
	SIM_INC_COUNT
};

/* The decline code of a decline storm's (or an auth drift's) extra declines: the customer's fault, a soft
 * decline, or the issuer's side (what a better-connected acquirer may get past). */
enum sim_decline {
	SIM_INC_DECLINE_FUNDS = 0, /* insufficient_funds (default) */
	SIM_INC_DECLINE_GENERIC,   /* generic_decline */
	SIM_INC_DECLINE_DNH,       /* do_not_honor */
	SIM_INC_DECLINE_PROCESSING,/* processing_error */
	SIM_INC_DECLINE_ISSUER_NA, /* issuer_not_available */
	SIM_INC_DECLINE_COUNT
};

struct sim_incident {
	char name[SIM_NAME];
	enum sim_incident_kind kind;
	int backend;            /* -1 = every backend */
	double start_s, end_s;
	bool timeouts;          /* outage: requests time out instead of fast 503s */
	double error_rate;      /* brownout */
	double factor;          /* latency multiplier, decline-storm P(auth) multiplier */
	double to;              /* auth drift: P(auth) reached at end_s (kept after) */
	double rate;            /* rate limit: requests/s during the incident */
	double ramp_s;          /* the effect grows linearly from 0 at start_s to full at start_s + ramp_s */
	int decline;            /* decline storm, auth drift: enum sim_decline of its extra declines;
	                         * -1 (auth drift without `decline`): the usual draw */
	struct sim_match m;     /* affected segments ("" = all; not rate_limit) */
	bool detect;            /* time to detect is measured (backend health incidents) */
};

enum sim_headline {
	SIM_HL_CHECKOUT = 0,  /* checkout success, higher is better */
	SIM_HL_AUTH,          /* authorisation rate, higher is better */
	SIM_HL_FEES,          /* fees in bps of authorised volume, lower is better */
	SIM_HL_429,           /* upstream 429s, lower is better */
};

struct sim_scenario {
	char file[512];
	char dir[512];          /* the scenario file's directory: policies are relative to it */
	char name[SIM_NAME];
	char description[256];
	char policy[1024];      /* path of the policy file payspoa runs with */
	char policy_nofc[1024]; /* "" or the same engine with forecasting switched off */
	uint64_t seed;
	double duration_s;
	double tick_ms;         /* pol_tick period, simulated */
	double start_hour;      /* hour of day at t = 0 (daily shape) */
	int start_wday;         /* day of week at t = 0, 0 = Monday (weekly shape) */
	enum sim_headline headline;
	int primary;            /* the primary/backup baseline's primary backend */
	int maxconn;            /* HAProxy: each server's maxconn (haproxy/haproxy.cfg: 128) */
	double timeout_queue_s; /* HAProxy: `timeout queue` (5 s), then a 503 of its own */

	int ncur;
	struct sim_currency cur[SIM_MAX_CUR];
	int nbackends;
	struct sim_backend backends[SIM_MAX_BACKENDS];
	int naccounts;
	struct sim_account accounts[SIM_MAX_ACCOUNTS];
	int nendpoints;
	struct sim_endpoint endpoints[SIM_MAX_ENDPOINTS];

	/* traffic */
	double rate;            /* mean arrivals per second before shapes and surges */
	double daily[24];       /* multipliers by hour, interpolated; all 1 if absent */
	double weekly[7];       /* multipliers by day, 0 = Monday; all 1 if absent */
	int nsurges;
	struct sim_surge surges[SIM_MAX_SURGES];
	double retry_share;     /* share of clients that retry failed or shed requests */
	int retry_max;          /* retries after the first attempt */
	double retry_backoff_s; /* first back-off after an error; doubles per retry */
	int nclasses;
	struct sim_class classes[SIM_MAX_CLASSES];
	int checkout;           /* index of the class named "checkout", -1 if none */
	int nsegs;
	struct sim_segment segs[SIM_MAX_SEGS];

	int nincidents;
	struct sim_incident incidents[SIM_MAX_INCIDENTS];
};

enum sim_strategy {
	SIM_S_PAYSPOA = 0,
	SIM_S_PAYSPOA_NOFC,   /* payspoa with the scenario's policy_noforecast */
	SIM_S_RR,             /* round robin over backends that serve the currency */
	SIM_S_HAP,            /* primary/backup with HAProxy passive + active health checks */
	SIM_S_STATIC,         /* entity by card region */
	SIM_S_ORACLE,         /* knows the truth: max expected net value, never over a limit */
	SIM_S_COUNT
};

#define SIM_DETECT_UNUSED (-1.0) /* the strategy sent < 10 % of the segment there before */
#define SIM_DETECT_NEVER  (-2.0) /* it kept sending until the incident ended */

/* One bin of a strategy's time series (--series, --plot). Counts by time of the event:
 * issuer answers when they arrive, creations and sheds when decided, 429s when sent. */
struct sim_bin {
	uint32_t ok, declined;               /* final issuer answers of charges */
	uint32_t created;                    /* creations routed (first attempts, not shed) */
	uint32_t to[SIM_MAX_BACKENDS];       /* of those, per backend */
	uint32_t shed[SIM_MAX_CLASSES];
	uint32_t up429;
};

#define SIM_MAX_ANSWERS 16 /* payspoa-sim.c's enum sim_answer: the answers a response can carry */
#define SIM_LAT_BINS 400   /* latency histogram: bin i holds [1.05^i, 1.05^(i+1)) ms */

/* What one strategy achieved on one scenario. Counts are over logical requests (a
 * client's request with all its retries) unless said otherwise. */
struct sim_result {
	enum sim_strategy strategy;
	bool ran;
	uint64_t arrivals;                   /* logical requests */
	uint64_t logical[SIM_MAX_CLASSES];   /* logical requests per class */
	uint64_t succeeded[SIM_MAX_CLASSES]; /* ended 2xx */
	uint64_t shed[SIM_MAX_CLASSES];      /* rejections (attempts), per class */
	uint64_t end_declined[SIM_MAX_CLASSES]; /* logical requests that ended declined (402) */
	uint64_t end_shed[SIM_MAX_CLASSES];  /* ... that ended failed on a local rejection (shed) */
	uint64_t end_err[SIM_MAX_CLASSES];   /* ... that ended failed on a 429, 5xx or timeout */
	uint64_t charges_ok, charges_declined; /* final issuer answers of charges */
	uint64_t declines[SIM_MAX_ANSWERS];  /* charges that ended declined, by answer (decline code) */
	double fees_usd, volume_usd;         /* US cents on authorised charges */
	uint64_t attempts, upstream;         /* decisions taken, requests sent upstream */
	uint64_t up429, up429_checkout;      /* upstream 429s with a rate-limit reason */
	uint64_t up5xx;                      /* upstream 5xx and timeouts */
	uint64_t duplicates;                 /* a charge executed on a second account */
	uint64_t misrouted;                  /* object operations sent to a foreign account */
	uint64_t queued;                     /* queue verdicts */
	uint64_t srv_queued;                 /* attempts that waited in a server's queue (maxconn) */
	uint64_t away_events, away_false;    /* routing-away episodes, on calm backends */
	bool has_breakers;                   /* payspoa (engine state), primary-backup (mark-down) */
	uint64_t breaker_opens, breaker_false; /* opens, opens on calm backends */
	uint64_t dropped;                    /* requests lost because the pool was full */
	double detect_s[SIM_MAX_INCIDENTS];  /* seconds, or SIM_DETECT_* */
	double return_s[SIM_MAX_INCIDENTS];  /* after the repair, seconds until the share is back to 3/4
	                                      * of the pre-incident one; NEVER, or UNUSED when never detected */
	uint64_t seg_to[SIM_MAX_SEGS][SIM_MAX_BACKENDS]; /* creations routed, per segment and backend */
	uint32_t lat_hist[SIM_LAT_BINS];     /* upstream answers' latency */
	struct sim_bin *series;              /* NULL, or nbins bins of series_bin_s (caller frees) */
	uint32_t nbins;
	double series_bin_s;
	double decide_ns;                    /* wall clock spent in decisions */
	double wall_s;                       /* wall clock of the whole run */
};

#endif /* SIM_T_H */
