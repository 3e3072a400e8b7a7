/* pay-t.h: the types that cross between the daemon (spoa/) and the engine (policy/).
 * Types only: no functions, no includes beyond the C library. */
#ifndef PAY_T_H
#define PAY_T_H

#include <stdbool.h>
#include <stdint.h>

/* A borrowed byte string: not NUL-terminated, owned by whoever filled it (for requests,
 * the SPOP frame being decoded; it is valid only during the call it is passed to).
 * Absent (NULL sample, or argument not sent) is { NULL, 0 }; present but empty is
 * { "", 0 }. */
struct pay_str {
	const char *ptr;
	uint32_t len;
};

/* The arguments of the `pay-request` SPOE message (DESIGN.md §3). Every field may be
 * absent. */
struct pay_request {
	struct pay_str id;           /* unique-id, correlation only */
	struct pay_str method;
	struct pay_str path;
	struct pay_str account;      /* Stripe-Account (Connect) */
	struct pay_str idem;         /* hex SHA-256 of the Idempotency-Key, never the raw key */
	struct pay_str currency;     /* ISO 4217, any case */
	struct pay_str card_country; /* ISO 3166-1 alpha-2 */
	struct pay_str card_brand;
	struct pay_str card_funding; /* credit, debit, prepaid */
	struct pay_str class_hint;   /* X-Pay-Class */
	/* Existing objects named in the body, not the path (`POST /v1/refunds
	 * payment_intent=pi_…`): the request must reach the account that holds them. */
	struct pay_str payment_intent, charge, customer;
	int64_t amount;              /* minor units; meaningful only if has_amount */
	bool has_amount;
};

/* The arguments of the `pay-response` SPOE message (DESIGN.md §3). */
struct pay_outcome {
	struct pay_str id;
	struct pay_str decision;     /* txn.pay.decision echoed back */
	struct pay_str backend;      /* be_name: the backend really used */
	struct pay_str should_retry; /* Stripe-Should-Retry */
	struct pay_str rl_reason;    /* Stripe-Rate-Limited-Reason */
	struct pay_str err_type, err_code, decline;
	struct pay_str object;       /* $.id of the created object */
	/* as in pay-request, sent whatever payspoa advised: the idempotency pin is corrected
	 * to `backend` when it names another account (a late or absent decision) */
	struct pay_str idem;         /* hex SHA-256 of the Idempotency-Key */
	struct pay_str account;      /* Stripe-Account (part of the key's identity) */
	/* HAProxy's termination state (`%ts`, two characters), log channel only: tells its
	 * own queue timeout (`sQ`) and a client that left (`C?`, `c?`) from a backend that
	 * failed (spoa/logline.c, policy/learning.md) */
	struct pay_str term;
	int64_t status;              /* HTTP status; 0 if absent */
	int64_t latency_ms;          /* -1 if absent */
	uint8_t channel;             /* enum pay_channel: who reported it */
};

/* The two outcome channels (spoa/README.md): a decision's outcome is learned from the
 * first that reports it, the other is skipped and counted. */
enum pay_channel {
	PAY_CH_SPOE = 0,             /* the pay-response SPOE message */
	PAY_CH_LOG,                  /* HAProxy's log line on agent.outcome_socket */
};

enum pay_verdict_kind {
	PAY_ALLOW = 0,
	PAY_QUEUE,
	PAY_REJECT,
};

#define PAY_REASON_MAX   96  /* bytes, without NUL */
#define PAY_DECISION_MAX 40  /* bytes, without NUL */

/* What the engine answers; the daemon turns it into txn.pay.* variables. */
struct pay_verdict {
	const char *backend;    /* NUL-terminated, owned by the policy view (valid until the
	                         * worker's next quiescent point); never NULL */
	const char *class_name; /* likewise */
	int32_t prio;           /* -2047..2047, lower is served first */
	int32_t offset_ms;      /* priority offset, -524287..524287 */
	enum pay_verdict_kind verdict;
	int32_t retry_after_s;  /* with PAY_REJECT only */
	uint8_t reason_len;
	uint8_t decision_len;
	char reason[PAY_REASON_MAX + 1];     /* space-separated tokens, e.g. "pin:idem cost" */
	char decision[PAY_DECISION_MAX + 1];
	/* This decision created a new idempotency pin here (its pin_claim won): a fleet may
	 * claim the key in Redis before the ACK leaves (spoa/fleet-claim.c). claim_key is the
	 * idempotency table's key, claim_id the pin id (pol_engine_pin_names). */
	bool claim;
	uint8_t claim_id;
	uint64_t claim_key;
};

#define POL_MAX_LISTENERS 8
/* agent.listen when the policy names none: the loopback port it always was, so that an
 * upgrade never moves an agent whose policy relied on it. conf/payspoa.conf names the
 * unix socket that haproxy/haproxy.cfg expects (haproxy/README.md, "The agent's socket"). */
#define POL_LISTEN_BUILTIN "127.0.0.1:12345"

/* The policy's `agent` section: settings the daemon needs before it can serve (filled
 * by the loader, read through pol_agent()). */
struct pol_agent {
	const char *listen[POL_MAX_LISTENERS]; /* "host:port", "[v6]:port", "unix:/path" */
	int nlisten;
	int workers;           /* 0 = one per online CPU */
	int max_connections;   /* whole process */
	int max_frame_size;    /* bytes, 256..65532; we answer min(this, HAProxy's) */
	int idle_timeout_ms;   /* a connection with nothing in flight closes after this */
	int hello_timeout_ms;  /* ... one without a HELLO after this */
	int frame_timeout_ms;  /* ... one with a frame unfinished this long */
	const char *admin_socket; /* NULL = none */
	const char *metrics;      /* "host:port" or NULL */
	const char *state_file;   /* NULL = no snapshots */
	const char *outcome_socket; /* unix datagram path of the log outcome channel, NULL = none */
	double state_interval_s;  /* between snapshots, 0 = only on SIGTERM / SIGUSR1 */
	const char *log_level;    /* "debug", "info", "warning", "error" */
	const char *user, *group; /* drop privileges to these after binding, NULL = keep */
	const char *log_syslog;   /* facility name, "none" = stderr */
	const char *id_key_file;  /* HMAC key of logged identifiers (spoa/log.h), NULL = none */
	const char *id_key_env;   /* environment variable holding it, NULL = none */
};

/* A fleet of nodes sharing pins through Redis (spoa/fleet.c); off while redis is "". */
struct pol_fleet {
	char redis[256];        /* "host:port" or "unix:/path"; "" = one node, no Redis */
	char node[64];          /* this node's name in the fleet; "" = host name and pid */
	char prefix[64];        /* of every Redis key and channel; "" = "payspoa" */
	int timeout_ms;         /* a Redis command unanswered this long: connection dropped */
	int heartbeat_ms;       /* between heartbeats */
	int node_ttl_ms;        /* a node silent this long is dropped */
	int reconnect_max_ms;   /* reconnect backoff, doubling from 50 ms up to this */
	uint32_t journal_slots; /* pins each worker may make between two drains */
	bool claim;             /* claim new idempotency pins in Redis before their ACK leaves */
	int claim_timeout_ms;   /* an ACK held for a claim is sent as decided after this */
	int lease_ms;           /* between budget leases; 0 = budgets stay local */
	int lease_ahead_ms;     /* a lease covers the demand for this long, then expires */
	int expected_nodes;     /* the fleet's size before the first heartbeat; 0 = unknown */
	int learn_ms;           /* between publications of learned outcome counts; 0 = learning stays local */
};

#endif /* PAY_T_H */
