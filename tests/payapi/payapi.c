/* payapi.c: an emulated Stripe-shaped payment API for payspoa's tests, demo and benchmarks.
 * One process, one libev loop, non-blocking HTTP/1.1 with keep-alive; form-encoded bodies
 * like Stripe's. It must stay self-contained (no spoa/ or policy/ code), survive any input
 * with bounded buffers, and never log anything about a request.
 *
 *   payapi -l 127.0.0.1:8101 -n stripe_us [-c MAXCONN] [-o MAXOBJECTS] [-s SEED]
 *
 * What it emulates, because payspoa's routing must be provable end to end:
 *   - objects belong to the instance (and Stripe-Account) that created them: any operation
 *     on an id this instance did not create answers 404 resource_missing, so a request
 *     that was not pinned to the right backend fails visibly;
 *   - Idempotency-Key: a POST retried with the same key on the same instance replays the
 *     first response (header Idempotent-Replayed: true); other parameters → 400
 *     idempotency_error;
 *   - declines like Stripe's test payment methods (pm_card_chargeDeclinedInsufficientFunds
 *     → 402 card_error/insufficient_funds) or a header X-Payapi-Decline: <decline_code>;
 *   - every response names the instance: header X-Payapi-Instance and "payapi_instance"
 *     in the JSON.
 *
 * Control endpoints on the same port (not counted in the stats, never failed on purpose):
 *   POST /__payapi/mode   mode=healthy|failing|slow|ratelimit|lock|hangup
 *                         error_rate=0..1 error_status=500..599 latency_ms=N
 *                         rate_limit=N (req/s, 0 = none) lock_rate=0..1
 *                         mode=X replaces the whole behaviour, then the knobs given
 *                         with it apply (no mode: the knobs change the current one).
 *   GET  /__payapi/mode   the current behaviour
 *   GET  /__payapi/stats  counts by status, replays, injected faults
 *   POST /__payapi/reset  zero the counters (objects stay)
 *   GET  /__payapi/health 200 while the process runs
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t pa_rng_state;

/* splitmix64: a bijection on 64-bit integers, so distinct inputs give distinct ids. */
static uint64_t pa_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t pa_rand64(void)
{
	pa_rng_state += 0x9e3779b97f4a7c15ULL;
	return pa_mix64(pa_rng_state);
}

/* Uniform in [0, 1). */
static double pa_rand01(void)
{
	return (double)(pa_rand64() >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t pa_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define PA_FNV_BASIS 0xcbf29ce484222325ULL

static bool pa_ieq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (!y)
			return false;
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return false;
	}
	return b[alen] == '\0';
}

static bool pa_eq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

/* Parses a whole string as a non-negative decimal integer ≤ max. */
static bool pa_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Parses "0", "1", "0.25", ".5" into [0, 1]. */
static bool pa_parse_ratio(const char *s, size_t n, double *out)
{
	char tmp[32];
	char *end;
	double v;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (errno || *end || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

/* Only these characters may come back in a JSON string or a header without escaping:
 * ids, payment methods, currencies, decline codes. */
static bool pa_token_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

/* ---- JSON writer: appends into a fixed buffer, remembers overflow ---------------------- */

struct pa_jw {
	char *buf;
	size_t len, cap;
	bool full;
};

static void jw_raw(struct pa_jw *w, const char *s, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void jw_cstr(struct pa_jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void jw_fmt(struct pa_jw *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len) {
		w->full = true;
		return;
	}
	w->len += (size_t)n;
}

/* A quoted JSON string, escaped. */
static void jw_qstr(struct pa_jw *w, const char *s, size_t n)
{
	size_t i;

	jw_raw(w, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };
			jw_raw(w, e, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			jw_fmt(w, "\\u%04x", ch);
		} else {
			jw_raw(w, (const char *)&ch, 1);
		}
	}
	jw_raw(w, "\"", 1);
}

/* ---- form and query parameters (application/x-www-form-urlencoded) ------------------ */

static int pa_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX and '+' from s[0..n) into out (at most cap bytes). Returns the decoded
 * length, or -1 if it does not fit. An invalid escape is kept literally. */
static int pa_urldecode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%' && i + 2 < n &&
		           pa_hexval(s[i + 1]) >= 0 && pa_hexval(s[i + 2]) >= 0) {
			ch = (char)(pa_hexval(s[i + 1]) * 16 + pa_hexval(s[i + 2]));
			i += 2;
		}
		if (o >= cap)
			return -1;
		out[o++] = ch;
	}
	return (int)o;
}

/* Finds parameter `key` in a form/query string and decodes its value into out (NUL-
 * terminated, at most cap-1 bytes). Returns the value's length, -1 if absent, -2 if the
 * value does not fit. The first occurrence wins. */
static int pa_param(const char *s, size_t n, const char *key, char *out, size_t cap)
{
	char kbuf[128];
	size_t pos = 0;

	while (pos < n) {
		size_t end = pos, eq;
		int klen, vlen;

		while (end < n && s[end] != '&')
			end++;
		eq = pos;
		while (eq < end && s[eq] != '=')
			eq++;
		klen = pa_urldecode(s + pos, eq - pos, kbuf, sizeof(kbuf));
		if (klen >= 0 && pa_eq(kbuf, (size_t)klen, key)) {
			if (eq == end) {
				vlen = 0;
			} else {
				vlen = pa_urldecode(s + eq + 1, end - eq - 1, out, cap ? cap - 1 : 0);
				if (vlen < 0)
					return -2;
			}
			if (cap)
				out[vlen] = '\0';
			return vlen;
		}
		pos = end + 1;
	}
	return -1;
}

/* ---- the instance: behaviour, counters, objects, idempotency ---------------------- */

enum pa_mode { PA_HEALTHY, PA_FAILING, PA_SLOW, PA_RATELIMIT, PA_LOCK, PA_HANGUP };
static const char *const pa_mode_names[] = {
	"healthy", "failing", "slow", "ratelimit", "lock", "hangup",
};

struct pa_behaviour {
	enum pa_mode mode;      /* the last mode asked for, for reporting */
	double error_rate;      /* probability of an injected 5xx */
	unsigned error_status;  /* status of injected errors */
	unsigned latency_ms;    /* added before every API response */
	unsigned rate_limit;    /* requests per second; 0 = unlimited */
	double lock_rate;       /* probability of a 429 lock_timeout (no rate-limit header) */
	bool hangup;            /* close connections without answering */
};

struct pa_stats {
	uint64_t requests;       /* API requests (control endpoints excluded) */
	uint64_t by_status[600];
	uint64_t replays;
	uint64_t injected_errors;
	uint64_t rate_limited;
	uint64_t lock_timeouts;
	uint64_t hangups;
	uint64_t bad_requests;   /* malformed HTTP, answered 4xx and closed */
	uint64_t connections;
	uint64_t objects;        /* objects created */
};

enum pa_type { PA_PI = 1, PA_CH, PA_RE, PA_CUS, PA_SUB, PA_SETI, PA_TYPE_N };

static const struct pa_type_info {
	const char *prefix;   /* id prefix */
	const char *object;   /* "object" field */
	const char *plural;   /* URL segment */
} pa_types[PA_TYPE_N] = {
	[PA_PI]   = { "pi_",   "payment_intent", "payment_intents" },
	[PA_CH]   = { "ch_",   "charge",         "charges" },
	[PA_RE]   = { "re_",   "refund",         "refunds" },
	[PA_CUS]  = { "cus_",  "customer",       "customers" },
	[PA_SUB]  = { "sub_",  "subscription",   "subscriptions" },
	[PA_SETI] = { "seti_", "setup_intent",   "setup_intents" },
};

/* Statuses across object types (one enum keeps the table simple). */
enum pa_status {
	ST_REQ_PM = 0, ST_REQ_CONFIRM, ST_REQ_CAPTURE, ST_SUCCEEDED, ST_CANCELED,
	ST_FAILED, ST_ACTIVE, ST_DELETED,
};
static const char *const pa_status_names[] = {
	"requires_payment_method", "requires_confirmation", "requires_capture",
	"succeeded", "canceled", "failed", "active", "deleted",
};

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

static struct {
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
} pa;

static char pa_body_buf[PA_BODY_MAX];

static void pa_make_id(char *out, const char *prefix)
{
	static const char b62[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	uint64_t a = pa_mix64(pa.id_tag ^ ++pa.id_counter), b = pa_mix64(a);
	size_t p = strlen(prefix), i;

	memcpy(out, prefix, p);
	/* the even positions encode all of a (11 base-62 digits, distinct per counter), the
	 * odd ones are decoration */
	for (i = 0; i < PA_ID_LEN; i++) {
		if (i % 2 == 0 && i < 22) {
			out[p + i] = b62[a % 62];
			a /= 62;
		} else {
			out[p + i] = b62[b % 62];
			b = pa_mix64(b);
		}
	}
	out[p + PA_ID_LEN] = '\0';
}

static uint32_t pa_obj_hash(const char *id, size_t n)
{
	return (uint32_t)pa_fnv(PA_FNV_BASIS, id, n) & (pa.obj_nbucket - 1);
}

static void pa_obj_unlink(uint32_t slot)
{
	struct pa_obj *o = &pa.objs[slot];
	uint32_t *pp = &pa.obj_bucket[pa_obj_hash(o->id, strlen(o->id))];

	while (*pp) {
		if (*pp == slot + 1) {
			*pp = o->next;
			break;
		}
		pp = &pa.objs[*pp - 1].next;
	}
	o->flags = 0;
}

/* Looks up an object by id; it must also belong to the account. */
static struct pa_obj *pa_obj_find(const char *id, size_t n, uint64_t acct)
{
	uint32_t i = pa.obj_bucket[pa_obj_hash(id, n)];

	while (i) {
		struct pa_obj *o = &pa.objs[i - 1];

		if (pa_eq(id, n, o->id))
			return o->acct == acct ? o : NULL;
		i = o->next;
	}
	return NULL;
}

/* Creates an object, evicting the oldest when the ring is full, but never `keep` (the
 * object the caller is working on). Never fails. */
static struct pa_obj *pa_obj_new(enum pa_type type, uint64_t acct, const struct pa_obj *keep)
{
	uint32_t slot = (uint32_t)(pa.obj_seq++ % pa.obj_cap), h;
	struct pa_obj *o;

	if (keep && &pa.objs[slot] == keep)
		slot = (uint32_t)(pa.obj_seq++ % pa.obj_cap);
	o = &pa.objs[slot];
	if (o->flags & PA_OBJ_LIVE)
		pa_obj_unlink(slot);
	memset(o, 0, sizeof(*o));
	pa_make_id(o->id, pa_types[type].prefix);
	o->type = (uint8_t)type;
	o->acct = acct;
	o->flags = PA_OBJ_LIVE;
	o->created = (int64_t)ev_now(pa.loop);
	h = pa_obj_hash(o->id, strlen(o->id));
	o->next = pa.obj_bucket[h];
	pa.obj_bucket[h] = slot + 1;
	pa.st.objects++;
	return o;
}

static struct pa_idem *pa_idem_find(uint64_t k1, uint64_t k2)
{
	uint32_t i = pa.idem_bucket[k1 & (PA_IDEM_CAP * 2 - 1)];

	while (i) {
		struct pa_idem *e = &pa.idem[i - 1];

		if (e->k1 == k1 && e->k2 == k2)
			return e;
		i = e->next;
	}
	return NULL;
}

static void pa_idem_store(uint64_t k1, uint64_t k2, uint64_t req, unsigned status,
                          uint8_t should_retry, const char *body, size_t len)
{
	uint32_t slot = (uint32_t)(pa.idem_seq++ % PA_IDEM_CAP);
	struct pa_idem *e = &pa.idem[slot];
	uint32_t *pp;
	char *copy;

	if (len > PA_IDEM_BODY || !(copy = malloc(len ? len : 1)))
		return;
	if (e->live) {
		pp = &pa.idem_bucket[e->k1 & (PA_IDEM_CAP * 2 - 1)];
		while (*pp) {
			if (*pp == slot + 1) {
				*pp = e->next;
				break;
			}
			pp = &pa.idem[*pp - 1].next;
		}
		free(e->body);
	}
	memcpy(copy, body, len);
	*e = (struct pa_idem){ .k1 = k1, .k2 = k2, .req = req, .status = (uint16_t)status,
	                       .should_retry = should_retry, .live = true,
	                       .body_len = (uint32_t)len, .body = copy };
	pp = &pa.idem_bucket[k1 & (PA_IDEM_CAP * 2 - 1)];
	e->next = *pp;
	*pp = slot + 1;
}

/* ---- HTTP requests and responses ---------------------------------------------------- */

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

static const char *pa_reason_phrase(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 402: return "Payment Required";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return status < 500 ? "Client Error" : "Server Error";
	}
}

static void pa_resp_init(struct pa_resp *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->status = 200;
	rs->body.buf = pa_body_buf;
	rs->body.cap = sizeof(pa_body_buf);
}

static void pa_json_tail(struct pa_jw *w)
{
	jw_cstr(w, ",\"payapi_instance\":");
	jw_qstr(w, pa.name, strlen(pa.name));
	jw_cstr(w, "}");
}

/* Starts a Stripe-shaped error, leaving the "error" object open for extra fields;
 * pa_error_end closes it. decline and param may be NULL. */
static void pa_error(struct pa_resp *rs, unsigned status, const char *type, const char *code,
                     const char *decline, const char *param, const char *message)
{
	struct pa_jw *w = &rs->body;

	rs->status = status;
	w->len = 0;
	w->full = false;
	jw_cstr(w, "{\"error\":{\"type\":\"");
	jw_cstr(w, type);
	jw_cstr(w, "\"");
	if (code)
		jw_fmt(w, ",\"code\":\"%s\"", code);
	if (decline)
		jw_fmt(w, ",\"decline_code\":\"%s\"", decline);
	if (param)
		jw_fmt(w, ",\"param\":\"%s\"", param);
	jw_cstr(w, ",\"message\":");
	jw_qstr(w, message, strlen(message));
}

static void pa_error_end(struct pa_resp *rs)
{
	jw_cstr(&rs->body, "}");
	pa_json_tail(&rs->body);
}

static void pa_simple_error(struct pa_resp *rs, unsigned status, const char *type,
                            const char *code, const char *param, const char *message)
{
	pa_error(rs, status, type, code, NULL, param, message);
	pa_error_end(rs);
}

static void pa_missing(struct pa_resp *rs, const char *param)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Missing required param: %s.", param);
	pa_simple_error(rs, 400, "invalid_request_error", "parameter_missing", param, msg);
}

static void pa_invalid(struct pa_resp *rs, const char *param)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Invalid value for param: %s.", param);
	pa_simple_error(rs, 400, "invalid_request_error", "parameter_invalid", param, msg);
}

static void pa_no_such(struct pa_resp *rs, enum pa_type type, const char *id, size_t n)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "No such %s: '%.*s'", pa_types[type].object,
	         (int)(n > 40 ? 40 : n), pa_token_ok(id, n, 64) ? id : "?");
	pa_simple_error(rs, 404, "invalid_request_error", "resource_missing", "id", msg);
}

static void pa_unexpected_state(struct pa_resp *rs, const struct pa_obj *o)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "This %s's status is %s, which does not allow this action.",
	         pa_types[o->type].object, pa_status_names[o->status]);
	pa_simple_error(rs, 400, "invalid_request_error",
	                o->type == PA_SETI ? "setup_intent_unexpected_state"
	                                   : "payment_intent_unexpected_state", NULL, msg);
}

/* ---- objects as JSON ------------------------------------------------------------------ */

static void jw_id_or_null(struct pa_jw *w, const char *key, const char *id)
{
	if (id[0])
		jw_fmt(w, ",\"%s\":\"%s\"", key, id);
	else
		jw_fmt(w, ",\"%s\":null", key);
}

/* Writes one object without the instance tail (so it can be nested in lists). */
static void pa_obj_json(struct pa_jw *w, const struct pa_obj *o)
{
	jw_fmt(w, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%" PRId64 ",\"livemode\":false",
	       o->id, pa_types[o->type].object, o->created);
	switch (o->type) {
	case PA_PI:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"amount_capturable\":%" PRId64
		       ",\"amount_received\":%" PRId64 ",\"capture_method\":\"%s\",\"currency\":\"%s\"",
		       o->amount, o->status == ST_REQ_CAPTURE ? o->amount : 0, o->amount_received,
		       (o->flags & PA_OBJ_MANUAL) ? "manual" : "automatic", o->currency);
		jw_id_or_null(w, "customer", o->link2);
		jw_id_or_null(w, "latest_charge", o->link);
		jw_id_or_null(w, "payment_method", o->pm);
		break;
	case PA_CH:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"amount_captured\":%" PRId64
		       ",\"amount_refunded\":%" PRId64 ",\"captured\":%s,\"currency\":\"%s\""
		       ",\"paid\":%s,\"refunded\":%s",
		       o->amount, o->amount_received, o->amount_refunded,
		       o->amount_received > 0 ? "true" : "false", o->currency,
		       o->status == ST_SUCCEEDED ? "true" : "false",
		       o->amount_refunded >= o->amount ? "true" : "false");
		jw_id_or_null(w, "payment_intent", o->link);
		jw_id_or_null(w, "payment_method", o->pm);
		break;
	case PA_RE:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"currency\":\"%s\"", o->amount, o->currency);
		jw_id_or_null(w, "charge", o->link2);
		jw_id_or_null(w, "payment_intent", o->link);
		break;
	case PA_SUB:
		jw_id_or_null(w, "customer", o->link);
		break;
	case PA_SETI:
		jw_id_or_null(w, "payment_method", o->pm);
		break;
	default:
		break;
	}
	if (o->status == ST_DELETED)
		jw_cstr(w, ",\"deleted\":true");
	else if (o->type != PA_CUS)
		jw_fmt(w, ",\"status\":\"%s\"", pa_status_names[o->status]);
	jw_cstr(w, ",\"metadata\":{}}");
}

static void pa_reply_obj(struct pa_resp *rs, const struct pa_obj *o)
{
	rs->status = 200;
	rs->body.len = 0;
	rs->body.full = false;
	pa_obj_json(&rs->body, o);
	rs->body.len--;              /* reopen the object for the instance tail */
	pa_json_tail(&rs->body);
}

static void pa_reply_list(struct pa_resp *rs, const struct pa_req *rq, enum pa_type type,
                          uint64_t acct)
{
	struct pa_jw *w = &rs->body;
	char lim[16];
	uint64_t limit = 10, i, n = 0, scanned = 0;
	bool more = false;

	if (pa_param(rq->query, rq->query_len, "limit", lim, sizeof(lim)) >= 0 &&
	    (!pa_parse_u64(lim, strlen(lim), 100, &limit) || limit == 0)) {
		pa_invalid(rs, "limit");
		return;
	}
	w->len = 0;
	jw_cstr(w, "{\"object\":\"list\",\"url\":");
	jw_qstr(w, rq->path, rq->path_len);
	jw_cstr(w, ",\"data\":[");
	for (i = pa.obj_seq; type && i > 0 && scanned < PA_LIST_SCAN && scanned < pa.obj_cap;
	     i--, scanned++) {
		const struct pa_obj *o = &pa.objs[(i - 1) % pa.obj_cap];
		size_t before = w->len;

		if (!(o->flags & PA_OBJ_LIVE) || o->type != type || o->acct != acct ||
		    o->status == ST_DELETED)
			continue;
		if (n == limit) {
			more = true;
			break;
		}
		if (n)
			jw_raw(w, ",", 1);
		pa_obj_json(w, o);
		if (w->full || w->cap - w->len < 256) {  /* keep room for the tail */
			w->len = before;
			w->full = false;
			more = true;
			break;
		}
		n++;
	}
	jw_fmt(w, "],\"has_more\":%s", more ? "true" : "false");
	pa_json_tail(w);
}

/* ---- payments: declines, confirmations ------------------------------------------------ */

struct pa_decline {
	const char *pm;        /* Stripe test payment method */
	const char *code;      /* error.code */
	const char *decline;   /* error.decline_code */
	const char *message;
};

static const struct pa_decline pa_declines[] = {
	{ "pm_card_chargeDeclined", "card_declined", "generic_decline",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
	  "Your card has insufficient funds." },
	{ "pm_card_chargeDeclinedLostCard", "card_declined", "lost_card",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedDoNotHonor", "card_declined", "do_not_honor",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card",
	  "Your card has expired." },
	{ "pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc",
	  "Your card's security code is incorrect." },
	{ "pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error",
	  "An error occurred while processing your card. Try again in a little bit." },
	{ "pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined",
	  "card_velocity_exceeded", "Your card was declined." },
};

/* The decline a payment would meet: from the header X-Payapi-Decline (any decline code),
 * else from the payment method. NULL: it is authorised. `tmp` holds a header-made one. */
static const struct pa_decline *pa_decline_for(const struct pa_req *rq, const char *pm,
                                               struct pa_decline *tmp, char *code_buf,
                                               size_t code_cap)
{
	size_t i;

	if (rq->decline_len && pa_token_ok(rq->decline, rq->decline_len, 40) &&
	    rq->decline_len < code_cap) {
		memcpy(code_buf, rq->decline, rq->decline_len);
		code_buf[rq->decline_len] = '\0';
		for (i = 0; i < sizeof(pa_declines) / sizeof(pa_declines[0]); i++)
			if (strcmp(pa_declines[i].decline, code_buf) == 0)
				return &pa_declines[i];
		*tmp = (struct pa_decline){ NULL, "card_declined", code_buf, "Your card was declined." };
		return tmp;
	}
	for (i = 0; pm && i < sizeof(pa_declines) / sizeof(pa_declines[0]); i++)
		if (strcmp(pa_declines[i].pm, pm) == 0)
			return &pa_declines[i];
	return NULL;
}

/* Reads an optional payment_method parameter into o->pm. false: answered 400. */
static bool pa_take_pm(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o)
{
	char pm[sizeof(o->pm)];
	int n = pa_param(rq->body, rq->body_len, "payment_method", pm, sizeof(pm));

	if (n == -1)
		return true;
	if (n < 0 || !pa_token_ok(pm, (size_t)n, sizeof(pm) - 1)) {
		pa_invalid(rs, "payment_method");
		return false;
	}
	memcpy(o->pm, pm, (size_t)n + 1);
	return true;
}

/* Confirms payment intent `pi` (its payment method is set). Creates the charge on
 * success; on a decline answers 402 and returns the intent to requires_payment_method. */
static void pa_pi_confirm(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *pi)
{
	struct pa_decline tmp;
	char code[48];
	const struct pa_decline *d = pa_decline_for(rq, pi->pm, &tmp, code, sizeof(code));
	struct pa_obj *ch;

	if (d) {
		pi->status = ST_REQ_PM;
		pa_error(rs, 402, "card_error", d->code, d->decline, NULL, d->message);
		jw_fmt(&rs->body, ",\"payment_intent\":{\"id\":\"%s\",\"object\":\"payment_intent\""
		       ",\"status\":\"%s\"}", pi->id, pa_status_names[pi->status]);
		pa_error_end(rs);
		rs->should_retry = "false";
		return;
	}
	ch = pa_obj_new(PA_CH, pi->acct, pi);
	ch->amount = pi->amount;
	memcpy(ch->currency, pi->currency, sizeof(ch->currency));
	memcpy(ch->pm, pi->pm, sizeof(ch->pm));
	memcpy(ch->link, pi->id, sizeof(ch->link));
	ch->status = ST_SUCCEEDED;
	memcpy(pi->link, ch->id, sizeof(pi->link));
	if (pi->flags & PA_OBJ_MANUAL) {
		pi->status = ST_REQ_CAPTURE;
	} else {
		pi->status = ST_SUCCEEDED;
		pi->amount_received = pi->amount;
		ch->amount_received = ch->amount;
	}
	pa_reply_obj(rs, pi);
}

/* amount (required, 1..99999999) and currency (required, 3 letters, kept lower case). */
static bool pa_take_amount(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o,
                           bool required)
{
	char v[32];
	uint64_t amount;
	int n = pa_param(rq->body, rq->body_len, "amount", v, sizeof(v));
	int i;

	if (n == -1 && required) {
		pa_missing(rs, "amount");
		return false;
	}
	if (n != -1) {
		if (n < 0 || !pa_parse_u64(v, (size_t)n, 99999999, &amount) || amount == 0) {
			pa_invalid(rs, "amount");
			return false;
		}
		o->amount = (int64_t)amount;
	}
	n = pa_param(rq->body, rq->body_len, "currency", v, sizeof(v));
	if (n == -1 && required) {
		pa_missing(rs, "currency");
		return false;
	}
	if (n != -1) {
		if (n != 3) {
			pa_invalid(rs, "currency");
			return false;
		}
		for (i = 0; i < 3; i++) {
			char ch = v[i];

			if (ch >= 'A' && ch <= 'Z')
				ch += 32;
			if (ch < 'a' || ch > 'z') {
				pa_invalid(rs, "currency");
				return false;
			}
			o->currency[i] = ch;
		}
		o->currency[3] = '\0';
	}
	return true;
}

/* A reference to another object of this instance in parameter `param`; false: answered. */
static bool pa_take_ref(struct pa_resp *rs, const struct pa_req *rq, const char *param,
                        enum pa_type type, uint64_t acct, bool required, struct pa_obj **out)
{
	char v[64];
	int n = pa_param(rq->body, rq->body_len, param, v, sizeof(v));

	*out = NULL;
	if (n == -1) {
		if (required)
			pa_missing(rs, param);
		return !required;
	}
	if (n < 0 || !pa_token_ok(v, (size_t)n, sizeof(v) - 1)) {
		pa_invalid(rs, param);
		return false;
	}
	*out = pa_obj_find(v, (size_t)n, acct);
	if (!*out || (*out)->type != type) {
		pa_no_such(rs, type, v, (size_t)n);
		return false;
	}
	return true;
}

static bool pa_flag_param(const struct pa_req *rq, const char *param, const char *value)
{
	char v[16];
	int n = pa_param(rq->body, rq->body_len, param, v, sizeof(v));

	return n >= 0 && pa_eq(v, (size_t)n, value);
}

static void pa_pi_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj tmp = { 0 }, *cus = NULL, *pi;

	if (!pa_take_amount(rs, rq, &tmp, true) || !pa_take_pm(rs, rq, &tmp) ||
	    !pa_take_ref(rs, rq, "customer", PA_CUS, acct, false, &cus))
		return;
	pi = pa_obj_new(PA_PI, acct, NULL);
	pi->amount = tmp.amount;
	memcpy(pi->currency, tmp.currency, sizeof(pi->currency));
	memcpy(pi->pm, tmp.pm, sizeof(pi->pm));
	if (cus)
		memcpy(pi->link2, cus->id, sizeof(pi->link2));
	if (pa_flag_param(rq, "capture_method", "manual"))
		pi->flags |= PA_OBJ_MANUAL;
	pi->status = pi->pm[0] ? ST_REQ_CONFIRM : ST_REQ_PM;
	if (pa_flag_param(rq, "confirm", "true")) {
		if (!pi->pm[0]) {
			pa_missing(rs, "payment_method");
			return;
		}
		pa_pi_confirm(rs, rq, pi);
		return;
	}
	pa_reply_obj(rs, pi);
}

/* An intent (payment or setup) may be confirmed: its state allows it and it has a payment
 * method, possibly given now. false: answered 400. */
static bool pa_confirmable(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o)
{
	if (o->status != ST_REQ_PM && o->status != ST_REQ_CONFIRM) {
		pa_unexpected_state(rs, o);
		return false;
	}
	if (!pa_take_pm(rs, rq, o))
		return false;
	if (!o->pm[0]) {
		pa_missing(rs, "payment_method");
		return false;
	}
	return true;
}

static void pa_pi_action(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *pi,
                         const char *action, size_t alen)
{
	if (pa_eq(action, alen, "confirm")) {
		if (pa_confirmable(rs, rq, pi))
			pa_pi_confirm(rs, rq, pi);
	} else if (pa_eq(action, alen, "capture")) {
		struct pa_obj *ch;

		if (pi->status != ST_REQ_CAPTURE) {
			pa_unexpected_state(rs, pi);
			return;
		}
		pi->status = ST_SUCCEEDED;
		pi->amount_received = pi->amount;
		ch = pa_obj_find(pi->link, strlen(pi->link), pi->acct);
		if (ch)
			ch->amount_received = ch->amount;
		pa_reply_obj(rs, pi);
	} else if (pa_eq(action, alen, "cancel")) {
		if (pi->status == ST_SUCCEEDED || pi->status == ST_CANCELED) {
			pa_unexpected_state(rs, pi);
			return;
		}
		pi->status = ST_CANCELED;
		pa_reply_obj(rs, pi);
	} else {
		pa_simple_error(rs, 404, "invalid_request_error", NULL, NULL,
		                "Unrecognized request URL.");
	}
}

static void pa_refund_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj *pi = NULL, *ch = NULL, *re, tmp = { 0 };
	int64_t left;

	if (!pa_take_ref(rs, rq, "payment_intent", PA_PI, acct, false, &pi) ||
	    !pa_take_ref(rs, rq, "charge", PA_CH, acct, false, &ch))
		return;
	if (!pi && !ch) {
		pa_missing(rs, "payment_intent");
		return;
	}
	if (pi && !ch)
		ch = pa_obj_find(pi->link, strlen(pi->link), acct);
	if (!ch || ch->status != ST_SUCCEEDED || ch->amount_received == 0) {
		pa_simple_error(rs, 400, "invalid_request_error", "charge_not_refundable", NULL,
		                "This payment has no captured charge to refund.");
		return;
	}
	if (!pa_take_amount(rs, rq, &tmp, false))
		return;
	left = ch->amount_received - ch->amount_refunded;
	if (!tmp.amount)
		tmp.amount = left;
	if (left <= 0) {
		pa_simple_error(rs, 400, "invalid_request_error", "charge_already_refunded", NULL,
		                "This charge has already been refunded.");
		return;
	}
	if (tmp.amount > left) {
		pa_simple_error(rs, 400, "invalid_request_error", "amount_too_large", "amount",
		                "Refund amount is greater than the unrefunded amount.");
		return;
	}
	re = pa_obj_new(PA_RE, acct, ch);
	/* the charge may be the oldest object: pa_obj_new kept it, the intent is re-found */
	ch->amount_refunded += tmp.amount;
	re->amount = tmp.amount;
	re->status = ST_SUCCEEDED;
	memcpy(re->currency, ch->currency, sizeof(re->currency));
	memcpy(re->link, ch->link, sizeof(re->link));
	memcpy(re->link2, ch->id, sizeof(re->link2));
	pa_reply_obj(rs, re);
}

static void pa_charge_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj tmp = { 0 }, *ch;
	char src[48];
	struct pa_decline dtmp;
	char code[48];
	const struct pa_decline *d;
	int n;

	if (!pa_take_amount(rs, rq, &tmp, true))
		return;
	n = pa_param(rq->body, rq->body_len, "source", src, sizeof(src));
	if (n < 0 || !pa_token_ok(src, (size_t)n, sizeof(src) - 1)) {
		if (!pa_take_pm(rs, rq, &tmp))
			return;
		if (!tmp.pm[0]) {
			pa_missing(rs, "source");
			return;
		}
	} else {
		memcpy(tmp.pm, src, (size_t)n + 1);
	}
	d = pa_decline_for(rq, tmp.pm, &dtmp, code, sizeof(code));
	if (d) {
		pa_error(rs, 402, "card_error", d->code, d->decline, NULL, d->message);
		pa_error_end(rs);
		rs->should_retry = "false";
		return;
	}
	ch = pa_obj_new(PA_CH, acct, NULL);
	ch->amount = tmp.amount;
	memcpy(ch->currency, tmp.currency, sizeof(ch->currency));
	memcpy(ch->pm, tmp.pm, sizeof(ch->pm));
	ch->status = ST_SUCCEEDED;
	if (!pa_flag_param(rq, "capture", "false"))
		ch->amount_received = ch->amount;
	pa_reply_obj(rs, ch);
}

/* ---- routing -------------------------------------------------------------------------- */

#define PA_SEG_MAX 6

struct pa_segs {
	const char *s[PA_SEG_MAX];
	size_t n[PA_SEG_MAX];
	int count;
};

/* Splits "/v1/a/b" into segments; false if there are too many or an empty one. */
static bool pa_split(const char *p, size_t len, struct pa_segs *sg)
{
	size_t i = 0;

	sg->count = 0;
	if (len == 0 || p[0] != '/')
		return false;
	while (i < len) {
		size_t start = ++i;

		while (i < len && p[i] != '/')
			i++;
		if (i == start) {
			if (i == len)   /* one trailing slash is tolerated */
				break;
			return false;
		}
		if (sg->count == PA_SEG_MAX)
			return false;
		sg->s[sg->count] = p + start;
		sg->n[sg->count] = i - start;
		sg->count++;
	}
	return true;
}

static enum pa_type pa_type_of(const char *seg, size_t n)
{
	int t;

	for (t = 1; t < PA_TYPE_N; t++)
		if (pa_eq(seg, n, pa_types[t].plural))
			return (enum pa_type)t;
	return 0;
}

static void pa_unrecognized(struct pa_resp *rs)
{
	pa_simple_error(rs, 404, "invalid_request_error", NULL, NULL, "Unrecognized request URL.");
}

/* Stripe's list endpoints that exist but that this emulator never fills. */
static bool pa_is_empty_list(const char *seg, size_t n)
{
	static const char *const names[] = {
		"events", "balance_transactions", "payment_methods", "invoices", "products",
		"prices", "payouts", "disputes", "transfers", "checkout",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (pa_eq(seg, n, names[i]))
			return true;
	return false;
}

static void pa_route(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_segs sg;
	enum pa_type type;
	struct pa_obj *o;

	if (!pa_split(rq->path, rq->path_len, &sg) || sg.count < 2 || !pa_eq(sg.s[0], sg.n[0], "v1")) {
		pa_unrecognized(rs);
		return;
	}
	if (rq->method == PA_OTHER) {
		pa_simple_error(rs, 405, "invalid_request_error", NULL, NULL,
		                "Unsupported HTTP method.");
		return;
	}
	type = pa_type_of(sg.s[1], sg.n[1]);
	if (!type) {
		if (sg.count == 2 && rq->method == PA_GET && pa_eq(sg.s[1], sg.n[1], "balance")) {
			jw_cstr(&rs->body, "{\"object\":\"balance\",\"available\":[],\"pending\":[],"
			        "\"livemode\":false");
			pa_json_tail(&rs->body);
		} else if (sg.count == 2 && rq->method == PA_GET && pa_is_empty_list(sg.s[1], sg.n[1])) {
			pa_reply_list(rs, rq, 0, acct);
		} else {
			pa_unrecognized(rs);
		}
		return;
	}
	if (sg.count == 2) {
		if (rq->method == PA_GET) {
			pa_reply_list(rs, rq, type, acct);
			return;
		}
		if (rq->method != PA_POST) {
			pa_unrecognized(rs);
			return;
		}
		switch (type) {
		case PA_PI:
			pa_pi_create(rs, rq, acct);
			return;
		case PA_CH:
			pa_charge_create(rs, rq, acct);
			return;
		case PA_RE:
			pa_refund_create(rs, rq, acct);
			return;
		case PA_CUS:
			o = pa_obj_new(PA_CUS, acct, NULL);
			o->status = ST_ACTIVE;
			pa_reply_obj(rs, o);
			return;
		case PA_SUB:
			if (!pa_take_ref(rs, rq, "customer", PA_CUS, acct, true, &o))
				return;
			{
				struct pa_obj *sub = pa_obj_new(PA_SUB, acct, o);

				memcpy(sub->link, o->id, sizeof(sub->link));
				sub->status = ST_ACTIVE;
				pa_reply_obj(rs, sub);
			}
			return;
		case PA_SETI: {
			struct pa_obj tmp = { 0 };

			if (!pa_take_pm(rs, rq, &tmp))
				return;
			o = pa_obj_new(PA_SETI, acct, NULL);
			memcpy(o->pm, tmp.pm, sizeof(o->pm));
			o->status = o->pm[0] ? ST_REQ_CONFIRM : ST_REQ_PM;
			pa_reply_obj(rs, o);
			return;
		}
		default:
			break;
		}
		pa_unrecognized(rs);
		return;
	}
	/* /v1/<type>/<id>[/<action>] */
	o = pa_obj_find(sg.s[2], sg.n[2], acct);
	if (!o || o->type != type) {
		if (sg.count <= 4)
			pa_no_such(rs, type, sg.s[2], sg.n[2]);
		else
			pa_unrecognized(rs);
		return;
	}
	if (sg.count == 3) {
		if (rq->method == PA_GET) {
			pa_reply_obj(rs, o);
		} else if (rq->method == PA_DELETE && (type == PA_CUS || type == PA_SUB)) {
			o->status = type == PA_CUS ? ST_DELETED : ST_CANCELED;
			pa_reply_obj(rs, o);
		} else if (rq->method == PA_POST) {
			/* update: amount/currency while not final, payment_method */
			struct pa_obj tmp = *o;

			if (type == PA_PI && (o->status == ST_SUCCEEDED || o->status == ST_CANCELED ||
			                      o->status == ST_REQ_CAPTURE)) {
				pa_unexpected_state(rs, o);
				return;
			}
			if ((type == PA_PI && !pa_take_amount(rs, rq, &tmp, false)) ||
			    ((type == PA_PI || type == PA_SETI) && !pa_take_pm(rs, rq, &tmp)))
				return;
			*o = tmp;
			if (type == PA_PI && o->pm[0] && o->status == ST_REQ_PM)
				o->status = ST_REQ_CONFIRM;
			pa_reply_obj(rs, o);
		} else {
			pa_unrecognized(rs);
		}
		return;
	}
	if (sg.count == 4 && rq->method == PA_POST && type == PA_PI) {
		pa_pi_action(rs, rq, o, sg.s[3], sg.n[3]);
		return;
	}
	if (sg.count == 4 && rq->method == PA_POST && type == PA_SETI) {
		if (pa_eq(sg.s[3], sg.n[3], "confirm")) {
			if (!pa_confirmable(rs, rq, o))
				return;
			o->status = ST_SUCCEEDED;
			pa_reply_obj(rs, o);
			return;
		}
		if (pa_eq(sg.s[3], sg.n[3], "cancel")) {
			if (o->status == ST_SUCCEEDED || o->status == ST_CANCELED) {
				pa_unexpected_state(rs, o);
				return;
			}
			o->status = ST_CANCELED;
			pa_reply_obj(rs, o);
			return;
		}
	}
	pa_unrecognized(rs);
}

/* ---- control endpoints ---------------------------------------------------------------- */

static void pa_mode_json(struct pa_jw *w)
{
	const struct pa_behaviour *b = &pa.bhv;

	jw_fmt(w, "{\"instance\":\"%s\",\"mode\":\"%s\",\"error_rate\":%g,\"error_status\":%u,"
	       "\"latency_ms\":%u,\"rate_limit\":%u,\"lock_rate\":%g,\"hangup\":%s}",
	       pa.name, pa_mode_names[b->mode], b->error_rate, b->error_status, b->latency_ms,
	       b->rate_limit, b->lock_rate, b->hangup ? "true" : "false");
}

static void pa_stats_json(struct pa_jw *w)
{
	const struct pa_stats *s = &pa.st;
	unsigned i;
	bool first = true;

	jw_fmt(w, "{\"instance\":\"%s\",\"mode\":\"%s\",\"requests\":%" PRIu64 ",\"by_status\":{",
	       pa.name, pa_mode_names[pa.bhv.mode], s->requests);
	for (i = 0; i < 600; i++) {
		if (!s->by_status[i])
			continue;
		jw_fmt(w, "%s\"%u\":%" PRIu64, first ? "" : ",", i, s->by_status[i]);
		first = false;
	}
	jw_fmt(w, "},\"replays\":%" PRIu64 ",\"injected_errors\":%" PRIu64 ",\"rate_limited\":%"
	       PRIu64 ",\"lock_timeouts\":%" PRIu64 ",\"hangups\":%" PRIu64 ",\"bad_requests\":%"
	       PRIu64 ",\"connections\":%" PRIu64 ",\"active_connections\":%u,\"objects\":%" PRIu64
	       "}", s->replays, s->injected_errors, s->rate_limited, s->lock_timeouts, s->hangups,
	       s->bad_requests, s->connections, pa.nconn, s->objects);
}

/* One knob of POST /__payapi/mode: an integer in [min, max] (ratio: a number in [0, 1])
 * stored into *u or *r when present. false: answered 400. */
static bool pa_knob(struct pa_resp *rs, const struct pa_req *rq, const char *name,
                    uint64_t min, uint64_t max, unsigned *u, double *r, bool *given)
{
	char v[32];
	uint64_t x = 0;
	int n = pa_param(rq->body, rq->body_len, name, v, sizeof(v));

	*given = n != -1;
	if (!*given)
		return true;
	if (r ? (n < 0 || !pa_parse_ratio(v, (size_t)n, r))
	      : (n < 0 || !pa_parse_u64(v, (size_t)n, max, &x) || x < min)) {
		pa_invalid(rs, name);
		return false;
	}
	if (u)
		*u = (unsigned)x;
	return true;
}

/* Applies POST /__payapi/mode parameters; all are checked before any is applied. */
static void pa_control_mode(struct pa_resp *rs, const struct pa_req *rq)
{
	struct pa_behaviour b = pa.bhv;
	char v[32];
	int n, m;
	bool err_rate_given, latency_given, rate_given, lock_given, status_given;

	n = pa_param(rq->body, rq->body_len, "mode", v, sizeof(v));
	if (n >= 0) {
		for (m = 0; m <= PA_HANGUP; m++)
			if (pa_eq(v, (size_t)n, pa_mode_names[m]))
				break;
		if (m > PA_HANGUP) {
			pa_invalid(rs, "mode");
			return;
		}
		/* a mode replaces the previous behaviour; knobs given with it refine it */
		b = (struct pa_behaviour){ .mode = (enum pa_mode)m, .error_status = 500 };
	} else if (n == -2) {
		pa_invalid(rs, "mode");
		return;
	}
	if (!pa_knob(rs, rq, "error_rate", 0, 0, NULL, &b.error_rate, &err_rate_given) ||
	    !pa_knob(rs, rq, "error_status", 500, 599, &b.error_status, NULL, &status_given) ||
	    !pa_knob(rs, rq, "latency_ms", 0, 120000, &b.latency_ms, NULL, &latency_given) ||
	    !pa_knob(rs, rq, "rate_limit", 0, 1000000, &b.rate_limit, NULL, &rate_given) ||
	    !pa_knob(rs, rq, "lock_rate", 0, 0, NULL, &b.lock_rate, &lock_given))
		return;
	/* a mode without its knob gets a sensible one */
	if (b.mode == PA_FAILING && !err_rate_given)
		b.error_rate = 1.0;
	if (b.mode == PA_SLOW && !latency_given && !b.latency_ms)
		b.latency_ms = 1000;
	if (b.mode == PA_RATELIMIT && !rate_given && !b.rate_limit)
		b.rate_limit = 10;
	if (b.mode == PA_LOCK && !lock_given)
		b.lock_rate = 1.0;
	b.hangup = b.mode == PA_HANGUP;
	if (!b.error_status)
		b.error_status = 500;
	if (b.rate_limit != pa.bhv.rate_limit) {
		pa.rl_tokens = b.rate_limit;
		pa.rl_last = ev_now(pa.loop);
	}
	pa.bhv = b;
	pa_mode_json(&rs->body);
}

static void pa_control(struct pa_resp *rs, const struct pa_req *rq)
{
	const char *p = rq->path + strlen("/__payapi/");
	size_t n = rq->path_len - strlen("/__payapi/");

	if (pa_eq(p, n, "mode") && rq->method == PA_POST) {
		pa_control_mode(rs, rq);
	} else if (pa_eq(p, n, "mode") && rq->method == PA_GET) {
		pa_mode_json(&rs->body);
	} else if (pa_eq(p, n, "stats") && rq->method == PA_GET) {
		pa_stats_json(&rs->body);
	} else if (pa_eq(p, n, "reset") && rq->method == PA_POST) {
		uint64_t conns = pa.st.connections;

		memset(&pa.st, 0, sizeof(pa.st));
		pa.st.connections = conns;
		pa_stats_json(&rs->body);
	} else if (pa_eq(p, n, "health") && rq->method == PA_GET) {
		jw_fmt(&rs->body, "{\"status\":\"ok\",\"instance\":\"%s\"}", pa.name);
	} else {
		pa_unrecognized(rs);
	}
}

/* ---- one API request: faults, idempotency, then the route -------------------------------- */

static bool pa_rate_limited(void)
{
	double now = ev_now(pa.loop);

	if (!pa.bhv.rate_limit)
		return false;
	pa.rl_tokens += (now - pa.rl_last) * pa.bhv.rate_limit;
	if (pa.rl_tokens > pa.bhv.rate_limit)
		pa.rl_tokens = pa.bhv.rate_limit;   /* burst: one second's worth */
	pa.rl_last = now;
	if (pa.rl_tokens < 1.0)
		return true;
	pa.rl_tokens -= 1.0;
	return false;
}

static void pa_handle(struct pa_resp *rs, const struct pa_req *rq)
{
	static const char *const meth_names[] = { "GET", "POST", "DELETE", "OTHER" };
	uint64_t acct = 0, k1 = 0, k2 = 0, rh = 0;
	bool use_idem;
	struct pa_idem *e;

	if (rq->path_len >= strlen("/__payapi/") && memcmp(rq->path, "/__payapi/", 10) == 0) {
		pa_control(rs, rq);
		return;
	}
	pa.st.requests++;
	if (pa.bhv.hangup) {
		pa.st.hangups++;
		rs->hangup = true;
		return;
	}
	if (pa_rate_limited()) {
		pa.st.rate_limited++;
		pa_simple_error(rs, 429, "invalid_request_error", "rate_limit", NULL,
		                "Request rate limit exceeded. Learn more about rate limits here "
		                "https://stripe.com/docs/rate-limits.");
		rs->rl_reason = "global-rate";
		rs->should_retry = "true";
		return;
	}
	if (rq->acct_len)
		acct = pa_fnv(PA_FNV_BASIS, rq->acct, rq->acct_len) | 1;
	use_idem = rq->method == PA_POST && rq->idem_len > 0;
	if (use_idem) {
		k1 = pa_fnv(pa_fnv(PA_FNV_BASIS, &acct, sizeof(acct)), rq->idem, rq->idem_len);
		k2 = pa_fnv(pa_fnv(0x84222325cbf29ce4ULL, rq->idem, rq->idem_len), &acct, sizeof(acct));
		rh = pa_fnv(PA_FNV_BASIS, meth_names[rq->method], strlen(meth_names[rq->method]));
		rh = pa_fnv(pa_fnv(rh, rq->path, rq->path_len), "?", 1);
		rh = pa_fnv(rh, rq->body, rq->body_len);
		e = pa_idem_find(k1, k2);
		if (e && e->req != rh) {
			pa_simple_error(rs, 400, "idempotency_error", NULL, NULL,
			                "Keys for idempotent requests can only be used with the same "
			                "parameters they were first used with.");
			rs->should_retry = "false";
			return;
		}
		if (e) {
			pa.st.replays++;
			rs->status = e->status;
			rs->replayed = true;
			rs->should_retry = e->should_retry == 1 ? "true" :
			                   e->should_retry == 2 ? "false" : NULL;
			jw_raw(&rs->body, e->body, e->body_len);
			return;
		}
	}
	if (pa.bhv.lock_rate > 0 && pa_rand01() < pa.bhv.lock_rate) {
		/* another request holds the object: not a rate limit, so no reason header */
		pa.st.lock_timeouts++;
		pa_simple_error(rs, 429, "invalid_request_error", "lock_timeout", NULL,
		                "This object cannot be accessed right now because another API "
		                "request or Stripe process is currently accessing it.");
		rs->should_retry = "true";
		return;
	}
	if (pa.bhv.error_rate > 0 && pa_rand01() < pa.bhv.error_rate) {
		pa.st.injected_errors++;
		pa_simple_error(rs, pa.bhv.error_status, "api_error", NULL, NULL,
		                "An unknown error occurred.");
		rs->should_retry = "true";
	} else {
		pa_route(rs, rq, acct);
	}
	/* Stripe saves a result once the endpoint started executing, 5xx included; failed
	 * validation (400) is not saved. */
	if (use_idem && !rs->body.full && rs->status != 400)
		pa_idem_store(k1, k2, rh, rs->status,
		              rs->should_retry ? (rs->should_retry[0] == 't' ? 1 : 2) : 0,
		              rs->body.buf, rs->body.len);
}

/* ---- connections ------------------------------------------------------------------------ */

struct pa_conn {
	ev_io rio, wio;
	ev_timer idle;         /* closes idle keep-alive connections */
	ev_timer delay;        /* holds a response in slow mode */
	int fd;
	bool closing;          /* close once out[] is flushed */
	bool delayed;          /* out[] waits for the delay timer */
	bool sent_continue;    /* 100 Continue already sent for the request in in[] */
	bool peer_closed;      /* EOF read: answer what is complete, then close */
	bool lingering;        /* answered and shut down for writing: reading until EOF */
	uint32_t in_len;
	uint32_t out_len, out_off;
	char in[PA_IN_MAX];
	char out[PA_OUT_MAX];
};

static void pa_conn_close(struct pa_conn *c)
{
	ev_io_stop(pa.loop, &c->rio);
	ev_io_stop(pa.loop, &c->wio);
	ev_timer_stop(pa.loop, &c->idle);
	ev_timer_stop(pa.loop, &c->delay);
	close(c->fd);
	free(c);
	pa.nconn--;
	if (!ev_is_active(&pa.lio) && !ev_is_active(&pa.accept_pause))
		ev_io_start(pa.loop, &pa.lio);
}

/* Puts a complete response into out[]. The body is in rs->body. */
static void pa_conn_respond(struct pa_conn *c, const struct pa_resp *rs, bool keep_alive)
{
	struct pa_jw w = { c->out + c->out_len, 0, PA_OUT_MAX - c->out_len, false };
	char rid[8 + PA_ID_LEN];

	pa_make_id(rid, "req_");
	jw_fmt(&w, "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	       "Request-Id: %s\r\nX-Payapi-Instance: %s\r\n",
	       rs->status, pa_reason_phrase(rs->status), rs->body.len, rid, pa.name);
	if (rs->replayed)
		jw_cstr(&w, "Idempotent-Replayed: true\r\n");
	if (rs->should_retry)
		jw_fmt(&w, "Stripe-Should-Retry: %s\r\n", rs->should_retry);
	if (rs->rl_reason)
		jw_fmt(&w, "Stripe-Rate-Limited-Reason: %s\r\n", rs->rl_reason);
	if (!keep_alive)
		jw_cstr(&w, "Connection: close\r\n");
	jw_cstr(&w, "\r\n");
	jw_raw(&w, rs->body.buf, rs->body.len);
	if (w.full) {   /* cannot happen with the sizes above; fail safe anyway */
		c->closing = true;
		return;
	}
	c->out_len += (uint32_t)w.len;
	if (!keep_alive)
		c->closing = true;
}

/* A bare error for malformed HTTP; the connection closes after it. */
static void pa_conn_bad(struct pa_conn *c, unsigned status)
{
	struct pa_resp rs;

	pa.st.bad_requests++;
	pa_resp_init(&rs);
	pa_simple_error(&rs, status, "invalid_request_error", NULL, NULL, pa_reason_phrase(status));
	pa_conn_respond(c, &rs, false);
}

static bool pa_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Walks a chunked body at b[0..avail). With decode false it only measures and writes
 * nothing, so it can run again on the same bytes when more arrive; with decode true
 * (only once the body is known to be complete) it also moves the chunk data together at
 * b[0..*out_len). Returns the bytes the body uses (including trailers), 0 if incomplete,
 * -1 if malformed. */
static long pa_chunked(char *b, size_t avail, bool decode, size_t *out_len)
{
	size_t pos = 0, w = 0;

	for (;;) {
		uint64_t size = 0;
		size_t digits = 0, eol;

		while (pos < avail && pa_hexval(b[pos]) >= 0) {
			if (++digits > 8)
				return -1;
			size = size * 16 + (uint64_t)pa_hexval(b[pos++]);
		}
		if (pos == avail)
			return 0;
		if (!digits)
			return -1;
		eol = pos;
		while (eol < avail && b[eol] != '\n')   /* skip chunk extensions */
			eol++;
		if (eol == avail)
			return 0;
		if (b[eol - 1] != '\r')
			return -1;
		pos = eol + 1;
		if (size == 0)
			break;
		if (size > avail - pos)
			return size > PA_IN_MAX ? -1 : 0;
		if (avail - pos - size < 2)
			return 0;
		if (b[pos + size] != '\r' || b[pos + size + 1] != '\n')
			return -1;
		if (decode)
			memmove(b + w, b + pos, size);
		w += size;
		pos += size + 2;
	}
	/* trailers, up to an empty line */
	for (;;) {
		size_t eol = pos;

		while (eol < avail && b[eol] != '\n')
			eol++;
		if (eol == avail)
			return 0;
		if (eol == pos || b[eol - 1] != '\r')
			return -1;
		if (eol == pos + 1) {
			*out_len = w;
			return (long)(eol + 1);
		}
		pos = eol + 1;
	}
}

/* Parses one request from c->in. Returns >0 the bytes it occupies, 0 if more are needed,
 * or -status for a malformed one (answer that status and close). */
static long pa_parse(struct pa_conn *c, struct pa_req *rq)
{
	char *b = c->in, *hend, *line, *eol;
	size_t avail = c->in_len, hlen, i, mlen, tlen;
	uint64_t clen = 0;
	bool has_clen = false, chunked = false, http10;

	memset(rq, 0, sizeof(*rq));
	hend = memmem(b, avail, "\r\n\r\n", 4);
	if (!hend)
		return avail >= PA_HDR_MAX ? -431 : 0;
	hlen = (size_t)(hend - b) + 4;
	if (hlen > PA_HDR_MAX)
		return -431;

	/* request line: METHOD SP target SP HTTP/1.x */
	eol = memmem(b, hlen, "\r\n", 2);
	for (mlen = 0; mlen < (size_t)(eol - b) && pa_tchar(b[mlen]); mlen++)
		;
	if (mlen == 0 || mlen > 16 || b[mlen] != ' ')
		return -400;
	if (pa_eq(b, mlen, "GET"))
		rq->method = PA_GET;
	else if (pa_eq(b, mlen, "POST"))
		rq->method = PA_POST;
	else if (pa_eq(b, mlen, "DELETE"))
		rq->method = PA_DELETE;
	else
		rq->method = PA_OTHER;
	line = b + mlen + 1;
	for (tlen = 0; line + tlen < eol && line[tlen] != ' '; tlen++)
		if ((unsigned char)line[tlen] <= ' ' || (unsigned char)line[tlen] >= 0x7f)
			return -400;
	if (tlen > PA_TARGET_MAX)
		return -414;
	if (tlen == 0 || eol - (line + tlen) != 9)
		return -400;
	if (memcmp(line + tlen + 1, "HTTP/1.1", 8) == 0)
		http10 = false;
	else if (memcmp(line + tlen + 1, "HTTP/1.0", 8) == 0)
		http10 = true;
	else
		return -400;
	if (line[0] != '/')
		return -400;
	rq->path = line;
	rq->path_len = tlen;
	for (i = 0; i < tlen; i++) {
		if (line[i] == '?') {
			rq->path_len = i;
			rq->query = line + i + 1;
			rq->query_len = tlen - i - 1;
			break;
		}
	}
	rq->keep_alive = !http10;

	/* header fields */
	line = eol + 2;
	while (line < hend + 2) {
		char *colon, *v, *ve;
		size_t nlen;

		eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
		if (!eol)
			return -400;
		for (nlen = 0; line + nlen < eol && pa_tchar(line[nlen]); nlen++)
			;
		colon = line + nlen;
		if (nlen == 0 || colon >= eol || *colon != ':')
			return -400;   /* includes obsolete line folding */
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (i = 0; v + i < ve; i++)
			if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
				return -400;
		if (pa_ieq(line, nlen, "content-length")) {
			uint64_t n;

			if (!pa_parse_u64(v, (size_t)(ve - v), UINT64_MAX, &n) || (has_clen && n != clen))
				return -400;
			has_clen = true;
			clen = n;
		} else if (pa_ieq(line, nlen, "transfer-encoding")) {
			if (!pa_ieq(v, (size_t)(ve - v), "chunked") || chunked)
				return -501;
			chunked = true;
		} else if (pa_ieq(line, nlen, "connection")) {
			/* a token list; close wins */
			const char *t = v;

			while (t < ve) {
				const char *te = t;

				while (te < ve && *te != ',')
					te++;
				while (t < te && (*t == ' ' || *t == '\t'))
					t++;
				{
					const char *tt = te;

					while (tt > t && (tt[-1] == ' ' || tt[-1] == '\t'))
						tt--;
					if (pa_ieq(t, (size_t)(tt - t), "close"))
						rq->keep_alive = false;
					else if (pa_ieq(t, (size_t)(tt - t), "keep-alive") && http10)
						rq->keep_alive = true;
				}
				t = te + 1;
			}
		} else if (pa_ieq(line, nlen, "expect")) {
			if (pa_ieq(v, (size_t)(ve - v), "100-continue"))
				rq->expect_continue = true;
		} else if (pa_ieq(line, nlen, "idempotency-key")) {
			if (ve - v > 255)
				return -400;
			rq->idem = v;
			rq->idem_len = (size_t)(ve - v);
		} else if (pa_ieq(line, nlen, "stripe-account")) {
			rq->acct = v;
			rq->acct_len = (size_t)(ve - v);
		} else if (pa_ieq(line, nlen, "x-payapi-decline")) {
			rq->decline = v;
			rq->decline_len = (size_t)(ve - v);
		}
		line = eol + 2;
	}
	if (has_clen && chunked)
		return -400;   /* both framings: a smuggling attempt, refuse */

	if (chunked) {
		size_t blen = 0;
		long used = pa_chunked(b + hlen, avail - hlen, false, &blen);

		if (used < 0)
			return -400;
		if (used == 0)
			return avail >= PA_IN_MAX ? -413 : 0;
		pa_chunked(b + hlen, avail - hlen, true, &blen);
		rq->body = b + hlen;
		rq->body_len = blen;
		return (long)hlen + used;
	}
	if (clen > PA_IN_MAX - hlen)
		return -413;
	if (avail - hlen < clen)
		return 0;
	rq->body = b + hlen;
	rq->body_len = (size_t)clen;
	return (long)(hlen + clen);
}

static int pa_conn_flush(struct pa_conn *c);
static void pa_conn_process(struct pa_conn *c);

/* The last answer is sent and the connection must close. Closing at once while the client
 * is still sending (a pipelined request, the rest of a rejected body) would make the
 * kernel answer with a RST that can destroy the answer before the client reads it, so:
 * shut down our side, read and discard until the client closes, at most PA_LINGER_S. */
#define PA_LINGER_S 2.0
static void pa_conn_linger(struct pa_conn *c)
{
	if (c->peer_closed || shutdown(c->fd, SHUT_WR) < 0) {
		pa_conn_close(c);
		return;
	}
	c->lingering = true;
	ev_io_stop(pa.loop, &c->wio);
	ev_io_start(pa.loop, &c->rio);
	c->idle.repeat = PA_LINGER_S;
	ev_timer_again(pa.loop, &c->idle);
}

/* Writes out[]. Returns -1 if the connection is gone (closed and freed), 0 if the rest
 * waits for writability, 1 if out[] is empty and the next request may be parsed. */
static int pa_conn_flush(struct pa_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(pa.loop, &c->wio);
			ev_io_stop(pa.loop, &c->rio);   /* no new requests while one is unsent */
			return 0;
		}
		if (n <= 0) {
			pa_conn_close(c);
			return -1;
		}
		c->out_off += (uint32_t)n;
	}
	ev_io_stop(pa.loop, &c->wio);
	c->out_off = c->out_len = 0;
	if (c->closing) {
		pa_conn_linger(c);
		return -1;
	}
	if (!c->peer_closed)
		ev_io_start(pa.loop, &c->rio);
	return 1;
}

static void pa_delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, delay));

	c->delayed = false;
	if (pa_conn_flush(c) > 0)
		pa_conn_process(c);
}

/* Handles the complete requests in in[] one at a time, so responses stay in order; stops
 * while a response is delayed or unsent (the callbacks resume it). */
static void pa_conn_process(struct pa_conn *c)
{
	for (;;) {
		struct pa_req rq;
		struct pa_resp rs;
		bool api;
		long used;

		if (c->delayed || c->out_len || c->closing)
			return;
		used = pa_parse(c, &rq);
		if (used < 0) {
			pa_conn_bad(c, (unsigned)-used);
			c->in_len = 0;
			pa_conn_flush(c);
			return;
		}
		if (used == 0) {
			if (c->peer_closed) {   /* nothing complete will ever come */
				pa_conn_close(c);
				return;
			}
			/* a client that waits for 100 Continue before sending the body */
			if (rq.expect_continue && !c->sent_continue) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

				memcpy(c->out, cont, sizeof(cont) - 1);
				c->out_len = sizeof(cont) - 1;
				c->sent_continue = true;
				pa_conn_flush(c);
			}
			return;
		}
		pa_resp_init(&rs);
		pa_handle(&rs, &rq);
		c->sent_continue = false;
		if (rs.hangup) {
			pa_conn_close(c);
			return;
		}
		api = rq.path_len < 10 || memcmp(rq.path, "/__payapi/", 10) != 0;
		if (api)
			pa.st.by_status[rs.status < 600 ? rs.status : 0]++;
		pa_conn_respond(c, &rs, rq.keep_alive);
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (uint32_t)used;
		if (api && pa.bhv.latency_ms) {
			c->delayed = true;
			ev_io_stop(pa.loop, &c->rio);
			ev_timer_set(&c->delay, pa.bhv.latency_ms / 1000.0, 0.0);
			ev_timer_start(pa.loop, &c->delay);
			return;
		}
		if (pa_conn_flush(c) <= 0)
			return;
	}
}

static void pa_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, rio));

	if (c->lingering) {
		char sink[4096];
		ssize_t n;

		while ((n = recv(c->fd, sink, sizeof(sink), 0)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			pa_conn_close(c);
		return;
	}

	while (c->in_len < PA_IN_MAX) {
		ssize_t n = recv(c->fd, c->in + c->in_len, PA_IN_MAX - c->in_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			pa_conn_close(c);
			return;
		}
		if (n == 0) {   /* the client finished sending: answer what is complete, then close */
			c->peer_closed = true;
			ev_io_stop(loop, &c->rio);
			break;
		}
		c->in_len += (uint32_t)n;
	}
	ev_timer_again(loop, &c->idle);
	pa_conn_process(c);
}

static void pa_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, wio));

	ev_timer_again(loop, &c->idle);
	if (pa_conn_flush(c) > 0)
		pa_conn_process(c);
}

static void pa_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, idle));

	if (c->delayed) {   /* a slow response is not idleness */
		ev_timer_again(loop, w);
		return;
	}
	pa_conn_close(c);
}

static void pa_accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_io_start(loop, &pa.lio);
}

static void pa_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (;;) {
		struct pa_conn *c;
		int fd = accept4(pa.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: pause instead of spinning */
				ev_io_stop(loop, &pa.lio);
				ev_timer_set(&pa.accept_pause, 0.1, 0.0);
				ev_timer_start(loop, &pa.accept_pause);
			}
			return;
		}
		if (pa.nconn >= pa.maxconn || !(c = malloc(sizeof(*c)))) {
			close(fd);
			if (pa.nconn >= pa.maxconn)
				ev_io_stop(loop, &pa.lio);   /* resumed by pa_conn_close */
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->closing = c->delayed = c->sent_continue = c->peer_closed = c->lingering = false;
		c->in_len = c->out_len = c->out_off = 0;
		ev_io_init(&c->rio, pa_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, pa_write_cb, fd, EV_WRITE);
		ev_init(&c->idle, pa_idle_cb);
		c->idle.repeat = PA_IDLE_S;
		ev_init(&c->delay, pa_delay_cb);
		ev_io_start(loop, &c->rio);
		ev_timer_again(loop, &c->idle);
		pa.nconn++;
		pa.st.connections++;
	}
}

/* ---- start-up ---------------------------------------------------------------------------- */

static int pa_listen(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
	size_t hl;
	int fd = -1, one = 1, rc;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "listen address '%s': expected HOST:PORT", spec);
		return -1;
	}
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		memcpy(host, spec + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		memcpy(host, spec, hl);
		host[hl] = '\0';
	}
	port = colon + 1;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen address '%s': %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "listen on '%s': %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static unsigned pa_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void pa_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void pa_usage(FILE *f)
{
	fprintf(f,
	        "usage: payapi [-l HOST:PORT] [-n NAME] [-c MAXCONN] [-o MAXOBJECTS] [-s SEED]\n"
	        "  an emulated Stripe-shaped payment API (see the top of bench/payapi.c)\n"
	        "  -l  listen address (default 127.0.0.1:8101; port 0 picks one, printed on stderr)\n"
	        "  -n  instance name, returned in X-Payapi-Instance (default payapi)\n"
	        "  -c  maximum connections (default 4096)\n"
	        "  -o  objects kept before the oldest are forgotten (default 131072)\n"
	        "  -s  random seed for injected faults and ids (default: random)\n");
}

static uint64_t pa_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			s = 0;
		close(fd);
	}
	return s ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
}

int main(int argc, char **argv)
{
	const char *listen_spec = "127.0.0.1:8101";
	char err[320];
	uint64_t maxobj = 131072, maxconn = 4096, seed = 0;
	bool seeded = false;
	ev_signal sigint, sigterm;
	int opt;
	uint32_t i;

	strcpy(pa.name, "payapi");
	while ((opt = getopt(argc, argv, "l:n:c:o:s:h")) != -1) {
		switch (opt) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'n':
			if (!pa_token_ok(optarg, strlen(optarg), PA_NAME_MAX)) {
				fprintf(stderr, "payapi: -n: 1..%d characters of [A-Za-z0-9_]\n",
				        PA_NAME_MAX);
				return 2;
			}
			strcpy(pa.name, optarg);
			break;
		case 'c':
			if (!pa_parse_u64(optarg, strlen(optarg), 1000000, &maxconn) || !maxconn) {
				fprintf(stderr, "payapi: -c: a number from 1 to 1000000\n");
				return 2;
			}
			break;
		case 'o':
			if (!pa_parse_u64(optarg, strlen(optarg), 1 << 24, &maxobj) || maxobj < 16) {
				fprintf(stderr, "payapi: -o: a number from 16 to %d\n", 1 << 24);
				return 2;
			}
			break;
		case 's':
			if (!pa_parse_u64(optarg, strlen(optarg), UINT64_MAX, &seed)) {
				fprintf(stderr, "payapi: -s: a number\n");
				return 2;
			}
			seeded = true;
			break;
		case 'h':
			pa_usage(stdout);
			return 0;
		default:
			pa_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		pa_usage(stderr);
		return 2;
	}

	pa_rng_state = seeded ? seed : pa_seed();
	pa.id_tag = pa_rand64();
	pa.maxconn = (unsigned)maxconn;
	pa.obj_cap = (uint32_t)maxobj;
	for (pa.obj_nbucket = 16; pa.obj_nbucket < pa.obj_cap * 2; pa.obj_nbucket <<= 1)
		;
	pa.objs = calloc(pa.obj_cap, sizeof(*pa.objs));
	pa.obj_bucket = calloc(pa.obj_nbucket, sizeof(*pa.obj_bucket));
	pa.idem = calloc(PA_IDEM_CAP, sizeof(*pa.idem));
	if (!pa.objs || !pa.obj_bucket || !pa.idem) {
		fprintf(stderr, "payapi: out of memory\n");
		return 1;
	}
	pa.bhv.error_status = 500;

	pa.lfd = pa_listen(listen_spec, err, sizeof(err));
	if (pa.lfd < 0) {
		fprintf(stderr, "payapi: %s\n", err);
		return 1;
	}
	pa.loop = ev_default_loop(0);
	if (!pa.loop) {
		fprintf(stderr, "payapi: cannot initialise libev\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	ev_io_init(&pa.lio, pa_accept_cb, pa.lfd, EV_READ);
	ev_io_start(pa.loop, &pa.lio);
	ev_init(&pa.accept_pause, pa_accept_resume_cb);
	ev_signal_init(&sigint, pa_signal_cb, SIGINT);
	ev_signal_init(&sigterm, pa_signal_cb, SIGTERM);
	ev_signal_start(pa.loop, &sigint);
	ev_signal_start(pa.loop, &sigterm);
	pa.rl_last = ev_now(pa.loop);

	fprintf(stderr, "payapi: %s listening on %s (port %u)\n", pa.name, listen_spec,
	        pa_bound_port(pa.lfd));
	fflush(stderr);
	ev_run(pa.loop, 0);

	close(pa.lfd);
	for (i = 0; i < PA_IDEM_CAP; i++)
		free(pa.idem[i].body);
	free(pa.idem);
	free(pa.objs);
	free(pa.obj_bucket);
	fprintf(stderr, "payapi: %s stopped\n", pa.name);
	return 0;
}
