/* policy-t.h: the loaded policy file, as plain immutable data. Types only.
 * Built by load.c (through cfg.c, the only libconfig user), read by every other policy/ module.
 * Names are copied into fixed arrays so a policy is one allocation plus the agent's
 * strings, and nothing in it points into libconfig's tree. */
#ifndef POLICY_T_H
#define POLICY_T_H

#include <stdbool.h>
#include <stdint.h>

#include "aimd-t.h"
#include "anomaly-t.h"
#include "breaker-t.h"
#include "forecast-t.h"
#include "outcome-t.h"
#include "pay-t.h"
#include "srate-t.h"

/* Hard limits, checked by the loader. Backend sets are 64-bit masks. */
#define POL_MAX_BACKENDS    64
#define POL_MAX_ACCOUNTS    64
#define POL_MAX_CLASSES     16
#define POL_MAX_RULES       128
#define POL_MAX_FEES        32
#define POL_MAX_FEE_RATES   16
#define POL_MAX_REGIONS     15   /* + the implicit "other" region */
#define POL_MAX_CURRENCIES  64
#define POL_MAX_ENDPOINTS   32
#define POL_MAX_COMPLIANCE  32
#define POL_MAX_CONNECT     256
#define POL_MAX_PREFIXES    32
#define POL_NAME_MAX        63   /* bytes of a name, without NUL */
#define POL_PATTERN_MAX     127
#define POL_PREFIX_MAX      15
#define POL_MAX_DECLINES    160  /* decline-table rules: built-in defaults + overrides */
#define POL_URL_MAX         255  /* bytes of a probe or webhook URL, without NUL */
#define POL_MAX_WEBHOOKS    4

/* Region indices: 0..nregions-1 are the policy's `regions`; POL_REGION_OTHER is a
 * known country listed in no region; POL_REGION_UNKNOWN is an absent or malformed
 * card_country (no cross-border surcharge is assumed then). */
#define POL_REGION_OTHER    POL_MAX_REGIONS
#define POL_REGION_UNKNOWN  0xff
#define POL_REGION_ANY      0xfe /* in a fee row: matches every region */

enum pol_funding {
	POL_FUND_ANY = 0, /* in a fee row: every funding; in a request: absent/unknown */
	POL_FUND_CREDIT,
	POL_FUND_DEBIT,
	POL_FUND_PREPAID,
	POL_FUND_COUNT
};

/* One row of a fee schedule: applies to cards of `region` and `funding`. The percent
 * is either given directly or as IC++ components (interchange + scheme + markup). */
struct pol_fee_rate {
	uint8_t region;        /* region index or POL_REGION_ANY */
	uint8_t funding;       /* enum pol_funding */
	bool all_in;           /* true: no cross-border surcharge on top of this row */
	bool has_fixed;
	double pct;            /* percent of the amount */
	double fixed;          /* minor units of the presentment currency */
};

struct pol_fee {
	char name[POL_NAME_MAX + 1];
	double pct;            /* base percent */
	double fixed;          /* base fixed fee, minor units of the presentment currency */
	double cross_border_pct; /* card region != backend region */
	double fx_pct;         /* presentment currency not among the backend's settlement ones */
	int nrates;
	struct pol_fee_rate rates[POL_MAX_FEE_RATES]; /* first match wins */
	int line;
};

struct pol_backend {
	char name[POL_NAME_MAX + 1];    /* HAProxy backend name */
	char account[POL_NAME_MAX + 1]; /* Stripe account id */
	char entity[POL_NAME_MAX + 1];  /* legal entity */
	int account_idx;                /* index into policy.accounts */
	int fee;                        /* index into policy.fees */
	uint8_t region;                 /* region of the entity */
	bool enabled;
	bool connect;                   /* a Connect platform: serves unknown Stripe-Account */
	uint64_t currencies;            /* presentment currencies served (bit = currency idx) */
	uint64_t settlement;            /* settled without conversion */
	double latency_ms;              /* prior latency, for the latency penalty */
	float p_auth[POL_MAX_REGIONS + 2]; /* prior P(auth) by card region; last = unknown */
	uint64_t same_account;          /* mask of backends sharing this account */
	/* Active probe (spoa/probe.c): probe_url "" = none. A probe is judged failed when it
	 * times out, fails at the transport or TLS level, or answers another status. */
	char probe_url[POL_URL_MAX + 1];
	char probe_ca_file[256];        /* "" = the system's CA store */
	double probe_interval_s, probe_timeout_s;
	int probe_status;               /* the expected HTTP status */
	int line;
};

/* A rate budget: GCRA with `rate` requests per second and `burst` requests of
 * tolerance. */
struct pol_budget {
	double rate;
	double burst;
};

struct pol_account {
	char id[POL_NAME_MAX + 1];
	struct pol_budget budget;
};

struct pol_endpoint {
	char name[POL_NAME_MAX + 1];
	char method[16];                /* "" = any */
	char path[POL_PATTERN_MAX + 1];
	struct pol_budget budget;
	int line;
};

struct pol_class {
	char name[POL_NAME_MAX + 1];
	int prio;           /* HAProxy priority class, -2047..2047, lower first */
	int offset_ms;      /* base priority offset */
	double reserve;     /* share of every budget reserved for this class, 0..0.9 */
	int shed_order;     /* 1 = shed first */
	int queue_ms;       /* longest wait worth queueing instead of rejecting */
	double explore;     /* share of decisions that may explore (Thompson draws), 0..0.5 */
	double reserved_above; /* computed: sum of reserves of classes with a lower prio */
	bool most_protected;   /* computed: the highest shed_order (ties included): never shed by a
	                        * forecast, and the class a held backend's spare budget serves */
	int line;
};

/* A classification rule. Empty strings mean "any". */
struct pol_rule {
	char method[16];
	char path[POL_PATTERN_MAX + 1];
	char hint[POL_NAME_MAX + 1];
	int cls;
	int line;
};

/* When a request matches (region in `regions` if set, currency in `currencies` if set),
 * only backends in `allowed` remain. Several matching rules intersect. */
struct pol_compliance {
	char name[POL_NAME_MAX + 1];
	uint32_t regions;      /* bit = region index (incl. OTHER); 0 = any */
	uint64_t currencies;   /* 0 = any */
	uint64_t allowed;      /* backend mask */
	int line;
};

struct pol_connect {
	char account[POL_NAME_MAX + 1];
	uint64_t backends;
};

struct policy {
	char file[256];
	struct pol_agent agent;
	struct pol_fleet fleet;
	char agent_buf[9][256];         /* storage behind the agent's optional strings */
	char listen_buf[POL_MAX_LISTENERS][256];

	int nregions;
	char region_names[POL_MAX_REGIONS + 1][POL_NAME_MAX + 1]; /* + "other" */
	uint8_t country_region[26 * 26]; /* "AA".."ZZ" → region index or POL_REGION_OTHER */

	int ncurrencies;
	uint32_t currencies[POL_MAX_CURRENCIES]; /* lower-case ISO code packed in 24 bits */

	int nfees;
	struct pol_fee fees[POL_MAX_FEES];

	int nbackends;
	struct pol_backend backends[POL_MAX_BACKENDS];
	int default_backend;

	int naccounts;
	struct pol_account accounts[POL_MAX_ACCOUNTS];

	int nclasses;
	struct pol_class classes[POL_MAX_CLASSES];
	int nrules;
	struct pol_rule rules[POL_MAX_RULES];
	int default_class;
	bool trust_hints;

	int ncompliance;
	struct pol_compliance compliance[POL_MAX_COMPLIANCE];

	int nconnect;
	struct pol_connect connect[POL_MAX_CONNECT];

	struct {
		uint32_t idem_ttl_s, object_ttl_s, account_ttl_s;
		uint32_t idem_slots, object_slots, account_slots; /* pins kept for the TTL (load.c sizes idem) */
		int nprefixes;
		char prefixes[POL_MAX_PREFIXES][POL_PREFIX_MAX + 1];
	} pin;

	struct {
		struct pol_budget account;      /* default per-account budget */
		struct pol_budget endpoint;     /* default per-endpoint budget */
		int nendpoints;
		struct pol_endpoint endpoints[POL_MAX_ENDPOINTS]; /* first match wins */
	} thr;

	struct {
		double nominal_amount;  /* minor units, when a request carries no amount */
		double latency_cost;    /* minor units per ms of expected latency */
		double load_cost;       /* minor units at a fully used account budget */
	} score;

	/* The learning loop (policy/learning.md). Every key has a default, so files written
	 * before it existed load unchanged. */
	struct {
		struct brk_cfg cfg;
		uint32_t max_ejected_permille; /* ejection cap (share of backends), 0..1000 */
		int64_t slow_ms;               /* a call slower than this counts as slow; 0 = never */
		double degraded_factor;        /* score factor of a breaker kept open by the cap */
		double scope_factor;           /* a segment answered at most this share (relative,
		                                * learning.answer_*) is scored away: its failures
		                                * do not open the breaker while another segment
		                                * answers normally; 0 = off */
	} breaker;
	struct {
		struct srt_cfg cfg;            /* prior_a/prior_b unused: the backend's prior is used */
		double prior_weight;           /* pseudo-observations behind the policy's auth_rate */
		double explore;                /* default per-class exploration share */
		double explore_untested;       /* ... raised to this while a candidate is untested
		                                * (its own evidence has not yet reached min_n once:
		                                * pol_view.tested, pol_p_auth); 0 = never raised */
		double floor_k;                /* Juspay's p_max - k sigma floor; < 0 = off */
		uint32_t publish_ms;           /* how often workers get a fresh posterior snapshot */
		bool errors_count;             /* PSP errors count as failed authorisations */
		double answer_half_life_s;     /* segment's timed-out share: half-life, 0 = off */
		double answer_prior;           /* ... answered calls it starts from (pseudo-count) */
		double answer_max_n;           /* ... evidence cap (a new call displaces old weight) */
		double answer_min_timeouts;    /* ... discounted timeouts before it counts at all */
		double customer_weight;        /* a customer-fault decline's weight as a failure (0..1) */
		double latency_alpha;          /* EWMA weight of one answer's latency */
		/* Decisions never answered by pay-response (HAProxy sends none for the 502/503/
		 * 504 it generates itself): engine-learn.c, policy/learning.md */
		struct {
			bool enabled;
			uint32_t grace_ms;         /* a decision unanswered this long is missing */
			uint32_t min_calls;        /* missing ones teach only after this many decisions */
			double min_share;          /* ... of which at least this share went missing */
			double grace_latency;      /* a backend's grace is at least this many times
			                            * its learned latency (0: grace_ms for all) */
			uint32_t max_grace_ms;     /* ... but at most this long */
		} unans;
	} learn;
	struct {
		bool enabled;
		struct anom_cfg cfg;
	} anomaly;
	struct {
		bool enabled;                  /* false: forecasts are kept, never acted upon */
		struct fc_cfg cfg;
		uint32_t horizon_s;            /* look this many seconds ahead */
		double headroom;               /* shed when demand > headroom x budget */
		double exit_ratio;             /* unshed when demand < exit_ratio x headroom x budget */
		uint32_t min_shed_ms;          /* a shed lasts at least this long */
		int retry_after_s;             /* Retry-After of a shed request */
	} forecast;
	struct {
		bool enabled;
		double md;                     /* multiplicative decrease on a rate-limit 429 */
		double ai_share;               /* recovery per second, share of the configured rate */
		double floor_share;            /* never below this share of the configured rate */
		uint64_t cooldown_us;
		double plateau, probe;         /* recovery after a cut: aimd_cfg's */
		uint64_t forget_us;
		uint64_t hold_us;              /* held at the level last cut this long: probe above */
	} adaptive;
	/* Signed webhooks (spoa/webhook.c): every event is POSTed to each URL. */
	struct {
		int nurls;
		char urls[POL_MAX_WEBHOOKS][POL_URL_MAX + 1];
		char secret_file[256];         /* the HMAC key: this file's bytes (one trailing newline dropped) */
		char secret_env[64];           /* ... or this environment variable's */
		uint32_t queue;                /* deliveries waiting or in flight, at most */
		uint32_t retries;              /* attempts after the first */
		double backoff_s, backoff_max_s, timeout_s;
	} hook;
	/* Outcome classification; oc.rules points at oc_rules (a policy never moves). */
	struct oc_table oc;
	struct oc_rule oc_rules[POL_MAX_DECLINES];
};

#endif /* POLICY_T_H */
