/* policy.h: the engine's entry points, as the daemon sees them.
 * Must not pull in libev, libcurl, msgpack, OpenSSL or libconfig. */
#ifndef POLICY_H
#define POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters-t.h"
#include "pay-t.h"

struct policy;     /* a loaded, validated, immutable policy file */
struct pol_engine; /* the policy in force plus the live state (budgets, affinity, ...) */

/* Load and validate a policy file. Returns NULL and writes "file:line: message" into
 * err on the first error. Allocates; call at boot or on the control thread only. */
struct policy *pol_load(const char *path, char *err, size_t errlen);
/* Same, from a string (tests, fuzzing); `name` stands for the file name in errors.
 * @include is refused: a string has no directory to resolve it against. */
struct policy *pol_load_string(const char *text, const char *name, char *err, size_t errlen);
void pol_free(struct policy *p); /* accepts NULL */
const struct pol_agent *pol_agent(const struct policy *p);
const struct pol_fleet *pol_fleet(const struct policy *p);

/* Idempotency pins the budgets need kept at once: the sum of the account budgets × the
 * TTL (the default of pinning.idem_slots). */
uint64_t pol_pin_need(const struct policy *p);
/* What the pin tables promise, one line per table, into buf (`payspoa -c`): how long a
 * pin is kept and up to which rate. Returns 1 when the idempotency table is smaller than
 * the budgets need (the line then says the shorter guarantee at the budgets' rate). */
int pol_pin_guarantee(const struct policy *p, char *buf, size_t len);

/* Build an engine around p (the engine takes ownership of p) for `nworkers` threads. */
struct pol_engine *pol_engine_new(struct policy *p, unsigned nworkers, char *err, size_t errlen);
void pol_engine_free(struct pol_engine *e); /* accepts NULL; no worker may be inside */
/* Reseeds the workers' random streams (exploration draws, shed coins) from salt, before
 * any decision (control thread); salt 0 restores the default seeds. For the simulator's
 * replicas of one run (payspoa-sim --rng-salt). */
void pol_engine_salt(struct pol_engine *e, uint64_t salt);

/* Replace the policy (control thread). Builds the new view completely, carries state
 * over for the names that survive, publishes it with one atomic store. Takes ownership
 * of p in every case. Returns 0, or -1 with err filled (the old policy stays). */
int pol_engine_swap(struct pol_engine *e, struct policy *p, char *err, size_t errlen);

/* The decision (worker thread `worker`, 0..nworkers-1). Never blocks, never allocates.
 * now_us: monotonic microseconds. Always fills *out with a usable verdict. */
void pol_decide(struct pol_engine *e, unsigned worker, const struct pay_request *rq,
                uint64_t now_us, struct pay_verdict *out);

/* An outcome reported by `pay-response` (worker thread). Never blocks or allocates. */
void pol_observe(struct pol_engine *e, unsigned worker, const struct pay_outcome *o,
                 uint64_t now_us);

/* pol_observe for n outcomes at once (a log reader's batch): the same as n calls, with
 * the cache misses of their pin lookups overlapped. Never blocks or allocates. */
void pol_observe_batch(struct pol_engine *e, unsigned worker, const struct pay_outcome *o, unsigned n,
                       uint64_t now_us);

/* Quiescent point: the worker holds no pointer from an earlier pol_decide (call at the
 * end of each event-loop iteration). Lets the control thread free retired views. */
void pol_quiesce(struct pol_engine *e, unsigned worker);

/* Extended quiescent state: the worker is about to block (e.g. in epoll_wait) and holds
 * nothing until its next pol_decide/pol_observe. Without it, a worker that sleeps keeps
 * retired views alive until it wakes. */
void pol_worker_idle(struct pol_engine *e, unsigned worker);

/* Control thread, every ~50 ms: merge worker statistics, free retired views. */
void pol_tick(struct pol_engine *e, uint64_t now_us);

/* ---- control thread: admin socket and metrics ------------------------------------
 * These read the view in force; call them on the control thread (the one that calls
 * pol_tick and pol_engine_swap), which alone frees views. Strings returned stay valid
 * until the next pol_engine_swap or pol_tick. */

struct pol_backend_info {
	const char *name, *account, *entity;
	bool enabled;           /* in the policy file */
	bool admin_disabled;    /* `set backend <b> disable` */
	bool admin_drained;     /* `set backend <b> drain` */
	int state;              /* 0 up, 1 probing (half-open), 2 down (breaker open) */
	double p_auth;          /* the P(auth) scoring uses for an unknown card region */
	double latency_ms;      /* likewise */
	double budget_load;     /* share of the account budget in use, 0..1 */
	bool prior_tested;      /* its own outcomes have reached learning.min_n (the latch of
	                         * learning.explore_untested): false, its auth_rate still decides */
};

/* Backend i (policy order). Returns 0, or -1 when i is past the last one. */
int pol_engine_backend_info(struct pol_engine *e, unsigned i, uint64_t now_us,
                            struct pol_backend_info *out);

/* `set backend <b> enable|disable`: carried over reloads for names that survive (either
 * ends a drain). Returns 0, or -1 if no backend has that name. */
int pol_engine_set_enabled(struct pol_engine *e, const char *backend, bool enabled);
/* `set backend <b> drain`: the backend takes only pinned requests (idempotency retries,
 * objects, accounts it holds), no new traffic; ends a disable. Carried like disable.
 * Returns 0, or -1 if no backend has that name. */
int pol_engine_set_drained(struct pol_engine *e, const char *backend);

struct pol_class_info {
	const char *name;
	int prio, offset_ms, shed_order, queue_ms;
	double reserve, reserved_above;
};
int pol_engine_class_info(struct pol_engine *e, unsigned i, struct pol_class_info *out);

/* Budget i: the account budgets first (endpoint NULL), then each account × endpoint. */
struct pol_budget_info {
	const char *account, *endpoint;
	double rate, burst;     /* requests per second, requests */
	double load;            /* share of the tolerance in use, 0..1 (lease mode: 1 - held / stock) */
};
int pol_engine_budget_info(struct pol_engine *e, unsigned i, uint64_t now_us,
                           struct pol_budget_info *out);

/* Counters summed over the workers, plus the control thread's figures: one uint64_t
 * per name of the lists in counters-t.h (vectors as arrays). */
struct pol_stats {
#define X(name, type, help) uint64_t name;
	POL_COUNTERS(X)
	POL_ENGINE_COUNTERS(X)
#undef X
#define X(name, type, n, label, values, help) uint64_t name[n];
	POL_COUNTER_VECS(X)
	POL_ENGINE_VECS(X)
#undef X
};
void pol_engine_stats(struct pol_engine *e, uint64_t now_us, struct pol_stats *out);
/* Checks the engine's invariants (control thread): every worker's outcome ring, the
 * view in force (budgets, the learning loop's master state: pol_learn_verify) and, when
 * `pins`, its affinity tables, which is valid only while no worker decides (a writer
 * holds a slot locked; after the workers stopped, or in tests). now_us: a time no
 * decision came after, which bounds how far ahead budgets are booked and says which
 * pins are live; POL_NOW_UNKNOWN skips what needs it. Returns 0, or -1 with the first
 * violation in err (errlen > 0). Builds with POL_CHECKS (bug.h) run it from the tick
 * once a second (without pins), on each reload (the new view, pins included, before it is
 * published) and when the engine is freed (pins included). */
#define POL_NOW_UNKNOWN UINT64_MAX
int pol_engine_verify(struct pol_engine *e, uint64_t now_us, bool pins, char *err, size_t errlen);

/* Decisions by backend, class and verdict, counted by the workers into the view in force
 * (they start again from 0 on a reload: Prometheus takes that as a counter reset).
 * Entry i: backend i / (nclasses * 3), class (i / 3) % nclasses, verdict i % 3 (enum
 * pay_verdict_kind). Returns 0, or -1 past the last one. */
struct pol_route_info {
	const char *backend, *class_name;
	enum pay_verdict_kind verdict;
	uint64_t count;
};
int pol_engine_route_info(struct pol_engine *e, unsigned i, struct pol_route_info *out);

/* A live sample of decisions (`show decisions`): every `every`th decision of each worker
 * (0: none, the default) is copied into that worker's ring of POL_SAMPLE_RING, with its
 * reasons and the score of each backend it scored. The worker is the ring's only writer
 * (no lock, no allocation: a seqlock per slot); the control thread reads. */
#define POL_SAMPLE_RING 32
#define POL_SAMPLE_CAND 16
struct pol_sample {
	uint64_t t_us;          /* when it was decided (the worker's clock, monotonic) */
	uint64_t seq;           /* the worker's decision sequence */
	uint16_t gen;           /* the view whose backend and class indices these are */
	uint8_t worker, backend, cls, verdict, ncand;
	struct {
		uint8_t backend;
		uint8_t flags;      /* POL_SAMPLE_F_* */
		float score, raw;   /* expected value (minor units), with and without penalty */
	} cand[POL_SAMPLE_CAND];
	char reason[PAY_REASON_MAX + 1];
};
#define POL_SAMPLE_F_CAND   1u /* a candidate (passed the filters) */
#define POL_SAMPLE_F_HELD   2u /* scored, but only its health kept it out */
#define POL_SAMPLE_F_CHOSEN 4u
/* Control thread: sample every `every`th decision per worker (0: stop). */
void pol_engine_set_sampling(struct pol_engine *e, unsigned every);
unsigned pol_engine_sampling(struct pol_engine *e);
/* Control thread: the samples held, newest first per worker, at most max into out (a
 * slot being rewritten is skipped). Names: pol_engine_sample_names. Returns the count. */
size_t pol_engine_samples(struct pol_engine *e, struct pol_sample *out, size_t max);
/* The backend and class names of a sample, or NULL when its view is no longer in force. */
const char *pol_engine_sample_backend(struct pol_engine *e, const struct pol_sample *s, unsigned backend);
const char *pol_engine_sample_class(struct pol_engine *e, const struct pol_sample *s);

/* `show learning`: backend b's posteriors of P(auth) by segment (its whole traffic, then
 * each currency of the policy), most observations first, at most max into out. Returns
 * the count, or -1 past the last backend. */
struct pol_seg_info {
	char currency[4];       /* ISO code, lower case; "" for the backend's whole traffic */
	double n;               /* discounted observations */
	double mean, sd;        /* the posterior's, prior included */
};
int pol_engine_learn_segs(struct pol_engine *e, unsigned b, uint64_t now_us, struct pol_seg_info *out,
                          unsigned max);

/* ---- pins for snapshots -----------------------------------------------------------------
 * Tables: 0 idempotency keys, 1 objects, 2 connected accounts. A pin is (table, key, the
 * backend it names and that backend's account, age): key is the table's 64-bit hash as
 * the engine keeps it (opaque, stable across restarts of the same build family: the seeds
 * are constants), age the youngest the pin can be, in seconds. */
enum pol_pin_table { POL_PIN_IDEM, POL_PIN_OBJECT, POL_PIN_ACCOUNT, POL_PIN_TABLES };
typedef void pol_pin_fn(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                        uint32_t age_s);
/* Calls fn for every pin held; workers may run (a pin claimed meanwhile may be missed).
 * On the control thread, or on any thread between pol_engine_pins_hold(e, 1), made on
 * the control thread, and pol_engine_pins_hold(e, -1): while held, the tables keep the
 * memory of the generations they drop. */
void pol_engine_pins_each(struct pol_engine *e, uint64_t now_us, pol_pin_fn *fn, void *arg);
void pol_engine_pins_hold(struct pol_engine *e, int delta);
/* Puts one back, before workers decide. It follows the backend of that name on that
 * account, else another backend of the account, else it is kept and its requests are
 * refused with pin:gone: a pin never moves to another account. Returns POL_PIN_KEPT,
 * POL_PIN_REMAPPED (another backend of its account), POL_PIN_GONE, POL_PIN_EXPIRED
 * (older than its table's TTL: not restored), or -1 (no room, no backend id left, bad
 * table). */
enum { POL_PIN_KEPT, POL_PIN_REMAPPED, POL_PIN_GONE, POL_PIN_EXPIRED };
int pol_engine_pin_restore(struct pol_engine *e, unsigned table, uint64_t key, const char *backend,
                           const char *account, uint32_t age_s, uint64_t now_us);

/* ---- pins across a fleet (spoa/fleet.c) -------------------------------------------------
 * Control thread. pol_engine_journal turns on the pin journal before workers decide: each
 * engine slot gets a ring of `slots` notes (rounded up to a power of two), into which its
 * worker writes every pin it makes (an idempotency or account claim won, an idempotency
 * pin corrected, an object pinned), wait-free; a full ring drops the note (journal_full).
 * Returns 0, or -1 (no memory, slots 0). Cannot be turned off. */
int pol_engine_journal(struct pol_engine *e, uint32_t slots);
/* Takes up to max notes out of the journals, oldest first per slot, and calls fn for each
 * with the backend and account its id names, whether it rewrote a pin to what HAProxy
 * really used (force; else it claimed a new one) and when (the monotonic µs of the
 * decision or outcome). Returns how many were taken (0 when off). */
typedef void pol_pin_note_fn(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                             bool force, uint64_t at_us);
size_t pol_engine_journal_drain(struct pol_engine *e, size_t max, pol_pin_note_fn *fn, void *arg);
/* Applies a pin another node made, while workers decide: claimed when the key has none
 * (in the current generation: kept up to one period longer than its TTL left), left alone
 * when it is held on the same account, rewritten when held on another account (the
 * fleet's pin wins: POL_PIN_MOVED). The backend is found as pol_engine_pin_restore does.
 * Returns POL_PIN_KEPT, POL_PIN_REMAPPED, POL_PIN_GONE, POL_PIN_MOVED, or -1 (no room, no
 * id left, bad table). Not journaled: a pin applied here is not published again. */
enum { POL_PIN_MOVED = POL_PIN_EXPIRED + 1 };
/* A table's TTL in force, seconds (0: bad table). */
uint32_t pol_engine_pin_ttl(struct pol_engine *e, unsigned table);
int pol_engine_pin_apply(struct pol_engine *e, unsigned table, uint64_t key, const char *backend,
                         const char *account);
/* The backend and account pin id names (pay_verdict.claim_id, pol_engine_pin_id): interned,
 * stable while the engine lives. Any thread. Returns 0, or -1 (unknown id). */
int pol_engine_pin_names(struct pol_engine *e, unsigned id, const char **backend, const char **account);
/* The pin id key holds in table now, or -1 (none, bad table). Any thread, lock-free. */
int pol_engine_pin_id(struct pol_engine *e, unsigned table, uint64_t key);

/* Every field of struct pol_stats described, in list order; pol_stats_ndesc entries. */
extern const struct pol_stats_desc pol_stats_desc[];
extern const size_t pol_stats_ndesc;

/* ---- control thread: the learning loop's state ----------------------------------------- */

/* `set breaker <b> open|closed|auto`: forces a breaker (auto hands it back, closed with an
 * empty window). Returns 0, or -1 if no backend has that name. Lasts until the next
 * reload or `auto`. */
enum pol_breaker_mode { POL_BREAKER_AUTO = 0, POL_BREAKER_OPEN, POL_BREAKER_CLOSED };
int pol_engine_set_breaker(struct pol_engine *e, const char *backend, enum pol_breaker_mode mode,
                           uint64_t now_us);

/* An active probe's result (spoa/probe.c) for the backend of that name: a failure counts
 * as a PSP error, a success as an answered call, in the breaker and the anomaly chart,
 * the same way outcomes reach them (policy/learning.md, Probes); the posteriors and the
 * budgets learn nothing from it. latency_ms < 0: unknown. Control thread. Returns 0, or
 * -1 if no backend has that name (a probe of a backend a reload removed). */
int pol_engine_probe_result(struct pol_engine *e, const char *backend, bool ok, double latency_ms,
                            uint64_t now_us);

struct pol_learn_info {
	const char *name;
	const char *breaker;    /* "closed", "degraded", "half-open", "open" */
	const char *anomaly;    /* "normal", "degraded" */
	unsigned trips;         /* times opened since the breaker last forgot */
	double open_for_s;      /* open: seconds until half-open */
	double factor;          /* score factor while degraded, 1 = none */
	int probes;             /* half-open: probes left in the batch */
};
/* Backend i (policy order). Returns 0, or -1 past the last one. */
int pol_engine_learn_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_learn_info *out);

/* Forecast i: account a = i / nclasses, class i % nclasses. */
struct pol_forecast_info {
	const char *account, *class_name;
	double now_rps;         /* the open second's pace */
	double next_rps;        /* Holt, the worse of 1 s and the horizon ahead */
	double day_rps;         /* Holt-Winters, next minute (0 until a day is learned) */
	double budget_rps;      /* the account's budget now (adaptive) */
	bool shed;              /* the class is shed on that account */
};
int pol_engine_forecast_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_forecast_info *out);

#endif /* POLICY_H */
