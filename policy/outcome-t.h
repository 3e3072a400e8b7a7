/* outcome-t.h: types for classifying a reported outcome before anything learns from it.
 * Types only: no functions, nothing beyond the C library. */
#ifndef OUTCOME_T_H
#define OUTCOME_T_H

#include <stdint.h>

/* What an outcome says about the backend that served it (DESIGN.md §4). Only
 * OC_PSP_ERROR may ever count against a backend's health; OC_DECLINE_CUSTOMER must
 * not (a breaker never opens because customers' cards are declined). */
enum oc_kind {
	OC_SUCCESS = 0,      /* 2xx */
	OC_DECLINE_CUSTOMER, /* issuer decline that is the customer's fault: no effect */
	OC_DECLINE_SOFT,     /* issuer decline that counts against the auth rate */
	OC_PSP_ERROR,        /* 5xx (Stripe's or HAProxy's own 502/503/504), no answer */
	OC_RATE_LIMITED,     /* 429 with Stripe-Rate-Limited-Reason */
	OC_LOCK_CONFLICT,    /* 429 without it: another request holds the object */
	OC_CLIENT_ERROR,     /* any other 4xx: our request was wrong, not the backend */
	OC_KIND_COUNT
};

/* Which limiter a 429 with a reason came from (Stripe-Rate-Limited-Reason). */
enum oc_rl {
	OC_RL_NONE = 0,           /* not a rate-limited outcome */
	OC_RL_GLOBAL_RATE,        /* global-rate: the account's request rate */
	OC_RL_GLOBAL_CONCURRENCY, /* global-concurrency */
	OC_RL_ENDPOINT_RATE,      /* endpoint-rate */
	OC_RL_ENDPOINT_CONCURRENCY,
	OC_RL_RESOURCE,           /* resource-specific (e.g. updates per PaymentIntent) */
	OC_RL_OTHER,              /* a reason we do not know: treated as global-rate */
};

/* Flags that qualify a kind; several may be set. */
#define OC_F_SLOW      0x01u /* latency above the caller's threshold */
#define OC_F_TIMEOUT   0x02u /* no status at all (HAProxy saw no answer) */
#define OC_F_RETRY_YES 0x04u /* Stripe-Should-Retry: true */
#define OC_F_RETRY_NO  0x08u /* Stripe-Should-Retry: false */
#define OC_F_GW_TIMEOUT 0x10u /* a 504: a timeout on the way (HAProxy's `timeout server`) */

struct oc_class {
	enum oc_kind kind;
	enum oc_rl rl;  /* OC_RL_NONE unless kind == OC_RATE_LIMITED */
	uint32_t flags; /* OC_F_* */
};

/* One entry of the decline table: a Stripe decline_code (or error code) and the kind it
 * maps to (OC_DECLINE_CUSTOMER, OC_DECLINE_SOFT or OC_PSP_ERROR). Codes are stored
 * inline so the table never points into a policy file's memory. */
#define OC_CODE_MAX 47 /* bytes, without NUL; Stripe's longest is ~40 */

struct oc_rule {
	uint8_t len;
	uint8_t kind; /* enum oc_kind */
	char code[OC_CODE_MAX + 1];
};

/* The decline table, in caller-owned memory (oc_table_init). Read-only once published:
 * worker threads may classify concurrently against a table nobody writes. */
struct oc_table {
	struct oc_rule *rules;
	uint32_t n, cap;
	uint8_t unknown_kind; /* kind for a card_error whose code is not in the table */
};

#endif /* OUTCOME_T_H */
