/* engine.c: the engine's entry points. decide runs the steps of DESIGN.md §4 (classify,
 * pin, filter, score, throttle, degrade); observe learns object owners and hands each
 * classified outcome to the control thread through the worker's ring; tick merges them
 * (engine-learn.c); views are published with one atomic pointer and reclaimed by
 * quiescent-state epochs (QSBR).
 * No clock, no I/O, no locks; allocation only in new/swap (control thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "bug.h"
#include "classify.h"
#include "cost.h"
#include "engine-lease.h"
#include "engine-learn.h"
#include "engine-share.h"
#include "engine-t.h"
#include "outcome.h"
#include "pin.h"
#include "policy.h"
#include "pstr.h"
#include "score.h"
#include "srate.h"
#include "thr.h"

/* Hash seeds: one key space per table. */
#define SEED_IDEM    0x1de3b0f5a7c3e211ULL
#define SEED_OBJECT  0x0b7ec7a9d2f4c613ULL
#define SEED_ACCOUNT 0xacc0417c9e8d5b25ULL

#define POL_OBJECT_MAX 255 /* longer "ids" are garbage */

/* ---- views ------------------------------------------------------------------------- */

static void pol_view_free(struct pol_view *v)
{
	if (!v)
		return;
	pol_learn_free(v->L);
	free(v->demand);
	free(v->route);
	free(v->unans);
	free(v->sega);
	thr_destroy(&v->thr);
	free(v->lease);
	pol_free(v->p);
	free(v);
}

/* The pin id of (name, account), interning a new pair; -1 when the ids are used up.
 * Control thread. */
static int pol_pin_intern(struct pol_pins *pp, const char *name, const char *account)
{
	unsigned id, n = atomic_load_explicit(&pp->nids, memory_order_relaxed);

	for (id = 0; id < n; id++)
		if (!strcmp(pp->name[id], name) && !strcmp(pp->account[id], account))
			return (int)id;
	if (n == PIN_MAX_IDS)
		return -1;
	snprintf(pp->name[n], sizeof(pp->name[n]), "%s", name);
	snprintf(pp->account[n], sizeof(pp->account[n]), "%s", account);
	atomic_store_explicit(&pp->nids, n + 1, memory_order_release);
	return (int)n;
}

/* The backend of p a pin id routes to: its own (same name and account), else one of its
 * account, else -1 (pin:gone). */
static int pol_pin_backend(const struct pol_pins *pp, const struct policy *p, unsigned id)
{
	int j;

	for (j = 0; j < p->nbackends; j++)
		if (!strcmp(pp->name[id], p->backends[j].name) && !strcmp(pp->account[id], p->backends[j].account))
			return j;
	for (j = 0; j < p->nbackends; j++)
		if (!strcmp(pp->account[id], p->backends[j].account))
			return j;
	return -1;
}

/* Gives every backend of p a pin id and maps every id to p's backends
 * (pol_pin_backend). Returns 0, or -1 when the ids are used up. Control thread. */
static int pol_pin_ids(struct pol_engine *e, struct pol_view *v, char *err, size_t errlen)
{
	struct pol_pins *pp = &e->pins;
	const struct policy *p = v->p;
	unsigned id, n;
	int i, got;

	for (i = 0; i < p->nbackends; i++) {
		if ((got = pol_pin_intern(pp, p->backends[i].name, p->backends[i].account)) < 0) {
			snprintf(err, errlen, "%s: backend '%s': %d backend names (or accounts) were used since "
			         "payspoa started, the most its pin tables can name: restart payspoa to load this policy",
			         p->file, p->backends[i].name, PIN_MAX_IDS);
			return -1;
		}
		v->pin_id[i] = (uint8_t)got;
	}
	n = atomic_load_explicit(&pp->nids, memory_order_relaxed);
	for (id = 0; id < PIN_MAX_IDS; id++)
		v->pin_be[id] = (int8_t)(id < n ? pol_pin_backend(pp, p, id) : -1);
	return 0;
}

/* The pin tables' promise: capacity (pins over the TTL) and TTL of each. */
static void pol_pin_sizes(const struct policy *p, uint64_t cap[POL_PIN_TABLES], uint32_t ttl[POL_PIN_TABLES])
{
	cap[POL_PIN_IDEM] = p->pin.idem_slots;
	cap[POL_PIN_OBJECT] = p->pin.object_slots;
	cap[POL_PIN_ACCOUNT] = p->pin.account_slots;
	ttl[POL_PIN_IDEM] = p->pin.idem_ttl_s;
	ttl[POL_PIN_OBJECT] = p->pin.object_ttl_s;
	ttl[POL_PIN_ACCOUNT] = p->pin.account_ttl_s;
}

/* Builds a view around p (taken in every case). */
static struct pol_view *pol_view_new(struct pol_engine *e, struct policy *p, char *err, size_t errlen)
{
	/* aligned_alloc wants a multiple of the alignment */
	struct pol_view *v = aligned_alloc(64, (sizeof(*v) + 63) & ~(size_t)63);
	int i, c;

	if (!v) {
		pol_free(p);
		goto oom;
	}
	memset(v, 0, sizeof(*v));
	v->p = p;
	if (thr_init(&v->thr, p) || pol_lease_view_init(e, v) < 0) {
		pol_view_free(v);
		goto oom;
	}
	if (pol_pin_ids(e, v, err, errlen) < 0) {
		pol_view_free(v);
		return NULL;
	}
	v->gen = e->next_gen++;
	for (i = 0; i < p->nbackends; i++) {
		const struct pol_backend *b = &p->backends[i];

		v->all |= 1ULL << i;
		v->enabled |= (uint64_t)b->enabled << i;
		v->connect |= (uint64_t)b->connect << i;
		for (c = 0; c < p->ncurrencies; c++)
			if (b->currencies & (1ULL << c))
				v->by_currency[c] |= 1ULL << i;
	}
	for (i = 0; i < p->nconnect; i++)
		v->connect_hash[i] = pstr_hash(p->connect[i].account, (uint32_t)strlen(p->connect[i].account),
		                               SEED_ACCOUNT);
	for (i = 0; i < p->nbackends; i++)
		v->bcode[i] = srt_code(p->backends[i].name, strlen(p->backends[i].name));
	/* decision counters: one cache-line-rounded row per worker */
	v->demand_stride = ((unsigned)(p->naccounts * p->nclasses) + 7) & ~7u;
	v->demand = aligned_alloc(64, sizeof(*v->demand) * v->demand_stride * e->nworkers);
	if (!v->demand || !(v->L = pol_learn_new(v))) {
		pol_view_free(v);
		goto oom;
	}
	memset(v->demand, 0, sizeof(*v->demand) * v->demand_stride * e->nworkers);
	v->route_stride = ((unsigned)(p->nbackends * p->nclasses * 3) + 7) & ~7u;
	v->route = aligned_alloc(64, sizeof(*v->route) * v->route_stride * e->nworkers);
	if (!v->route) {
		pol_view_free(v);
		goto oom;
	}
	memset(v->route, 0, sizeof(*v->route) * v->route_stride * e->nworkers);
	if (p->learn.answer_half_life_s > 0) {
		size_t n = (size_t)p->nbackends * POL_SEGA_CELLS;

		v->sega = aligned_alloc(64, (n * sizeof(*v->sega) + 63) & ~(size_t)63);
		if (!v->sega) {
			pol_view_free(v);
			goto oom;
		}
		memset(v->sega, 0, n * sizeof(*v->sega));
	}
	if (p->learn.unans.enabled) {
		/* a slot is reused one ring later: the ring outlasts grace + the judge's margin
		 * + a late tick (engine-learn.c), with a second to spare */
		size_t n;
		uint32_t gmax = p->learn.unans.grace_latency > 0 && p->learn.unans.max_grace_ms > p->learn.unans.grace_ms
		                        ? p->learn.unans.max_grace_ms
		                        : p->learn.unans.grace_ms;
		unsigned need = (gmax * 1000u + 3 * POL_UNANS_TICK_US + 1000000u) / POL_UNANS_TICK_US;
		int b;

		v->unans_grace_us = (uint64_t)p->learn.unans.grace_ms * 1000;
		v->unans_max_grace_us = (uint64_t)gmax * 1000;
		for (b = 0; b < p->nbackends; b++)
			atomic_store_explicit(&v->unans_grace_b_us[b], v->unans_grace_us, memory_order_relaxed);
		for (v->unans_slots = 16; v->unans_slots < need; v->unans_slots <<= 1)
			;
		n = (size_t)e->nworkers * (size_t)p->nbackends * v->unans_slots;
		v->unans = aligned_alloc(64, (n * sizeof(*v->unans) + 63) & ~(size_t)63);
		if (!v->unans) {
			pol_view_free(v);
			goto oom;
		}
		memset(v->unans, 0, n * sizeof(*v->unans));
	}
	pol_learn_attach(v);
	return v;
oom:
	snprintf(err, errlen, "out of memory building the policy view");
	return NULL;
}

/* State that survives a reload for the names that survive: budgets (and the leased
 * budgets' tokens), affinity, the learned health and the admin's enable/disable. */
static void pol_carry(struct pol_view *nv, const struct pol_view *ov)
{
	int i, j;
	uint64_t dis = atomic_load(&ov->disabled), ndis = 0, dr = atomic_load(&ov->drained), ndr = 0;

	thr_carry(&nv->thr, nv->p, &ov->thr, ov->p);
	pol_lease_carry(nv, ov);
	for (i = 0; i < nv->p->nbackends; i++)
		for (j = 0; j < ov->p->nbackends; j++) {
			if (strcmp(nv->p->backends[i].name, ov->p->backends[j].name))
				continue;
			atomic_store(&nv->health[i].state, atomic_load(&ov->health[j].state));
			atomic_store(&nv->health[i].p_auth_ppm, atomic_load(&ov->health[j].p_auth_ppm));
			atomic_store(&nv->health[i].latency_us, atomic_load(&ov->health[j].latency_us));
			if (dis & (1ULL << j))
				ndis |= 1ULL << i;
			if (dr & (1ULL << j))
				ndr |= 1ULL << i;
		}
	atomic_store(&nv->disabled, ndis);
	atomic_store(&nv->drained, ndr);
	pol_learn_carry(nv, ov);
}

/* ---- invariants (bug.h) ------------------------------------------------------------- */

/* The longest a class may queue: what a budget may be booked ahead beyond its tolerance. */
static uint64_t pol_max_wait_ns(const struct policy *p)
{
	uint64_t m = 0;
	int i;

	for (i = 0; i < p->nclasses; i++)
		if ((uint64_t)p->classes[i].queue_ms * 1000000 > m)
			m = (uint64_t)p->classes[i].queue_ms * 1000000;
	return m;
}

/* now_us: as in pol_engine_verify. carried: v's budgets hold bookings made under an
 * older policy's tolerances (no bound on how far ahead they are). */
static int pol_view_verify(const struct pol_view *v, uint64_t now_us, bool carried, char *err, size_t errlen)
{
	bool known = now_us != POL_NOW_UNKNOWN;

	if (thr_verify(&v->thr, v->p, known ? now_us * 1000 : 0, known && !carried ? pol_max_wait_ns(v->p) : UINT64_MAX,
	               err, errlen) < 0 ||
	    pol_learn_verify(v, err, errlen) < 0)
		return -1;
	return 0;
}

int pol_engine_verify(struct pol_engine *e, uint64_t now_us, bool pins, char *err, size_t errlen)
{
	unsigned i;

	/* the worker only pushes while head - tail < size, and only we move tail */
	for (i = 0; i < e->nworkers; i++) {
		uint32_t tail = atomic_load(&e->rings[i].tail), head = atomic_load(&e->rings[i].head);

		if (head - tail > POL_RING_SIZE)
			return pol_verify_fail(err, errlen, "ring of worker %u: head %u, tail %u", i, head, tail);
	}
	/* the pin tables are valid at any time (slots only move forward) */
	for (i = 0; pins && i < POL_PIN_TABLES; i++)
		if (pin_verify(&e->pins.t[i], atomic_load(&e->pins.nids), err, errlen) < 0)
			return -1;
	return pol_view_verify(atomic_load(&e->view), now_us, e->reloads > 0, err, errlen);
}

/* ---- engine and reclamation -------------------------------------------------------- */

void pol_engine_salt(struct pol_engine *e, uint64_t salt)
{
	unsigned i;

	for (i = 0; i < e->nworkers; i++) {
		uint64_t s = 0x5eed0000u + i; /* reproducible per worker */

		if (salt) { /* splitmix64's finaliser: every bit of the salt moves every word */
			s ^= salt * 0x9e3779b97f4a7c15ULL;
			s = (s ^ s >> 30) * 0xbf58476d1ce4e5b9ULL;
			s = (s ^ s >> 27) * 0x94d049bb133111ebULL;
			s ^= s >> 31;
			s = s ? s : 1; /* the xorshift stream's state is never 0 */
		}
		e->workers[i].rng = s;
	}
}

struct pol_engine *pol_engine_new(struct policy *p, unsigned nworkers, char *err, size_t errlen)
{
	struct pol_engine *e = calloc(1, sizeof(*e));
	struct pol_view *v;
	uint64_t cap[POL_PIN_TABLES];
	uint32_t ttl[POL_PIN_TABLES];
	unsigned i;

	if (!e || nworkers == 0 || nworkers > 4096 ||
	    !(e->workers = aligned_alloc(64, sizeof(*e->workers) * nworkers)) ||
	    !(e->rings = aligned_alloc(64, sizeof(*e->rings) * nworkers)) ||
	    !(e->samples = aligned_alloc(64, sizeof(*e->samples) * nworkers))) {
		snprintf(err, errlen, "%s", nworkers && nworkers <= 4096 ? "out of memory" : "bad worker count");
		goto fail;
	}
	memset(e->workers, 0, sizeof(*e->workers) * nworkers);
	memset(e->rings, 0, sizeof(*e->rings) * nworkers);
	memset(e->samples, 0, sizeof(*e->samples) * nworkers);
	e->nworkers = nworkers;
	for (i = 0; i < nworkers; i++)
		atomic_init(&e->workers[i].seen, POL_OFFLINE);
	pol_engine_salt(e, 0);
	atomic_init(&e->epoch, 1);
	pol_pin_sizes(p, cap, ttl);
	for (i = 0; i < POL_PIN_TABLES; i++)
		if (pin_init(&e->pins.t[i], cap[i], ttl[i]) < 0) {
			snprintf(err, errlen, "out of memory for the pin tables");
			goto fail;
		}
	if (p->agent.outcome_socket) {
		size_t n = (size_t)nworkers * POL_SEEN_SLOTS;

		e->outcome_seen = aligned_alloc(64, n * sizeof(*e->outcome_seen));
		if (!e->outcome_seen) {
			snprintf(err, errlen, "out of memory for the once-only outcome marks");
			goto fail;
		}
		memset(e->outcome_seen, 0, n * sizeof(*e->outcome_seen));
	}
	v = pol_view_new(e, p, err, errlen);
	p = NULL;
	if (!v)
		goto fail;
	atomic_init(&e->view, v);
	return e;
fail:
	pol_free(p);
	if (e) {
		for (i = 0; i < POL_PIN_TABLES; i++)
			pin_destroy(&e->pins.t[i]);
		free(e->workers);
		free(e->rings);
		free(e->samples);
		free(e->outcome_seen);
	}
	free(e);
	return NULL;
}

void pol_engine_free(struct pol_engine *e)
{
	struct pol_view *v, *n;
	unsigned i;

	if (!e)
		return;
	/* no worker runs any more: the pins can be checked too */
	POL_VERIFY(pol_engine_verify, e, POL_NOW_UNKNOWN, true);
	for (v = e->retired; v; v = n) {
		n = v->next_retired;
		pol_view_free(v);
	}
	pol_view_free(atomic_load(&e->view));
	for (i = 0; i < POL_PIN_TABLES; i++)
		pin_destroy(&e->pins.t[i]);
	if (e->pins.journal) {
		for (i = 0; i < e->nworkers; i++)
			free(e->pins.journal[i].note);
		free(e->pins.journal);
	}
	free(e->workers);
	free(e->rings);
	free(e->samples);
	free(e->outcome_seen);
	pol_share_free(e->share);
	free(e);
}

/* The oldest epoch a worker may still hold memory from. */
static uint64_t pol_min_seen(struct pol_engine *e)
{
	uint64_t min = POL_OFFLINE;
	unsigned i;

	for (i = 0; i < e->nworkers; i++) {
		uint64_t s = atomic_load(&e->workers[i].seen);

		if (s < min)
			min = s;
	}
	return min;
}

/* min: pol_min_seen() read before the rings were last drained, so every event pushed
 * through a view freed here has been merged. */
static void pol_reclaim(struct pol_engine *e, uint64_t min)
{
	struct pol_view **pv = &e->retired, *v;

	while ((v = *pv)) {
		if (v->retired_epoch <= min && !atomic_load(&v->holds)) {
			*pv = v->next_retired;
			pol_view_free(v);
		} else {
			pv = &v->next_retired;
		}
	}
}

int pol_engine_swap(struct pol_engine *e, struct policy *p, char *err, size_t errlen)
{
	struct pol_view *nv = pol_view_new(e, p, err, errlen), *old;
	uint64_t cap[POL_PIN_TABLES];
	uint32_t ttl[POL_PIN_TABLES];
	unsigned i;

	if (!nv)
		return -1;
	pol_learn_drain(e, 0); /* the carried state includes every outcome reported so far */
	old = atomic_load(&e->view);
	pol_carry(nv, old);
	POL_VERIFY(pol_view_verify, nv, POL_NOW_UNKNOWN, true);
	pol_pin_sizes(nv->p, cap, ttl);
	for (i = 0; i < POL_PIN_TABLES; i++)
		pin_size(&e->pins.t[i], cap[i], ttl[i]); /* for the generations to come */
	atomic_store(&e->view, nv);
	old->retired_epoch = atomic_fetch_add(&e->epoch, 1) + 1;
	old->next_retired = e->retired;
	e->retired = old;
	e->reloads++;
	return 0;
}

/* A worker coming back from idle announces the epoch before it reads the view (all
 * seq_cst), so the control thread either sees it online or it reads the newest view. */
static struct pol_view *pol_enter(struct pol_engine *e, struct pol_worker *w)
{
	if (atomic_load_explicit(&w->seen, memory_order_relaxed) == POL_OFFLINE) {
		atomic_store(&w->seen, atomic_load(&e->epoch));
		/* The store above must be visible before the view is read: an acquire load may
		 * pass a store on weaker CPUs (AArch64 LDAPR), and the control thread could then
		 * free the view we are about to use. Once per wake-up, not per decision. */
		return atomic_load(&e->view);
	}
	return atomic_load_explicit(&e->view, memory_order_acquire);
}

void pol_quiesce(struct pol_engine *e, unsigned worker)
{
	atomic_store(&e->workers[worker].seen, atomic_load(&e->epoch));
}

void pol_worker_idle(struct pol_engine *e, unsigned worker)
{
	atomic_store(&e->workers[worker].seen, POL_OFFLINE);
}

void pol_tick(struct pol_engine *e, uint64_t now_us)
{
	uint64_t min = pol_min_seen(e), ep = atomic_load(&e->epoch) + 1, pin_min;
	bool pub = false;
	unsigned i, k;

	pol_learn_tick(e, min, now_us);
	pol_reclaim(e, min);
	/* pin generations: what a tick retires is tagged with the epoch it then publishes,
	 * and freed only while no snapshot scans the tables (0: nothing is that old) */
	pin_min = atomic_load(&e->pins.holds) ? 0 : min;
	for (i = 0; i < POL_PIN_TABLES; i++) {
		uint64_t claims = 0;

		for (k = 0; k < e->nworkers; k++)
			claims += atomic_load_explicit(&e->workers[k].c.pin_claims[i], memory_order_relaxed);
		pub |= pin_tick(&e->pins.t[i], (uint32_t)(now_us / 1000000), claims, ep, pin_min);
	}
	if (pub)
		atomic_fetch_add(&e->epoch, 1);
	/* once a second (the check scans the posterior tables); decisions may carry a later
	 * time than this tick's: no bound on bookings */
	if (POL_CHECKS_ON && now_us - e->verified_us >= 1000000) {
		e->verified_us = now_us;
		POL_VERIFY(pol_engine_verify, e, POL_NOW_UNKNOWN, false);
	}
}

static inline void pol_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* A pin this worker made, for the fleet to publish (pol_engine_journal; nothing when
 * off). Wait-free: a full ring drops the note and counts it. */
static inline void pol_journal_note(struct pol_pins *pp, unsigned worker, struct pol_worker *w,
                                    unsigned table, uint64_t key, unsigned id, bool force, uint64_t now_us)
{
	struct pol_journal *j;
	uint64_t h;

	if (!pp->journal)
		return;
	j = &pp->journal[worker];
	h = atomic_load_explicit(&j->head, memory_order_relaxed);
	if (h - atomic_load_explicit(&j->tail, memory_order_acquire) > j->mask) {
		pol_count(&w->c.journal_full);
		return;
	}
	j->note[h & j->mask] = (struct pol_pin_note){ key, now_us, (uint8_t)table, (uint8_t)id, force };
	atomic_store_explicit(&j->head, h + 1, memory_order_release);
}

/* ---- request features ---------------------------------------------------------------- */

static unsigned pol_region_of(const struct policy *p, struct pay_str cc)
{
	int a, b;

	if (!cc.ptr || cc.len != 2)
		return POL_REGION_UNKNOWN;
	a = pstr_lower(cc.ptr[0]) - 'a';
	b = pstr_lower(cc.ptr[1]) - 'a';
	if (a < 0 || a > 25 || b < 0 || b > 25)
		return POL_REGION_UNKNOWN;
	return p->country_region[a * 26 + b];
}

static unsigned pol_funding_of(struct pay_str f)
{
	if (pstr_eq_ci(f, "credit"))
		return POL_FUND_CREDIT;
	if (pstr_eq_ci(f, "debit"))
		return POL_FUND_DEBIT;
	if (pstr_eq_ci(f, "prepaid"))
		return POL_FUND_PREPAID;
	return POL_FUND_ANY;
}

/* Card country as a segment code: 1 + 26 a + b for "AB" (any case), 0 = unknown. */
static unsigned pol_country_of(struct pay_str cc)
{
	int a, b;

	if (!cc.ptr || cc.len != 2)
		return 0;
	a = pstr_lower(cc.ptr[0]) - 'a';
	b = pstr_lower(cc.ptr[1]) - 'a';
	if (a < 0 || a > 25 || b < 0 || b > 25)
		return 0;
	return 1 + (unsigned)(a * 26 + b);
}

/* Card brand as a segment code that fits the decision id's two hex digits: the networks
 * Stripe names get 1..15, any other brand a hash in 16..255, absent 0. */
static unsigned pol_brand_of(struct pay_str s)
{
	static const char *const known[] = { "visa", "mastercard", "amex", "discover", "jcb", "diners",
		"unionpay", "cartes_bancaires", "interac", "eftpos_au", "maestro", "link", NULL };
	uint32_t h = 2166136261u, i;

	if (!s.ptr || !s.len)
		return 0;
	for (i = 0; known[i]; i++)
		if (pstr_eq_ci(s, known[i]))
			return i + 1;
	for (i = 0; i < s.len; i++)
		h = (h ^ (uint8_t)pstr_lower(s.ptr[i])) * 16777619u;
	return 16 + h % 240;
}

#define POL_CUR_NONE    (-1) /* no currency sent */
#define POL_CUR_UNKNOWN (-2) /* a currency no backend presents */

static int pol_currency_of(const struct policy *p, struct pay_str c)
{
	uint32_t v;
	int i;

	if (!c.ptr)
		return POL_CUR_NONE;
	v = pstr_currency(c.ptr, c.len);
	for (i = 0; v && i < p->ncurrencies; i++)
		if (p->currencies[i] == v)
			return i;
	return POL_CUR_UNKNOWN;
}

/* An object id: one of the configured prefixes, then something, at most
 * POL_OBJECT_MAX bytes. */
static bool pol_is_object(const struct policy *p, const char *id, uint32_t len)
{
	int i;

	for (i = 0; len <= POL_OBJECT_MAX && i < p->pin.nprefixes; i++) {
		size_t n = strlen(p->pin.prefixes[i]);

		if (len > n && memcmp(id, p->pin.prefixes[i], n) == 0)
			return true;
	}
	return false;
}

/* The object id in "/v1/<objects>/<id>[/...]" when it starts with a configured prefix;
 * its length in *len. */
static const char *pol_object_of(const struct policy *p, struct pay_str path, uint32_t *len)
{
	const char *s = path.ptr, *end, *id, *q;

	if (!s || path.len < 5 || memcmp(s, "/v1/", 4))
		return NULL;
	end = s + path.len; /* not before: NULL + 0 is undefined behaviour */
	q = memchr(s + 4, '/', (size_t)(end - s - 4));
	if (!q)
		return NULL;
	id = q + 1;
	q = memchr(id, '/', (size_t)(end - id));
	*len = (uint32_t)((q ? q : end) - id);
	return pol_is_object(p, id, *len) ? id : NULL;
}

/* ---- reason tokens and decision ids ------------------------------------------------- */

static void pol_reason(struct pay_verdict *out, const char *tok, const char *arg)
{
	size_t n = strlen(tok), m = arg ? strlen(arg) + 1 : 0, at = out->reason_len;

	if (at + (at > 0) + n + m > PAY_REASON_MAX)
		return;
	if (at)
		out->reason[at++] = ' ';
	memcpy(out->reason + at, tok, n);
	at += n;
	if (arg) {
		out->reason[at++] = ':';
		memcpy(out->reason + at, arg, m - 1);
		at += m - 1;
	}
	out->reason[at] = 0;
	out->reason_len = (uint8_t)at;
}

/* Decision id: 36 lower-case hex digits (<= PAY_DECISION_MAX), fixed positions, the last
 * two a check byte so that what HAProxy echoes back can be told from garbage. It carries
 * what the learning loop needs of the request (its segment, class and endpoint, and the
 * tick it was decided in, mod 2^16, for the unanswered-decision accounting), so payspoa
 * keeps no per-request state: nothing waits for an answer that never comes. */
struct pol_did {
	unsigned gen, backend, cls, cur, funding, flags, worker, country, brand, endpoint, tick;
	uint64_t seq;
};

#define DID_FIELDS 12
#define DID_LEN 36
static const unsigned did_width[DID_FIELDS] = { 4, 2, 1, 2, 1, 1, 2, 3, 2, 2, 4, 10 }; /* + 2 check */
#define DID_F_IDEM 0x1u   /* answered from an idempotency pin */
#define DID_F_QUEUED 0x2u /* queued: HAProxy holds it for up to its offset, so its answer
                           * may come after any grace and is not waited for */

static uint8_t pol_did_check(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return (uint8_t)(h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24));
}

static char *pol_hex(char *o, uint64_t v, unsigned w)
{
	static const char digits[] = "0123456789abcdef";

	while (w--) {
		o[w] = digits[v & 15];
		v >>= 4;
	}
	return o;
}

static void pol_did_write(struct pay_verdict *out, const struct pol_did *d)
{
	uint64_t f[DID_FIELDS] = { d->gen, d->backend, d->cls, d->cur, d->funding, d->flags, d->worker,
	                           d->country, d->brand, d->endpoint, d->tick, d->seq };
	char *o = out->decision;
	unsigned i;

	for (i = 0; i < DID_FIELDS; i++) {
		pol_hex(o, f[i], did_width[i]);
		o += did_width[i];
	}
	pol_hex(o, pol_did_check(out->decision, DID_LEN - 2), 2);
	out->decision[DID_LEN] = 0;
	out->decision_len = DID_LEN;
}

static bool pol_did_parse(struct pay_str s, struct pol_did *d)
{
	uint64_t f[DID_FIELDS + 1];
	unsigned i, k, at = 0;

	if (!s.ptr || s.len != DID_LEN)
		return false;
	for (i = 0; i <= DID_FIELDS; i++) {
		unsigned w = i < DID_FIELDS ? did_width[i] : 2;

		f[i] = 0;
		for (k = 0; k < w; k++, at++) {
			char c = s.ptr[at];
			int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

			if (x < 0)
				return false;
			f[i] = f[i] << 4 | (unsigned)x;
		}
	}
	if (f[DID_FIELDS] != pol_did_check(s.ptr, DID_LEN - 2))
		return false;
	*d = (struct pol_did){ (unsigned)f[0], (unsigned)f[1], (unsigned)f[2], (unsigned)f[3], (unsigned)f[4],
	                       (unsigned)f[5], (unsigned)f[6], (unsigned)f[7], (unsigned)f[8], (unsigned)f[9],
	                       (unsigned)f[10], f[11] };
	return true;
}

/* ---- unanswered decisions (engine-t.h, engine-learn.c) ------------------------------ */

/* One more decision or answer in the worker's own cell for (backend b, tick): a cell still
 * tagged with an older tick is reset first (counts, then the tag with release, so that a
 * reader who sees the new tag sees the reset). Single writer: no RMW. */
static void pol_unans_count(struct pol_view *v, unsigned worker, int b, uint32_t tick, bool answer)
{
	struct pol_unans_cell *c = &v->unans[((size_t)worker * (size_t)v->p->nbackends + (size_t)b) * v->unans_slots +
	                                     (tick & (v->unans_slots - 1))];
	_Atomic uint32_t *n = answer ? &c->answered : &c->decided;

	if (atomic_load_explicit(&c->tag, memory_order_relaxed) != tick + 1) {
		atomic_store_explicit(&c->decided, 0, memory_order_relaxed);
		atomic_store_explicit(&c->answered, 0, memory_order_relaxed);
		atomic_store_explicit(&c->tag, tick + 1, memory_order_release);
	}
	atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- the decision ------------------------------------------------------------------- */

/* Everything decide works out about one request. */
struct pol_rq {
	int cls, cur, endpoint;
	unsigned region, funding, country, brand;
	uint32_t curcode;       /* the currency as a segment code (packed ISO), 0 = none */
	double amount;
	uint64_t idem_h, acct_h;
	uint64_t restrict_to;   /* Connect platforms for an unknown connected account */
	uint64_t pinned;        /* backends of the pinned account, 0 = not pinned */
	int pin_tok;                 /* enum pol_reason_tok + 1, 0 = no pin */
	bool idem_hit, learn_account;
	bool gone;              /* pinned to a backend whose account left the policy */
};

/* One decision as it goes through the steps of DESIGN.md §4 (pol_decide): each step
 * reads what the steps before it filled and fills its own part. Lives on the worker's
 * stack; only `r` is zeroed (the arrays are written before they are read). */
struct pol_ctx {
	struct pol_view *v;
	struct pol_pins *pins;
	const struct policy *p;
	struct pol_worker *w;
	unsigned worker;
	const struct pay_request *rq;
	struct pay_verdict *out;
	uint64_t now_us, now_ns;
	uint32_t now_s, tick;        /* tick: of the unanswered-decision accounting */
	/* 1. classify, 2. pin */
	const struct pol_class *cl;
	struct pol_rq r;
	/* 3. filter (and 6. degrade when nothing passes) */
	uint64_t cand;               /* the candidates */
	uint64_t held;               /* backends only their health kept out */
	uint64_t probing;            /* of those, the ones whose breaker is half-open */
	bool panic, down;            /* a filter was dropped; the pinned account has no healthy backend */
	/* 4. score */
	uint64_t scored;             /* cand | held: what was scored */
	bool penalised;              /* a degraded backend's score was lowered */
	int best;                    /* the best candidate */
	double s[POL_MAX_BACKENDS];  /* scores of `scored`, with the degraded backends' penalty */
	double raw[POL_MAX_BACKENDS]; /* ... and without */
	/* 5. throttle */
	double share;                /* of the budget the class may use (reserves above it) */
	uint64_t u;                  /* the shedding draw, UINT64_MAX until drawn (pol_shed) */
	int b;                       /* the backend chosen, -1 while none */
	int first;                   /* the best candidate not shed, -1 if every one was */
	int probe;                   /* a half-open backend given a probe, -1 if none */
	int spare;                   /* a held backend given the top class's request, -1 if none */
	int64_t wait;                /* 0 allow, > 0 queue (ns), < 0 reject (-Retry-After, ns) */
	const char *which;           /* the budget that refused */
};

/* The reason tokens (counters-t.h), by index. */
enum pol_reason_tok {
#define X(id, word) POL_R_##id,
	POL_REASONS(X)
#undef X
};
static const char *const pol_reason_word[] = {
#define X(id, word) word,
	POL_REASONS(X)
#undef X
};
_Static_assert(sizeof(pol_reason_word) / sizeof(pol_reason_word[0]) == POL_NREASONS, "POL_NREASONS");

/* A reason token (and its argument) into the verdict, counted. */
static void pol_why(struct pol_ctx *x, int tok, const char *arg)
{
	pol_reason(x->out, pol_reason_word[tok], arg);
	pol_count(&x->w->c.reasons[tok & (POL_VEC_ROOM(POL_NREASONS) - 1)]);
}

static int pol_connect_of(const struct pol_view *v, struct pay_str acct, uint64_t h)
{
	const struct policy *p = v->p;
	int i;

	for (i = 0; i < p->nconnect; i++)
		if (v->connect_hash[i] == h && pstr_eq(acct, p->connect[i].account))
			return i;
	return -1;
}

/* The backend of this view a pin of table `t` names for key h, or -1 with no pin; with
 * a pin whose backend and account left the policy, -1 and *gone. */
static int pol_pin_get(const struct pol_ctx *x, int t, uint64_t h, bool *gone)
{
	int id = pin_get(&x->pins->t[t], h);

	if (id < 0)
		return -1;
	if (x->v->pin_be[id] < 0)
		*gone = true;
	return x->v->pin_be[id];
}

/* The account holding an object the body names (a refund's payment_intent, a charge, a
 * customer), or -1 when none is known. */
static int pol_body_object_owner(struct pol_ctx *x)
{
	const struct pay_request *rq = x->rq;
	const struct pay_str *ref[] = { &rq->payment_intent, &rq->charge, &rq->customer };
	unsigned i;
	int b;

	for (i = 0; i < sizeof(ref) / sizeof(ref[0]); i++)
		if (ref[i]->ptr && pol_is_object(x->p, ref[i]->ptr, ref[i]->len) &&
		    (b = pol_pin_get(x, POL_PIN_OBJECT, pstr_hash(ref[i]->ptr, ref[i]->len, SEED_OBJECT), &x->r.gone)) >= 0)
			return b;
	return -1;
}

/* 2. pin what must not move. A pin names a backend; the request may go to any backend of
 * the same account. */
static void pol_step_pin(struct pol_ctx *x)
{
	const struct pol_view *v = x->v;
	const struct policy *p = x->p;
	const struct pay_request *rq = x->rq;
	struct pol_rq *r = &x->r;
	const char *obj;
	uint32_t olen;
	int b = -1, c;

	r->restrict_to = v->all;
	if (rq->idem.ptr) {
		if ((b = pol_pin_get(x, POL_PIN_IDEM, r->idem_h, &r->gone)) >= 0) {
			r->pin_tok = 1 + POL_R_PIN_IDEM;
			r->idem_hit = true;
			goto pinned;
		}
		if (r->gone)
			return;
	}
	if ((obj = pol_object_of(p, rq->path, &olen)) &&
	    (b = pol_pin_get(x, POL_PIN_OBJECT, pstr_hash(obj, olen, SEED_OBJECT), &r->gone)) >= 0) {
		r->pin_tok = 1 + POL_R_PIN_OBJECT;
		goto pinned;
	}
	if (!r->gone && (b = pol_body_object_owner(x)) >= 0) {
		r->pin_tok = 1 + POL_R_PIN_OBJECT;
		goto pinned;
	}
	if (r->gone)
		return;
	if (!rq->account.ptr)
		return;
	if ((c = pol_connect_of(v, rq->account, r->acct_h)) >= 0) {
		r->pinned = p->connect[c].backends;
		r->pin_tok = 1 + POL_R_PIN_CONNECT;
		return;
	}
	if ((b = pol_pin_get(x, POL_PIN_ACCOUNT, r->acct_h, &r->gone)) >= 0) {
		r->pin_tok = 1 + POL_R_PIN_ACCOUNT;
		goto pinned;
	}
	if (r->gone)
		return;
	/* An unknown connected account: any platform may take it, then it stays there. */
	if (v->connect)
		r->restrict_to = v->connect;
	r->learn_account = true;
	return;
pinned:
	r->pinned = p->backends[b].same_account;
}

/* Backends the compliance rules allow for this request (rules that match intersect). */
static uint64_t pol_compliance(const struct policy *p, const struct pol_rq *r)
{
	uint64_t allowed = ~0ULL;
	int i;

	for (i = 0; i < p->ncompliance; i++) {
		const struct pol_compliance *c = &p->compliance[i];

		if (c->regions && (r->region == POL_REGION_UNKNOWN || !(c->regions & (1U << r->region))))
			continue;
		if (c->currencies && (r->cur < 0 || !(c->currencies & (1ULL << r->cur))))
			continue;
		allowed &= c->allowed;
	}
	return allowed;
}

/* 6. degrade, for the filters: nothing passes them all, so they are dropped from the
 * least to the most serious (health, then the admin's and the file's enable); a pinned
 * request never leaves its account (pin:down), any other says panic. `fit`: the backends
 * that serve the request (currency, compliance, Connect restriction when not pinned). */
static uint64_t pol_relax(struct pol_ctx *x, uint64_t usable, uint64_t fit)
{
	uint64_t pinned = x->r.pinned, c;

	x->probing = 0;
	if (pinned) {
		x->down = true;
		if ((c = pinned & usable & fit) || (c = pinned & fit) || (c = pinned & usable))
			return c;
		return pinned;
	}
	x->panic = true;
	if ((c = fit & usable) || (c = fit))
		return c;
	return 1ULL << x->p->default_backend;
}

/* 3. filter the candidates: enabled (by the file and the admin; a drained backend only
 * for a pinned request, whose retry must find its first attempt), serving the currency,
 * allowed by compliance, within the pin or the Connect restriction, and healthy; the
 * ones only their health kept out are `held` (`probing` when half-open). */
static void pol_step_filter(struct pol_ctx *x)
{
	struct pol_view *v = x->v;
	const struct policy *p = x->p;
	const struct pol_rq *r = &x->r;
	uint64_t usable = v->enabled & ~atomic_load_explicit(&v->disabled, memory_order_relaxed);
	uint64_t healthy = 0, probing = 0, fit, in, c;
	int i;

	for (i = 0; i < p->nbackends; i++) {
		uint32_t st = atomic_load_explicit(&v->health[i].state, memory_order_relaxed);

		if (st == SCORE_UP)
			healthy |= 1ULL << i;
		else if (st == SCORE_PROBE)
			probing |= 1ULL << i;
	}
	if (!r->pinned)
		usable &= ~atomic_load_explicit(&v->drained, memory_order_relaxed);
	fit = r->cur == POL_CUR_NONE ? v->all : r->cur == POL_CUR_UNKNOWN ? 0 : v->by_currency[r->cur];
	fit &= pol_compliance(p, r);
	if (!r->pinned)
		fit &= r->restrict_to; /* a pinned request is held by its pin instead */
	in = r->pinned ? r->pinned & fit : fit;
	x->panic = x->down = false;
	x->held = 0;
	if ((c = in & usable & healthy)) {
		x->cand = c;
		x->held = in & usable & ~healthy;
		x->probing = probing & x->held;
	} else {
		x->cand = pol_relax(x, usable, fit);
	}
	if (r->pin_tok)
		pol_why(x, r->pin_tok - 1, NULL);
	if (x->down)
		pol_why(x, POL_R_PIN_DOWN, NULL);
	if (x->panic)
		pol_why(x, POL_R_PANIC, NULL);
}

/* The segment's calls on a backend that time out are payments that do not go through
 * there (engine-learn.c, pol_sega_add): its P[] and posterior's mean times the share
 * answered, on the same evidence (so that exploration's floor still re-tests it).
 * Returns whether any was scaled. Only while some segment has such a share. */
static bool pol_p_answered(const struct pol_view *v, const struct pol_rq *r, struct srt_post *post, const int *idx,
                           int n, double *P)
{
	unsigned cell = pol_sega_cell(r->curcode, r->country, r->brand, r->funding);
	bool any = false;
	int k;

	for (k = 0; k < n; k++) {
		int i = idx[k];
		uint32_t ans = atomic_load_explicit(&v->sega[(size_t)i * POL_SEGA_CELLS + cell], memory_order_relaxed);
		double cnt = post[k].a + post[k].b;

		if (!ans)
			continue;
		P[i] *= ans / 1e6;
		post[k].a = P[i] * cnt;
		post[k].b = cnt - post[k].a;
		any = true;
	}
	return any;
}

/* P(auth) of each backend in cand into P[]: the posterior snapshot's counts for the
 * request's segment (most specific level with enough data) on top of a Beta prior that is
 * the policy's auth_rate for the card region, worth prior_weight observations. With
 * probability `eps` (the class's exploration share) and some data to explore on, Thompson
 * draws instead, with the floor that keeps re-testing a recovered backend (srt_scores);
 * while a candidate's day-one prior is untested (its own evidence has not yet reached
 * min_n: v->tested), up to `explore_untested` of the decisions draw that candidate's P(auth)
 * (srt_scores_untested). Returns whether it explored. */
static bool pol_p_auth(struct pol_view *v, struct pol_worker *w, const struct pol_rq *r, uint64_t cand,
                       uint64_t now_us, double eps, double *P)
{
	const struct policy *p = v->p;
	const struct srt_table *t = atomic_load_explicit(&v->srt_pub, memory_order_acquire);
	unsigned reg = r->region == POL_REGION_UNKNOWN ? POL_MAX_REGIONS + 1 : r->region;
	struct srt_post post[POL_MAX_BACKENDS];
	double draw[POL_MAX_BACKENDS], m = p->learn.prior_weight;
	int idx[POL_MAX_BACKENDS], n = 0, k;
	uint64_t tested = atomic_load_explicit(&v->tested, memory_order_relaxed), untested = 0;
	bool data = false;

	if (t && !t->used)
		t = NULL; /* nothing learned yet: the priors decide, no lookups */
	while (cand) {
		int i = __builtin_ctzll(cand);
		double p0 = p->backends[i].p_auth[reg], sc = 0, fc = 0;

		cand &= cand - 1;
		p0 = p0 < 0.001 ? 0.001 : p0 > 0.999 ? 0.999 : p0;
		if (t) {
			struct srt_seg seg = { v->bcode[i], r->curcode, r->country, r->brand, r->funding };
			uint32_t fork = atomic_load_explicit(&v->fork_code[i], memory_order_relaxed);
			struct srt_post sp;

			srt_lookup(t, &seg, now_us, &sp);
			if (fork && sp.level >= 0) {
				/* a fork (engine-learn.c pol_fork_update): its outcomes at the level read,
				 * on top of the standings before it worth at most min_n */
				struct srt_post fp;
				double n0 = sp.a + sp.b - t->cfg.prior_a - t->cfg.prior_b;
				double k0 = n0 > t->cfg.min_n ? t->cfg.min_n / n0 : 1;

				seg.backend = fork;
				srt_level_post(t, &seg, (enum srt_level)sp.level, now_us, &fp);
				if (fp.n > 0) {
					sp.a = t->cfg.prior_a + (sp.a - t->cfg.prior_a) * k0 + (fp.a - t->cfg.prior_a);
					sp.b = t->cfg.prior_b + (sp.b - t->cfg.prior_b) * k0 + (fp.b - t->cfg.prior_b);
				}
			}
			sc = sp.a - t->cfg.prior_a;
			fc = sp.b - t->cfg.prior_b;
			sc = sc > 0 ? sc : 0;
			fc = fc > 0 ? fc : 0;
			data |= sc + fc > 0;
		}
		post[n] = (struct srt_post){ p0 * m + sc, (1 - p0) * m + fc, sc + fc, 0 };
		untested |= (uint64_t)!(tested >> i & 1) << n;
		P[i] = post[n].a / (post[n].a + post[n].b);
		idx[n++] = i;
	}
	if (v->sega && atomic_load_explicit(&v->sega_live, memory_order_relaxed))
		data |= pol_p_answered(v, r, post, idx, n, P);
	if (!data || n < 2 || !(eps > 0))
		return false;
	/* the untested candidates' extra draws: explore_untested of the decisions in all, the
	 * established candidates at their means (so they do not flip among themselves) */
	if (!srt_scores(post, (size_t)n, eps, p->learn.floor_k, &w->rng, draw) &&
	    !(untested && eps < p->learn.explore_untested &&
	      srt_scores_untested(post, (size_t)n, untested, (p->learn.explore_untested - eps) / (1 - eps),
	                          &w->rng, draw)))
		return false;
	for (k = 0; k < n; k++)
		P[idx[k]] = draw[k];
	return true;
}

/* A budget's load (cell: thr_state's index, an account's or an account × endpoint's),
 * 0..1: the leased budget's in lease mode (pol_lease_load), else the GCRA cell's. */
static inline double pol_budget_load(const struct pol_view *v, int cell, uint64_t now_ns)
{
	return v->lease ? pol_lease_load(&v->lease[cell]) : thr_load(&v->thr.cells[cell], now_ns);
}

/* Step 4: scores of the backends in cand into s[] (with the degraded backends' penalty)
 * and raw[] (without). Returns whether any candidate was penalised. */
static bool pol_score(struct pol_view *v, const struct pol_rq *r, uint64_t cand, uint64_t now_ns, const double *P,
                      double *s, double *raw)
{
	const struct policy *p = v->p;
	bool penalised = false;

	while (cand) {
		int i = __builtin_ctzll(cand);
		const struct pol_backend *b = &p->backends[i];
		uint32_t f = atomic_load_explicit(&v->health[i].factor_ppm, memory_order_relaxed);
		struct score_in in;

		cand &= cand - 1;
		in.amount = r->amount;
		in.fee = cost_fee(&p->fees[b->fee], b, r->amount, r->region, r->funding, r->cur);
		in.p_auth = P[i];
		in.latency_ms = score_latency(b, &v->health[i]);
		in.load = pol_budget_load(v, b->account_idx, now_ns);
		raw[i] = s[i] = score_value(p, &in);
		if (f) {
			in.p_auth *= f / 1e6;
			s[i] = score_value(p, &in);
			penalised = true;
		}
	}
	return penalised;
}

/* A half-open backend among `probing` whose batch still has a probe to send: takes it
 * (one CAS) and returns the backend, or -1. */
static int pol_probe(struct pol_view *v, uint64_t probing)
{
	while (probing) {
		int i = __builtin_ctzll(probing);
		_Atomic int32_t *t = &v->health[i].probes;
		int32_t n = atomic_load_explicit(t, memory_order_relaxed);

		probing &= probing - 1;
		while (n > 0)
			if (atomic_compare_exchange_weak_explicit(t, &n, n - 1, memory_order_relaxed, memory_order_relaxed))
				return i;
	}
	return -1;
}

/* xorshift64*: the worker's PRNG (state never 0), top 32 bits. */
static inline uint32_t pol_rand32(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545f4914f6cdd1dULL) >> 32);
}

/* Whether the forecasts shed this decision of class cls on backend b's account: the
 * account sheds a share q / 2^32 of the class, and *u is the decision's one uniform draw
 * (drawn on first need, so that nothing is drawn while nothing is shed; one draw for
 * every candidate, so a request shed on one account and not on another spills). */
static inline bool pol_shed(const struct pol_view *v, struct pol_worker *w, int b, int cls, uint64_t *u)
{
	uint32_t q = atomic_load_explicit(&v->shed[v->p->backends[b].account_idx][cls], memory_order_relaxed);

	if (!q)
		return false;
	if (q == POL_SHED_ALL)
		return true;
	if (*u > UINT32_MAX)
		*u = pol_rand32(&w->rng);
	return *u < q;
}

/* Books one request on backend b's account budget and, if the request has one, its
 * endpoint budget; same return as thr_take, and *which names the budget that refused. */
/* The same on leased budgets (engine-lease.h): no token now is a refusal, or, for a class
 * that may wait two leases, a token booked ahead and a wait of two leases. */
static int64_t pol_take_lease(struct pol_view *v, const struct pol_rq *r, int a, double share,
                              uint64_t max_wait_ns, const char **which)
{
	int64_t wait = 2 * (int64_t)v->p->fleet.lease_ms * 1000000, debt = (uint64_t)wait <= max_wait_ns;
	struct pol_lease_cell *ca = &v->lease[a], *ce;
	int ta, te;

	*which = "account";
	if ((ta = pol_lease_take(ca, share, debt)) == POL_LEASE_NONE)
		return -wait;
	if (r->endpoint >= 0) {
		ce = &v->lease[v->thr.naccounts + a * v->thr.nendpoints + r->endpoint];
		if ((te = pol_lease_take(ce, share, debt)) == POL_LEASE_NONE) {
			pol_lease_refund(ca, ta);
			*which = "endpoint";
			return -wait;
		}
		if (te == POL_LEASE_DEBT) {
			*which = "endpoint";
			return wait;
		}
	}
	return ta == POL_LEASE_DEBT ? wait : 0;
}

static int64_t pol_take(struct pol_view *v, const struct pol_rq *r, int b, uint64_t now_ns, double share,
                        uint64_t max_wait_ns, const char **which)
{
	int a = v->p->backends[b].account_idx;
	int64_t wa, we;

	if (v->lease)
		return pol_take_lease(v, r, a, share, max_wait_ns, which);

	wa = thr_take(thr_account(&v->thr, a), now_ns, share, max_wait_ns);
	*which = "account";
	if (wa < 0 || r->endpoint < 0)
		return wa;
	we = thr_take(thr_endpoint(&v->thr, a, r->endpoint), now_ns, share, max_wait_ns);
	if (we < 0) {
		thr_refund(thr_account(&v->thr, a));
		*which = "endpoint";
		return we;
	}
	if (we > wa)
		*which = "endpoint";
	return wa > we ? wa : we;
}

/* 1. classify: the class (ordered rules) and the request's features. */
static void pol_step_classify(struct pol_ctx *x)
{
	const struct policy *p = x->p;
	const struct pay_request *rq = x->rq;
	struct pol_rq *r = &x->r;

	r->cls = cls_classify(p, rq);
	x->cl = &p->classes[r->cls];
	r->region = pol_region_of(p, rq->card_country);
	r->country = pol_country_of(rq->card_country);
	r->brand = pol_brand_of(rq->card_brand);
	r->funding = pol_funding_of(rq->card_funding);
	r->cur = pol_currency_of(p, rq->currency);
	r->curcode = r->cur >= 0 ? p->currencies[r->cur] : 0;
	r->amount = rq->has_amount && rq->amount > 0 ? (double)rq->amount : p->score.nominal_amount;
	r->endpoint = thr_endpoint_of(p, rq);
}

/* The forecasts see the demand offered to backend b's account in the request's class. */
static inline void pol_demand(struct pol_ctx *x, int b)
{
	pol_count(&x->v->demand[(size_t)x->worker * x->v->demand_stride +
	                        (size_t)(x->p->backends[b].account_idx * x->p->nclasses + x->r.cls)]);
}

/* 4. score the candidates, and the backends only their breaker held back (to tell when a
 * breaker changed the choice); a lone candidate needs no score. */
static void pol_step_score(struct pol_ctx *x)
{
	double P[POL_MAX_BACKENDS];
	uint64_t scored = x->cand | x->held, cand = x->cand;
	bool explored = false;

	x->scored = scored;
	x->penalised = false;
	if (scored & (scored - 1)) {
		explored = pol_p_auth(x->v, x->w, &x->r, scored, x->now_us, x->cl->explore, P);
		x->penalised = pol_score(x->v, &x->r, scored, x->now_ns, P, x->s, x->raw);
	} else {
		x->s[__builtin_ctzll(scored)] = x->raw[__builtin_ctzll(scored)] = 0;
	}
	x->best = score_best(x->s, cand);
	if (!x->r.pinned && !x->panic)
		pol_why(x, (cand & (cand - 1)) ? POL_R_COST : POL_R_ONLY, NULL);
	if (explored) {
		pol_why(x, POL_R_EXPLORE, NULL);
		pol_count(&x->w->c.explored);
	}
	/* what the forecasts see: the demand offered to the account of the first choice
	 * (pol_step_throttle: and the load a spill or a shed share brings to another one) */
	pol_demand(x, x->best);
}

/* Says why the backend chosen is not the best one it could have been: a breaker held the
 * best-scored backend back, or a penalty (anomaly, breaker) changed the order. */
static void pol_why_not_best(struct pol_ctx *x)
{
	int c, why;

	if (x->held && (c = score_best(x->raw, x->scored)) >= 0 && (x->held >> c & 1) && c != x->b) {
		pol_why(x, POL_R_BREAKER, x->p->backends[c].name);
		pol_count(&x->w->c.breaker_avoided);
	} else if (x->penalised && (c = score_best(x->raw, x->cand)) != x->best && c >= 0) {
		why = (int)atomic_load_explicit(&x->v->health[c].why, memory_order_relaxed);
		pol_why(x, why & SCORE_WHY_ANOMALY ? POL_R_ANOMALY : POL_R_BREAKER, x->p->backends[c].name);
		pol_count(&x->w->c.anomaly_avoided);
	}
}

/* A request of the most protected class that every candidate's budget refused: the spare
 * budget of a backend its health held back, best score first, before a refusal. A refused
 * checkout is lost; sent to a backend whose breaker opened on a segment's outage, a
 * brownout or a timeout storm, it is often not (the other segments' traffic, half a
 * brownout's); where the backend is down for everything it fails as the refusal would.
 * Only on budgets refused, never on forecasts (this class is never forecast-shed). */
static void pol_held_spare(struct pol_ctx *x)
{
	uint64_t left = x->held & ~(x->probe >= 0 ? 1ULL << x->probe : 0);
	int c;

	for (c = score_best(x->s, left); c >= 0; left &= ~(1ULL << c), c = score_best(x->s, left))
		if (pol_take(x->v, &x->r, c, x->now_ns, x->share, 0, &x->which) == 0) {
			x->b = x->spare = c;
			pol_why(x, POL_R_SPILL, x->p->backends[c].name);
			pol_count(&x->w->c.spill);
			return;
		}
}

/* The half-open backends a probe of this request may go to: not one where its segment's
 * answered share is at or below breaker.scope_factor (its hang would fail the batch that
 * should judge the rest of the backend: engine-learn.c, pol_sega_scope). */
static uint64_t pol_probe_fit(const struct pol_ctx *x)
{
	const struct pol_view *v = x->v;
	uint64_t fit = x->probing, left;
	unsigned cell;

	if (!v->sega || !atomic_load_explicit(&v->sega_live, memory_order_relaxed) || !(x->p->breaker.scope_factor > 0))
		return fit;
	cell = pol_sega_cell(x->r.curcode, x->r.country, x->r.brand, x->r.funding);
	for (left = fit; left; left &= left - 1) {
		int i = __builtin_ctzll(left);
		uint32_t f = atomic_load_explicit(&v->sega[(size_t)i * POL_SEGA_CELLS + cell], memory_order_relaxed);

		if (pol_sega_away(f, x->p->breaker.scope_factor))
			fit &= ~(1ULL << i);
	}
	return fit;
}

/* 5. throttle: a half-open backend's probe first, then the best candidate within budget
 * whose account does not shed the class. Leaves b < 0 when none is (6. degrade). */
static void pol_step_throttle(struct pol_ctx *x)
{
	struct pol_view *v = x->v;
	uint64_t left;
	int c;

	x->share = 1.0 - x->cl->reserved_above;
	x->u = UINT64_MAX;
	x->b = x->first = x->probe = x->spare = -1;
	x->wait = 0;
	x->which = NULL;
	if (x->probing && (x->probe = pol_probe(v, pol_probe_fit(x))) >= 0) {
		if (!pol_shed(v, x->w, x->probe, x->r.cls, &x->u) &&
		    pol_take(v, &x->r, x->probe, x->now_ns, x->share, 0, &x->which) == 0) {
			x->b = x->probe;
			pol_why(x, POL_R_PROBE, x->p->backends[x->b].name);
			pol_count(&x->w->c.probes);
		} else {
			atomic_fetch_add_explicit(&v->health[x->probe].probes, 1, memory_order_relaxed);
		}
	}
	for (left = x->cand, c = x->best; x->b < 0 && c >= 0; left &= ~(1ULL << c), c = score_best(x->s, left)) {
		if (pol_shed(v, x->w, c, x->r.cls, &x->u))
			continue;
		if (x->first < 0)
			x->first = c;
		if (pol_take(v, &x->r, c, x->now_ns, x->share, 0, &x->which) == 0)
			x->b = c;
	}
	if (x->b < 0 && x->first >= 0 && x->held && x->cl->most_protected)
		pol_held_spare(x);
	if (x->b != x->probe)
		pol_why_not_best(x);
	if (x->b >= 0 && x->b != x->best && x->b != x->probe && x->b != x->spare) {
		pol_why(x, POL_R_SPILL, NULL);
		pol_count(&x->w->c.spill);
	}
	/* the account a shed or spilled request is offered to next sees it too, whether its
	 * budget takes it or not (else an account taking another's shed share would never
	 * see the demand it refuses, and never shed its own share) */
	if ((c = x->b >= 0 ? x->b : x->first) >= 0 &&
	    x->p->backends[c].account_idx != x->p->backends[x->best].account_idx)
		pol_demand(x, c);
}

/* 6. degrade, never blank: no budget took the request now, so it queues on the best
 * candidate not shed (for as long as its class may wait), or, when the forecasts shed it
 * everywhere, is refused on the best one with a Retry-After. */
static void pol_step_degrade(struct pol_ctx *x)
{
	if (x->b >= 0)
		return;
	if (x->first >= 0) {
		x->b = x->first;
		x->wait = pol_take(x->v, &x->r, x->b, x->now_ns, x->share, (uint64_t)x->cl->queue_ms * 1000000,
		                   &x->which);
		pol_why(x, POL_R_BUDGET, x->which);
	} else {
		x->b = x->best;
		x->wait = -(int64_t)x->p->forecast.retry_after_s * 1000000000;
		pol_why(x, POL_R_SHED, "forecast");
		pol_count(&x->w->c.shed);
	}
}

/* Decisions by backend, class and verdict (pol_engine_route_info), once out->verdict is
 * set. */
static inline void pol_route_count(struct pol_ctx *x, int b)
{
	pol_count(&x->v->route[(size_t)x->worker * x->v->route_stride +
	                       ((unsigned)b * (unsigned)x->p->nclasses + (unsigned)x->r.cls) * 3 + x->out->verdict]);
}

/* A sampled decision into the worker's ring (pol_engine_samples): the slot's seq goes odd,
 * the words are stored, the seq goes even again (release), then the count. */
static void pol_sample(struct pol_engine *e, struct pol_ctx *x, bool scored)
{
	struct pol_sample_ring *ring = &e->samples[x->worker];
	uint64_t n = atomic_load_explicit(&ring->n, memory_order_relaxed);
	struct pol_sample_slot *slot = &ring->slot[n % POL_SAMPLE_RING];
	uint32_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);
	union { struct pol_sample s; uint64_t w[POL_SAMPLE_WORDS]; } u;
	uint64_t m;
	unsigned k, i;
	int c;

	memset(&u, 0, sizeof(u));
	u.s.t_us = x->now_us;
	u.s.seq = x->w->seq;
	u.s.gen = x->v->gen;
	u.s.worker = (uint8_t)x->worker;
	u.s.backend = (uint8_t)(x->b >= 0 ? x->b : x->p->default_backend);
	u.s.cls = (uint8_t)x->r.cls;
	u.s.verdict = (uint8_t)x->out->verdict;
	for (m = scored ? x->scored : 0, k = 0; m && k < POL_SAMPLE_CAND; m &= m - 1, k++) {
		c = __builtin_ctzll(m);
		u.s.cand[k].backend = (uint8_t)c;
		u.s.cand[k].flags = (uint8_t)(((x->cand >> c & 1) ? POL_SAMPLE_F_CAND : POL_SAMPLE_F_HELD) |
		                              (c == x->b ? POL_SAMPLE_F_CHOSEN : 0));
		u.s.cand[k].score = (float)x->s[c];
		u.s.cand[k].raw = (float)x->raw[c];
	}
	u.s.ncand = (uint8_t)k;
	memcpy(u.s.reason, x->out->reason, x->out->reason_len + 1u);
	atomic_store_explicit(&slot->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (i = 0; i < POL_SAMPLE_WORDS; i++)
		atomic_store_explicit(&slot->w[i], u.w[i], memory_order_relaxed);
	atomic_store_explicit(&slot->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&ring->n, n + 1, memory_order_release);
}

/* Every sample_every-th decision of this worker is sampled (one relaxed load when off). */
static inline void pol_sample_maybe(struct pol_engine *e, struct pol_ctx *x, bool scored)
{
	uint32_t every = atomic_load_explicit(&e->sample_every, memory_order_relaxed);

	if (every && ++x->w->sample_n >= every) {
		x->w->sample_n = 0;
		pol_sample(e, x, scored);
	}
}

/* The answer: pins what must stick, fills the verdict and its decision id, counts. */
static void pol_step_answer(struct pol_ctx *x)
{
	struct pol_view *v = x->v;
	struct pol_worker *w = x->w;
	struct pay_verdict *out = x->out;
	const struct pol_class *cl = x->cl;
	const struct pol_rq *r = &x->r;
	int b = x->b;
	int64_t wait = x->wait;

	BUG_ON(b < 0 || b >= x->p->nbackends); /* 6. degrade never leaves a request without one */
	BUG_ON(!(x->cand >> b & 1) && b != x->probe && b != x->spare); /* a candidate, or a held one's probe or spare */

	/* Remember what must stick, now that the request will reach an account (a rejected
	 * one claims nothing: a flood above the budgets cannot fill the tables): a retry of
	 * this key, and the connected account's home. The claim is the linearization point:
	 * when a simultaneous decision claimed the key first, this one follows it. Its budget
	 * token was taken on the account it leaves: one token too many there, one too few on
	 * the winner's, per lost race (rare: two decisions of one key in the same instant). */
	if (wait >= 0) {
		if (x->rq->idem.ptr && !r->idem_hit) {
			int got = pin_claim(&x->pins->t[POL_PIN_IDEM], r->idem_h, v->pin_id[b]), nb;

			pol_count(&w->c.pin_claims[POL_PIN_IDEM]);
			if (got == PIN_FULL) {
				pol_count(&w->c.pin_full);
			} else if (got == v->pin_id[b]) {
				pol_journal_note(x->pins, x->worker, w, POL_PIN_IDEM, r->idem_h, (unsigned)got, false, x->now_us);
				out->claim = true;
				out->claim_id = (uint8_t)got;
				out->claim_key = r->idem_h;
			} else {
				pol_count(&w->c.pin_followed);
				x->r.idem_hit = true;
				if ((nb = v->pin_be[got]) >= 0 && !(x->p->backends[nb].same_account >> b & 1)) {
					b = x->b = nb;
					pol_why(x, POL_R_PIN_IDEM, NULL);
				}
			}
		}
		if (r->learn_account) {
			if (pin_claim(&x->pins->t[POL_PIN_ACCOUNT], r->acct_h, v->pin_id[b]) == v->pin_id[b])
				pol_journal_note(x->pins, x->worker, w, POL_PIN_ACCOUNT, r->acct_h, v->pin_id[b], false, x->now_us);
			pol_count(&w->c.pin_claims[POL_PIN_ACCOUNT]);
		}
	}

	out->backend = x->p->backends[b].name;
	out->class_name = cl->name;
	out->prio = cl->prio;
	out->offset_ms = cl->offset_ms;
	if (wait == 0) {
		out->verdict = PAY_ALLOW;
		pol_count(&w->c.allow);
	} else if (wait > 0) {
		int64_t off = cl->offset_ms + (wait + 999999) / 1000000;

		out->verdict = PAY_QUEUE;
		out->offset_ms = (int32_t)(off > 524287 ? 524287 : off);
		pol_count(&w->c.queue);
	} else {
		int64_t ra = (-wait + 999999999) / 1000000000;

		out->verdict = PAY_REJECT;
		out->retry_after_s = (int32_t)(ra < 1 ? 1 : ra > 3600 ? 3600 : ra);
		pol_count(&w->c.reject);
	}
	/* HAProxy answers a reject itself, and holds a queued request for as long as its
	 * offset says: only what goes upstream at once is waited for */
	if (wait == 0 && v->unans)
		pol_unans_count(v, x->worker, b, x->tick, false);
	pol_route_count(x, b);
	pol_did_write(out, &(struct pol_did){ v->gen, (unsigned)b, (unsigned)r->cls,
	                                      r->cur < 0 ? 0xff : (unsigned)r->cur, r->funding,
	                                      (r->idem_hit ? DID_F_IDEM : 0) | (wait > 0 ? DID_F_QUEUED : 0),
	                                      x->worker & 0xff, r->country, r->brand,
	                                      r->endpoint < 0 ? 0xff : (unsigned)r->endpoint, x->tick & 0xffff,
	                                      ++w->seq });
	pol_count(&w->c.decisions);
	if (r->pinned)
		pol_count(&w->c.pinned);
	if (x->down)
		pol_count(&w->c.pin_down);
	if (x->panic)
		pol_count(&w->c.panic);
}

/* A request pinned (idempotency key, object, Connect account) to a backend whose
 * account is no longer in the policy: sending it elsewhere could charge twice, so it is
 * refused, with a reason the operator can find (pin:gone). */
static void pol_step_gone(struct pol_ctx *x)
{
	struct pay_verdict *out = x->out;

	out->backend = x->p->backends[x->p->default_backend].name;
	out->class_name = x->cl->name;
	out->prio = x->cl->prio;
	out->offset_ms = x->cl->offset_ms;
	out->verdict = PAY_REJECT;
	out->retry_after_s = 3600;
	out->decision_len = 0;
	out->decision[0] = 0;
	pol_why(x, POL_R_PIN_GONE, NULL);
	pol_route_count(x, x->p->default_backend);
	pol_count(&x->w->c.decisions);
	pol_count(&x->w->c.reject);
	pol_count(&x->w->c.pin_gone);
}

/* 0. The keys' hashes, and the lines of the idempotency key's pin fetched at once: a new
 * key's lookup (pol_step_pin) and claim (pol_step_answer) walk every live generation of
 * the table, a cache miss each in a full-size one, which then overlap one another and
 * the classification instead of following one another (`policy-bench N R keyed`). */
static void pol_step_keys(struct pol_ctx *x)
{
	const struct pay_request *rq = x->rq;
	struct pol_rq *r = &x->r;

	if (rq->account.ptr)
		r->acct_h = pstr_hash(rq->account.ptr, rq->account.len, SEED_ACCOUNT);
	if (rq->idem.ptr) {
		/* (account, key) is the identity: the same key on two accounts is two charges. */
		r->idem_h = pstr_hash(rq->idem.ptr, rq->idem.len, SEED_IDEM ^ r->acct_h);
		pin_prefetch(&x->pins->t[POL_PIN_IDEM], r->idem_h);
	}
}

/* The decision, step by step as DESIGN.md §4 tells it. */
void pol_decide(struct pol_engine *e, unsigned worker, const struct pay_request *rq,
                uint64_t now_us, struct pay_verdict *out)
{
	struct pol_ctx x;

	x.w = &e->workers[worker];
	x.v = pol_enter(e, x.w);
	x.pins = &e->pins;
	x.p = x.v->p;
	x.worker = worker;
	x.rq = rq;
	x.out = out;
	x.now_us = now_us;
	x.now_ns = now_us * 1000;
	x.now_s = (uint32_t)(now_us / 1000000);
	x.tick = (uint32_t)(now_us / POL_UNANS_TICK_US);
	x.r = (struct pol_rq){ 0 };
	out->reason_len = 0;
	out->reason[0] = 0;
	out->retry_after_s = 0;
	out->claim = false;

	pol_step_keys(&x);
	pol_step_classify(&x);
	pol_step_pin(&x);
	if (x.r.gone) {
		x.b = -1;
		pol_step_gone(&x);
		pol_sample_maybe(e, &x, false);
		return;
	}
	pol_step_filter(&x);    /* with 6. degrade when no candidate passes */
	pol_step_score(&x);
	pol_step_throttle(&x);
	pol_step_degrade(&x);
	pol_step_answer(&x);
	pol_sample_maybe(e, &x, true);
}

/* ---- outcomes ----------------------------------------------------------------------- */

static int pol_backend_by_name(const struct policy *p, struct pay_str name)
{
	int i;

	for (i = 0; name.ptr && i < p->nbackends; i++)
		if (pstr_eq(name, p->backends[i].name))
			return i;
	return -1;
}

/* Hands one event to the control thread: single producer, never waits. */
static void pol_push(struct pol_engine *e, struct pol_worker *w, unsigned worker, const struct pol_event *ev)
{
	struct pol_ring *r = &e->rings[worker];
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	BUG_ON(h - atomic_load_explicit(&r->tail, memory_order_relaxed) > POL_RING_SIZE);
	if (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= POL_RING_SIZE) {
		pol_count(&w->c.dropped);
		return;
	}
	r->ev[h & (POL_RING_SIZE - 1)] = *ev;
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

/* A late or absent decision: HAProxy used `used` for a keyed request, whatever payspoa
 * advised or pinned. The key's pin must name that account, since that is where a retry
 * finds the first attempt: claimed when there is none, rewritten in place when it names
 * another account (also when the outcome has no valid decision id). */
static void pol_observe_idem(struct pol_engine *e, struct pol_view *v, struct pol_worker *w,
                             const struct pay_outcome *o, uint64_t h, int used, uint64_t now_us)
{
	const struct policy *p = v->p;
	struct pin_table *t = &e->pins.t[POL_PIN_IDEM];
	int id, b;

	if (!o->idem.ptr)
		return;
	id = pin_get(t, h);
	if (id >= 0 && (b = v->pin_be[id]) >= 0 && (p->backends[b].same_account >> used & 1))
		return; /* already on that account */
	pol_count(&w->c.pin_claims[POL_PIN_IDEM]);
	if (id < 0 && pin_claim(t, h, v->pin_id[used]) == (int)v->pin_id[used]) {
		pol_journal_note(&e->pins, (unsigned)(w - e->workers), w, POL_PIN_IDEM, h, v->pin_id[used], false, now_us);
		return;
	}
	if (pin_set(t, h, v->pin_id[used]) != PIN_FULL) {
		pol_count(&w->c.pin_corrected);
		pol_journal_note(&e->pins, (unsigned)(w - e->workers), w, POL_PIN_IDEM, h, v->pin_id[used], true, now_us);
	}
}

/* The answer to decision d (NULL: none) of this view: counted in its decision tick while
 * that tick is open (until the backend's grace after it, and not yet judged: a grace that
 * grew must not count answers into ticks already judged). The tick comes mod 2^16 (6553 s): the newest
 * tick with those low bits, not after now. The answer counts for the backend advised
 * (whose decision it was), even when HAProxy fell back elsewhere. Returns true when the
 * tick has closed (a late answer), false otherwise (counted, or not a decision judged). */
static bool pol_observe_answered(struct pol_view *v, unsigned worker, const struct pol_did *d, uint64_t now_us)
{
	uint32_t now_t, dt;

	if (!d || d->gen != v->gen || !v->unans || d->backend >= (unsigned)v->p->nbackends || (d->flags & DID_F_QUEUED))
		return false;
	now_t = (uint32_t)(now_us / POL_UNANS_TICK_US);
	dt = now_t - ((now_t - d->tick) & 0xffffu);
	if (now_us < ((uint64_t)dt + 1) * POL_UNANS_TICK_US +
	                     atomic_load_explicit(&v->unans_grace_b_us[d->backend], memory_order_relaxed) &&
	    dt >= atomic_load_explicit(&v->unans_done[d->backend], memory_order_relaxed)) {
		pol_unans_count(v, worker, (int)d->backend, dt, true);
		return false;
	}
	return true;
}

/* Once-only outcomes: the first report of decision (dw, seq) raises its mark and learns;
 * a second report (the other channel) finds the mark equal. Lock-free (one CAS), no
 * allocation. Returns 1 first, 0 already seen, 2 the slot holds a newer decision (the
 * report is older than the window: learned, unchecked). */
static int pol_seen_claim(struct pol_engine *e, unsigned dw, uint64_t seq)
{
	_Atomic uint32_t *m = &e->outcome_seen[(size_t)dw * POL_SEEN_SLOTS + (seq & (POL_SEEN_SLOTS - 1))];
	uint32_t want = (uint32_t)(seq >> POL_SEEN_BITS) + 1, cur = atomic_load_explicit(m, memory_order_relaxed);

	do {
		if (cur == want)
			return 0;
		if (cur > want)
			return 2;
	} while (!atomic_compare_exchange_weak_explicit(m, &cur, want, memory_order_relaxed, memory_order_relaxed));
	return 1;
}

/* What HAProxy's termination state (log channel) says besides the status: 'Q' in the
 * second character, a 503 from HAProxy's own queue timeout (the backend was never
 * tried); 'C' or 'c' first with no status, the client left before any answer. Neither
 * judges the backend: the decision is answered, nothing is learned about its health. */
enum pol_term { POL_TERM_BACKEND, POL_TERM_QUEUE, POL_TERM_CLIENT };

static enum pol_term pol_term_of(const struct pay_outcome *o)
{
	if (!o->term.ptr || o->term.len < 2)
		return POL_TERM_BACKEND;
	if (o->term.ptr[1] == 'Q' && (o->status <= 0 || o->status == 503))
		return POL_TERM_QUEUE;
	if ((o->term.ptr[0] == 'C' || o->term.ptr[0] == 'c') && o->status <= 0)
		return POL_TERM_CLIENT;
	return POL_TERM_BACKEND;
}

/* Outcomes whose pin lines pol_observe_batch asks for at once: a few lines each, within
 * what a core keeps in flight (~10-12 misses). */
#define POL_OBSERVE_CHUNK 8

/* An outcome that created an object (a 2xx with the object's id): its object is pinned to
 * the account used, when the id has a configured prefix (pol_is_object). */
static inline bool pol_obs_created(const struct pay_outcome *o)
{
	return o->status >= 200 && o->status < 300 && o->object.ptr;
}

/* An outcome's pin keys, hashed once (pol_observe_batch hashes a batch's keys first, to
 * ask for their pin lines before the walks). A key is only read when its outcome has it
 * (an idempotency key; an object created). */
struct pol_obs_keys {
	uint64_t idem;   /* o->idem with o->account, as pol_decide hashes them */
	uint64_t object; /* o->object, of an outcome that created it */
};

static void pol_obs_keys(const struct pay_outcome *o, struct pol_obs_keys *k)
{
	k->idem = k->object = 0;
	if (o->idem.ptr) {
		uint64_t acct_h = o->account.ptr ? pstr_hash(o->account.ptr, o->account.len, SEED_ACCOUNT) : 0;

		k->idem = pstr_hash(o->idem.ptr, o->idem.len, SEED_IDEM ^ acct_h);
	}
	if (pol_obs_created(o))
		k->object = pstr_hash(o->object.ptr, o->object.len, SEED_OBJECT);
}

static void pol_observe_keyed(struct pol_engine *e, unsigned worker, const struct pay_outcome *o,
                              const struct pol_obs_keys *k, uint64_t now_us)
{
	struct pol_worker *w = &e->workers[worker];
	struct pol_view *v = pol_enter(e, w);
	const struct policy *p = v->p;
	struct pol_event ev;
	struct oc_class oc;
	struct pol_did d;
	bool did = pol_did_parse(o->decision, &d);
	enum pol_term term = pol_term_of(o);
	int used;

	pol_count(&w->c.observed);
	if (o->channel == PAY_CH_LOG)
		pol_count(&w->c.observed_log);
	if (did && e->outcome_seen && d.worker < e->nworkers) {
		int first = pol_seen_claim(e, d.worker, d.seq);

		if (first == 0) {
			pol_count(&w->c.observe_dup);
			return;
		}
		if (first == 2)
			pol_count(&w->c.observe_stale);
	}
	/* The backend really used (be_name) wins over the advice: HAProxy may have fallen
	 * back. The decision id only counts if it comes from the view in force. A log line
	 * names the frontend when no backend was reached (HAProxy's own 429 shed, a
	 * fail-closed 503): nothing to learn, whatever the advice was, but the decision was
	 * answered (HAProxy ended the request itself), so it is not judged missing. */
	used = pol_backend_by_name(p, o->backend);
	if (used < 0 && o->channel == PAY_CH_LOG) {
		pol_count(&w->c.observe_unrouted);
		pol_observe_answered(v, worker, did ? &d : NULL, now_us);
		return;
	}
	if (used < 0 && did && d.gen == v->gen && d.backend < (unsigned)p->nbackends)
		used = (int)d.backend;
	if (used < 0 || (o->decision.ptr && !did)) {
		pol_count(&w->c.observe_bad);
		if (used < 0)
			return;
	}
	pol_observe_idem(e, v, w, o, k->idem, used, now_us);
	/* An object created on an account lives there: its later operations are pinned. */
	if (pol_obs_created(o) && pol_is_object(p, o->object.ptr, o->object.len)) {
		uint64_t oh = k->object;
		int was = pin_set(&e->pins.t[POL_PIN_OBJECT], oh, v->pin_id[used]);

		if (was != PIN_FULL && was != (int)v->pin_id[used])
			pol_journal_note(&e->pins, worker, w, POL_PIN_OBJECT, oh, v->pin_id[used], true, now_us);
		pol_count(&w->c.pin_claims[POL_PIN_OBJECT]);
		pol_count(&w->c.learned_objects);
	}
	if (term != POL_TERM_BACKEND) {
		/* answered (so not judged missing), but the backend was not what failed */
		pol_count(term == POL_TERM_QUEUE ? &w->c.observe_queue_timeout : &w->c.observe_client_gone);
		pol_observe_answered(v, worker, did ? &d : NULL, now_us);
		return;
	}

	/* The learning loop: classify, then hand the event to the control thread, which
	 * merges it into the breakers, posteriors, anomaly charts and budgets at its tick. */
	oc = oc_classify(&p->oc, o, p->breaker.slow_ms);
	pol_count(&w->c.outcomes[oc.kind & 7]);
	memset(&ev, 0, sizeof(ev));
	ev.t_us = now_us;
	ev.latency_ms = o->latency_ms < 0 ? -1 : o->latency_ms > INT32_MAX ? INT32_MAX : (int32_t)o->latency_ms;
	ev.gen = v->gen;
	ev.backend = (uint8_t)used;
	ev.kind = (uint8_t)oc.kind;
	ev.rl = (uint8_t)oc.rl;
	ev.flags = (uint8_t)oc.flags;
	ev.cls = ev.cur = ev.endpoint = 0xff;
	if (did && d.gen == v->gen) {
		ev.seg = 1;
		ev.cls = d.cls < (unsigned)p->nclasses ? (uint8_t)d.cls : 0xff;
		ev.cur = d.cur < (unsigned)p->ncurrencies ? (uint8_t)d.cur : 0xff;
		ev.funding = d.funding < POL_FUND_COUNT ? (uint8_t)d.funding : 0;
		ev.country = d.country <= 26 * 26 ? (uint16_t)d.country : 0;
		ev.brand = (uint8_t)d.brand;
		ev.endpoint = d.endpoint < (unsigned)p->thr.nendpoints ? (uint8_t)d.endpoint : 0xff;
	}
	/* the answer, or a late one for the backend advised: flagged so that the control
	 * thread does not count it twice (once missing, once answered) */
	if (pol_observe_answered(v, worker, did ? &d : NULL, now_us) && (int)d.backend == used) {
		uint32_t now_t = (uint32_t)(now_us / POL_UNANS_TICK_US);

		ev.late = 1;
		ev.dtick = now_t - ((now_t - d.tick) & 0xffffu);
	}
	pol_push(e, w, worker, &ev);
}

void pol_observe(struct pol_engine *e, unsigned worker, const struct pay_outcome *o, uint64_t now_us)
{
	struct pol_obs_keys k;

	pol_obs_keys(o, &k);
	pol_observe_keyed(e, worker, o, &k, now_us);
}

/* Two passes over each chunk: hash every key and ask for the pin lines its walks will
 * read (every live generation: an object's first pin walks them all), then observe. The
 * misses of a chunk overlap instead of coming one after another: the pin tables are far
 * larger than the cache, and a line is one miss per generation walked. */
void pol_observe_batch(struct pol_engine *e, unsigned worker, const struct pay_outcome *o, unsigned n,
                       uint64_t now_us)
{
	struct pol_obs_keys k[POL_OBSERVE_CHUNK];

	pol_enter(e, &e->workers[worker]); /* the pin lists stay ours from here (QSBR) */
	for (unsigned at = 0; at < n; at += POL_OBSERVE_CHUNK) {
		unsigned m = n - at < POL_OBSERVE_CHUNK ? n - at : POL_OBSERVE_CHUNK, i;

		for (i = 0; i < m; i++) {
			const struct pay_outcome *oi = &o[at + i];

			pol_obs_keys(oi, &k[i]);
			if (oi->idem.ptr)
				pin_prefetch(&e->pins.t[POL_PIN_IDEM], k[i].idem);
			if (pol_obs_created(oi))
				pin_prefetch(&e->pins.t[POL_PIN_OBJECT], k[i].object);
		}
		for (i = 0; i < m; i++)
			pol_observe_keyed(e, worker, &o[at + i], &k[i], now_us);
	}
}

/* ---- control thread: admin and metrics ------------------------------------------------ */

int pol_engine_backend_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_backend_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	const struct pol_backend *b;

	if (i >= (unsigned)p->nbackends)
		return -1;
	b = &p->backends[i];
	out->name = b->name;
	out->account = b->account;
	out->entity = b->entity;
	out->enabled = b->enabled;
	out->admin_disabled = (atomic_load(&v->disabled) >> i) & 1;
	out->admin_drained = (atomic_load(&v->drained) >> i) & 1;
	out->state = (int)atomic_load(&v->health[i].state);
	out->p_auth = score_p_auth(b, &v->health[i], POL_REGION_UNKNOWN);
	out->latency_ms = score_latency(b, &v->health[i]);
	out->budget_load = pol_budget_load(v, b->account_idx, now_us * 1000);
	out->prior_tested = (atomic_load_explicit(&v->tested, memory_order_relaxed) >> i) & 1;
	return 0;
}

int pol_engine_set_enabled(struct pol_engine *e, const char *backend, bool enabled)
{
	struct pol_view *v = atomic_load(&e->view);
	int i = pol_backend_by_name(v->p, (struct pay_str){ backend, (uint32_t)strlen(backend) });

	if (i < 0)
		return -1;
	if (enabled) {
		atomic_fetch_and(&v->disabled, ~(1ULL << i));
		atomic_fetch_and(&v->drained, ~(1ULL << i));
	} else {
		atomic_fetch_or(&v->disabled, 1ULL << i);
		atomic_fetch_and(&v->drained, ~(1ULL << i));
	}
	return 0;
}

int pol_engine_set_drained(struct pol_engine *e, const char *backend)
{
	struct pol_view *v = atomic_load(&e->view);
	int i = pol_backend_by_name(v->p, (struct pay_str){ backend, (uint32_t)strlen(backend) });

	if (i < 0)
		return -1;
	atomic_fetch_or(&v->drained, 1ULL << i);
	atomic_fetch_and(&v->disabled, ~(1ULL << i));
	return 0;
}

int pol_engine_class_info(struct pol_engine *e, unsigned i, struct pol_class_info *out)
{
	const struct policy *p = atomic_load(&e->view)->p;
	const struct pol_class *c;

	if (i >= (unsigned)p->nclasses)
		return -1;
	c = &p->classes[i];
	*out = (struct pol_class_info){ c->name, c->prio, c->offset_ms, c->shed_order, c->queue_ms, c->reserve,
	                                c->reserved_above };
	return 0;
}

int pol_engine_budget_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_budget_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	unsigned na = (unsigned)p->naccounts, ne = (unsigned)p->thr.nendpoints;
	const struct pol_budget *bu;

	if (i >= na * (1 + ne))
		return -1;
	if (i < na) {
		bu = &p->accounts[i].budget;
		out->account = p->accounts[i].id;
		out->endpoint = NULL;
		out->load = pol_budget_load(v, (int)i, now_us * 1000);
	} else {
		unsigned a = (i - na) / ne, ep = (i - na) % ne;

		bu = &p->thr.endpoints[ep].budget;
		out->account = p->accounts[a].id;
		out->endpoint = p->thr.endpoints[ep].name;
		out->load = pol_budget_load(v, (int)i, now_us * 1000);
	}
	out->rate = pol_learn_rate(v, (int)i, now_us); /* adaptive: the configured rate until a 429 */
	out->burst = bu->burst;
	return 0;
}

const struct pol_stats_desc pol_stats_desc[] = {
#define X(name, type, help) { #name, #type, help, NULL, NULL, 1, offsetof(struct pol_stats, name) },
	POL_COUNTERS(X)
	POL_ENGINE_COUNTERS(X)
#undef X
#define X(name, type, n, label, values, help) { #name, #type, help, label, values, n, offsetof(struct pol_stats, name) },
	POL_COUNTER_VECS(X)
	POL_ENGINE_VECS(X)
#undef X
};
const size_t pol_stats_ndesc = sizeof(pol_stats_desc) / sizeof(pol_stats_desc[0]);

void pol_engine_stats(struct pol_engine *e, uint64_t now_us, struct pol_stats *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct pin_table *t[3] = { &e->pins.t[0], &e->pins.t[1], &e->pins.t[2] };
	unsigned i, k;

	(void)now_us;
	memset(out, 0, sizeof(*out));
	for (i = 0; i < e->nworkers; i++) {
		const struct pol_counters *c = &e->workers[i].c;

#define X(name, type, help) out->name += atomic_load_explicit(&c->name, memory_order_relaxed);
		POL_COUNTERS(X)
#undef X
#define X(name, type, n, label, values, help) \
		for (k = 0; k < (n); k++) \
			out->name[k] += atomic_load_explicit(&c->name[k], memory_order_relaxed);
		POL_COUNTER_VECS(X)
#undef X
	}
	pol_learn_counts(v, out);
	for (i = 0; i < 3; i++) {
		out->pin_live[i] = pin_live(t[i], out->pin_claims[i]);
		out->pin_stored[i] = out->pin_claims[i];
		out->pin_evicted[i] = atomic_load(&t[i]->evicted);
		out->pin_rotations[i] = atomic_load(&t[i]->rotations);
	}
	out->reloads = e->reloads;
}

int pol_engine_set_breaker(struct pol_engine *e, const char *backend, enum pol_breaker_mode mode, uint64_t now_us)
{
	struct pol_view *v = atomic_load(&e->view);
	int i = pol_backend_by_name(v->p, (struct pay_str){ backend, (uint32_t)strlen(backend) });
	static const int brk_mode[] = { BRK_OVR_AUTO, BRK_OVR_OPEN, BRK_OVR_CLOSED };

	if (i < 0 || (unsigned)mode > POL_BREAKER_CLOSED)
		return -1;
	return pol_learn_override(v, i, brk_mode[mode], now_us);
}

int pol_engine_probe_result(struct pol_engine *e, const char *backend, bool ok, double latency_ms, uint64_t now_us)
{
	struct pol_view *v = atomic_load(&e->view);
	int i = pol_backend_by_name(v->p, (struct pay_str){ backend, (uint32_t)strlen(backend) });

	if (i < 0)
		return -1;
	return pol_learn_probe(v, i, ok, latency_ms, now_us);
}

int pol_engine_learn_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_learn_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	struct pol_learn_backend lb;
	uint32_t f;

	if (i >= (unsigned)v->p->nbackends)
		return -1;
	pol_learn_backend(v, (int)i, now_us, &lb);
	f = atomic_load(&v->health[i].factor_ppm);
	out->name = v->p->backends[i].name;
	out->breaker = brk_state_name((enum brk_state)lb.breaker);
	out->anomaly = lb.anomaly ? "degraded" : "normal";
	out->trips = lb.trips;
	out->open_for_s = lb.open_for_s;
	out->factor = f ? f / 1e6 : 1;
	out->probes = atomic_load(&v->health[i].probes);
	return 0;
}

int pol_engine_forecast_info(struct pol_engine *e, unsigned i, uint64_t now_us, struct pol_forecast_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	struct pol_learn_forecast f;
	int a, c;

	if (i >= (unsigned)(p->naccounts * p->nclasses))
		return -1;
	a = (int)i / p->nclasses;
	c = (int)i % p->nclasses;
	pol_learn_forecast(v, a, c, now_us, &f);
	*out = (struct pol_forecast_info){ p->accounts[a].id, p->classes[c].name, f.now_rps, f.next_rps, f.day_rps,
	                                   f.budget_rps, f.shed };
	return 0;
}

int pol_engine_route_info(struct pol_engine *e, unsigned i, struct pol_route_info *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	unsigned nc = (unsigned)p->nclasses, w;

	if (i >= (unsigned)p->nbackends * nc * 3)
		return -1;
	out->backend = p->backends[i / (nc * 3)].name;
	out->class_name = p->classes[(i / 3) % nc].name;
	out->verdict = (enum pay_verdict_kind)(i % 3);
	out->count = 0;
	for (w = 0; w < e->nworkers; w++)
		out->count += atomic_load_explicit(&v->route[(size_t)w * v->route_stride + i], memory_order_relaxed);
	return 0;
}

void pol_engine_set_sampling(struct pol_engine *e, unsigned every)
{
	atomic_store(&e->sample_every, every);
}

unsigned pol_engine_sampling(struct pol_engine *e)
{
	return atomic_load(&e->sample_every);
}

size_t pol_engine_samples(struct pol_engine *e, struct pol_sample *out, size_t max)
{
	size_t got = 0;
	unsigned w, k, i;

	for (w = 0; w < e->nworkers && got < max; w++) {
		struct pol_sample_ring *ring = &e->samples[w];
		uint64_t n = atomic_load_explicit(&ring->n, memory_order_acquire);

		for (k = 0; k < POL_SAMPLE_RING && k < n && got < max; k++) {
			struct pol_sample_slot *slot = &ring->slot[(n - 1 - k) % POL_SAMPLE_RING];
			union { struct pol_sample s; uint64_t w[POL_SAMPLE_WORDS]; } u;
			uint32_t s1 = atomic_load_explicit(&slot->seq, memory_order_acquire), s2;

			if (s1 & 1)
				continue;
			for (i = 0; i < POL_SAMPLE_WORDS; i++)
				u.w[i] = atomic_load_explicit(&slot->w[i], memory_order_relaxed);
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(&slot->seq, memory_order_relaxed);
			if (s1 != s2 || s1 == 0)
				continue; /* rewritten meanwhile, or never written */
			u.s.reason[PAY_REASON_MAX] = 0;
			u.s.ncand = u.s.ncand > POL_SAMPLE_CAND ? POL_SAMPLE_CAND : u.s.ncand;
			out[got++] = u.s;
		}
	}
	return got;
}

const char *pol_engine_sample_backend(struct pol_engine *e, const struct pol_sample *s, unsigned backend)
{
	struct pol_view *v = atomic_load(&e->view);

	return s->gen == v->gen && backend < (unsigned)v->p->nbackends ? v->p->backends[backend].name : NULL;
}

const char *pol_engine_sample_class(struct pol_engine *e, const struct pol_sample *s)
{
	struct pol_view *v = atomic_load(&e->view);

	return s->gen == v->gen && s->cls < v->p->nclasses ? v->p->classes[s->cls].name : NULL;
}

int pol_engine_learn_segs(struct pol_engine *e, unsigned b, uint64_t now_us, struct pol_seg_info *out, unsigned max)
{
	return pol_learn_segs(atomic_load(&e->view), (int)b, now_us, out, max);
}

/* ---- pins for snapshots ---------------------------------------------------------------- */

struct pol_pins_each {
	const struct pol_pins *pp;
	unsigned table, nids;
	pol_pin_fn *fn;
	void *arg;
};

static void pol_pins_each_one(void *arg, uint64_t key, unsigned id, uint32_t age_s)
{
	struct pol_pins_each *a = arg;

	if (id < a->nids)
		a->fn(a->arg, a->table, key, a->pp->name[id], a->pp->account[id], age_s);
}

void pol_engine_pins_each(struct pol_engine *e, uint64_t now_us, pol_pin_fn *fn, void *arg)
{
	struct pol_pins_each a = { &e->pins, 0, 0, fn, arg };

	for (a.table = 0; a.table < POL_PIN_TABLES; a.table++) {
		/* ids interned after this load are in no entry this scan can trust yet */
		a.nids = atomic_load_explicit(&e->pins.nids, memory_order_acquire);
		pin_each(&e->pins.t[a.table], (uint32_t)(now_us / 1000000), pol_pins_each_one, &a);
	}
}

void pol_engine_pins_hold(struct pol_engine *e, int delta)
{
	atomic_fetch_add(&e->pins.holds, (unsigned)delta);
}

int pol_engine_pin_restore(struct pol_engine *e, unsigned table, uint64_t key, const char *backend,
                           const char *account, uint32_t age_s, uint64_t now_us)
{
	struct pol_pins *pp = &e->pins;
	const struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	int b, id, rc = POL_PIN_KEPT;

	if (table >= POL_PIN_TABLES || !backend || !account)
		return -1;
	if (age_s >= pp->t[table].ttl_s)
		return POL_PIN_EXPIRED;
	/* the backend of that name on that account, else one of its account: its id now */
	for (b = 0; b < p->nbackends && (strcmp(p->backends[b].name, backend) || strcmp(p->backends[b].account, account)); b++)
		;
	if (b == p->nbackends) {
		rc = POL_PIN_REMAPPED;
		for (b = 0; b < p->nbackends && strcmp(p->backends[b].account, account); b++)
			;
	}
	if (b < p->nbackends) {
		id = v->pin_id[b];
	} else {
		/* the account is gone: an id of its own, which this view maps to no backend,
		 * so that its requests are refused (pin:gone) */
		rc = POL_PIN_GONE;
		if ((id = pol_pin_intern(pp, backend, account)) < 0)
			return -1;
	}
	if (pin_restore(&pp->t[table], key, (unsigned)id, age_s, (uint32_t)(now_us / 1000000)) < 0)
		return -1;
	return rc;
}

int pol_engine_journal(struct pol_engine *e, uint32_t slots)
{
	struct pol_journal *j;
	uint64_t n = 1;
	unsigned i;

	if (e->pins.journal || slots == 0)
		return e->pins.journal ? 0 : -1;
	while (n < slots)
		n <<= 1;
	if (!(j = calloc(e->nworkers, sizeof(*j))))
		return -1;
	for (i = 0; i < e->nworkers; i++) {
		j[i].mask = n - 1;
		if (!(j[i].note = malloc(n * sizeof(*j[i].note)))) {
			while (i--)
				free(j[i].note);
			free(j);
			return -1;
		}
	}
	e->pins.journal = j;
	return 0;
}

size_t pol_engine_journal_drain(struct pol_engine *e, size_t max, pol_pin_note_fn *fn, void *arg)
{
	struct pol_pins *pp = &e->pins;
	unsigned i, nids = atomic_load_explicit(&pp->nids, memory_order_acquire);
	size_t done = 0;

	if (!pp->journal)
		return 0;
	for (i = 0; i < e->nworkers && done < max; i++) {
		struct pol_journal *j = &pp->journal[i];
		uint64_t t = atomic_load_explicit(&j->tail, memory_order_relaxed);
		uint64_t h = atomic_load_explicit(&j->head, memory_order_acquire);

		for (; t != h && done < max; t++, done++) {
			struct pol_pin_note n = j->note[t & j->mask];

			if (n.id < nids)
				fn(arg, n.table, n.key, pp->name[n.id], pp->account[n.id], n.force, n.us);
		}
		atomic_store_explicit(&j->tail, t, memory_order_release);
	}
	return done;
}

int pol_engine_pin_apply(struct pol_engine *e, unsigned table, uint64_t key, const char *backend,
                         const char *account)
{
	struct pol_pins *pp = &e->pins;
	const struct pol_view *v = atomic_load(&e->view);
	const struct policy *p = v->p;
	int b, id, got, rc = POL_PIN_KEPT;

	if (table >= POL_PIN_TABLES || !backend || !account)
		return -1;
	for (b = 0; b < p->nbackends && (strcmp(p->backends[b].name, backend) || strcmp(p->backends[b].account, account)); b++)
		;
	if (b == p->nbackends) {
		rc = POL_PIN_REMAPPED;
		for (b = 0; b < p->nbackends && strcmp(p->backends[b].account, account); b++)
			;
	}
	if (b == p->nbackends) {
		rc = POL_PIN_GONE;
		if ((id = pol_pin_intern(pp, backend, account)) < 0)
			return -1;
	} else {
		id = v->pin_id[b];
	}
	got = pin_claim(&pp->t[table], key, (unsigned)id);
	if (got == PIN_FULL)
		return -1;
	if (got == id)
		return rc;
	/* held here on a backend of the same account: nothing to change */
	if (got < (int)atomic_load(&pp->nids) && strcmp(pp->account[got], account) == 0)
		return rc;
	/* on another account: the fleet's pin wins (this node's decision lost the race) */
	if (pin_set(&pp->t[table], key, (unsigned)id) == PIN_FULL)
		return -1;
	return POL_PIN_MOVED;
}

int pol_engine_pin_names(struct pol_engine *e, unsigned id, const char **backend, const char **account)
{
	if (id >= atomic_load_explicit(&e->pins.nids, memory_order_acquire))
		return -1;
	*backend = e->pins.name[id];
	*account = e->pins.account[id];
	return 0;
}

int pol_engine_pin_id(struct pol_engine *e, unsigned table, uint64_t key)
{
	return table < POL_PIN_TABLES ? pin_get(&e->pins.t[table], key) : PIN_NONE;
}

uint32_t pol_engine_pin_ttl(struct pol_engine *e, unsigned table)
{
	return table < POL_PIN_TABLES ? e->pins.t[table].ttl_s : 0;
}
