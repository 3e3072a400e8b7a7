/* payapi.h: the emulated payment API's internal header, shared by its files only (see
 * README.md for what it emulates). Self-contained: nothing from spoa/ or policy/ may be
 * included here or by any file of this folder.
 *
 * One process, one libev loop, one instance: the state lives in the global `pa`, which
 * only the loop's thread touches. */
#ifndef PAYAPI_H
#define PAYAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

/* ---- limits ----------------------------------------------------------------------- */

#define PA_IN_MAX      65536   /* one request: headers + body, per connection */
#define PA_HDR_MAX     16384   /* request line + headers */
#define PA_TARGET_MAX  2048    /* request target */
#define PA_OUT_MAX     98304   /* one response: headers + body */
#define PA_BODY_MAX    (PA_OUT_MAX - 1024)
#define PA_IDLE_S      60.0    /* idle keep-alive connections are closed after this */
#define PA_IDEM_CAP    16384   /* idempotency entries kept (oldest evicted) */
#define PA_IDEM_BODY   16384   /* larger responses are not kept for replay */
#define PA_LIST_SCAN   20000   /* newest objects a list call looks at */
#define PA_ID_LEN      24      /* characters after the prefix, like Stripe's */
#define PA_NAME_MAX    32
#define PA_KEYLOG_CAP  16384   /* idempotency keys that created objects, newest kept */
#define PA_KEYLOG_LEN  64      /* bytes of each key kept (longer keys are cut) */
#define PA_FNV_BASIS   0xcbf29ce484222325ULL
#define PA_DROP_CAP    4096    /* keys whose first attempt was dropped, newest kept */
/* An Idempotency-Key containing this has its first attempt dropped, whatever the mode. */
#define PA_DROP_MAGIC  "payapi-drop-first"

/* ---- form.c: strings, numbers, form and query parameters ----------------------------- */

bool pa_ieq(const char *a, size_t alen, const char *b);   /* ASCII case-insensitive */
bool pa_eq(const char *a, size_t alen, const char *b);
/* The whole of s[0..n) as a decimal integer ≤ max. */
bool pa_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);
/* "0", "1", "0.25", ".5": a number in [0, 1]. */
bool pa_parse_ratio(const char *s, size_t n, double *out);
/* 1..max characters of [A-Za-z0-9_]: safe to echo in JSON or a header unescaped. */
bool pa_token_ok(const char *s, size_t n, size_t max);
int pa_hexval(char c);   /* -1 if c is not a hex digit */
/* Parameter `key` of a form/query string, decoded into out (NUL-terminated, at most
 * cap-1 bytes). Returns the value's length, -1 if absent, -2 if it does not fit. */
int pa_param(const char *s, size_t n, const char *key, char *out, size_t cap);

/* ---- json.c: a JSON writer into a fixed buffer ------------------------------------------ */

struct pa_jw {
	char *buf;
	size_t len, cap;
	bool full;
};

/* Each write is whole or not at all: one that does not fit sets `full` and every later
 * write is ignored, so callers check `full` once at the end. */
void jw_raw(struct pa_jw *w, const char *s, size_t n);
void jw_cstr(struct pa_jw *w, const char *s);
__attribute__((format(printf, 2, 3)))
void jw_fmt(struct pa_jw *w, const char *fmt, ...);
void jw_qstr(struct pa_jw *w, const char *s, size_t n);   /* a quoted, escaped string */

/* ---- the instance: behaviour, counters, objects, idempotency ------------------------- */

enum pa_mode { PA_HEALTHY, PA_FAILING, PA_SLOW, PA_RATELIMIT, PA_LOCK, PA_HANGUP };

struct pa_behaviour {
	enum pa_mode mode;      /* the last mode asked for, for reporting */
	double error_rate;      /* probability of an injected 5xx */
	unsigned error_status;  /* status of injected errors */
	unsigned latency_ms;    /* added before every API response */
	unsigned rate_limit;    /* requests per second; 0 = unlimited */
	double lock_rate;       /* probability of a 429 lock_timeout (no rate-limit header) */
	bool hangup;            /* close connections without answering */
	double drop_first;      /* probability that a new key's first attempt is dropped */
};

struct pa_stats {
	uint64_t requests;       /* API requests (control endpoints excluded) */
	uint64_t by_status[600];
	uint64_t replays;
	uint64_t injected_errors;
	uint64_t rate_limited;
	uint64_t lock_timeouts;
	uint64_t hangups;
	uint64_t dropped_first;  /* first attempts of a key dropped (drop_first, PA_DROP_MAGIC) */
	uint64_t bad_requests;   /* malformed HTTP, answered 4xx and closed */
	uint64_t connections;
	uint64_t objects;        /* objects created */
};

enum pa_type { PA_PI = 1, PA_CH, PA_RE, PA_CUS, PA_SUB, PA_SETI, PA_TYPE_N };

struct pa_type_info {
	const char *prefix;   /* id prefix */
	const char *object;   /* "object" field */
	const char *plural;   /* URL segment */
};
extern const struct pa_type_info pa_types[PA_TYPE_N];

/* Statuses across object types (one enum keeps the table simple). */
enum pa_status {
	ST_REQ_PM = 0, ST_REQ_CONFIRM, ST_REQ_CAPTURE, ST_SUCCEEDED, ST_CANCELED,
	ST_FAILED, ST_ACTIVE, ST_DELETED,
};
extern const char *const pa_status_names[];

#define PA_OBJ_MANUAL 0x01   /* payment intent: capture_method=manual */
#define PA_OBJ_LIVE   0x02   /* slot holds an object */

struct pa_obj {
	char id[8 + PA_ID_LEN];   /* prefix + PA_ID_LEN chars + NUL */
	uint64_t acct;            /* hash of Stripe-Account ("" = the platform) */
	int64_t amount;
	int64_t amount_received;  /* pi: received; ch: captured */
	int64_t amount_refunded;
	int64_t created;
	uint32_t next;            /* hash chain: slot + 1, 0 = end */
	uint8_t type, status, flags;
	char currency[4];
	char pm[48];
	char link[8 + PA_ID_LEN];  /* pi: latest charge; ch, re: payment intent; sub: customer */
	char link2[8 + PA_ID_LEN]; /* pi: customer; re: charge */
};

struct pa_idem {
	uint64_t k1, k2;          /* two independent hashes of (account, key) */
	uint64_t req;             /* hash of (method, path, body): same key, other params → 400 */
	uint32_t next;            /* hash chain: slot + 1 */
	uint16_t status;
	uint8_t should_retry;     /* 0 absent, 1 true, 2 false */
	bool live;
	uint32_t body_len;
	char *body;
};

#define PA_ARR_SLOTS 12000u /* 120 s of 10 ms slots */

struct pa_instance {
	char name[PA_NAME_MAX + 1];
	struct ev_loop *loop;
	struct pa_behaviour bhv;
	struct pa_stats st;
	double rl_tokens, rl_last;     /* token bucket for rate_limit */
	uint64_t id_tag, id_counter;
	/* objects: a ring of obj_cap slots, indexed by a chained hash of the id */
	struct pa_obj *objs;
	uint32_t *obj_bucket;
	uint32_t obj_cap, obj_nbucket;
	uint64_t obj_seq;              /* objects ever created; next slot = seq % cap */
	/* idempotency: a ring too */
	struct pa_idem *idem;
	uint32_t idem_bucket[PA_IDEM_CAP * 2];
	uint64_t idem_seq;
	/* connections */
	unsigned nconn, maxconn;
	int lfd;
	ev_io lio;
	ev_timer accept_pause;
	/* API requests per 10 ms of wall clock (GET /__payapi/arrivals), a ring: slot s
	 * holds the count of wall slot arr_slot[s % PA_ARR_SLOTS] */
	uint64_t arr_slot[PA_ARR_SLOTS];
	uint32_t arr_count[PA_ARR_SLOTS];
};

extern struct pa_instance pa;   /* main.c */

/* ---- store.c: random numbers, ids, objects, idempotency keys --------------------------- */

void pa_rand_seed(uint64_t seed);
uint64_t pa_rand64(void);
double pa_rand01(void);          /* uniform in [0, 1) */
uint64_t pa_fnv(uint64_t h, const void *p, size_t n);
/* A Stripe-like id: prefix + PA_ID_LEN base-62 characters, distinct for every call. */
void pa_make_id(char *out, const char *prefix);
/* Allocates the object ring (obj_cap slots) and the idempotency ring. Returns 0 or -1. */
int pa_store_init(uint32_t obj_cap);
void pa_store_free(void);
/* The object with that id if it belongs to the account, else NULL. */
struct pa_obj *pa_obj_find(const char *id, size_t n, uint64_t acct);
/* A new object, evicting the oldest when the ring is full but never `keep` (the object
 * the caller is working on). Never fails. */
struct pa_obj *pa_obj_new(enum pa_type type, uint64_t acct, const struct pa_obj *keep);
struct pa_idem *pa_idem_find(uint64_t k1, uint64_t k2);
/* Saves a response for replay (a copy; bodies above PA_IDEM_BODY are not kept). */
void pa_idem_store(uint64_t k1, uint64_t k2, uint64_t req, unsigned status,
                   uint8_t should_retry, const char *body, size_t len);

/* The key log (GET /__payapi/keys): the Idempotency-Key of every executed (not replayed)
 * request that created an object here, in order, the newest PA_KEYLOG_CAP kept. */
void pa_keylog_add(const char *key, size_t n);
size_t pa_keylog_count(void);                    /* keys kept, at most PA_KEYLOG_CAP */
const char *pa_keylog_get(size_t i, size_t *n);  /* i-th kept key, oldest first */

/* ---- http.c: requests and responses on buffers ---------------------------------------- */

enum pa_method { PA_GET, PA_POST, PA_DELETE, PA_OTHER };

struct pa_req {
	enum pa_method method;
	const char *path;     size_t path_len;     /* without the query */
	const char *query;    size_t query_len;
	char *body;           size_t body_len;     /* de-chunked */
	const char *idem;     size_t idem_len;
	const char *acct;     size_t acct_len;
	const char *decline;  size_t decline_len;
	bool keep_alive;
	bool expect_continue;
};

struct pa_resp {
	unsigned status;
	const char *should_retry;  /* "true", "false" or NULL */
	const char *rl_reason;     /* Stripe-Rate-Limited-Reason or NULL */
	bool replayed;
	bool hangup;               /* answer nothing, close */
	struct pa_jw body;
};

/* Parses one request at b[0..avail). Returns >0 the bytes it occupies, 0 if more are
 * needed, or -status for a malformed one (answer that status and close). A chunked body
 * is de-chunked in place once complete; rq borrows from b. */
long pa_http_parse(char *b, size_t avail, struct pa_req *rq);
const char *pa_reason_phrase(unsigned status);
/* An empty 200 whose body is the shared response buffer (one response at a time). */
void pa_resp_init(struct pa_resp *rs);
/* Appends the whole response (status line, headers, body) to w. */
void pa_http_respond(struct pa_jw *w, const struct pa_resp *rs, bool keep_alive);

/* ---- json.c: Stripe-shaped bodies --------------------------------------------------------- */

/* Closes a JSON object with the instance's name ("payapi_instance"). */
void pa_json_tail(struct pa_jw *w);
/* Starts an error, leaving the "error" object open for extra fields; pa_error_end closes
 * it. decline and param may be NULL. */
void pa_error(struct pa_resp *rs, unsigned status, const char *type, const char *code,
              const char *decline, const char *param, const char *message);
void pa_error_end(struct pa_resp *rs);
void pa_simple_error(struct pa_resp *rs, unsigned status, const char *type,
                     const char *code, const char *param, const char *message);
void pa_missing(struct pa_resp *rs, const char *param);   /* 400 parameter_missing */
void pa_invalid(struct pa_resp *rs, const char *param);   /* 400 parameter_invalid */
void pa_unrecognized(struct pa_resp *rs);                 /* 404 Unrecognized request URL */

/* ---- api.c: the Stripe routes ------------------------------------------------------------- */

/* Answers one request (API or control) into rs; rs->hangup: close without answering. */
void pa_handle(struct pa_resp *rs, const struct pa_req *rq);

/* ---- control.c: the /__payapi/ endpoints and the fault modes ------------------------------------------ */

/* Is this a control request (/__payapi/...)? Those are never counted or failed. */
bool pa_is_control(const struct pa_req *rq);
void pa_control(struct pa_resp *rs, const struct pa_req *rq);
/* Faults, in the order pa_handle applies them; each returns true when it answered (or
 * set rs->hangup). Refusals come before idempotency (a refused request never reaches
 * the keys); a lock timeout comes after the replay check and is not saved; an injected
 * error comes last and is saved, as Stripe saves a 5xx. */
bool pa_fault_refuse(struct pa_resp *rs);
void pa_arrival(void);                      /* counts an API request in its 10 ms slot */   /* hangup, rate limit */
bool pa_fault_lock(struct pa_resp *rs);
bool pa_fault_error(struct pa_resp *rs);
/* The first attempt of a key (k1, k2: its hashes) is dropped (rs->hangup) before it is
 * looked up or saved, as a connection that breaks before Stripe reads the request: with
 * probability drop_first, or always when the key contains PA_DROP_MAGIC. Its retries,
 * with the same key, are never dropped (the newest PA_DROP_CAP keys are remembered). */
bool pa_fault_drop_first(struct pa_resp *rs, const struct pa_req *rq, uint64_t k1, uint64_t k2);

/* ---- conn.c: connections on the loop ------------------------------------------------------ */

void pa_accept_cb(struct ev_loop *loop, ev_io *w, int revents);
void pa_accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents);

#endif /* PAYAPI_H */
