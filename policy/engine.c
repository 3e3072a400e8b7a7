/* engine.c: the engine's entry points. decide runs the steps of DESIGN.md §4 (classify,
 * pin, filter, score, throttle, degrade); observe learns object owners; views are
 * published with one atomic pointer and reclaimed by quiescent-state epochs (QSBR).
 * No clock, no I/O, no locks; allocation only in new/swap (control thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "cost.h"
#include "engine-t.h"
#include "pin.h"
#include "policy.h"
#include "pstr.h"
#include "score.h"
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
	thr_destroy(&v->thr);
	pin_destroy(&v->idem);
	pin_destroy(&v->object);
	pin_destroy(&v->account);
	pol_free(v->p);
	free(v);
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
	if (thr_init(&v->thr, p) || pin_init(&v->idem, p->pin.idem_slots, p->pin.idem_ttl_s) ||
	    pin_init(&v->object, p->pin.object_slots, p->pin.object_ttl_s) ||
	    pin_init(&v->account, p->pin.account_slots, p->pin.account_ttl_s)) {
		pol_view_free(v);
		goto oom;
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
	return v;
oom:
	snprintf(err, errlen, "out of memory building the policy view");
	return NULL;
}

/* map[old backend] = new backend with the same name, else one on the same account,
 * else -1. Sized for every value a pin slot can hold. */
static void pol_backend_map(const struct policy *np, const struct policy *op, int map[128])
{
	int i, j;

	for (i = 0; i < 128; i++)
		map[i] = -1;
	for (i = 0; i < op->nbackends; i++) {
		for (j = 0; j < np->nbackends; j++)
			if (strcmp(op->backends[i].name, np->backends[j].name) == 0)
				break;
		if (j == np->nbackends)
			for (j = 0; j < np->nbackends; j++)
				if (strcmp(op->backends[i].account, np->backends[j].account) == 0)
					break;
		map[i] = j < np->nbackends ? j : -1;
	}
}

static void pol_merge_pins(struct pol_view *dst, const struct pol_view *src, uint32_t now_s)
{
	int map[128];

	pol_backend_map(dst->p, src->p, map);
	pin_merge(&dst->idem, &src->idem, map, now_s);
	pin_merge(&dst->object, &src->object, map, now_s);
	pin_merge(&dst->account, &src->account, map, now_s);
}

/* State that survives a reload for the names that survive: budgets, affinity, the
 * learned health and the admin's enable/disable. */
static void pol_carry(struct pol_view *nv, const struct pol_view *ov)
{
	int i, j;
	uint64_t dis = atomic_load(&ov->disabled), ndis = 0;

	thr_carry(&nv->thr, nv->p, &ov->thr, ov->p);
	pol_merge_pins(nv, ov, 0);
	for (i = 0; i < nv->p->nbackends; i++)
		for (j = 0; j < ov->p->nbackends; j++) {
			if (strcmp(nv->p->backends[i].name, ov->p->backends[j].name))
				continue;
			atomic_store(&nv->health[i].state, atomic_load(&ov->health[j].state));
			atomic_store(&nv->health[i].p_auth_ppm, atomic_load(&ov->health[j].p_auth_ppm));
			atomic_store(&nv->health[i].latency_us, atomic_load(&ov->health[j].latency_us));
			if (dis & (1ULL << j))
				ndis |= 1ULL << i;
		}
	atomic_store(&nv->disabled, ndis);
}

/* ---- engine and reclamation -------------------------------------------------------- */

struct pol_engine *pol_engine_new(struct policy *p, unsigned nworkers, char *err, size_t errlen)
{
	struct pol_engine *e = calloc(1, sizeof(*e));
	struct pol_view *v;
	unsigned i;

	if (!e || nworkers == 0 || nworkers > 4096 ||
	    !(e->workers = aligned_alloc(64, sizeof(*e->workers) * nworkers))) {
		snprintf(err, errlen, "%s", nworkers && nworkers <= 4096 ? "out of memory" : "bad worker count");
		goto fail;
	}
	memset(e->workers, 0, sizeof(*e->workers) * nworkers);
	e->nworkers = nworkers;
	for (i = 0; i < nworkers; i++)
		atomic_init(&e->workers[i].seen, POL_OFFLINE);
	atomic_init(&e->epoch, 1);
	v = pol_view_new(e, p, err, errlen);
	p = NULL;
	if (!v)
		goto fail;
	atomic_init(&e->view, v);
	return e;
fail:
	pol_free(p);
	if (e)
		free(e->workers);
	free(e);
	return NULL;
}

void pol_engine_free(struct pol_engine *e)
{
	struct pol_view *v, *n;

	if (!e)
		return;
	for (v = e->retired; v; v = n) {
		n = v->next_retired;
		pol_view_free(v);
	}
	pol_view_free(atomic_load(&e->view));
	free(e->workers);
	free(e);
}

/* Frees the retired views no worker can still hold, after a last merge of the pins
 * workers wrote into them between the swap's copy and their next quiescent point. */
static void pol_reclaim(struct pol_engine *e, uint32_t now_s)
{
	struct pol_view **pv = &e->retired, *v, *cur = atomic_load(&e->view);
	uint64_t min = POL_OFFLINE;
	unsigned i;

	for (i = 0; i < e->nworkers; i++) {
		uint64_t s = atomic_load(&e->workers[i].seen);

		if (s < min)
			min = s;
	}
	while ((v = *pv)) {
		if (v->retired_epoch <= min) {
			*pv = v->next_retired;
			pol_merge_pins(cur, v, now_s);
			pol_view_free(v);
		} else {
			pv = &v->next_retired;
		}
	}
}

int pol_engine_swap(struct pol_engine *e, struct policy *p, char *err, size_t errlen)
{
	struct pol_view *nv = pol_view_new(e, p, err, errlen), *old;

	if (!nv)
		return -1;
	old = atomic_load(&e->view);
	pol_carry(nv, old);
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
	if (atomic_load_explicit(&w->seen, memory_order_relaxed) == POL_OFFLINE)
		atomic_store(&w->seen, atomic_load(&e->epoch));
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
	pol_reclaim(e, (uint32_t)(now_us / 1000000));
}

static inline void pol_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
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
	const char *s = path.ptr, *end = path.ptr + path.len, *id, *q;

	if (!s || path.len < 5 || memcmp(s, "/v1/", 4))
		return NULL;
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

/* Decision id: 27 lower-case hex digits, fixed positions (DID_*), the last two a check
 * byte so that what HAProxy echoes back can be told from garbage. */
struct pol_did {
	unsigned gen, backend, cls, region, cur, funding, flags, worker;
	uint64_t seq;
};

#define DID_LEN 27
static const unsigned did_width[] = { 4, 2, 1, 2, 2, 1, 1, 2, 10 }; /* then 2 check digits */

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
	uint64_t f[9] = { d->gen, d->backend, d->cls, d->region, d->cur, d->funding, d->flags, d->worker, d->seq };
	char *o = out->decision;
	unsigned i;

	for (i = 0; i < 9; i++) {
		pol_hex(o, f[i], did_width[i]);
		o += did_width[i];
	}
	pol_hex(o, pol_did_check(out->decision, DID_LEN - 2), 2);
	out->decision[DID_LEN] = 0;
	out->decision_len = DID_LEN;
}

static bool pol_did_parse(struct pay_str s, struct pol_did *d)
{
	uint64_t f[10];
	unsigned i, k, at = 0;

	if (!s.ptr || s.len != DID_LEN)
		return false;
	for (i = 0; i < 10; i++) {
		unsigned w = i < 9 ? did_width[i] : 2;

		f[i] = 0;
		for (k = 0; k < w; k++, at++) {
			char c = s.ptr[at];
			int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

			if (x < 0)
				return false;
			f[i] = f[i] << 4 | (unsigned)x;
		}
	}
	if (f[9] != pol_did_check(s.ptr, DID_LEN - 2))
		return false;
	*d = (struct pol_did){ (unsigned)f[0], (unsigned)f[1], (unsigned)f[2], (unsigned)f[3], (unsigned)f[4],
	                       (unsigned)f[5], (unsigned)f[6], (unsigned)f[7], f[8] };
	return true;
}

/* ---- the decision ------------------------------------------------------------------- */

/* Everything decide works out about one request. */
struct pol_rq {
	int cls, cur, endpoint;
	unsigned region, funding;
	double amount;
	uint64_t idem_h, acct_h;
	uint64_t restrict_to;   /* Connect platforms for an unknown connected account */
	uint64_t pinned;        /* backends of the pinned account, 0 = not pinned */
	const char *pin_tok;
	bool idem_hit, learn_account;
};

static int pol_connect_of(const struct pol_view *v, struct pay_str acct, uint64_t h)
{
	const struct policy *p = v->p;
	int i;

	for (i = 0; i < p->nconnect; i++)
		if (v->connect_hash[i] == h && pstr_eq(acct, p->connect[i].account))
			return i;
	return -1;
}

/* Step 2: pin what must not move. A pin names a backend; the request may go to any
 * backend of the same account. */
static void pol_pin(const struct pol_view *v, const struct pay_request *rq, uint32_t now_s, struct pol_rq *r)
{
	const struct policy *p = v->p;
	const char *obj;
	uint32_t olen;
	int b = -1, c;

	r->restrict_to = v->all;
	if (rq->account.ptr)
		r->acct_h = pstr_hash(rq->account.ptr, rq->account.len, SEED_ACCOUNT);
	if (rq->idem.ptr) {
		/* (account, key) is the identity: the same key on two accounts is two charges. */
		r->idem_h = pstr_hash(rq->idem.ptr, rq->idem.len, SEED_IDEM ^ r->acct_h);
		if ((b = pin_get(&v->idem, r->idem_h, now_s)) >= 0 && b < p->nbackends) {
			r->pin_tok = "pin:idem";
			r->idem_hit = true;
			goto pinned;
		}
	}
	if ((obj = pol_object_of(p, rq->path, &olen)) &&
	    (b = pin_get(&v->object, pstr_hash(obj, olen, SEED_OBJECT), now_s)) >= 0 && b < p->nbackends) {
		r->pin_tok = "pin:object";
		goto pinned;
	}
	if (!rq->account.ptr)
		return;
	if ((c = pol_connect_of(v, rq->account, r->acct_h)) >= 0) {
		r->pinned = p->connect[c].backends;
		r->pin_tok = "pin:connect";
		return;
	}
	if ((b = pin_get(&v->account, r->acct_h, now_s)) >= 0 && b < p->nbackends) {
		r->pin_tok = "pin:account";
		goto pinned;
	}
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

/* Steps 3 and 6: the candidates, relaxing filters from the least to the most serious
 * when nothing is left (health, then the admin's and the file's enable); a pinned
 * request never leaves its account. *panic says a filter had to be dropped. */
static uint64_t pol_filter(struct pol_view *v, const struct pol_rq *r, bool *panic, bool *down)
{
	const struct policy *p = v->p;
	uint64_t usable = v->enabled & ~atomic_load_explicit(&v->disabled, memory_order_relaxed);
	uint64_t healthy = 0, fit, c;
	int i;

	for (i = 0; i < p->nbackends; i++)
		if (atomic_load_explicit(&v->health[i].state, memory_order_relaxed) != SCORE_DOWN)
			healthy |= 1ULL << i;
	fit = r->cur == POL_CUR_NONE ? v->all : r->cur == POL_CUR_UNKNOWN ? 0 : v->by_currency[r->cur];
	fit &= pol_compliance(p, r);
	*panic = *down = false;
	if (r->pinned) {
		if ((c = r->pinned & usable & healthy & fit))
			return c;
		*down = true;
		if ((c = r->pinned & usable & fit) || (c = r->pinned & fit) || (c = r->pinned & usable))
			return c;
		return r->pinned;
	}
	fit &= r->restrict_to;
	if ((c = fit & usable & healthy))
		return c;
	*panic = true;
	if ((c = fit & usable) || (c = fit))
		return c;
	return 1ULL << p->default_backend;
}

/* Step 4: scores of the candidates into s[]. */
static void pol_score(struct pol_view *v, const struct pol_rq *r, uint64_t cand, uint64_t now_ns, double *s)
{
	const struct policy *p = v->p;

	while (cand) {
		int i = __builtin_ctzll(cand);
		const struct pol_backend *b = &p->backends[i];
		struct score_in in;

		cand &= cand - 1;
		in.amount = r->amount;
		in.fee = cost_fee(&p->fees[b->fee], b, r->amount, r->region, r->funding, r->cur);
		in.p_auth = score_p_auth(b, &v->health[i], r->region);
		in.latency_ms = score_latency(b, &v->health[i]);
		in.load = thr_load(thr_account(&v->thr, b->account_idx), now_ns);
		s[i] = score_value(p, &in);
	}
}

/* Books one request on backend b's account budget and, if the request has one, its
 * endpoint budget; same return as thr_take, and *which names the budget that refused. */
static int64_t pol_take(struct pol_view *v, const struct pol_rq *r, int b, uint64_t now_ns, double share,
                        uint64_t max_wait_ns, const char **which)
{
	int a = v->p->backends[b].account_idx;
	int64_t wa, we;

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

void pol_decide(struct pol_engine *e, unsigned worker, const struct pay_request *rq,
                uint64_t now_us, struct pay_verdict *out)
{
	struct pol_worker *w = &e->workers[worker];
	struct pol_view *v = pol_enter(e, w);
	const struct policy *p = v->p;
	const struct pol_class *cl;
	uint32_t now_s = (uint32_t)(now_us / 1000000);
	uint64_t now_ns = now_us * 1000, cand, left;
	struct pol_rq r = { 0 };
	double s[POL_MAX_BACKENDS], share;
	const char *which = NULL;
	bool panic, down;
	int64_t wait = 0;
	int best, b;

	out->reason_len = 0;
	out->reason[0] = 0;
	out->retry_after_s = 0;

	/* 1. classify */
	r.cls = cls_classify(p, rq);
	cl = &p->classes[r.cls];
	r.region = pol_region_of(p, rq->card_country);
	r.funding = pol_funding_of(rq->card_funding);
	r.cur = pol_currency_of(p, rq->currency);
	r.amount = rq->has_amount && rq->amount > 0 ? (double)rq->amount : p->score.nominal_amount;
	r.endpoint = thr_endpoint_of(p, rq);

	/* 2. pin, 3. filter (6. degrade) */
	pol_pin(v, rq, now_s, &r);
	cand = pol_filter(v, &r, &panic, &down);
	if (r.pin_tok)
		pol_reason(out, r.pin_tok, NULL);
	if (down)
		pol_reason(out, "pin:down", NULL);
	if (panic)
		pol_reason(out, "panic", NULL);

	/* 4. score */
	pol_score(v, &r, cand, now_ns, s);
	best = score_best(s, cand);
	if (!r.pinned && !panic)
		pol_reason(out, (cand & (cand - 1)) ? "cost" : "only", NULL);

	/* 5. throttle: the best candidate within budget, else queue or refuse on the best. */
	share = 1.0 - cl->reserved_above;
	for (left = cand, b = best; b >= 0; left &= ~(1ULL << b), b = score_best(s, left))
		if (pol_take(v, &r, b, now_ns, share, 0, &which) == 0)
			break;
	if (b >= 0 && b != best) {
		pol_reason(out, "spill", NULL);
		pol_count(&w->c.spill);
	}
	if (b < 0) {
		b = best;
		wait = pol_take(v, &r, b, now_ns, share, (uint64_t)cl->queue_ms * 1000000, &which);
		pol_reason(out, "budget", which);
	}

	/* Remember what must stick: a retry of this key, and the connected account's home. */
	if (wait >= 0) {
		if (rq->idem.ptr && !r.idem_hit)
			pin_put(&v->idem, r.idem_h, (unsigned)b, now_s);
		if (r.learn_account)
			pin_put(&v->account, r.acct_h, (unsigned)b, now_s);
	}

	out->backend = p->backends[b].name;
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
	pol_did_write(out, &(struct pol_did){ v->gen, (unsigned)b, (unsigned)r.cls, r.region,
	                                      r.cur < 0 ? 0xff : (unsigned)r.cur, r.funding, r.idem_hit,
	                                      worker & 0xff, ++w->seq });
	pol_count(&w->c.decisions);
	if (r.pinned)
		pol_count(&w->c.pinned);
	if (down)
		pol_count(&w->c.pin_down);
	if (panic)
		pol_count(&w->c.panic);
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

void pol_observe(struct pol_engine *e, unsigned worker, const struct pay_outcome *o, uint64_t now_us)
{
	struct pol_worker *w = &e->workers[worker];
	struct pol_view *v = pol_enter(e, w);
	const struct policy *p = v->p;
	struct pol_did d;
	bool did = pol_did_parse(o->decision, &d);
	int used;

	pol_count(&w->c.observed);
	/* The backend really used (be_name) wins over the advice: HAProxy may have fallen
	 * back. The decision id only counts if it comes from the view in force. */
	used = pol_backend_by_name(p, o->backend);
	if (used < 0 && did && d.gen == v->gen && d.backend < (unsigned)p->nbackends)
		used = (int)d.backend;
	if (used < 0 || (o->decision.ptr && !did)) {
		pol_count(&w->c.observe_bad);
		if (used < 0)
			return;
	}
	/* An object created on an account lives there: its later operations are pinned. */
	if (o->status >= 200 && o->status < 300 && o->object.ptr &&
	    pol_is_object(p, o->object.ptr, o->object.len)) {
		pin_put(&v->object, pstr_hash(o->object.ptr, o->object.len, SEED_OBJECT), (unsigned)used,
		        (uint32_t)(now_us / 1000000));
		pol_count(&w->c.learned_objects);
	}
	/* The learning loop (breakers, success-rate posteriors) hooks in here with
	 * (used, d.cls, d.region, d.cur, d.funding) as the segment. */
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
	out->state = (int)atomic_load(&v->health[i].state);
	out->p_auth = score_p_auth(b, &v->health[i], POL_REGION_UNKNOWN);
	out->latency_ms = score_latency(b, &v->health[i]);
	out->budget_load = thr_load(thr_account(&v->thr, b->account_idx), now_us * 1000);
	return 0;
}

int pol_engine_set_enabled(struct pol_engine *e, const char *backend, bool enabled)
{
	struct pol_view *v = atomic_load(&e->view);
	int i = pol_backend_by_name(v->p, (struct pay_str){ backend, (uint32_t)strlen(backend) });

	if (i < 0)
		return -1;
	if (enabled)
		atomic_fetch_and(&v->disabled, ~(1ULL << i));
	else
		atomic_fetch_or(&v->disabled, 1ULL << i);
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
		out->load = thr_load(thr_account(&v->thr, (int)i), now_us * 1000);
	} else {
		unsigned a = (i - na) / ne, ep = (i - na) % ne;

		bu = &p->thr.endpoints[ep].budget;
		out->account = p->accounts[a].id;
		out->endpoint = p->thr.endpoints[ep].name;
		out->load = thr_load(thr_endpoint(&v->thr, (int)a, (int)ep), now_us * 1000);
	}
	out->rate = bu->rate;
	out->burst = bu->burst;
	return 0;
}

void pol_engine_stats(struct pol_engine *e, uint64_t now_us, struct pol_stats *out)
{
	struct pol_view *v = atomic_load(&e->view);
	const struct pin_table *t[3] = { &v->idem, &v->object, &v->account };
	uint32_t now_s = (uint32_t)(now_us / 1000000);
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < e->nworkers; i++) {
		const struct pol_counters *c = &e->workers[i].c;

		out->decisions += atomic_load_explicit(&c->decisions, memory_order_relaxed);
		out->allow += atomic_load_explicit(&c->allow, memory_order_relaxed);
		out->queue += atomic_load_explicit(&c->queue, memory_order_relaxed);
		out->reject += atomic_load_explicit(&c->reject, memory_order_relaxed);
		out->panic += atomic_load_explicit(&c->panic, memory_order_relaxed);
		out->pinned += atomic_load_explicit(&c->pinned, memory_order_relaxed);
		out->pin_down += atomic_load_explicit(&c->pin_down, memory_order_relaxed);
		out->spill += atomic_load_explicit(&c->spill, memory_order_relaxed);
		out->observed += atomic_load_explicit(&c->observed, memory_order_relaxed);
		out->observe_bad += atomic_load_explicit(&c->observe_bad, memory_order_relaxed);
		out->learned_objects += atomic_load_explicit(&c->learned_objects, memory_order_relaxed);
	}
	for (i = 0; i < 3; i++) {
		out->pin_live[i] = pin_live(t[i], now_s);
		out->pin_stored[i] = atomic_load(&t[i]->stored);
		out->pin_evicted[i] = atomic_load(&t[i]->evicted);
	}
	out->reloads = e->reloads;
}
