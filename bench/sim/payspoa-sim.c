/* payspoa-sim.c: the decision-quality simulator. Runs the real engine (the object files
 * of libpayspoa.a, through policy.h only) and the baselines against scenario files in
 * simulated time, and prints one table per scenario (plus --json). Must not do I/O or
 * allocate inside the event loop; every random draw is deterministic in the seed.
 *
 *   payspoa-sim [--json FILE] [--seed N] [--scale X] [--strategy NAME]... [--restart-at S]
 *               [--restart-cold] [--warm-start SNAP] [--save-state SNAP] [--series FILE.csv|.json]
 *               [--series-format csv|json] [--plot DIR] [--series-bin S] [--rng-salt N] scenario.conf...
 *   payspoa-sim --random N [--seed S] [--jobs J] [--json FILE] [--rng-salt N] [--world-learning SETTINGS]
 *                                                          (random worlds: world.c)
 *   payspoa-sim --print-world WORLD_SEED [--out DIR] [--world-learning SETTINGS]
 *
 * --restart-at S: the payspoa strategies restart their engine S seconds into the run (of
 * the scaled scenario): the state is saved to a snapshot file (spoa/snap.c, as the
 * daemon writes it), a new engine is built from the same policy and loads it, and the
 * run goes on with it (decisions in flight are answered to the new engine, as after a
 * real restart). --restart-cold: the same restart without loading the snapshot (what a
 * restart did before snapshots), for comparison.
 *
 * Model (bench/sim/scenarios/README.md has the schema and the definitions of each figure):
 * - a discrete-event loop (binary heap of arrivals, queued sends, responses, retries,
 *   engine ticks and HAProxy health checks) over preallocated pools;
 * - every strategy sees identical traffic: arrivals, classes, segments and amounts come
 *   from one xoshiro256** stream, and every per-request coin (issuer decision, error,
 *   latency, retry behaviour) is a counter-based hash of (seed, request, attempt,
 *   backend, purpose), so a request meets the same luck on the same backend whichever
 *   strategy sent it there (paired comparison);
 * - the backends' truth (authorisation by segment, latency, errors, outages, Stripe's
 *   token-bucket rate limit with 429 + Stripe-Rate-Limited-Reason, idempotency replay,
 *   objects owned by their account, fees) is computed here, never by the engine. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "scenario.h"
#include "snap.h"
#include "state.h"
#include "sim-t.h"
#include "series.h"
#include "world.h"
#include <sys/mman.h>
#include <sys/wait.h>

static const char *const sim_strategy_names[SIM_S_COUNT] = {
	"payspoa", "payspoa-noforecast", "round-robin", "primary-backup", "static-cost", "oracle",
};

/* ---- randomness ----------------------------------------------------------------------- */

static inline uint64_t sim_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Purposes of per-request coins: one independent uniform each. */
enum sim_purpose {
	SIM_P_AUTH = 1, SIM_P_DECLINE, SIM_P_ERR, SIM_P_LAT1, SIM_P_LAT2, SIM_P_RETRYER, SIM_P_JITTER,
	SIM_P_CHECK, SIM_P_IDEM,
};

/* A uniform in [0, 1) that depends only on its arguments (counter-based). */
static inline double sim_coin(uint64_t seed, uint64_t id, unsigned attempt, unsigned b, unsigned purpose)
{
	uint64_t h = sim_mix(seed ^ sim_mix(id + 0x9e3779b97f4a7c15ULL));

	h = sim_mix(h ^ ((uint64_t)attempt << 40 | (uint64_t)b << 20 | purpose));
	return (double)(h >> 11) * 0x1.0p-53;
}

/* xoshiro256**: the arrival stream. */
struct sim_rng {
	uint64_t s[4];
};

static void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = sim_mix(seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1));
}

static inline uint64_t sim_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline double sim_rng_u(struct sim_rng *r)
{
	uint64_t *s = r->s, res = sim_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sim_rotl(s[3], 45);
	return (double)(res >> 11) * 0x1.0p-53;
}

/* A standard normal from two uniforms (Box-Muller). */
static inline double sim_normal(double u1, double u2)
{
	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* ---- the truth: what the backends really do ------------------------------------------ */

#define SIM_US 1000000.0
#define SIM_HEALTH_GRACE_S 30.0 /* a backend stays "unhealthy" this long after an incident */

static inline double sim_t_s(uint64_t t_us)
{
	return (double)t_us / SIM_US;
}

static bool sim_field_match(const char *pat, const char *v)
{
	return !pat[0] || strcasecmp(pat, v) == 0;
}

static bool sim_seg_match(const struct sim_scenario *sc, const struct sim_match *m, const struct sim_segment *s)
{
	return sim_field_match(m->cur, sc->cur[s->cur].code) && sim_field_match(m->region, s->region) &&
	       sim_field_match(m->brand, s->brand) && sim_field_match(m->funding, s->funding);
}

static bool sim_active(const struct sim_incident *in, double t)
{
	return t >= in->start_s && t < in->end_s;
}

/* Incident scope: the incident is on backend b (or on all, backend -1) and touches a
 * request of segment s. A request that is not a card payment (s NULL: object
 * operations, plain requests, health checks) is touched only by unscoped incidents. */
static bool sim_match_any(const struct sim_match *m)
{
	return !m->cur[0] && !m->region[0] && !m->brand[0] && !m->funding[0];
}

static bool sim_hits(const struct sim_scenario *sc, const struct sim_incident *in, int b, const struct sim_segment *s)
{
	if (in->backend >= 0 && in->backend != b)
		return false;
	return s ? sim_seg_match(sc, &in->m, s) : sim_match_any(&in->m);
}

/* How much of an incident's effect is in force at t, 0..1: 1 while active, or the
 * linear ramp from 0 at start_s to 1 at start_s + ramp_s; 0 outside [start, end). */
static double sim_ramp(const struct sim_incident *in, double t)
{
	if (!sim_active(in, t))
		return 0;
	if (in->ramp_s > 0 && t < in->start_s + in->ramp_s)
		return (t - in->start_s) / in->ramp_s;
	return 1;
}

/* The coded parts of a charge's declines on one backend at t (sim_p_auth): a decline
 * storm's extra declines carry `storm` (an enum sim_decline, the customer's
 * insufficient_funds unless the incident says); an auth drift with a `decline` code
 * carries `drift` (-1: none, today's draw) on the declines it adds, the issuer coin's
 * range [P(auth) without storms, `pre`) where `pre` is P(auth) before the first coded
 * drift. */
struct sim_codes {
	int storm, drift;
	double pre;
};

/* True P(auth) of segment s on backend b at t; *p_calm is the same without decline
 * storms; *codes (NULL: not wanted) says which declines carry an incident's code. */
static double sim_p_auth(const struct sim_scenario *sc, int b, const struct sim_segment *s, double t, double *p_calm,
                         struct sim_codes *codes)
{
	const struct sim_backend *be = &sc->backends[b];
	double p = be->auth, storm = 1;
	int i;

	for (i = 0; i < be->nauth; i++)
		if (sim_seg_match(sc, &be->auth_rules[i].m, s)) {
			p = be->auth_rules[i].p;
			break;
		}
	if (codes)
		*codes = (struct sim_codes){ SIM_INC_DECLINE_FUNDS, -1, 0 };
	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];
		double g;

		if (!sim_hits(sc, in, b, s))
			continue;
		if (in->kind == SIM_INC_AUTH_DRIFT && t >= in->start_s) {
			double f = (t - in->start_s) / (in->end_s - in->start_s);

			if (codes && in->decline >= 0) {
				if (codes->drift < 0)
					codes->pre = p;
				codes->drift = in->decline;
			}
			p += (f > 1 ? 1 : f) * (in->to - p);
		} else if (in->kind == SIM_INC_DECLINES && (g = sim_ramp(in, t)) > 0) {
			storm *= 1 + (in->factor - 1) * g;
			if (codes)
				codes->storm = in->decline;
		}
	}
	*p_calm = p;
	p *= storm;
	return p > 1 ? 1 : p;
}

/* The share of segment s's charges at t that the issuer declines for the customer's own
 * reasons (no funds, wrong CVC): the customer-code part of the declines of the backend
 * that authorises most (calm P(auth), among those serving the currency). Such a card is
 * declined whichever account sends it, so these declines are the same on every backend
 * (the top of the issuer coin's range); a backend that authorises less than the best
 * declines the difference with soft codes (generic, do_not_honor). */
static double sim_p_customer(const struct sim_scenario *sc, const struct sim_segment *s, double t)
{
	double top = -1, soft = 1, calm;
	int b;

	for (b = 0; b < sc->nbackends; b++) {
		if (!(sc->backends[b].currencies & (1U << s->cur)))
			continue;
		sim_p_auth(sc, b, s, t, &calm, NULL);
		if (calm > top) {
			top = calm;
			soft = sc->backends[b].soft_declines;
		}
	}
	return top < 0 ? 0 : (1 - top) * (1 - soft);
}

/* Share of 500s for segment s (NULL: not a card payment) on b at t. */
static double sim_error_rate(const struct sim_scenario *sc, int b, const struct sim_segment *s, double t)
{
	double ok = 1 - sc->backends[b].error_rate;
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];

		if (in->kind == SIM_INC_BROWNOUT && sim_hits(sc, in, b, s))
			ok *= 1 - in->error_rate * sim_ramp(in, t);
	}
	return 1 - ok;
}

static double sim_latency_factor(const struct sim_scenario *sc, int b, const struct sim_segment *s, double t)
{
	double f = 1;
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];

		if (in->kind == SIM_INC_LATENCY && sim_hits(sc, in, b, s))
			f *= 1 + (in->factor - 1) * sim_ramp(in, t);
	}
	return f;
}

/* 0: up; 1: fast 503s; 2: timeouts (for segment s, NULL: not a card payment). */
static int sim_outage(const struct sim_scenario *sc, int b, const struct sim_segment *s, double t)
{
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];

		if (in->kind == SIM_INC_OUTAGE && sim_hits(sc, in, b, s) && sim_active(in, t))
			return in->timeouts ? 2 : 1;
	}
	return 0;
}

/* A backend is calm at t when no outage, brownout or latency incident touches it within
 * [start, end + grace] and its authorisation rate has not started drifting. Routing
 * away from a calm backend is a false alarm. */
static bool sim_calm(const struct sim_scenario *sc, int b, double t)
{
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];

		if (in->backend != b || t < in->start_s)
			continue;
		if (in->kind <= SIM_INC_LATENCY && t < in->end_s + SIM_HEALTH_GRACE_S)
			return false;
		if (in->kind == SIM_INC_AUTH_DRIFT)
			return false;
	}
	return true;
}

static bool sim_all_calm(const struct sim_scenario *sc, double t)
{
	int b;

	for (b = 0; b < sc->nbackends; b++)
		if (!sim_calm(sc, b, t))
			return false;
	return true;
}

/* The account's true rate at t (rate-limit incidents on any of its backends). */
static double sim_account_rate(const struct sim_scenario *sc, int a, double t)
{
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];

		double g;

		if (in->kind == SIM_INC_RATE_LIMIT && sc->backends[in->backend].acct == a && (g = sim_ramp(in, t)) > 0)
			return sc->accounts[a].rate + (in->rate - sc->accounts[a].rate) * g;
	}
	return sc->accounts[a].rate;
}

/* The true fee of an authorised payment, minor units of the presentment currency. */
static double sim_fee(const struct sim_scenario *sc, int b, const struct sim_segment *s, double amount)
{
	const struct sim_backend *be = &sc->backends[b];
	const struct sim_fee *f = &be->fee;
	double pct = f->pct, fixed = f->fixed;
	bool all_in = false;
	int i;

	for (i = 0; i < f->nrows; i++) {
		const struct sim_fee_row *r = &f->rows[i];

		if (sim_field_match(r->region, s->region) && sim_field_match(r->funding, s->funding)) {
			pct = r->pct;
			if (r->has_fixed)
				fixed = r->fixed;
			all_in = r->all_in;
			break;
		}
	}
	if (!all_in && strcasecmp(s->region, be->region))
		pct += f->cross_border;
	if (!(be->settlement & (1U << s->cur)))
		pct += f->fx;
	return amount * pct / 100.0 + fixed;
}

/* ---- event loop state ----------------------------------------------------------------- */

enum sim_ev_kind {
	SIM_EV_ARRIVAL = 0, /* the next client request */
	SIM_EV_ATTEMPT,     /* a client's retry: decide again */
	SIM_EV_SEND,        /* a queued request leaves for its backend */
	SIM_EV_DONE,        /* a response reaches HAProxy */
	SIM_EV_TICK,        /* pol_tick */
	SIM_EV_CHECK,       /* a HAProxy health check of server `arg` */
};

struct sim_ev {
	uint64_t t;         /* µs */
	uint32_t arg;       /* request slot or server */
	uint32_t kind;
};

/* Answers a response can carry, with the Stripe error fields HAProxy extracts. */
enum sim_answer {
	SIM_A_OK = 0, SIM_A_SOFT_GENERIC, SIM_A_SOFT_DNH, SIM_A_HARD_FUNDS, SIM_A_HARD_CVC,
	SIM_A_MISSING, SIM_A_BADCUR, SIM_A_API, SIM_A_RATE, SIM_A_TIMEOUT, SIM_A_NOSERVER, SIM_A_PROCESSING,
	SIM_A_ISSUER_NA, SIM_A_RATE_EP, SIM_A_COUNT
};
_Static_assert(SIM_A_COUNT <= SIM_MAX_ANSWERS, "sim_result.declines is indexed by enum sim_answer");

/* enum sim_decline → the answer an incident's coded decline carries (decline storm, auth drift). */
static const uint8_t sim_incident_answers[SIM_INC_DECLINE_COUNT] = {
	SIM_A_HARD_FUNDS, SIM_A_SOFT_GENERIC, SIM_A_SOFT_DNH, SIM_A_PROCESSING, SIM_A_ISSUER_NA,
};

static const struct {
	const char *type, *code, *decline;
} sim_answers[] = {
	[SIM_A_OK] = { NULL, NULL, NULL },
	[SIM_A_SOFT_GENERIC] = { "card_error", "card_declined", "generic_decline" },
	[SIM_A_SOFT_DNH] = { "card_error", "card_declined", "do_not_honor" },
	[SIM_A_HARD_FUNDS] = { "card_error", "card_declined", "insufficient_funds" },
	[SIM_A_HARD_CVC] = { "card_error", "incorrect_cvc", "incorrect_cvc" },
	[SIM_A_MISSING] = { "invalid_request_error", "resource_missing", NULL },
	[SIM_A_BADCUR] = { "invalid_request_error", "parameter_invalid_currency", NULL },
	[SIM_A_API] = { "api_error", NULL, NULL },
	[SIM_A_RATE] = { "invalid_request_error", "rate_limit", NULL },
	[SIM_A_TIMEOUT] = { NULL, NULL, NULL },
	[SIM_A_NOSERVER] = { NULL, NULL, NULL },
	[SIM_A_PROCESSING] = { "card_error", "processing_error", "processing_error" },
	[SIM_A_ISSUER_NA] = { "card_error", "card_declined", "issuer_not_available" },
	[SIM_A_RATE_EP] = { "invalid_request_error", "rate_limit", NULL },
};

/* A logical request: one client's request and its retries, alive until its final
 * answer. Slots come from a preallocated pool. */
struct sim_req {
	uint64_t id;          /* arrival number: keys every coin flip */
	uint64_t obj;         /* SIM_OBJECT: the object's number (its creating request's id) */
	int64_t amount;       /* minor units (charges) */
	uint32_t next_free;
	int32_t latency_ms;   /* of the attempt in flight */
	uint16_t status;      /* of the attempt in flight */
	uint8_t cls, seg, attempt;
	uint8_t backend;      /* of the attempt in flight or queued */
	int8_t obj_owner;     /* SIM_OBJECT: backend that created the object */
	int8_t exec_acct;     /* account that executed this idempotency key, -1 none */
	uint8_t exec_answer;  /* its stored answer (replayed on the same account) */
	uint8_t answer;       /* enum sim_answer of the attempt in flight */
	bool retryer;         /* this client retries failed and shed requests */
	bool local;           /* answered by HAProxy itself (no server up), not upstream */
	bool queue_out;       /* local: waited past `timeout queue` in its server's queue */
	bool reserved;        /* queued by the oracle on a token it reserved */
	int16_t prio;         /* HAProxy set-priority-class of the attempt (lower first) */
	int32_t offset_ms;    /* HAProxy set-priority-offset of the attempt */
	uint64_t enq_us;      /* when it entered its server's queue */
	uint8_t decision_len;
	char decision[PAY_DECISION_MAX + 1];
};

#define SIM_NONE UINT32_MAX
#define SIM_OBJ_START_US 5000000ULL /* object operations begin this late */
#define SIM_BIN_US 250000ULL     /* routing-share bins */
#define SIM_PRE_S 30.0           /* pre-incident share is measured over this window */

/* Time-to-detect state of one incident. */
struct sim_watch {
	int64_t bin;                 /* current 250 ms bin since the watch's origin, -1 before */
	uint32_t n, k;               /* requests of the bin, sent to the incident's backend */
};

struct sim_det {
	uint64_t pre_n, pre_k;       /* routable requests of the segment before, sent there */
	struct sim_watch det;        /* from start_s: until the share drops */
	bool done;
	struct sim_watch ret;        /* from end_s: until it is back */
	bool rdone;                  /* the share came back */
};

/* One strategy's run of one scenario. */
struct sim_run {
	const struct sim_scenario *sc;
	enum sim_strategy strat;
	struct sim_result *res;
	uint64_t now, end;           /* µs */

	struct sim_req *reqs;
	uint32_t nreqs, free_head;
	struct sim_ev *heap;
	uint32_t nheap, heapcap;

	struct sim_rng rng;
	uint64_t next_id;
	double cls_cdf[SIM_MAX_CLASSES], seg_cdf[SIM_MAX_SEGS];

	double tokens[SIM_MAX_ACCOUNTS];
	uint64_t bucket_t[SIM_MAX_ACCOUNTS];
	double ep_tokens[SIM_MAX_ENDPOINTS]; /* true per-endpoint buckets (sc->endpoints) */
	uint64_t ep_t[SIM_MAX_ENDPOINTS];
	double reserved[SIM_MAX_ACCOUNTS]; /* tokens promised to requests the oracle queued */

	uint64_t obj_id[SIM_OBJ_RING];
	int8_t obj_b[SIM_OBJ_RING];
	uint32_t obj_n;

	/* payspoa */
	struct pol_engine *e;
	int pol_map[SIM_MAX_BACKENDS * 8];    /* the policy's backend i → scenario backend, -1 */
	bool open[SIM_MAX_BACKENDS];          /* breaker open at the last tick */
	/* HAProxy's servers: requests in flight, and each server's queue (a binary heap of
	 * request slots keyed by sim_srvq_key) */
	uint32_t inflight[SIM_MAX_BACKENDS];
	struct sim_ev *srvq[SIM_MAX_BACKENDS];
	uint32_t nsrvq[SIM_MAX_BACKENDS];
	/* round robin */
	uint32_t rr;
	/* primary/backup: HAProxy servers */
	struct {
		bool up;
		int errors;          /* consecutive layer-7 errors (observe layer7) */
		int ok_streak, fail_streak;
		uint64_t checks;
	} hap[SIM_MAX_BACKENDS];

	/* detection and routing-away episodes */
	struct sim_det det[SIM_MAX_INCIDENTS];
	uint64_t away_bin;
	uint32_t bin_n, bin_k[SIM_MAX_BACKENDS];
	double away_base[SIM_MAX_BACKENDS];
	uint32_t away_bins[SIM_MAX_BACKENDS];
	bool away[SIM_MAX_BACKENDS];
};

/* ---- heap ----------------------------------------------------------------------------- */

static inline bool sim_ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && (a->kind < b->kind || (a->kind == b->kind && a->arg < b->arg)));
}

/* Binary min-heaps of events by (t, kind, arg): the event loop's, and HAProxy's server
 * queues (sim_srvq_key). The caller keeps *n within the array. */
static void sim_heap_push(struct sim_ev *h, uint32_t *n, struct sim_ev ev)
{
	uint32_t i = (*n)++;

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (!sim_ev_before(&ev, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = ev;
}

static struct sim_ev sim_heap_pop(struct sim_ev *h, uint32_t *np)
{
	struct sim_ev top = h[0], last = h[--*np];
	uint32_t i = 0, n = *np;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && sim_ev_before(&h[c + 1], &h[c]))
			c++;
		if (!sim_ev_before(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = last;
	return top;
}

static void sim_push(struct sim_run *r, uint64_t t, enum sim_ev_kind kind, uint32_t arg)
{
	/* Capacity is slots + servers + 2, and each slot has at most one event pending. An
	 * event in the past is a bug in the simulator (a negative delay cast to unsigned). */
	if (t < r->now || r->nheap + 1 > r->heapcap) {
		fprintf(stderr, "payspoa-sim: bug: event kind %u at %llu us pushed at %llu us (%u/%u queued)\n",
		        kind, (unsigned long long)t, (unsigned long long)r->now, r->nheap + 1, r->heapcap);
		abort();
	}
	sim_heap_push(r->heap, &r->nheap, (struct sim_ev){ t, arg, kind });
}

static struct sim_ev sim_pop(struct sim_run *r)
{
	return sim_heap_pop(r->heap, &r->nheap);
}

/* ---- traffic -------------------------------------------------------------------------- */

/* Arrivals per second at t (seconds): rate × daily shape × weekly shape × surges. */
static double sim_rate_at(const struct sim_scenario *sc, double t)
{
	double hours = sc->start_hour + t / 3600.0, h = fmod(hours, 24.0), f = h - floor(h), rate;
	int i = (int)h % 24, day = (sc->start_wday + (int)(hours / 24.0)) % 7, k;

	rate = sc->rate * (sc->daily[i] * (1 - f) + sc->daily[(i + 1) % 24] * f) * sc->weekly[day];
	for (k = 0; k < sc->nsurges; k++) {
		const struct sim_surge *s = &sc->surges[k];
		double g = 1;

		if (t < s->start_s || t >= s->end_s)
			continue;
		if (s->ramp_s > 0 && t < s->start_s + s->ramp_s)
			g = (t - s->start_s) / s->ramp_s;
		if (s->ramp_s > 0 && t > s->end_s - s->ramp_s)
			g = (s->end_s - t) / s->ramp_s;
		rate *= 1 + (s->factor - 1) * (g < 1 ? g : 1);
	}
	return rate;
}

static int sim_pick(const double *cdf, int n, double u)
{
	int i;

	for (i = 0; i < n - 1 && u >= cdf[i]; i++)
		;
	return i;
}

static void sim_hex(char *o, uint64_t v, int w)
{
	static const char digits[] = "0123456789abcdef";

	while (w--) {
		o[w] = digits[v & 15];
		v >>= 4;
	}
}

/* ---- results bookkeeping ------------------------------------------------------------ */

/* The time-series bin of now (the last one holds the drain after the end). */
static struct sim_bin *sim_series_bin(struct sim_run *r)
{
	uint64_t i = (uint64_t)(sim_t_s(r->now) / r->res->series_bin_s);

	return &r->res->series[i < r->res->nbins ? i : r->res->nbins - 1];
}

/* A drop: k of n requests went to a backend that had share s0. True when k/n <= s0/2 and
 * k is 4 standard deviations under n·s0 (so binomial noise is not a detection). */
static bool sim_dropped(uint32_t n, uint32_t k, double s0)
{
	double mean = n * s0, sd = sqrt(n * s0 * (1 - s0));

	return n > 0 && k <= mean / 2 && k < mean - 4 * sd;
}

/* Closes the routing bin: routing-away episodes per backend, the routing-only stand-in
 * for "breaker opens". An episode starts in a bin where a backend's share falls to half
 * its usual share and 4 sd under it, and ends when the share is back to 3/4 of it. The
 * usual share is a mean over the first 40 calm bins, then an EWMA over ~30 s of calm
 * bins: it is frozen while any backend is in an incident (and 30 s after), so traffic
 * coming home after a failover is not an episode. */
static void sim_away_close(struct sim_run *r)
{
	const struct sim_scenario *sc = r->sc;
	double t = sim_t_s(r->away_bin * SIM_BIN_US);
	bool calm = sim_all_calm(sc, t);
	int b;

	if (r->bin_n < 8)
		goto reset;
	for (b = 0; b < sc->nbackends; b++) {
		double s = (double)r->bin_k[b] / r->bin_n, base = r->away_base[b];

		if (r->away[b]) {
			if (s >= 0.75 * base)
				r->away[b] = false;
			continue;
		}
		if (r->away_bins[b] >= 40 && base >= 0.2 && sim_dropped(r->bin_n, r->bin_k[b], base)) {
			r->away[b] = true;
			r->res->away_events++;
			if (sim_calm(sc, b, t))
				r->res->away_false++;
			continue;
		}
		if (calm) {
			r->away_bins[b]++;
			r->away_base[b] += (s - base) / (r->away_bins[b] < 120 ? r->away_bins[b] : 120);
		}
	}
reset:
	r->bin_n = 0;
	memset(r->bin_k, 0, sizeof(r->bin_k));
}

/* Feeds a routed request of an incident's segments (dt seconds after the watch's origin;
 * `there`: sent to the incident's backend) into 250 ms bins. When a bin of at least 4
 * requests closes, it passes when its share dropped (sim_dropped against s0), or with
 * `back` when it is at least 3/4 of s0: returns the end of that bin (seconds since the
 * origin), else -1. */
static double sim_watch(struct sim_watch *w, double dt, bool there, double s0, bool back)
{
	int64_t nb = (int64_t)(dt * SIM_US / SIM_BIN_US);
	double hit = -1;

	if (nb != w->bin) {
		if (w->bin >= 0 && w->n >= 4 && (back ? w->k >= 0.75 * w->n * s0 : sim_dropped(w->n, w->k, s0)))
			hit = (double)(w->bin + 1) * SIM_BIN_US / SIM_US;
		w->bin = nb;
		w->n = w->k = 0;
	}
	w->n++;
	w->k += there;
	return hit;
}

/* A routable request (a creation, first attempt, not shed) went to backend b. */
static void sim_note_route(struct sim_run *r, const struct sim_req *q, int b)
{
	const struct sim_scenario *sc = r->sc;
	double t = sim_t_s(r->now);
	uint64_t bin = r->now / SIM_BIN_US;
	int i;

	if (bin != r->away_bin) {
		sim_away_close(r);
		r->away_bin = bin;
	}
	r->bin_n++;
	r->bin_k[b]++;
	r->res->seg_to[q->seg][b]++;
	if (r->res->series) {
		struct sim_bin *sb = sim_series_bin(r);

		sb->created++;
		sb->to[b]++;
	}
	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_incident *in = &sc->incidents[i];
		struct sim_det *d = &r->det[i];

		if (!in->detect || !sim_seg_match(sc, &in->m, &sc->segs[q->seg]))
			continue;
		double s0 = d->pre_n ? (double)d->pre_k / d->pre_n : 0, hit;

		if (d->done && !d->rdone && t >= in->end_s) {
			/* After the repair: the first bin whose share is back to 3/4 of the
			 * pre-incident share ends the wait. */
			if ((hit = sim_watch(&d->ret, t - in->end_s, b == in->backend, s0, true)) >= 0) {
				r->res->return_s[i] = hit;
				d->rdone = true;
			}
			continue;
		}
		if (d->done)
			continue;
		if (t < in->start_s) {
			if (t >= in->start_s - SIM_PRE_S) {
				d->pre_n++;
				d->pre_k += b == in->backend;
			}
			continue;
		}
		if (t < in->end_s && (hit = sim_watch(&d->det, t - in->start_s, b == in->backend, s0, false)) >= 0) {
			r->res->detect_s[i] = hit;
			d->done = true;
		}
	}
}

/* ---- the true backend: one attempt sent upstream ------------------------------------- */

/* Refills account a's bucket to now; returns its tokens. */
static double sim_bucket(struct sim_run *r, int a)
{
	const struct sim_account *ac = &r->sc->accounts[a];
	double dt = sim_t_s(r->now - r->bucket_t[a]), tok;

	tok = r->tokens[a] + dt * sim_account_rate(r->sc, a, sim_t_s(r->now));
	r->tokens[a] = tok > ac->burst ? ac->burst : tok;
	r->bucket_t[a] = r->now;
	return r->tokens[a];
}

/* The true endpoint bucket that counts class cls on account a, refilled to now, or -1
 * (at most one per request: the first that matches). */
static int sim_endpoint(struct sim_run *r, int a, unsigned cls)
{
	const struct sim_scenario *sc = r->sc;
	int i;

	for (i = 0; i < sc->nendpoints; i++) {
		const struct sim_endpoint *ep = &sc->endpoints[i];
		double tok;

		if (ep->acct != a || !(ep->classes & (1U << cls)))
			continue;
		tok = r->ep_tokens[i] + sim_t_s(r->now - r->ep_t[i]) * ep->rate;
		r->ep_tokens[i] = tok > ep->burst ? ep->burst : tok;
		r->ep_t[i] = r->now;
		return i;
	}
	return -1;
}

static uint32_t sim_lat_ms(double ms)
{
	return ms < 1 ? 1 : ms > 3.6e6 ? 3600000 : (uint32_t)ms;
}

/* Sends attempt q to backend b now: decides the true answer and schedules it. */
static void sim_send(struct sim_run *r, uint32_t slot, int b)
{
	const struct sim_scenario *sc = r->sc;
	const struct sim_backend *be = &sc->backends[b];
	struct sim_req *q = &r->reqs[slot];
	const struct sim_class *cl = &sc->classes[q->cls];
	const struct sim_segment *sg = &sc->segs[q->seg];
	const struct sim_segment *card = cl->kind == SIM_CHARGE ? sg : NULL; /* incident scope */
	double t = sim_t_s(r->now), lat, u, p, p_calm;
	struct sim_codes codes;
	uint64_t seed = sc->seed;
	unsigned at = q->attempt;
	int out, ep = sim_endpoint(r, be->acct, q->cls);

	q->backend = (uint8_t)b;
	q->local = q->queue_out = false;
	if (q->reserved) {
		r->reserved[be->acct] -= 1;
		q->reserved = false;
	}
	r->res->upstream++;
	lat = (be->lat_median_ms + be->load_ms * (r->inflight[b] - 1)) * sim_latency_factor(sc, b, card, t) *
	      exp(be->lat_sigma * sim_normal(sim_coin(seed, q->id, at, (unsigned)b, SIM_P_LAT1),
	                                     sim_coin(seed, q->id, at, (unsigned)b, SIM_P_LAT2)));
	if (sim_bucket(r, be->acct) < 1 || (ep >= 0 && r->ep_tokens[ep] < 1)) {
		q->status = 429;
		q->answer = r->tokens[be->acct] < 1 ? SIM_A_RATE : SIM_A_RATE_EP;
		q->latency_ms = (int32_t)sim_lat_ms(15 + lat * 0.05);
		r->res->up429++;
		if (r->res->series)
			sim_series_bin(r)->up429++;
		if ((int)q->cls == sc->checkout)
			r->res->up429_checkout++;
		goto done;
	}
	r->tokens[be->acct] -= 1;
	if (ep >= 0)
		r->ep_tokens[ep] -= 1;
	if ((out = sim_outage(sc, b, card, t))) {
		q->status = out == 2 ? 504 : 503;
		q->answer = out == 2 ? SIM_A_TIMEOUT : SIM_A_API;
		q->latency_ms = (int32_t)sim_lat_ms(out == 2 ? be->timeout_ms : 20 + lat * 0.1);
		r->res->up5xx++;
		goto done;
	}
	if (sim_coin(seed, q->id, at, (unsigned)b, SIM_P_ERR) < sim_error_rate(sc, b, card, t)) {
		q->status = 500;
		q->answer = SIM_A_API;
		q->latency_ms = (int32_t)sim_lat_ms(lat);
		r->res->up5xx++;
		goto done;
	}
	q->status = 200;
	q->answer = SIM_A_OK;
	if (cl->kind == SIM_OBJECT && sc->backends[q->obj_owner].acct != be->acct) {
		q->status = 404;
		q->answer = SIM_A_MISSING;
		r->res->misrouted++;
	} else if (cl->kind == SIM_CHARGE && !(be->currencies & (1U << sg->cur))) {
		q->status = 400;
		q->answer = SIM_A_BADCUR;
	} else if (cl->kind == SIM_CHARGE && q->exec_acct == be->acct) {
		/* Same account, same idempotency key: Stripe replays the stored result. */
		q->answer = q->exec_answer;
		q->status = q->answer == SIM_A_OK ? 200 : 402;
	} else if (cl->kind == SIM_CHARGE) {
		/* One issuer coin for every backend: a request authorised on a worse backend is
		 * authorised on a better one too (common random numbers). */
		p = sim_p_auth(sc, b, sg, t, &p_calm, &codes);
		u = sim_coin(seed, q->id, at, 0, SIM_P_AUTH);
		if (u >= p) {
			double d = sim_coin(seed, q->id, at, 1, SIM_P_DECLINE);

			if (u < p_calm) /* a storm's extra decline: its code (default the customer's card) */
				q->answer = sim_incident_answers[codes.storm];
			else if (u >= 1 - sim_p_customer(sc, sg, t)) /* declined on every backend */
				q->answer = d < 0.8 ? SIM_A_HARD_FUNDS : SIM_A_HARD_CVC;
			else if (codes.drift >= 0 && u < codes.pre) /* an auth drift's decline, with its code */
				q->answer = sim_incident_answers[codes.drift];
			else
				q->answer = d < 0.7 ? SIM_A_SOFT_GENERIC : SIM_A_SOFT_DNH;
			q->status = 402;
		}
		if (q->answer == SIM_A_OK && q->exec_acct >= 0 && q->exec_answer == SIM_A_OK)
			r->res->duplicates++; /* charged on two accounts for one key */
		q->exec_acct = (int8_t)be->acct;
		q->exec_answer = q->answer;
	}
	if (lat > be->timeout_ms) {
		/* Executed (the charge stands) but HAProxy gave up: the client sees 504. */
		q->status = 504;
		q->answer = SIM_A_TIMEOUT;
		lat = be->timeout_ms;
		r->res->up5xx++;
	}
	q->latency_ms = (int32_t)sim_lat_ms(lat);
done:
	sim_push(r, r->now + (uint64_t)q->latency_ms * 1000, SIM_EV_DONE, slot);
}

/* ---- HAProxy's servers: maxconn and the priority queue --------------------------------- */

/* HAProxy serves a server's queue by priority class (-2047..2047), then by arrival time
 * plus priority offset (set-priority-class / set-priority-offset, ±524287 ms): one
 * 64-bit key, class in the top 16 bits, arrival + offset + 524.288 s below (under 2^48 µs
 * = 8.9 years of simulated time). */
static uint64_t sim_srvq_key(const struct sim_req *q)
{
	return (uint64_t)(q->prio + 2048) << 48 |
	       (uint64_t)((int64_t)q->enq_us + (int64_t)q->offset_ms * 1000 + 524288000LL);
}

/* HAProxy forwards the attempt to server b: at once under maxconn, else into b's queue. */
static void sim_dispatch(struct sim_run *r, uint32_t slot, int b)
{
	struct sim_req *q = &r->reqs[slot];

	q->backend = (uint8_t)b;
	if (r->inflight[b] < (uint32_t)r->sc->maxconn) {
		r->inflight[b]++;
		sim_send(r, slot, b);
		return;
	}
	q->enq_us = r->now;
	r->res->srv_queued++;
	sim_heap_push(r->srvq[b], &r->nsrvq[b], (struct sim_ev){ sim_srvq_key(q), slot, 0 });
}

/* A connection to server b is free: the queue's head goes, unless it waited past
 * `timeout queue` (HAProxy answers 503 itself; the agent never hears of it). */
static void sim_srvq_serve(struct sim_run *r, int b)
{
	uint64_t tmo = (uint64_t)(r->sc->timeout_queue_s * SIM_US);

	while (r->nsrvq[b] && r->inflight[b] < (uint32_t)r->sc->maxconn) {
		uint32_t slot = sim_heap_pop(r->srvq[b], &r->nsrvq[b]).arg;
		struct sim_req *q = &r->reqs[slot];

		if (r->now - q->enq_us > tmo) {
			q->status = 503;
			q->answer = SIM_A_NOSERVER;
			q->latency_ms = (int32_t)((r->now - q->enq_us) / 1000);
			q->local = true;
			q->queue_out = true;
			sim_push(r, r->now, SIM_EV_DONE, slot);
			continue;
		}
		r->inflight[b]++;
		sim_send(r, slot, b);
	}
}

/* ---- strategies ------------------------------------------------------------------------ */

/* A strategy's choice for one attempt. */
struct sim_choice {
	int backend;             /* -1: HAProxy has no server to offer (503) */
	enum pay_verdict_kind verdict;
	uint64_t delay_us;       /* PAY_QUEUE */
	int retry_after_s;       /* PAY_REJECT */
};

static bool sim_serves(const struct sim_scenario *sc, int b, const struct sim_req *q)
{
	return sc->classes[q->cls].kind != SIM_CHARGE || (sc->backends[b].currencies & (1U << sc->segs[q->seg].cur));
}

/* Baselines route operations on existing objects to the owner (the application knows
 * which account created them); creations follow the strategy. */
static void sim_choose_rr(struct sim_run *r, const struct sim_req *q, struct sim_choice *c)
{
	const struct sim_scenario *sc = r->sc;
	int b, n = 0, elig[SIM_MAX_BACKENDS];

	for (b = 0; b < sc->nbackends; b++)
		if (sim_serves(sc, b, q))
			elig[n++] = b;
	c->backend = n ? elig[r->rr++ % (uint32_t)n] : 0;
}

static void sim_choose_hap(struct sim_run *r, const struct sim_req *q, struct sim_choice *c)
{
	const struct sim_scenario *sc = r->sc;
	int i, b;

	c->backend = -1;
	for (i = -1; i < sc->nbackends; i++) {
		b = i < 0 ? sc->primary : i;
		if ((i < 0 || b != sc->primary) && r->hap[b].up && sim_serves(sc, b, q)) {
			c->backend = b;
			return;
		}
	}
}

static void sim_choose_static(struct sim_run *r, const struct sim_req *q, struct sim_choice *c)
{
	const struct sim_scenario *sc = r->sc;
	const struct sim_segment *sg = &sc->segs[q->seg];
	int b;

	c->backend = -1;
	for (b = 0; b < sc->nbackends; b++)
		if (sim_serves(sc, b, q) && !strcasecmp(sc->backends[b].region, sg->region)) {
			c->backend = b;
			return;
		}
	for (b = 0; b < sc->nbackends; b++)
		if (sim_serves(sc, b, q)) {
			c->backend = b;
			return;
		}
	c->backend = sc->primary;
}

/* P(a request to b at t gets an answer from the issuer): not an outage, no 500, not
 * past the timeout (lognormal tail). */
static double sim_p_answer(const struct sim_run *r, int b, const struct sim_segment *s, double t)
{
	const struct sim_scenario *sc = r->sc;
	const struct sim_backend *be = &sc->backends[b];
	double med = (be->lat_median_ms + be->load_ms * r->inflight[b]) * sim_latency_factor(sc, b, s, t), p_in_time = 1;

	if (sim_outage(sc, b, s, t))
		return 0;
	if (be->lat_sigma > 0)
		p_in_time = 0.5 * erfc(-(log(be->timeout_ms / med)) / (be->lat_sigma * M_SQRT2));
	else if (med > be->timeout_ms)
		p_in_time = 0;
	return (1 - sim_error_rate(sc, b, s, t)) * p_in_time;
}

/* The oracle: the true probabilities and fees at this instant, the true buckets. It
 * keeps 20 % of each bucket for checkout, never sends into an empty one, and queues a
 * checkout or capture on a token it reserves when it can wait at most 2 s for it. */
static void sim_choose_oracle(struct sim_run *r, struct sim_req *q, struct sim_choice *c)
{
	const struct sim_scenario *sc = r->sc;
	const struct sim_class *cl = &sc->classes[q->cls];
	const struct sim_segment *sg = &sc->segs[q->seg];
	double t = sim_t_s(r->now), best = -1e300, best_any = -1e300;
	bool high = (int)q->cls == sc->checkout || cl->kind == SIM_OBJECT;
	int b, ep, any = -1;

	c->backend = -1;
	for (b = 0; b < sc->nbackends; b++) {
		const struct sim_backend *be = &sc->backends[b];
		double need = 1 + ((int)q->cls == sc->checkout ? 0 : 0.2 * sc->accounts[be->acct].burst);
		double v, p_calm, usd = sc->cur[sg->cur].usd;

		if (!sim_serves(sc, b, q))
			continue;
		if (cl->kind == SIM_OBJECT && be->acct != sc->backends[q->obj_owner].acct)
			continue;
		if (cl->kind == SIM_CHARGE && q->exec_acct >= 0 && be->acct != q->exec_acct)
			continue; /* a retry stays on the account that holds its key */
		v = sim_p_answer(r, b, cl->kind == SIM_CHARGE ? sg : NULL, t);
		if (v < 0.01)
			continue; /* down (an outage): a shed frees the client sooner than a failure */
		if (cl->kind == SIM_CHARGE)
			v *= sim_p_auth(sc, b, sg, t, &p_calm, NULL) * ((double)q->amount - sim_fee(sc, b, sg, (double)q->amount)) * usd;
		else
			v *= 1000;
		v -= 0.05 * (be->lat_median_ms + be->load_ms * r->inflight[b]) *
		     sim_latency_factor(sc, b, cl->kind == SIM_CHARGE ? sg : NULL, t);
		/* A server at maxconn queues the request in HAProxy (up to `timeout queue`, then
		 * a 503): chosen only when every server with room is out. */
		if (r->inflight[b] >= (uint32_t)sc->maxconn)
			v -= 1e12;
		if (v > best_any) {
			best_any = v;
			any = b;
		}
		ep = sim_endpoint(r, be->acct, q->cls);
		if (sim_bucket(r, be->acct) - r->reserved[be->acct] >= need && (ep < 0 || r->ep_tokens[ep] >= 1) &&
		    v > best) {
			best = v;
			c->backend = b;
		}
	}
	if (c->backend >= 0)
		return;
	/* An endpoint's own bucket is not reserved: the oracle holds nothing for an empty one. */
	if (high && any >= 0 && ((ep = sim_endpoint(r, sc->backends[any].acct, q->cls)) < 0 || r->ep_tokens[ep] >= 1)) {
		int a = sc->backends[any].acct;
		double need = 1 + ((int)q->cls == sc->checkout ? 0 : 0.2 * sc->accounts[a].burst);
		double wait = (need + r->reserved[a] - r->tokens[a]) / sim_account_rate(sc, a, t);

		if (wait < 0)
			wait = 0;
		/* Promises beyond the burst would count on refill the bucket's cap throws away. */
		if (wait <= 2.0 && need + r->reserved[a] <= sc->accounts[a].burst) {
			c->backend = any;
			c->verdict = PAY_QUEUE;
			c->delay_us = (uint64_t)ceil(wait * SIM_US) + 10; /* past float rounding */
			r->reserved[a] += 1;
			q->reserved = true;
			return;
		}
	}
	c->verdict = PAY_REJECT;
	c->retry_after_s = 1;
}

static int sim_backend_by_name(const struct sim_scenario *sc, const char *name)
{
	int b;

	for (b = 0; b < sc->nbackends; b++)
		if (!strcmp(sc->backends[b].name, name))
			return b;
	return -1;
}

#define SIM_STR(s) ((struct pay_str){ (s), (uint32_t)strlen(s) })

/* payspoa: the request as HAProxy would send it, pol_decide, the verdict read back. */
static int sim_choose_payspoa(struct sim_run *r, struct sim_req *q, struct sim_choice *c)
{
	const struct sim_scenario *sc = r->sc;
	const struct sim_class *cl = &sc->classes[q->cls];
	const struct sim_segment *sg = &sc->segs[q->seg];
	char id[18], idem[64], path[160];
	struct pay_request rq;
	struct pay_verdict v;
	struct timespec t0, t1;
	const char *brace;
	int b, i;

	memset(&rq, 0, sizeof(rq));
	id[0] = 'r';
	sim_hex(id + 1, q->id, 16);
	rq.id = (struct pay_str){ id, 17 };
	rq.method = SIM_STR(cl->method);
	if (cl->kind == SIM_OBJECT && (brace = strstr(cl->path, "{id}"))) {
		int pre = (int)(brace - cl->path);

		memcpy(path, cl->path, (size_t)pre);
		memcpy(path + pre, "pi_", 3);
		sim_hex(path + pre + 3, q->obj, 16);
		snprintf(path + pre + 19, sizeof(path) - (size_t)pre - 19, "%s", brace + 4);
		rq.path = SIM_STR(path);
	} else {
		rq.path = SIM_STR(cl->path);
	}
	if (cl->kind == SIM_CHARGE) {
		rq.currency = SIM_STR(sc->cur[sg->cur].code);
		rq.card_country = SIM_STR(sg->country);
		rq.card_brand = SIM_STR(sg->brand);
		rq.card_funding = SIM_STR(sg->funding);
		rq.amount = q->amount;
		rq.has_amount = true;
		/* Every create carries an idempotency key (Stripe's SDKs add one): the hex
		 * SHA-256 HAProxy would send is stood in for by 64 hex digits of a hash. */
		for (i = 0; i < 4; i++)
			sim_hex(idem + 16 * i, sim_mix(sc->seed ^ sim_mix(q->id * 4 + (uint64_t)i + SIM_P_IDEM)), 16);
		rq.idem = (struct pay_str){ idem, 64 };
	}
	if (cl->hint[0])
		rq.class_hint = SIM_STR(cl->hint);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pol_decide(r->e, 0, &rq, r->now, &v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->res->decide_ns += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);

	if ((b = sim_backend_by_name(sc, v.backend)) < 0) {
		fprintf(stderr, "payspoa-sim: %s: the engine chose backend '%s', which the scenario does not "
		        "define\n", sc->file, v.backend);
		return -1;
	}
	c->backend = b;
	c->verdict = v.verdict;
	memcpy(q->decision, v.decision, v.decision_len);
	q->decision[v.decision_len] = 0;
	q->decision_len = v.decision_len;
	/* What haproxy.cfg does with them: set-priority-class and set-priority-offset, which
	 * only order the server's queue. A `queue` verdict waits only if that queue forms. */
	q->prio = (int16_t)v.prio;
	q->offset_ms = v.offset_ms;
	c->retry_after_s = v.retry_after_s;
	return 0;
}

static void sim_observe_payspoa(struct sim_run *r, const struct sim_req *q)
{
	const struct sim_scenario *sc = r->sc;
	const char *bname = sc->backends[q->backend].name;
	struct pay_outcome o;
	char id[18], obj[20];

	memset(&o, 0, sizeof(o));
	id[0] = 'r';
	sim_hex(id + 1, q->id, 16);
	o.id = (struct pay_str){ id, 17 };
	o.decision = (struct pay_str){ q->decision, q->decision_len };
	o.backend = SIM_STR(bname);
	o.status = q->status;
	o.latency_ms = q->latency_ms;
	if (q->queue_out) {
		/* HAProxy's own 503 after `timeout queue`: only its log line reports it, with
		 * termination state sQ and no server answer (haproxy/haproxy.cfg's default
		 * outcome channel) */
		o.channel = PAY_CH_LOG;
		o.term = SIM_STR("sQ");
		o.latency_ms = -1;
	}
	if (q->status == 429)
		o.rl_reason = q->answer == SIM_A_RATE_EP ? SIM_STR("endpoint-rate") : SIM_STR("global-rate");
	if (q->status == 402)
		o.should_retry = SIM_STR("false");
	else if (q->status >= 500)
		o.should_retry = SIM_STR("true");
	if (sim_answers[q->answer].type)
		o.err_type = SIM_STR(sim_answers[q->answer].type);
	if (sim_answers[q->answer].code)
		o.err_code = SIM_STR(sim_answers[q->answer].code);
	if (sim_answers[q->answer].decline)
		o.decline = SIM_STR(sim_answers[q->answer].decline);
	if (q->status == 200 && sc->classes[q->cls].kind == SIM_CHARGE) {
		memcpy(obj, "pi_", 3);
		sim_hex(obj + 3, q->id, 16);
		o.object = (struct pay_str){ obj, 19 };
	}
	pol_observe(r->e, 0, &o, r->now);
}

/* A breaker opened (or HAProxy marked a server down) on backend b now. */
static void sim_breaker_open(struct sim_run *r, int b)
{
	r->res->breaker_opens++;
	if (sim_calm(r->sc, b, sim_t_s(r->now)))
		r->res->breaker_false++;
}

/* After each pol_tick: the engine's breaker states through the admin getter (state 2 =
 * open); a transition into open is one open. */
static void sim_poll_breakers(struct sim_run *r)
{
	struct pol_backend_info bi;
	unsigned i;

	for (i = 0; i < SIM_MAX_BACKENDS * 8 && pol_engine_backend_info(r->e, i, r->now, &bi) == 0; i++) {
		int b = r->pol_map[i];
		bool open = bi.state == 2;

		if (b < 0)
			continue;
		if (open && !r->open[b])
			sim_breaker_open(r, b);
		r->open[b] = open;
	}
}

/* HAProxy `observe layer7` + `error-limit 10` + `on-error mark-down`: 5xx (but 501 and
 * 505) and timeouts are errors; 402 and 429, like every other answer, are healthy. */
static void sim_observe_hap(struct sim_run *r, const struct sim_req *q)
{
	int b = q->backend;
	bool error = q->status >= 500 && q->status != 501 && q->status != 505;

	if (!error) {
		r->hap[b].errors = 0;
		return;
	}
	if (++r->hap[b].errors >= 10 && r->hap[b].up) {
		sim_breaker_open(r, b);
		r->hap[b].up = false;
		r->hap[b].ok_streak = 0;
		r->hap[b].errors = 0;
	}
}

/* `check inter 2s fall 3 rise 2` against the true health: an outage fails the check, a
 * brownout fails it with its error rate, a median latency over 2 s times it out. */
#define SIM_CHECK_US 2000000ULL

static void sim_check(struct sim_run *r, int b)
{
	const struct sim_scenario *sc = r->sc;
	double t = sim_t_s(r->now);
	bool ok = !sim_outage(sc, b, NULL, t) &&
	          sim_coin(sc->seed, r->hap[b].checks, 0, (unsigned)b, SIM_P_CHECK) >= sim_error_rate(sc, b, NULL, t) &&
	          sc->backends[b].lat_median_ms * sim_latency_factor(sc, b, NULL, t) < 2000;

	r->hap[b].checks++;
	if (ok) {
		r->hap[b].fail_streak = 0;
		if (++r->hap[b].ok_streak >= 2 && !r->hap[b].up) {
			r->hap[b].up = true;
			r->hap[b].errors = 0;
		}
	} else {
		r->hap[b].ok_streak = 0;
		if (++r->hap[b].fail_streak >= 3 && r->hap[b].up) {
			sim_breaker_open(r, b);
			r->hap[b].up = false;
		}
	}
}

/* ---- requests through their life ------------------------------------------------------ */

static void sim_free(struct sim_run *r, uint32_t slot)
{
	r->reqs[slot].next_free = r->free_head;
	r->free_head = slot;
}

/* The attempt failed (shed, 429, 5xx, timeout): the client retries after `after_us` if
 * it is a retrying client with retries left; else the request ends failed. */
static void sim_retry_or_end(struct sim_run *r, uint32_t slot, uint64_t after_us, bool shed)
{
	struct sim_req *q = &r->reqs[slot];

	if (q->retryer && q->attempt < r->sc->retry_max && r->now < r->end) {
		q->attempt++;
		sim_push(r, r->now + after_us, SIM_EV_ATTEMPT, slot);
	} else {
		if (shed)
			r->res->end_shed[q->cls]++;
		else
			r->res->end_err[q->cls]++;
		sim_free(r, slot);
	}
}

static uint64_t sim_backoff_us(const struct sim_run *r, const struct sim_req *q)
{
	double j = 0.5 + sim_coin(r->sc->seed, q->id, q->attempt, 0, SIM_P_JITTER);

	return (uint64_t)(r->sc->retry_backoff_s * (double)(1U << q->attempt) * j * SIM_US);
}

static int sim_attempt(struct sim_run *r, uint32_t slot)
{
	const struct sim_scenario *sc = r->sc;
	struct sim_req *q = &r->reqs[slot];
	const struct sim_class *cl = &sc->classes[q->cls];
	struct sim_choice c = { 0, PAY_ALLOW, 0, 0 };
	struct timespec t0, t1;
	bool baseline = r->strat >= SIM_S_RR;

	r->res->attempts++;
	if (baseline) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (cl->kind == SIM_OBJECT && r->strat != SIM_S_ORACLE)
			c.backend = q->obj_owner;
		else if (r->strat == SIM_S_RR)
			sim_choose_rr(r, q, &c);
		else if (r->strat == SIM_S_HAP)
			sim_choose_hap(r, q, &c);
		else if (r->strat == SIM_S_STATIC)
			sim_choose_static(r, q, &c);
		else
			sim_choose_oracle(r, q, &c);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		r->res->decide_ns += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
	} else if (sim_choose_payspoa(r, q, &c)) {
		return -1;
	}
	if (c.verdict == PAY_REJECT) {
		r->res->shed[q->cls]++;
		if (r->res->series)
			sim_series_bin(r)->shed[q->cls]++;
		sim_retry_or_end(r, slot, (uint64_t)(c.retry_after_s > 0 ? c.retry_after_s : 1) * 1000000, true);
		return 0;
	}
	if (c.backend < 0) {
		/* No server up in the HAProxy backend: HAProxy answers 503 itself. */
		q->status = 503;
		q->answer = SIM_A_NOSERVER;
		q->latency_ms = 0;
		q->local = true;
		q->queue_out = false;
		sim_push(r, r->now, SIM_EV_DONE, slot);
		return 0;
	}
	if (q->attempt == 0 && cl->kind != SIM_OBJECT)
		sim_note_route(r, q, c.backend);
	if (c.verdict == PAY_QUEUE) {
		r->res->queued++;
		if (c.delay_us) { /* the oracle's own hold on a token it reserved */
			q->backend = (uint8_t)c.backend;
			sim_push(r, r->now + c.delay_us, SIM_EV_SEND, slot);
			return 0;
		}
	}
	sim_dispatch(r, slot, c.backend);
	return 0;
}

/* The latency histogram's bin of ms: [1.05^i, 1.05^(i+1)). */
static unsigned sim_lat_bin(int32_t ms)
{
	double i = ms > 1 ? log((double)ms) / log(1.05) : 0;

	return i >= SIM_LAT_BINS - 1 ? SIM_LAT_BINS - 1 : (unsigned)i;
}

static void sim_done(struct sim_run *r, uint32_t slot)
{
	const struct sim_scenario *sc = r->sc;
	struct sim_req *q = &r->reqs[slot];
	const struct sim_class *cl = &sc->classes[q->cls];
	struct sim_result *res = r->res;
	int b = q->backend;
	bool upstream = !q->local;

	if (upstream) {
		r->inflight[b]--;
		res->lat_hist[sim_lat_bin(q->latency_ms)]++;
		if (r->strat <= SIM_S_PAYSPOA_NOFC)
			sim_observe_payspoa(r, q);
		else if (r->strat == SIM_S_HAP)
			sim_observe_hap(r, q);
	} else if (q->queue_out && r->strat <= SIM_S_PAYSPOA_NOFC) {
		sim_observe_payspoa(r, q);
	}
	if (q->status == 200) {
		res->succeeded[q->cls]++;
		if (cl->kind == SIM_CHARGE) {
			const struct sim_segment *sg = &sc->segs[q->seg];
			double usd = sc->cur[sg->cur].usd;
			uint32_t i = r->obj_n++ % SIM_OBJ_RING;

			res->charges_ok++;
			if (res->series)
				sim_series_bin(r)->ok++;
			res->volume_usd += (double)q->amount * usd;
			res->fees_usd += sim_fee(sc, q->backend, sg, (double)q->amount) * usd;
			r->obj_id[i] = q->id;
			r->obj_b[i] = (int8_t)q->backend;
		}
		sim_free(r, slot);
	} else if (q->status == 402) {
		res->charges_declined++;
		res->declines[q->answer]++;
		res->end_declined[q->cls]++;
		if (res->series)
			sim_series_bin(r)->declined++;
		sim_free(r, slot);
	} else if (q->status == 429 || q->status >= 500) {
		sim_retry_or_end(r, slot, sim_backoff_us(r, q), false);
	} else {
		sim_free(r, slot); /* 400, 404: the client cannot fix it by retrying */
	}
	if (upstream)
		sim_srvq_serve(r, b);
}

/* A new client request: draws from the arrival stream (always the same number, so the
 * stream stays aligned across strategies), then the first attempt. */
static int sim_arrival(struct sim_run *r)
{
	const struct sim_scenario *sc = r->sc;
	double u_cls = sim_rng_u(&r->rng), u_seg = sim_rng_u(&r->rng), z1 = sim_rng_u(&r->rng),
	       z2 = sim_rng_u(&r->rng), u_obj = sim_rng_u(&r->rng), rate, gap;
	uint32_t slot;
	struct sim_req *q;
	int cls = sim_pick(r->cls_cdf, sc->nclasses, u_cls), seg = sim_pick(r->seg_cdf, sc->nsegs, u_seg);
	uint64_t id = r->next_id++;

	/* The next arrival first: exponential gap at the rate in force now. */
	rate = sim_rate_at(sc, sim_t_s(r->now));
	gap = -log(1.0 - sim_rng_u(&r->rng)) / (rate > 1e-9 ? rate : 1e-9);
	if (r->now + (uint64_t)(gap * SIM_US) < r->end)
		sim_push(r, r->now + (uint64_t)(gap * SIM_US) + 1, SIM_EV_ARRIVAL, 0);

	/* Operations on objects start 5 s in for every strategy alike, so that every row
	 * issues the same requests; a strategy that has created nothing by then loses them
	 * (counted as dropped). */
	if (sc->classes[cls].kind == SIM_OBJECT && r->now < SIM_OBJ_START_US)
		return 0;
	if (r->free_head == SIM_NONE || (sc->classes[cls].kind == SIM_OBJECT && r->obj_n == 0)) {
		r->res->dropped++;
		return 0;
	}
	slot = r->free_head;
	q = &r->reqs[slot];
	r->free_head = q->next_free;
	memset(q, 0, sizeof(*q));
	q->id = id;
	q->cls = (uint8_t)cls;
	q->seg = (uint8_t)seg;
	q->exec_acct = -1;
	q->retryer = sim_coin(sc->seed, id, 0, 0, SIM_P_RETRYER) < sc->retry_share;
	q->amount = (int64_t)(sc->segs[seg].amount_median * exp(sc->segs[seg].amount_sigma * sim_normal(z1, z2)));
	if (q->amount < 50)
		q->amount = 50;
	if (sc->classes[cls].kind == SIM_OBJECT) {
		uint32_t have = r->obj_n < SIM_OBJ_RING ? r->obj_n : SIM_OBJ_RING;
		uint32_t back = (uint32_t)(u_obj * have), i = (r->obj_n - 1 - back) % SIM_OBJ_RING;

		q->obj = r->obj_id[i];
		q->obj_owner = r->obj_b[i];
	}
	r->res->arrivals++;
	r->res->logical[cls]++;
	return sim_attempt(r, slot);
}

/* ---- one run ------------------------------------------------------------------------------ */

static double sim_restart_at_s = -1; /* --restart-at, < 0: none */
static bool sim_restart_cold;        /* --restart-cold: the restart loses the state */
static uint64_t sim_rng_salt;        /* --rng-salt: the engines' random streams reseeded */
static const char *sim_world_learning; /* --world-learning: the random worlds' policies' learning group */
static const char *sim_warm_path;    /* --warm-start: snapshot loaded into payspoa's engine at t = 0 */
static const char *sim_save_path;    /* --save-state: payspoa's state written there at the end */
static bool sim_series_on;           /* --series or --plot: keep each run's time series */
static double sim_series_bin_opt;    /* --series-bin: seconds per bin, 0 = duration / 300 */

/* A restart of the engine at r->now through a snapshot file: save, build a new engine
 * from the same policy, load, carry on. 0 or -1 (with the reason on stderr). */
static int sim_restart(struct sim_run *r, const char *path)
{
	char dir[] = "/tmp/payspoa-sim.XXXXXX", file[64], err[512];
	struct pol_state *st = pol_state_capture(r->e, r->now);
	struct snap_result res;
	struct policy *p;
	struct pol_engine *e = NULL;
	int rc = -1;

	if (!st || !mkdtemp(dir)) {
		fprintf(stderr, "payspoa-sim: restart: cannot capture the state\n");
		pol_state_free(st);
		return -1;
	}
	snprintf(file, sizeof(file), "%s/state", dir);
	/* the simulated clock is the engine's: wall-clock time is taken as equal to it */
	if (snap_write(st, r->now, file, &res, err, sizeof(err)))
		goto out;
	pol_state_free(st);
	st = NULL;
	if (!(p = pol_load(path, err, sizeof(err))) || !(e = pol_engine_new(p, 1, err, sizeof(err))))
		goto out;
	pol_engine_salt(e, sim_rng_salt);
	if (!sim_restart_cold && snap_load(e, file, r->now, r->now, &res, err, sizeof(err)))
		goto out;
	pol_engine_free(r->e);
	r->e = e;
	e = NULL;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "payspoa-sim: restart: %s\n", err);
	pol_state_free(st);
	pol_engine_free(e);
	remove(file);
	rmdir(dir);
	return rc;
}

static int sim_run(const struct sim_scenario *sc, enum sim_strategy strat, struct sim_result *res)
{
	uint64_t restart_us = UINT64_MAX;
	struct sim_run *r = calloc(1, sizeof(*r));
	struct timespec w0, w1;
	double peak = 0, acc;
	char err[512];
	int i, rc = -1;
	uint32_t s;

	memset(res, 0, sizeof(*res));
	res->strategy = strat;
	if (sim_series_on) {
		res->series_bin_s = sim_series_bin_opt > 0 ? sim_series_bin_opt : sc->duration_s / 300;
		res->nbins = (uint32_t)ceil(sc->duration_s / res->series_bin_s) + 1; /* + the drain */
		if (!(res->series = calloc(res->nbins, sizeof(*res->series))))
			goto oom;
	}
	if (!r)
		goto oom;
	r->sc = sc;
	r->strat = strat;
	r->res = res;
	r->end = (uint64_t)(sc->duration_s * SIM_US);
	/* Slots: the peak rate times the longest a request can live (timeouts, back-offs). */
	for (acc = 0; acc < sc->duration_s; acc += sc->duration_s / 2000)
		if (sim_rate_at(sc, acc) > peak)
			peak = sim_rate_at(sc, acc);
	r->nreqs = (uint32_t)(peak * 90 + 4096);
	r->heapcap = r->nreqs + SIM_MAX_BACKENDS + 4;
	r->reqs = malloc(sizeof(*r->reqs) * r->nreqs);
	r->heap = malloc(sizeof(*r->heap) * r->heapcap);
	if (!r->reqs || !r->heap)
		goto oom;
	for (i = 0; i < sc->nbackends; i++)
		if (!(r->srvq[i] = malloc(sizeof(*r->srvq[i]) * r->nreqs)))
			goto oom;
	for (s = 0; s < r->nreqs; s++)
		r->reqs[s].next_free = s + 1 < r->nreqs ? s + 1 : SIM_NONE;
	r->free_head = 0;
	sim_rng_seed(&r->rng, sc->seed);
	for (acc = 0, i = 0; i < sc->nclasses; i++)
		acc += sc->classes[i].share;
	for (i = 0; i < sc->nclasses; i++)
		r->cls_cdf[i] = (i ? r->cls_cdf[i - 1] : 0) + sc->classes[i].share / acc;
	for (acc = 0, i = 0; i < sc->nsegs; i++)
		acc += sc->segs[i].share;
	for (i = 0; i < sc->nsegs; i++)
		r->seg_cdf[i] = (i ? r->seg_cdf[i - 1] : 0) + sc->segs[i].share / acc;
	for (i = 0; i < sc->naccounts; i++)
		r->tokens[i] = sc->accounts[i].burst;
	for (i = 0; i < sc->nendpoints; i++)
		r->ep_tokens[i] = sc->endpoints[i].burst;
	for (i = 0; i < sc->nbackends; i++)
		r->hap[i].up = true;
	for (i = 0; i < sc->nincidents; i++) {
		res->detect_s[i] = SIM_DETECT_NEVER;
		res->return_s[i] = SIM_DETECT_NEVER;
		r->det[i].det.bin = r->det[i].ret.bin = -1;
	}

	if (strat <= SIM_S_PAYSPOA_NOFC) {
		const char *path = strat == SIM_S_PAYSPOA ? sc->policy : sc->policy_nofc;
		struct policy *p = pol_load(path, err, sizeof(err));

		if (!p || !(r->e = pol_engine_new(p, 1, err, sizeof(err)))) {
			fprintf(stderr, "payspoa-sim: %s: %s\n", sc->file, err);
			goto out;
		}
		pol_engine_salt(r->e, sim_rng_salt);
		for (s = 0; s < SIM_MAX_BACKENDS * 8; s++) {
			struct pol_backend_info bi;

			r->pol_map[s] = pol_engine_backend_info(r->e, s, 0, &bi) ? -1 : sim_backend_by_name(sc, bi.name);
		}
		res->has_breakers = true;
		sim_push(r, 0, SIM_EV_TICK, 0);
		if (sim_restart_at_s >= 0)
			restart_us = (uint64_t)(sim_restart_at_s * SIM_US);
		/* A warm start: the daemon restarted right after writing the snapshot (age 0),
		 * with this scenario's policy (a different policy loads pins only). */
		if (sim_warm_path) {
			struct snap_result sr;
			int lrc = snap_load(r->e, sim_warm_path, 0, 0, &sr, err, sizeof(err));

			if (lrc) {
				fprintf(stderr, "payspoa-sim: --warm-start %s: %s\n", sim_warm_path,
				        lrc > 0 ? "no such file" : err);
				goto out;
			}
			fprintf(stderr, "payspoa-sim: warm start (%s): %llu records, %llu posteriors, %llu pins; learned %s\n",
			        sim_strategy_names[strat], (unsigned long long)sr.im.recs, (unsigned long long)sr.im.srt,
			        (unsigned long long)sr.im.pins, sr.learned ? "yes" : "no (another engine fingerprint)");
		}
	}
	res->has_breakers |= strat == SIM_S_HAP;
	if (strat == SIM_S_HAP)
		for (i = 0; i < sc->nbackends; i++)
			sim_push(r, (uint64_t)i * 370000 + 100000, SIM_EV_CHECK, (uint32_t)i);
	sim_push(r, 0, SIM_EV_ARRIVAL, 0);

	clock_gettime(CLOCK_MONOTONIC, &w0);
	while (r->nheap) {
		struct sim_ev ev = sim_pop(r);

		/* Responses and retries still due after the end drain for at most 5 minutes. */
		if (ev.t > r->end + 300 * 1000000ULL)
			break;
		r->now = ev.t;
		if (r->now >= restart_us) {
			restart_us = UINT64_MAX;
			if (sim_restart(r, strat == SIM_S_PAYSPOA ? sc->policy : sc->policy_nofc))
				goto out;
		}
		switch (ev.kind) {
		case SIM_EV_ARRIVAL:
			if (sim_arrival(r))
				goto out;
			break;
		case SIM_EV_ATTEMPT:
			if (sim_attempt(r, ev.arg))
				goto out;
			break;
		case SIM_EV_SEND:
			sim_dispatch(r, ev.arg, r->reqs[ev.arg].backend);
			break;
		case SIM_EV_DONE:
			sim_done(r, ev.arg);
			break;
		case SIM_EV_TICK:
			pol_tick(r->e, r->now);
			sim_poll_breakers(r);
			if (r->now < r->end)
				sim_push(r, r->now + (uint64_t)(sc->tick_ms * 1000), SIM_EV_TICK, 0);
			break;
		case SIM_EV_CHECK:
			sim_check(r, (int)ev.arg);
			if (r->now < r->end)
				sim_push(r, r->now + SIM_CHECK_US, SIM_EV_CHECK, ev.arg);
			break;
		}
		if (r->e)
			pol_quiesce(r->e, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	if (sim_save_path && strat == SIM_S_PAYSPOA) {
		struct pol_state *st = pol_state_capture(r->e, r->now);
		struct snap_result sr;

		if (!st || snap_write(st, r->now, sim_save_path, &sr, err, sizeof(err))) {
			fprintf(stderr, "payspoa-sim: --save-state %s: %s\n", sim_save_path, st ? err : "cannot capture the state");
			pol_state_free(st);
			goto out;
		}
		pol_state_free(st);
	}
	res->wall_s = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
	for (i = 0; i < sc->nincidents; i++) {
		const struct sim_det *d = &r->det[i];

		if (sc->incidents[i].detect && !d->done && (!d->pre_n || (double)d->pre_k / d->pre_n < 0.1))
			res->detect_s[i] = SIM_DETECT_UNUSED;
		if (!d->done)
			res->return_s[i] = SIM_DETECT_UNUSED;
	}
	res->ran = true;
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "payspoa-sim: out of memory\n");
out:
	if (r) {
		pol_engine_free(r->e);
		free(r->reqs);
		free(r->heap);
		for (i = 0; i < SIM_MAX_BACKENDS; i++)
			free(r->srvq[i]);
	}
	free(r);
	return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

static double sim_pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0;
}

static double sim_auth_rate(const struct sim_result *x)
{
	return sim_pct(x->charges_ok, x->charges_ok + x->charges_declined);
}

static double sim_checkout(const struct sim_scenario *sc, const struct sim_result *x)
{
	return sc->checkout < 0 ? 0 : sim_pct(x->succeeded[sc->checkout], x->logical[sc->checkout]);
}

static double sim_bps(const struct sim_result *x)
{
	return x->volume_usd > 0 ? 1e4 * x->fees_usd / x->volume_usd : 0;
}

static uint64_t sim_shed_total(const struct sim_scenario *sc, const struct sim_result *x)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < sc->nclasses; i++)
		n += x->shed[i];
	return n;
}

static double sim_headline_value(const struct sim_scenario *sc, const struct sim_result *x)
{
	switch (sc->headline) {
	case SIM_HL_AUTH: return sim_auth_rate(x);
	case SIM_HL_FEES: return sim_bps(x);
	case SIM_HL_429:  return (double)x->up429;
	default:          return sim_checkout(sc, x);
	}
}

static const char *const sim_headline_names[] = { "checkout_success", "auth_rate", "fees_bps", "upstream_429" };

static bool sim_lower_better(const struct sim_scenario *sc)
{
	return sc->headline == SIM_HL_FEES || sc->headline == SIM_HL_429;
}

static void sim_fmt_detect(char *o, size_t n, double d)
{
	if (d == SIM_DETECT_UNUSED)
		snprintf(o, n, "unused");
	else if (d == SIM_DETECT_NEVER)
		snprintf(o, n, "never");
	else
		snprintf(o, n, "%.2fs", d);
}

/* The q-quantile (0..1) of the upstream answers' latency, ms (the geometric middle of its
 * histogram bin), 0 without answers. */
static double sim_lat_q(const struct sim_result *x, double q)
{
	uint64_t n = 0, acc = 0;
	int i;

	for (i = 0; i < SIM_LAT_BINS; i++)
		n += x->lat_hist[i];
	for (i = 0; n && i < SIM_LAT_BINS; i++)
		if ((acc += x->lat_hist[i]) >= q * (double)n)
			return pow(1.05, i + 0.5);
	return 0;
}

/* The second block under a scenario's table: latency percentiles, the time until
 * traffic came back after each repair, and each segment's routing shares. */
static void sim_print_figures(const struct sim_scenario *sc, const struct sim_result *res)
{
	char buf[64];
	int s, i, g, b;

	printf("   latency of upstream answers (ms) and time until traffic returns after each repair:\n");
	for (s = 0; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];

		if (!x->ran)
			continue;
		printf("%-19s p50 %6.0f  p90 %6.0f  p99 %6.0f", sim_strategy_names[s], sim_lat_q(x, 0.5), sim_lat_q(x, 0.9),
		       sim_lat_q(x, 0.99));
		for (i = 0; i < sc->nincidents; i++)
			if (sc->incidents[i].detect) {
				sim_fmt_detect(buf, sizeof(buf), x->return_s[i]);
				printf("  %s %s", sc->incidents[i].name,
				       x->return_s[i] == SIM_DETECT_UNUSED ? "-" : buf);
			}
		printf("\n");
	}
	printf("   routing shares per segment (creations, %%, backends in file order):\n");
	for (g = 0; g < sc->nsegs; g++) {
		const struct sim_segment *sg = &sc->segs[g];

		printf("   %s/%s/%s/%s/%s:", sc->cur[sg->cur].code, sg->country, sg->region, sg->brand, sg->funding);
		for (s = 0; s < SIM_S_COUNT; s++) {
			const struct sim_result *x = &res[s];
			uint64_t n = 0;

			if (!x->ran)
				continue;
			for (b = 0; b < sc->nbackends; b++)
				n += x->seg_to[g][b];
			printf("  %s", sim_strategy_names[s]);
			for (b = 0; b < sc->nbackends; b++)
				printf("%s%.0f", b ? "/" : " ", sim_pct(x->seg_to[g][b], n));
		}
		printf("\n");
	}
}

static void sim_print_table(const struct sim_scenario *sc, const struct sim_result *res, double scale)
{
	const struct sim_result *best = NULL;
	int s, i;

	printf("\n== %s: %s\n   %.0f s simulated (scale %g), seed %llu, policy %s; headline %s (%s is better)\n",
	       sc->name, sc->description, sc->duration_s, scale, (unsigned long long)sc->seed, sc->policy,
	       sim_headline_names[sc->headline], sim_lower_better(sc) ? "lower" : "higher");
	for (s = 0; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];

		if (!x->ran || s == SIM_S_ORACLE)
			continue;
		if (!best || (sim_lower_better(sc) ? sim_headline_value(sc, x) < sim_headline_value(sc, best)
		                                   : sim_headline_value(sc, x) > sim_headline_value(sc, best)))
			best = x;
	}
	printf("%-19s %9s %7s %11s %6s %9s %7s %11s %6s %4s %4s %9s %8s", "strategy", "requests", "auth%", "fees$", "bps",
	       "checkout%", "shed", "429(ck)", "5xx", "dup", "misr", "away(fp)", "brk(fp)");
	for (i = 0; i < sc->nincidents; i++)
		if (sc->incidents[i].detect)
			printf(" %12.12s", sc->incidents[i].name);
	printf(" %9s  %s\n", "dec/s", "shed by class");
	for (s = 0; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];
		char buf[64], a429[32], away[32], brk[32] = "-";

		if (!x->ran)
			continue;
		snprintf(a429, sizeof(a429), "%llu(%llu)", (unsigned long long)x->up429,
		         (unsigned long long)x->up429_checkout);
		snprintf(away, sizeof(away), "%llu(%llu)", (unsigned long long)x->away_events,
		         (unsigned long long)x->away_false);
		if (x->has_breakers)
			snprintf(brk, sizeof(brk), "%llu(%llu)", (unsigned long long)x->breaker_opens,
			         (unsigned long long)x->breaker_false);
		printf("%-18s%c %9llu %7.2f %11.0f %6.1f %9.2f %7llu %11s %6llu %4llu %4llu %9s %8s", sim_strategy_names[s],
		       x == best ? '*' : ' ', (unsigned long long)x->arrivals, sim_auth_rate(x), x->fees_usd / 100,
		       sim_bps(x), sim_checkout(sc, x), (unsigned long long)sim_shed_total(sc, x), a429,
		       (unsigned long long)x->up5xx, (unsigned long long)x->duplicates, (unsigned long long)x->misrouted,
		       away, brk);
		for (i = 0; i < sc->nincidents; i++)
			if (sc->incidents[i].detect) {
				sim_fmt_detect(buf, sizeof(buf), x->detect_s[i]);
				printf(" %12s", buf);
			}
		printf(" %9.2g ", x->decide_ns > 0 ? (double)x->attempts / x->decide_ns * 1e9 : 0);
		for (i = 0; i < sc->nclasses; i++)
			if (x->shed[i])
				printf(" %s=%llu", sc->classes[i].name, (unsigned long long)x->shed[i]);
		if (x->dropped)
			printf(" (pool full: %llu dropped)", (unsigned long long)x->dropped);
		printf("\n");
	}
	printf("   * best non-oracle on the headline; dec/s: wall clock of decisions only; away(fp): routing-away "
	       "episodes (on calm backends); brk(fp): breaker opens / HAProxy mark-downs (on calm backends)\n");
	sim_print_figures(sc, res);
}

/* The members "incident": seconds of the incidents with `detect`: a number, "never", or
 * `unused` (already JSON) for SIM_DETECT_UNUSED. */
static void sim_json_times(FILE *f, const struct sim_scenario *sc, const double *v, const char *unused)
{
	bool first = true;
	int i;

	for (i = 0; i < sc->nincidents; i++) {
		if (!sc->incidents[i].detect)
			continue;
		fprintf(f, "%s", first ? "" : ",");
		first = false;
		series_json_str(f, sc->incidents[i].name);
		if (v[i] >= 0)
			fprintf(f, ":%.3f", v[i]);
		else
			fprintf(f, ":%s", v[i] == SIM_DETECT_UNUSED ? unused : "\"never\"");
	}
}

static void sim_json_scenario(FILE *f, const struct sim_scenario *sc, const struct sim_result *res, double scale,
                              bool first)
{
	int s, i;

	fprintf(f, "%s{\"scenario\":", first ? "" : ",\n");
	series_json_str(f, sc->name);
	fprintf(f, ",\"file\":");
	series_json_str(f, sc->file);
	fprintf(f, ",\"seed\":%llu,\"duration_s\":%g,\"scale\":%g,\"headline\":\"%s\",\"lower_is_better\":%s,",
	        (unsigned long long)sc->seed, sc->duration_s, scale, sim_headline_names[sc->headline],
	        sim_lower_better(sc) ? "true" : "false");
	fprintf(f, "\"incidents\":[");
	for (i = 0; i < sc->nincidents; i++) {
		fprintf(f, "%s{\"name\":", i ? "," : "");
		series_json_str(f, sc->incidents[i].name);
		fprintf(f, ",\"start_s\":%g,\"end_s\":%g,\"detect\":%s}", sc->incidents[i].start_s, sc->incidents[i].end_s,
		        sc->incidents[i].detect ? "true" : "false");
	}
	fprintf(f, "],\"strategies\":{");
	for (s = 0, first = true; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];
		const char *sep;

		if (!x->ran)
			continue;
		fprintf(f, "%s\n  \"%s\":{", first ? "" : ",", sim_strategy_names[s]);
		first = false;
		fprintf(f, "\"requests\":%llu,\"attempts\":%llu,\"upstream\":%llu,\"auth_rate\":%.4f,"
		        "\"fees_usd\":%.2f,\"fees_bps\":%.3f,\"volume_usd\":%.2f,\"checkout_success\":%.4f,"
		        "\"headline\":%.4f,",
		        (unsigned long long)x->arrivals, (unsigned long long)x->attempts, (unsigned long long)x->upstream,
		        sim_auth_rate(x), x->fees_usd / 100, sim_bps(x), x->volume_usd / 100, sim_checkout(sc, x),
		        sim_headline_value(sc, x));
		fprintf(f, "\"shed\":{");
		for (i = 0; i < sc->nclasses; i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "", sc->classes[i].name, (unsigned long long)x->shed[i]);
		fprintf(f, "},\"shed_total\":%llu,\"success\":{", (unsigned long long)sim_shed_total(sc, x));
		for (i = 0; i < sc->nclasses; i++)
			fprintf(f, "%s\"%s\":%.4f", i ? "," : "", sc->classes[i].name, sim_pct(x->succeeded[i], x->logical[i]));
		fprintf(f, "},\"upstream_429\":%llu,\"upstream_429_checkout\":%llu,\"upstream_5xx\":%llu,"
		        "\"duplicates\":%llu,\"misrouted\":%llu,\"queued\":%llu,\"server_queued\":%llu,"
		        "\"away_events\":%llu,\"away_false\":%llu,\"dropped\":%llu,",
		        (unsigned long long)x->up429, (unsigned long long)x->up429_checkout, (unsigned long long)x->up5xx,
		        (unsigned long long)x->duplicates, (unsigned long long)x->misrouted, (unsigned long long)x->queued,
		        (unsigned long long)x->srv_queued, (unsigned long long)x->away_events, (unsigned long long)x->away_false,
		        (unsigned long long)x->dropped);
		fprintf(f, "\"declines\":{");
		for (i = 0, sep = ""; i < SIM_A_COUNT; i++)
			if (sim_answers[i].decline) {
				fprintf(f, "%s\"%s\":%llu", sep, sim_answers[i].decline, (unsigned long long)x->declines[i]);
				sep = ",";
			}
		fprintf(f, "},");
		if (x->has_breakers)
			fprintf(f, "\"breaker_opens\":%llu,\"breaker_false\":%llu,\"detect_s\":{",
			        (unsigned long long)x->breaker_opens, (unsigned long long)x->breaker_false);
		else
			fprintf(f, "\"breaker_opens\":null,\"breaker_false\":null,\"detect_s\":{");
		sim_json_times(f, sc, x->detect_s, "\"unused\"");
		fprintf(f, "},\"return_s\":{");
		sim_json_times(f, sc, x->return_s, "null");
		fprintf(f, "},\"latency_ms\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f},\"segment_shares\":{",
		        sim_lat_q(x, 0.5), sim_lat_q(x, 0.9), sim_lat_q(x, 0.99));
		for (i = 0; i < sc->nsegs; i++) {
			const struct sim_segment *sg = &sc->segs[i];
			uint64_t n = 0;
			int b;

			for (b = 0; b < sc->nbackends; b++)
				n += x->seg_to[i][b];
			fprintf(f, "%s\"%s/%s/%s/%s/%s\":{", i ? "," : "", sc->cur[sg->cur].code, sg->country, sg->region,
			        sg->brand, sg->funding);
			for (b = 0; b < sc->nbackends; b++)
				fprintf(f, "%s\"%s\":%.4f", b ? "," : "", sc->backends[b].name, n ? (double)x->seg_to[i][b] / n : 0);
			fprintf(f, "}");
		}
		fprintf(f, "},\"decisions_per_s\":%.0f,\"wall_s\":%.3f}",
		        x->decide_ns > 0 ? (double)x->attempts / x->decide_ns * 1e9 : 0, x->wall_s);
		first = false;
	}
	fprintf(f, "}}");
}

/* ---- random worlds ------------------------------------------------------------------------ */

/* The strategies a random world runs: payspoa, the baselines, the oracle. */
static const enum sim_strategy sim_world_strats[] = { SIM_S_PAYSPOA, SIM_S_RR, SIM_S_HAP, SIM_S_STATIC, SIM_S_ORACLE };
#define SIM_WORLD_NSTRATS (sizeof(sim_world_strats) / sizeof(sim_world_strats[0]))

/* One world's figures, written by the worker process that ran it (shared memory). */
struct sim_world_sum {
	uint64_t wseed;
	bool ok;
	bool incidents;          /* the world has incidents */
	bool limited;            /* a rate-limit incident, or an account's (endpoint's) true limit under 2x the
	                          * peak arrival rate (of the classes it counts) */
	int endpoint_limits;     /* true per-endpoint limits (endpoint_limits entries) */
	int nbackends, naccounts;
	char kinds[96];          /* incident kinds, comma-separated */
	double headline[SIM_S_COUNT], auth[SIM_S_COUNT];
	uint64_t breaker_false, breaker_opens, away_false, checkout_shed, shed, up429;
	double wall_s;
	/* Where checkout success went, per strategy: points of checkout requests that ended
	 * declined, shed (a local rejection on the last attempt) or failed (429, 5xx, timeout). */
	double ck_declined[SIM_S_COUNT], ck_shed[SIM_S_COUNT], ck_err[SIM_S_COUNT], bps[SIM_S_COUNT];
	/* Net revenue per strategy, USD: the volume of the charges that succeeded less their
	 * fees (what the merchant keeps; the value the engine and the oracle weigh, without the
	 * latency term). Every strategy sees the same arrivals, so the figures compare. */
	double net[SIM_S_COUNT];
	/* World features: the widest latency sigma, entities, a fee crossover (one backend
	 * cheaper on small amounts, another on large ones). */
	double sigma_max;
	int nentities;
	bool crossover;
};

/* True when some pair of backends swaps fee order between a 10-unit and a 400-unit
 * payment (base schedules, same currency: fixed vs percentage fees). */
static bool sim_world_crossover(const struct sim_scenario *sc)
{
	int a, b;

	for (a = 0; a < sc->nbackends; a++)
		for (b = 0; b < sc->nbackends; b++) {
			const struct sim_fee *fa = &sc->backends[a].fee, *fb = &sc->backends[b].fee;

			if (fa->pct * 10 + fa->fixed < fb->pct * 10 + fb->fixed &&
			    fa->pct * 400 + fa->fixed > fb->pct * 400 + fb->fixed)
				return true;
		}
	return false;
}

static int sim_world_one(uint64_t wseed, const char *dir, struct sim_scenario *sc, struct sim_world_sum *w)
{
	struct sim_result res[SIM_S_COUNT];
	char path[1024], err[512], pol[1024];
	double peak = 0, t;
	size_t k;
	int i;

	memset(w, 0, sizeof(*w));
	w->wseed = wseed;
	if (world_write(wseed, sim_world_learning, dir, path, sizeof(path), err, sizeof(err)) ||
	    sc_load(path, sc, err, sizeof(err))) {
		fprintf(stderr, "payspoa-sim: world %llu: %s\n", (unsigned long long)wseed, err);
		return -1;
	}
	snprintf(pol, sizeof(pol), "%s", sc->policy);
	w->nbackends = sc->nbackends;
	w->naccounts = sc->naccounts;
	w->incidents = sc->nincidents > 0;
	w->crossover = sim_world_crossover(sc);
	for (i = 0; i < sc->nbackends; i++) {
		int j;

		if (sc->backends[i].lat_sigma > w->sigma_max)
			w->sigma_max = sc->backends[i].lat_sigma;
		for (j = 0; j < i && strcmp(sc->backends[j].region, sc->backends[i].region); j++)
			;
		w->nentities += j == i;
	}
	for (t = 0; t < sc->duration_s; t += 1)
		if (sim_rate_at(sc, t) > peak)
			peak = sim_rate_at(sc, t);
	for (i = 0; i < sc->naccounts; i++)
		w->limited |= sc->accounts[i].rate < 2 * peak;
	for (i = 0; i < sc->nendpoints; i++) { /* an endpoint's own limit against its classes' share of the peak */
		double share = 0, all = 0;
		int c;

		for (c = 0; c < sc->nclasses; c++) {
			all += sc->classes[c].share;
			if (sc->endpoints[i].classes & (1U << c))
				share += sc->classes[c].share;
		}
		w->limited |= all > 0 && sc->endpoints[i].rate < 2 * peak * share / all;
	}
	w->endpoint_limits = sc->nendpoints;
	for (i = 0; i < sc->nincidents; i++) {
		static const char *const kn[SIM_INC_COUNT] = { "outage", "brownout", "latency", "auth_drift",
			"decline_storm", "rate_limit" };
		size_t l = strlen(w->kinds);

		w->limited |= sc->incidents[i].kind == SIM_INC_RATE_LIMIT;
		snprintf(w->kinds + l, sizeof(w->kinds) - l, "%s%s%s", l ? "," : "", kn[sc->incidents[i].kind],
		         sc->incidents[i].m.cur[0] || sc->incidents[i].m.region[0] || sc->incidents[i].m.brand[0] ||
		         sc->incidents[i].m.funding[0] ? "(seg)" : "");
	}
	for (k = 0; k < SIM_WORLD_NSTRATS; k++) {
		enum sim_strategy s = sim_world_strats[k];

		if (sim_run(sc, s, &res[s]))
			return -1;
		w->headline[s] = sim_headline_value(sc, &res[s]);
		w->auth[s] = sim_auth_rate(&res[s]);
		w->wall_s += res[s].wall_s;
		w->bps[s] = sim_bps(&res[s]);
		w->net[s] = (res[s].volume_usd - res[s].fees_usd) / 100; /* minor units: cents */
		if (sc->checkout >= 0) {
			uint64_t nl = res[s].logical[sc->checkout];

			w->ck_declined[s] = sim_pct(res[s].end_declined[sc->checkout], nl);
			w->ck_shed[s] = sim_pct(res[s].end_shed[sc->checkout], nl);
			w->ck_err[s] = sim_pct(res[s].end_err[sc->checkout], nl);
		}
	}
	w->breaker_false = res[SIM_S_PAYSPOA].breaker_false;
	w->breaker_opens = res[SIM_S_PAYSPOA].breaker_opens;
	w->away_false = res[SIM_S_PAYSPOA].away_false;
	w->up429 = res[SIM_S_PAYSPOA].up429;
	w->checkout_shed = sc->checkout >= 0 ? res[SIM_S_PAYSPOA].shed[sc->checkout] : 0;
	w->shed = sim_shed_total(sc, &res[SIM_S_PAYSPOA]);
	remove(path);
	remove(pol);
	w->ok = true;
	return 0;
}

static int sim_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Mean, worst (largest) and the value 10 % of worlds exceed (nearest rank) of v[n]. */
struct sim_stat {
	double mean, worst, p90;
};

static struct sim_stat sim_stat(double *v, int n)
{
	struct sim_stat st = { 0, 0, 0 };
	int i;

	if (n == 0)
		return st;
	qsort(v, (size_t)n, sizeof(*v), sim_cmp_double);
	for (i = 0; i < n; i++)
		st.mean += v[i] / n;
	st.worst = v[n - 1];
	st.p90 = v[(int)ceil(0.9 * n) - 1];
	return st;
}

/* The best non-oracle baseline of a world by one figure v[strategy] (higher is better):
 * its headline, or its net revenue. */
static enum sim_strategy sim_world_best_base(const double *v)
{
	enum sim_strategy best = SIM_S_RR;
	size_t k;

	for (k = 0; k < SIM_WORLD_NSTRATS; k++) {
		enum sim_strategy s = sim_world_strats[k];

		if (s != SIM_S_PAYSPOA && s != SIM_S_ORACLE && v[s] > v[best])
			best = s;
	}
	return best;
}

static void sim_json_stat(FILE *f, const char *key, struct sim_stat st, int n)
{
	fprintf(f, "\"%s\":{\"worlds\":%d,\"mean\":%.4f,\"worst\":%.4f,\"p90\":%.4f}", key, n, st.mean, st.worst, st.p90);
}

/* --random N --seed S: N worlds, `jobs` worker processes, the summary on stdout (and in
 * JSON). Returns the exit status. */
static int sim_random(unsigned n, uint64_t seed, int jobs, const char *json)
{
	struct sim_world_sum *ws = mmap(NULL, sizeof(*ws) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char dir[] = "/tmp/payspoa-sim-worlds.XXXXXX";
	double *gap = NULL, *gapb = NULL, *gapq = NULL, *gapa = NULL, *gapn = NULL;
	struct sim_stat so, sb, sq, sa, sn;
	int j, rc = 1, nok = 0, nq = 0, lost = 0, below05 = 0, quiet_over = 0, oracle_beaten = 0, brk_worlds = 0;
	int shed_worlds = 0, nunlim = 0, oracle_below = 0, lost_oracle_not = 0, net_lost = 0, net_oracle_below = 0;
	uint64_t brk = 0, away = 0, shed = 0, shed_all = 0;
	unsigned k;
	FILE *f = NULL;

	if (ws == MAP_FAILED || !mkdtemp(dir)) {
		fprintf(stderr, "payspoa-sim: --random: %s\n", strerror(errno));
		return 1;
	}
	memset(ws, 0, sizeof(*ws) * n);
	fflush(stdout);
	for (j = 0; j < jobs; j++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "payspoa-sim: fork: %s\n", strerror(errno));
			jobs = j;
			break;
		}
		if (pid == 0) {
			struct sim_scenario *sc = malloc(sizeof(*sc));

			for (k = (unsigned)j; sc && k < n; k += (unsigned)jobs)
				sim_world_one(world_seed(seed, k), dir, sc, &ws[k]);
			free(sc);
			_exit(0);
		}
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	rmdir(dir);
	gap = calloc(n, sizeof(*gap));
	gapb = calloc(n, sizeof(*gapb));
	gapq = calloc(n, sizeof(*gapq));
	gapa = calloc(n, sizeof(*gapa));
	gapn = calloc(n, sizeof(*gapn));
	if (!gap || !gapb || !gapq || !gapa || !gapn)
		goto out;
	for (k = 0; k < n; k++) {
		const struct sim_world_sum *w = &ws[k];
		double hp = w->headline[SIM_S_PAYSPOA];
		enum sim_strategy bb, bn;
		size_t i;

		if (!w->ok)
			continue;
		bb = sim_world_best_base(w->headline);
		gap[nok] = w->headline[SIM_S_ORACLE] - hp;
		gapb[nok] = w->headline[bb] - hp;
		lost += gapb[nok] > 0;
		below05 += gapb[nok] > 0.5;
		/* The oracle maximises value (fees and latency weighed), not the headline: where
		 * it is itself below a baseline, so is an engine that does as it does. */
		oracle_below += w->headline[bb] > w->headline[SIM_S_ORACLE];
		lost_oracle_not += gapb[nok] > 0 && w->headline[bb] <= w->headline[SIM_S_ORACLE];
		/* The same on net revenue, in % of the best baseline's (positive = payspoa below). */
		bn = sim_world_best_base(w->net);
		gapn[nok] = w->net[bn] > 0 ? 100 * (w->net[bn] - w->net[SIM_S_PAYSPOA]) / w->net[bn] : 0;
		net_lost += w->net[bn] > w->net[SIM_S_PAYSPOA];
		net_oracle_below += w->net[bn] > w->net[SIM_S_ORACLE];
		for (i = 0; i < SIM_WORLD_NSTRATS; i++)
			if (w->headline[sim_world_strats[i]] > w->headline[SIM_S_ORACLE]) {
				oracle_beaten++;
				break;
			}
		if (!w->incidents) {
			gapq[nq] = w->headline[SIM_S_ORACLE] - hp;
			gapa[nq] = w->auth[SIM_S_ORACLE] - w->auth[SIM_S_PAYSPOA];
			quiet_over += w->nbackends <= 4 && gapa[nq] > 0.3;
			nq++;
		}
		brk += w->breaker_false;
		away += w->away_false;
		brk_worlds += w->breaker_false > 0;
		if (!w->limited) {
			nunlim++;
			shed += w->checkout_shed;
			shed_all += w->shed;
			shed_worlds += w->checkout_shed > 0;
		}
		nok++;
	}
	so = sim_stat(gap, nok);
	sb = sim_stat(gapb, nok);
	sq = sim_stat(gapq, nq);
	sa = sim_stat(gapa, nq);
	sn = sim_stat(gapn, nok);
	printf("\n== %u random worlds, seed %llu (world seeds %llu..%llu), %d ran; headline checkout_success "
	       "(points, positive = payspoa below)\n",
	       n, (unsigned long long)seed, (unsigned long long)world_seed(seed, 0),
	       (unsigned long long)world_seed(seed, n - 1), nok);
	printf("gap to the oracle:                mean %6.3f  worst %6.3f  10%% of worlds above %6.3f\n", so.mean,
	       so.worst, so.p90);
	printf("gap to the best baseline:         mean %6.3f  worst %6.3f  10%% of worlds above %6.3f\n", sb.mean,
	       sb.worst, sb.p90);
	printf("worlds payspoa lost to a baseline: %d of %d (%.1f %%), by more than 0.5 pt: %d\n", lost, nok,
	       nok ? 100.0 * lost / nok : 0, below05);
	printf("no-incident worlds (%d): headline gap to the oracle mean %.3f worst %.3f; auth-rate gap mean %.3f "
	       "worst %.3f; with 2-4 backends over 0.3 pt: %d\n",
	       nq, sq.mean, sq.worst, sa.mean, sa.worst, quiet_over);
	printf("false breaker opens: %llu in %d worlds; false routing-away episodes: %llu\n", (unsigned long long)brk,
	       brk_worlds, (unsigned long long)away);
	printf("checkout sheds without a rate limit (%d worlds): %llu in %d worlds; sheds of every class there: %llu\n",
	       nunlim, (unsigned long long)shed, shed_worlds, (unsigned long long)shed_all);
	printf("worlds where a strategy beat the oracle: %d\n", oracle_beaten);
	printf("net revenue (charges authorised less fees), gap to the best baseline in %% of its own: mean %.3f "
	       "worst %.3f 10%% of worlds above %.3f; payspoa below it in %d worlds, the oracle in %d\n",
	       sn.mean, sn.worst, sn.p90, net_lost, net_oracle_below);
	printf("worlds where the oracle itself is below the best baseline: %d; payspoa lost to a baseline in %d "
	       "of the other %d\n",
	       oracle_below, lost_oracle_not, nok - oracle_below);
	if (lost)
		printf("lost worlds (world seed: payspoa vs best baseline, incidents):\n");
	for (k = 0; k < n; k++) {
		const struct sim_world_sum *w = &ws[k];
		enum sim_strategy bb = sim_world_best_base(w->headline);

		if (w->ok && w->headline[bb] > w->headline[SIM_S_PAYSPOA])
			printf("  %llu: %.2f vs %s %.2f (-%.2f pt), oracle %.2f; %d backends; %s\n",
			       (unsigned long long)w->wseed, w->headline[SIM_S_PAYSPOA], sim_strategy_names[bb], w->headline[bb],
			       w->headline[bb] - w->headline[SIM_S_PAYSPOA], w->headline[SIM_S_ORACLE], w->nbackends,
			       w->kinds[0] ? w->kinds : "no incident");
	}
	for (k = 0; k < n; k++)
		if (!ws[k].ok)
			printf("world %llu did not run (see stderr)\n", (unsigned long long)ws[k].wseed);
	if (json) {
		if (!(f = fopen(json, "w"))) {
			fprintf(stderr, "payspoa-sim: %s: %s\n", json, strerror(errno));
			goto out;
		}
		fprintf(f, "{\"random\":{\"seed\":%llu,\"worlds\":%u,\"ran\":%d,\"headline\":\"checkout_success\",\"summary\":{",
		        (unsigned long long)seed, n, nok);
		sim_json_stat(f, "gap_oracle", so, nok);
		fputc(',', f);
		sim_json_stat(f, "gap_best_baseline", sb, nok);
		fputc(',', f);
		sim_json_stat(f, "quiet_gap_oracle", sq, nq);
		fputc(',', f);
		sim_json_stat(f, "quiet_auth_gap_oracle", sa, nq);
		fputc(',', f);
		sim_json_stat(f, "net_gap_best_baseline_pct", sn, nok);
		fprintf(f, ",\"net_lost\":%d,\"net_oracle_below_best\":%d", net_lost, net_oracle_below);
		fprintf(f, ",\"lost\":%d,\"lost_over_0_5\":%d,\"quiet_2_4_over_0_3\":%d,\"breaker_false\":%llu,"
		           "\"breaker_false_worlds\":%d,\"away_false\":%llu,\"unlimited_worlds\":%d,"
		           "\"checkout_shed_unlimited\":%llu,\"checkout_shed_unlimited_worlds\":%d,\"shed_unlimited\":%llu,"
		           "\"oracle_beaten\":%d,\"oracle_below_best\":%d,\"lost_where_oracle_not\":%d},"
		           "\n\"world_list\":[",
		        lost, below05, quiet_over, (unsigned long long)brk, brk_worlds, (unsigned long long)away, nunlim,
		        (unsigned long long)shed, shed_worlds, (unsigned long long)shed_all, oracle_beaten, oracle_below,
		        lost_oracle_not);
		for (k = 0; k < n; k++) {
			const struct sim_world_sum *w = &ws[k];
			size_t i;

			fprintf(f, "%s\n{\"world_seed\":%llu,\"ran\":%s,\"backends\":%d,\"accounts\":%d,\"incidents\":",
			        k ? "," : "", (unsigned long long)w->wseed, w->ok ? "true" : "false", w->nbackends,
			        w->naccounts);
			series_json_str(f, w->kinds);
			fprintf(f, ",\"limited\":%s,\"breaker_opens\":%llu,\"breaker_false\":%llu,\"away_false\":%llu,"
			           "\"checkout_shed\":%llu,\"shed\":%llu,\"upstream_429\":%llu,\"wall_s\":%.3f,\"headline\":{",
			        w->limited ? "true" : "false", (unsigned long long)w->breaker_opens,
			        (unsigned long long)w->breaker_false, (unsigned long long)w->away_false,
			        (unsigned long long)w->checkout_shed, (unsigned long long)w->shed, (unsigned long long)w->up429,
			        w->wall_s);
			for (i = 0; i < SIM_WORLD_NSTRATS; i++)
				fprintf(f, "%s\"%s\":%.4f", i ? "," : "", sim_strategy_names[sim_world_strats[i]],
				        w->headline[sim_world_strats[i]]);
			fprintf(f, "},\"auth_rate\":{");
			for (i = 0; i < SIM_WORLD_NSTRATS; i++)
				fprintf(f, "%s\"%s\":%.4f", i ? "," : "", sim_strategy_names[sim_world_strats[i]],
				        w->auth[sim_world_strats[i]]);
			fprintf(f, "},\"fees_bps\":{");
			for (i = 0; i < SIM_WORLD_NSTRATS; i++)
				fprintf(f, "%s\"%s\":%.2f", i ? "," : "", sim_strategy_names[sim_world_strats[i]],
				        w->bps[sim_world_strats[i]]);
			fprintf(f, "},\"net_usd\":{");
			for (i = 0; i < SIM_WORLD_NSTRATS; i++)
				fprintf(f, "%s\"%s\":%.2f", i ? "," : "", sim_strategy_names[sim_world_strats[i]],
				        w->net[sim_world_strats[i]]);
			fprintf(f, "},\"checkout_lost\":{");
			for (i = 0; i < SIM_WORLD_NSTRATS; i++) {
				enum sim_strategy s = sim_world_strats[i];

				fprintf(f, "%s\"%s\":{\"declined\":%.4f,\"shed\":%.4f,\"failed\":%.4f}", i ? "," : "",
				        sim_strategy_names[s], w->ck_declined[s], w->ck_shed[s], w->ck_err[s]);
			}
			fprintf(f, "},\"sigma_max\":%.3f,\"entities\":%d,\"crossover\":%s,\"endpoint_limits\":%d}", w->sigma_max,
			        w->nentities, w->crossover ? "true" : "false", w->endpoint_limits);
		}
		fprintf(f, "\n]}}\n");
		if (ferror(f) | fclose(f)) {
			f = NULL;
			fprintf(stderr, "payspoa-sim: %s: write failed\n", json);
			goto out;
		}
		f = NULL;
	}
	rc = nok == (int)n ? 0 : 1;
out:
	if (f)
		fclose(f);
	free(gap);
	free(gapb);
	free(gapq);
	free(gapa);
	free(gapn);
	munmap(ws, sizeof(*ws) * n);
	return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static void sim_usage(FILE *f)
{
	fprintf(f, "usage: payspoa-sim [--json FILE] [--seed N] [--scale X] [--strategy NAME]... [--restart-at SECONDS]\n"
	           "                   [--restart-cold] [--warm-start SNAPSHOT] [--save-state SNAPSHOT] scenario.conf...\n"
	           "                   [--series FILE.csv|FILE.json] [--series-format csv|json] [--plot DIR]\n"
	           "                   [--series-bin SECONDS] [--rng-salt N]\n"
	           "       payspoa-sim --random N [--seed S] [--jobs J] [--json FILE] [--rng-salt N]\n"
	           "                   [--world-learning SETTINGS]\n"
	           "       payspoa-sim --print-world WORLD_SEED [--out DIR] [--world-learning SETTINGS]\n"
	           "  strategies: payspoa payspoa-noforecast round-robin primary-backup static-cost oracle\n"
	           "  (payspoa-noforecast runs only for scenarios that name policy_noforecast)\n");
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	double scale = 1;
	bool want[SIM_S_COUNT] = { false }, any = false, seed_set = false;
	unsigned long long seed = 0;
	struct sim_scenario *sc = malloc(sizeof(*sc));
	static struct sim_result res[SIM_S_COUNT]; /* static: zeroed, and kept off the stack */
	FILE *jf = NULL;
	char err[512];
	const char *out_dir = ".", *series_path = NULL, *plot_dir = NULL;
	struct series_out so = { NULL, false, 0, 0 };
	int series_fmt = -1; /* --series-format: 0 csv, 1 json; -1: by the file name (.json, else csv) */
	unsigned long long nrandom = 0, print_world = 0;
	bool want_print = false;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int i, s, rc = 1, nsc = 0;

	if (!sc)
		return 1;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			sim_usage(stdout);
			free(sc);
			return 0;
		}
		if (!strcmp(a, "--restart-cold")) {
			sim_restart_cold = true;
			continue;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--json")) {
			json = v;
		} else if (!strcmp(a, "--seed")) {
			errno = 0;
			seed = strtoull(v, &end, 0);
			if (errno || *end)
				goto usage;
			seed_set = true;
		} else if (!strcmp(a, "--random") || !strcmp(a, "--print-world")) {
			errno = 0;
			*(!strcmp(a, "--random") ? &nrandom : &print_world) = strtoull(v, &end, 0);
			if (errno || *end || (!strcmp(a, "--random") && (nrandom == 0 || nrandom > 1000000)))
				goto usage;
			want_print |= !strcmp(a, "--print-world");
		} else if (!strcmp(a, "--rng-salt")) {
			errno = 0;
			sim_rng_salt = strtoull(v, &end, 0);
			if (errno || *end)
				goto usage;
		} else if (!strcmp(a, "--world-learning")) {
			sim_world_learning = v;
		} else if (!strcmp(a, "--jobs")) {
			jobs = strtol(v, &end, 0);
			if (*end || jobs < 1 || jobs > 256)
				goto usage;
		} else if (!strcmp(a, "--out")) {
			out_dir = v;
		} else if (!strcmp(a, "--scale")) {
			scale = strtod(v, &end);
			if (*end || !(scale > 0 && scale <= 100))
				goto usage;
		} else if (!strcmp(a, "--series")) {
			series_path = v;
			sim_series_on = true;
		} else if (!strcmp(a, "--series-format")) {
			if ((series_fmt = !strcmp(v, "json") ? 1 : !strcmp(v, "csv") ? 0 : -1) < 0)
				goto usage;
		} else if (!strcmp(a, "--plot")) {
			plot_dir = v;
			sim_series_on = true;
		} else if (!strcmp(a, "--series-bin")) {
			sim_series_bin_opt = strtod(v, &end);
			if (*end || !(sim_series_bin_opt > 0))
				goto usage;
		} else if (!strcmp(a, "--warm-start")) {
			sim_warm_path = v;
		} else if (!strcmp(a, "--save-state")) {
			sim_save_path = v;
		} else if (!strcmp(a, "--restart-at")) {
			sim_restart_at_s = strtod(v, &end);
			if (*end || !(sim_restart_at_s >= 0))
				goto usage;
		} else if (!strcmp(a, "--strategy")) {
			for (s = 0; s < SIM_S_COUNT && strcmp(sim_strategy_names[s], v); s++)
				;
			if (s == SIM_S_COUNT)
				goto usage;
			want[s] = any = true;
		} else {
			goto usage;
		}
	}
	if (want_print) {
		char path[1024];

		if (i != argc)
			goto usage;
		if (world_write(print_world, sim_world_learning, out_dir, path, sizeof(path), err, sizeof(err))) {
			fprintf(stderr, "payspoa-sim: %s\n", err);
			goto out;
		}
		printf("%s\n", path);
		rc = 0;
		goto out;
	}
	if (nrandom) {
		if (i != argc)
			goto usage;
		sim_series_on = false; /* no time series over random worlds */
		rc = sim_random((unsigned)nrandom, seed_set ? seed : 1, jobs < 1 ? 1 : (int)jobs, json);
		goto out;
	}
	if (i == argc)
		goto usage;
	if (json && !(jf = fopen(json, "w"))) {
		fprintf(stderr, "payspoa-sim: %s: %s\n", json, strerror(errno));
		goto out;
	}
	if (series_path) {
		size_t n = strlen(series_path);

		so.json = series_fmt >= 0 ? series_fmt == 1 : n > 5 && !strcasecmp(series_path + n - 5, ".json");
	}
	if (series_path && !(so.f = fopen(series_path, "w"))) {
		fprintf(stderr, "payspoa-sim: %s: %s\n", series_path, strerror(errno));
		goto out;
	}
	if (jf)
		fprintf(jf, "{\"scenarios\":[\n");
	for (; i < argc; i++) {
		if (sc_load(argv[i], sc, err, sizeof(err))) {
			fprintf(stderr, "payspoa-sim: %s\n", err);
			goto out;
		}
		if (seed_set)
			sc->seed = seed;
		sc_scale(sc, scale);
		for (s = 0; s < SIM_S_COUNT; s++) {
			memset(&res[s], 0, sizeof(res[s]));
			if ((any && !want[s]) || (s == SIM_S_PAYSPOA_NOFC && !sc->policy_nofc[0]))
				continue;
			if (sim_run(sc, (enum sim_strategy)s, &res[s]))
				goto out;
		}
		sim_print_table(sc, res, scale);
		fflush(stdout);
		if (jf)
			sim_json_scenario(jf, sc, res, scale, nsc == 0);
		if (so.f)
			series_write(&so, sc, res, sim_strategy_names);
		if (plot_dir) {
			char path[1024];

			snprintf(path, sizeof(path), "%s/%s.html", plot_dir, sc->name);
			if (series_html(path, sc, res, sim_strategy_names, err, sizeof(err))) {
				fprintf(stderr, "payspoa-sim: %s\n", err);
				goto out;
			}
		}
		for (s = 0; s < SIM_S_COUNT; s++) {
			free(res[s].series);
			res[s].series = NULL;
		}
		nsc++;
	}
	if (jf)
		fprintf(jf, "\n]}\n");
	if (so.f)
		series_end(&so);
	rc = 0;
	goto out;
usage:
	sim_usage(stderr);
	rc = 2;
out:
	for (s = 0; s < SIM_S_COUNT; s++)
		free(res[s].series);
	if (so.f && (ferror(so.f) | fclose(so.f)) && rc == 0) {
		fprintf(stderr, "payspoa-sim: %s: write failed\n", series_path);
		rc = 1;
	}
	if (jf && fclose(jf) && rc == 0) {
		fprintf(stderr, "payspoa-sim: %s: write failed\n", json);
		rc = 1;
	}
	free(sc);
	return rc;
}
