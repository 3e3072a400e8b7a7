/* fleet-claim.c: ACKs held until the fleet's claim of their idempotency key answers
 * (fleet-claim.h). The worker side must not block, lock or allocate: it parks the ACK
 * in its own table and talks to the control thread through two wait-free rings. The
 * control side runs on the fleet's loop and never waits either.
 *
 * The claim is the fleet's publishing script with NX (fleet.c): the first node to write
 * the key wins it and publishes it on the channel; a node that finds its own value there
 * (its journal's publication of the same pin came first) has won too, so the pin is
 * published once whichever of the two is sent first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "conn.h"
#include "fleet-claim.h"
#include "fleet.h"
#include "fleetmsg.h"

static inline uint64_t claim_load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline void claim_add(_Atomic uint64_t *c, uint64_t n) /* single writer */
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* ---- the rings (single producer, single consumer) ------------------------------------- */

static bool ring_full(struct claim_ring_idx *r)
{
	return atomic_load_explicit(&r->head, memory_order_relaxed) -
	       atomic_load_explicit(&r->tail, memory_order_acquire) >= CLAIM_RING;
}

/* ---- worker side ------------------------------------------------------------------------ */

static void claim_on_wake(struct ev_loop *loop, ev_async *a, int revents);
static void claim_on_timer(struct ev_loop *loop, ev_timer *t, int revents);

void claim_worker_start(struct claim_worker *cw, struct ev_loop *loop, claim_kick_fn *kick, void *arg)
{
	cw->loop = loop;
	cw->kick = kick;
	cw->kick_arg = arg;
	ev_async_init(&cw->wake, claim_on_wake);
	ev_async_start(loop, &cw->wake);
	ev_timer_init(&cw->timer, claim_on_timer, 0., 0.);
}

unsigned claim_held_count(const struct claim_worker *cw)
{
	return cw->nheld;
}

static void claim_wait_add(struct claim_worker *cw, uint64_t us)
{
	uint64_t bin = us / CLAIM_WAIT_BIN_US;

	claim_add(&cw->wait_bin[bin < CLAIM_WAIT_BINS ? bin : CLAIM_WAIT_BINS - 1], 1);
	if (us > claim_load(&cw->wait_max_us))
		atomic_store_explicit(&cw->wait_max_us, us, memory_order_relaxed);
}

/* The tail past the entries already sent; the timer at the oldest one's deadline. */
static void claim_arm(struct claim_worker *cw)
{
	double after;
	uint64_t now;

	while (cw->h_tail != cw->h_head && !cw->held[cw->h_tail % CLAIM_HELD].c)
		cw->h_tail++;
	ev_timer_stop(cw->loop, &cw->timer);
	if (cw->nheld == 0)
		return;
	now = clock_mono_us();
	after = 0.0005; /* an answered ACK waits for room in `out` */
	if (!cw->held[cw->h_tail % CLAIM_HELD].ready) {
		uint64_t due = cw->held[cw->h_tail % CLAIM_HELD].since_us + cw->fc->timeout_us;

		after = due > now ? (double)(due - now) / 1e6 : 0.;
	}
	ev_timer_set(&cw->timer, after, 0.);
	ev_timer_start(cw->loop, &cw->timer);
}

/* Writes e's ACK into its connection and frees e; or, when `out` has no room, keeps it
 * ready for the timer. kick: flush the connection now. */
static void claim_send(struct claim_worker *cw, struct claim_held *e, uint64_t now_us, bool kick)
{
	struct conn *c = e->c;

	if (conn_ack(c, e->stream_id, e->frame_id, &e->v) < 0 && c->state == CONN_ST_READY) {
		e->ready = true;
		return;
	}
	claim_wait_add(cw, now_us > e->since_us ? now_us - e->since_us : 0);
	e->c = NULL;
	e->ready = false;
	cw->nheld--;
	if (kick)
		cw->kick(cw->kick_arg, c); /* may close c: e is free already */
}

int claim_hold(struct claim_worker *cw, struct conn *c, uint64_t stream_id, uint64_t frame_id,
               const struct pay_verdict *v, uint64_t now_us)
{
	struct claim_held *e;
	struct fleet_claim *fc = cw->fc;
	uint32_t h;

	if (!atomic_load_explicit(&fc->live, memory_order_acquire)) {
		claim_add(&cw->skipped, 1);
		return -1;
	}
	if (cw->h_head - cw->h_tail >= CLAIM_HELD || ring_full(&cw->rq_i)) {
		claim_add(&cw->held_full, 1);
		return -1;
	}
	e = &cw->held[cw->h_head % CLAIM_HELD];
	e->c = c;
	e->stream_id = stream_id;
	e->frame_id = frame_id;
	e->since_us = now_us;
	e->seq = cw->h_head;
	e->ready = false;
	e->v = *v;
	snprintf(e->backend, sizeof(e->backend), "%s", v->backend);
	snprintf(e->class_name, sizeof(e->class_name), "%s", v->class_name);
	e->v.backend = e->backend;
	e->v.class_name = e->class_name;
	h = atomic_load_explicit(&cw->rq_i.head, memory_order_relaxed);
	cw->rq[h % CLAIM_RING] = (struct claim_req){ v->claim_key, cw->h_head, v->claim_id };
	atomic_store_explicit(&cw->rq_i.head, h + 1, memory_order_release);
	cw->h_head++;
	cw->nheld++;
	claim_add(&cw->held_n, 1);
	ev_async_send(fc->loop, &fc->wake);
	if (!ev_is_active(&cw->timer))
		claim_arm(cw);
	return 0;
}

/* The fleet's account differs from the decision's: the ACK names the fleet's backend
 * (or refuses, as the engine does for a pin whose account this policy lacks). */
static void claim_reroute(struct claim_held *e, const struct claim_rep *r)
{
	static const char tok[] = " pin:fleet";

	if (r->result == CLAIM_GONE) {
		e->v.verdict = PAY_REJECT;
		e->v.retry_after_s = 3600;
		snprintf(e->v.reason, sizeof(e->v.reason), "pin:gone");
	} else {
		snprintf(e->backend, sizeof(e->backend), "%s", r->backend);
		if (e->v.reason_len + sizeof(tok) - 1 <= PAY_REASON_MAX)
			memcpy(e->v.reason + e->v.reason_len, tok, sizeof(tok));
	}
	e->v.reason_len = (uint8_t)strlen(e->v.reason);
}

static void claim_on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct claim_worker *cw = (struct claim_worker *)((char *)a - offsetof(struct claim_worker, wake));
	uint32_t t = atomic_load_explicit(&cw->rp_i.tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&cw->rp_i.head, memory_order_acquire);
	uint64_t now = clock_mono_us();

	for (; t != h; t++) {
		const struct claim_rep r = cw->rp[t % CLAIM_RING];
		struct claim_held *e = &cw->held[r.seq % CLAIM_HELD];

		/* store the tail first: the control thread may reuse the entry once it is read */
		atomic_store_explicit(&cw->rp_i.tail, t + 1, memory_order_release);
		if (!e->c || e->seq != r.seq) {
			claim_add(&cw->late, 1); /* sent at its deadline already: the pin was corrected */
			continue;
		}
		if (r.result == CLAIM_LOST || r.result == CLAIM_GONE) {
			claim_reroute(e, &r);
			claim_add(&cw->rerouted, 1);
		} else if (r.result == CLAIM_UNKNOWN && !e->ready) {
			claim_add(&cw->unconfirmed, 1);
		}
		if (!e->ready) /* else it waits for room in `out` (the timer), rerouted or not */
			claim_send(cw, e, now, true);
	}
	claim_arm(cw);
}

static void claim_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct claim_worker *cw = (struct claim_worker *)((char *)t - offsetof(struct claim_worker, timer));
	uint64_t now = clock_mono_us();
	uint32_t s;

	for (s = cw->h_tail; s != cw->h_head; s++) {
		struct claim_held *e = &cw->held[s % CLAIM_HELD];

		if (!e->c)
			continue;
		if (e->ready) {
			claim_send(cw, e, now, true);
			continue;
		}
		if (now - e->since_us < cw->fc->timeout_us)
			break; /* held in time order: the rest are younger */
		claim_add(&cw->unconfirmed, 1);
		claim_send(cw, e, now, true);
	}
	claim_arm(cw);
}

void claim_conn_flush(struct claim_worker *cw, struct conn *c)
{
	uint64_t now = clock_mono_us();
	uint32_t s;

	if (!cw || cw->nheld == 0)
		return;
	for (s = cw->h_tail; s != cw->h_head; s++) {
		struct claim_held *e = &cw->held[s % CLAIM_HELD];

		if (e->c != c)
			continue;
		claim_add(&cw->unconfirmed, 1);
		claim_send(cw, e, now, false);
		if (e->c) { /* no room: the goodbye goes without it */
			e->c = NULL;
			cw->nheld--;
		}
	}
}

void claim_conn_gone(struct claim_worker *cw, struct conn *c)
{
	uint32_t s;

	if (!cw || cw->nheld == 0)
		return;
	for (s = cw->h_tail; s != cw->h_head; s++) {
		struct claim_held *e = &cw->held[s % CLAIM_HELD];

		if (e->c == c) {
			e->c = NULL;
			cw->nheld--;
		}
	}
	claim_arm(cw);
}

void claim_release_all(struct claim_worker *cw)
{
	uint64_t now = clock_mono_us();
	uint32_t s;

	if (!cw || !cw->loop)
		return;
	for (s = cw->h_tail; s != cw->h_head; s++) {
		struct claim_held *e = &cw->held[s % CLAIM_HELD];

		if (!e->c)
			continue;
		claim_add(&cw->unconfirmed, 1);
		claim_send(cw, e, now, true);
		if (e->c) {
			e->c = NULL;
			cw->nheld--;
		}
	}
	claim_arm(cw);
}

/* ---- control thread --------------------------------------------------------------------- */

struct fleet_claim *fleet_claim_new(struct fleet *f, struct pol_engine *e, unsigned nworkers, int timeout_ms,
                                    char *err, size_t errlen)
{
	struct fleet_claim *fc = calloc(1, sizeof(*fc));

	if (!fc)
		goto fail;
	fc->f = f;
	fc->e = e;
	fc->nworkers = nworkers;
	fc->timeout_us = (uint64_t)timeout_ms * 1000;
	fc->w = calloc(nworkers, sizeof(*fc->w));
	fc->batch = calloc(CLAIM_BATCHES, sizeof(*fc->batch));
	if (!fc->w || !fc->batch)
		goto fail;
	for (unsigned i = 0; i < nworkers; i++)
		fc->w[i].fc = fc;
	f->claim = fc;
	return fc;
fail:
	snprintf(err, errlen, "fleet: out of memory for the claims' held ACKs");
	fleet_claim_free(fc);
	return NULL;
}

void fleet_claim_free(struct fleet_claim *fc)
{
	if (!fc)
		return;
	free(fc->w);
	free(fc->batch);
	free(fc);
}

struct claim_worker *fleet_claim_worker(struct fleet_claim *fc, unsigned idx)
{
	return fc && idx < fc->nworkers ? &fc->w[idx] : NULL;
}

static void fleet_claim_on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	fleet_claim_drain(a->data);
}

void fleet_claim_start(struct fleet_claim *fc, struct ev_loop *loop)
{
	fc->loop = loop;
	ev_async_init(&fc->wake, fleet_claim_on_wake);
	fc->wake.data = fc;
	ev_async_start(loop, &fc->wake);
}

void fleet_claim_stop(struct fleet_claim *fc)
{
	atomic_store(&fc->live, false);
	/* the workers have stopped and their loops are gone: answers that still come (the
	 * connection's close runs every pending callback) wake nobody */
	for (unsigned i = 0; i < fc->nworkers; i++)
		fc->w[i].loop = NULL;
	if (fc->loop)
		ev_async_stop(fc->loop, &fc->wake);
}

void fleet_claim_set_live(struct fleet_claim *fc, bool live)
{
	atomic_store_explicit(&fc->live, live, memory_order_release);
	if (!live && fc->loop)
		fleet_claim_drain(fc); /* what the rings hold is answered at once */
}

/* An answer for worker wi's held ACK seq; a full reply ring drops it (the ACK then goes
 * at its deadline). Returns whether the worker must be woken. */
static bool fleet_claim_reply(struct fleet_claim *fc, unsigned wi, uint32_t seq, enum claim_result res,
                              const char *backend)
{
	struct claim_worker *cw = &fc->w[wi];
	uint32_t h = atomic_load_explicit(&cw->rp_i.head, memory_order_relaxed);

	if (ring_full(&cw->rp_i)) {
		fc->replies_full++;
		return false;
	}
	cw->rp[h % CLAIM_RING] = (struct claim_rep){ backend, seq, (uint8_t)res };
	atomic_store_explicit(&cw->rp_i.head, h + 1, memory_order_release);
	return true;
}

static void fleet_claim_wake(struct fleet_claim *fc, const bool *wake)
{
	for (unsigned i = 0; i < fc->nworkers; i++)
		if (wake[i] && fc->w[i].loop)
			ev_async_send(fc->w[i].loop, &fc->w[i].wake);
}

/* What one claim's answer means for the held ACK; applies a lost claim to the local pin
 * (that holds whether or not the ACK is still held: a late answer corrects the pin). */
static enum claim_result fleet_claim_result(struct fleet_claim *fc, const struct claim_batch *cb, size_t i,
                                            const redisReply *e, const char **backend)
{
	char be[FLEET_NAME_MAX], acct[FLEET_NAME_MAX];
	const char *mine_be, *mine_acct, *acct_now;
	int rc, id;

	if (e->type == REDIS_REPLY_INTEGER)
		return CLAIM_WON;
	if (e->type != REDIS_REPLY_STRING || fleet_value_parse(e->str, e->len, be, acct) < 0 ||
	    pol_engine_pin_names(fc->e, cb->id[i], &mine_be, &mine_acct) < 0) {
		fc->f->st.pins_failed++;
		return CLAIM_UNKNOWN;
	}
	if (strcmp(acct, mine_acct) == 0)
		return CLAIM_WON; /* another backend of the same account: no second charge */
	rc = pol_engine_pin_apply(fc->e, POL_PIN_IDEM, cb->b.key[i], be, acct);
	if (rc < 0) {
		fc->f->st.pins_failed++;
		return CLAIM_UNKNOWN;
	}
	fc->f->st.pins_conflicts++;
	fc->f->st.pins_moved += rc == POL_PIN_MOVED;
	if (rc == POL_PIN_GONE)
		return CLAIM_GONE;
	id = pol_engine_pin_id(fc->e, POL_PIN_IDEM, cb->b.key[i]);
	if (id < 0 || pol_engine_pin_names(fc->e, (unsigned)id, backend, &acct_now) < 0 || strcmp(acct_now, acct))
		return CLAIM_UNKNOWN;
	return CLAIM_LOST;
}

static void fleet_claim_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct claim_batch *cb = priv;
	struct fleet_claim *fc = cb->fc;
	const redisReply *r = reply;
	bool wake[fc->nworkers];
	size_t i;

	fleet_command_done(fc->f);
	memset(wake, 0, sizeof(wake));
	if (fleet_reply_ok(fc->f, r) && (r->type != REDIS_REPLY_ARRAY || r->elements != cb->b.n)) {
		fc->f->st.redis_errors++;
		r = NULL;
	} else if (r && r->type != REDIS_REPLY_ARRAY) {
		r = NULL; /* an error reply, counted */
	}
	for (i = 0; i < cb->b.n; i++) {
		const char *be = NULL;
		enum claim_result res = r ? fleet_claim_result(fc, cb, i, r->element[i], &be) : CLAIM_UNKNOWN;

		fc->won += res == CLAIM_WON;
		fc->lost += res == CLAIM_LOST || res == CLAIM_GONE;
		fc->failed += res == CLAIM_UNKNOWN;
		wake[cb->worker[i]] |= fleet_claim_reply(fc, cb->worker[i], cb->seq[i], res, be);
	}
	cb->busy = false;
	cb->b.n = 0;
	while (fc->b_tail != fc->b_head && !fc->batch[fc->b_tail % CLAIM_BATCHES].busy)
		fc->b_tail++;
	fleet_claim_wake(fc, wake);
	if (fc->loop && atomic_load(&fc->live))
		fleet_claim_drain(fc); /* what waited for a batch */
}

/* Sends the batch being built. Returns 0, or -1 (not sent: its claims are answered
 * CLAIM_UNKNOWN, the ACKs go as decided). */
static int fleet_claim_flush(struct fleet_claim *fc, bool *wake)
{
	struct claim_batch *cb = &fc->batch[fc->b_head % CLAIM_BATCHES];
	int argc;

	if (cb->b.n == 0)
		return 0;
	argc = fleet_batch_argv(fc->f, &cb->b, fc->argv, fc->argvlen);
	cb->fc = fc;
	if (fleet_command(fc->f, fleet_claim_on_reply, cb, argc, fc->argv, fc->argvlen) < 0) {
		for (unsigned i = 0; i < cb->b.n; i++)
			wake[cb->worker[i]] |= fleet_claim_reply(fc, cb->worker[i], cb->seq[i], CLAIM_UNKNOWN, NULL);
		fc->failed += cb->b.n;
		cb->b.n = 0;
		return -1;
	}
	fc->sent += cb->b.n;
	cb->busy = true;
	fc->b_head++;
	fc->batch[fc->b_head % CLAIM_BATCHES].b.n = 0;
	return 0;
}

void fleet_claim_drain(struct fleet_claim *fc)
{
	bool live = atomic_load_explicit(&fc->live, memory_order_acquire) && fleet_live(fc->f);
	bool wake[fc->nworkers];
	uint64_t wall = clock_wall_us();
	uint32_t ttl_ms = pol_engine_pin_ttl(fc->e, POL_PIN_IDEM) * 1000u;

	memset(wake, 0, sizeof(wake));
	for (unsigned wi = 0; wi < fc->nworkers; wi++) {
		struct claim_worker *cw = &fc->w[wi];
		uint32_t t = atomic_load_explicit(&cw->rq_i.tail, memory_order_relaxed);
		uint32_t h = atomic_load_explicit(&cw->rq_i.head, memory_order_acquire);

		for (; t != h; t++) {
			const struct claim_req q = cw->rq[t % CLAIM_RING];
			struct claim_batch *cb = &fc->batch[fc->b_head % CLAIM_BATCHES];
			const char *be, *acct;

			if (live && (cb->busy || fc->b_head - fc->b_tail >= CLAIM_BATCHES - 1))
				break; /* every batch in flight: the next reply drains again */
			if (!live || pol_engine_pin_names(fc->e, q.id, &be, &acct) < 0) {
				wake[wi] |= fleet_claim_reply(fc, wi, q.seq, CLAIM_UNKNOWN, NULL);
				fc->failed++;
				continue;
			}
			fleet_batch_add(fc->f, &cb->b, POL_PIN_IDEM, q.key, be, acct, ttl_ms ? ttl_ms : 1, false, wall);
			cb->worker[cb->b.n - 1] = (uint16_t)wi;
			cb->seq[cb->b.n - 1] = q.seq;
			cb->id[cb->b.n - 1] = q.id;
			if (cb->b.n == CLAIM_BATCH)
				fleet_claim_flush(fc, wake);
		}
		atomic_store_explicit(&cw->rq_i.tail, t, memory_order_release);
	}
	fleet_claim_flush(fc, wake);
	fleet_claim_wake(fc, wake);
}

uint64_t claim_wait_pct(const uint64_t *bins, uint64_t max_us, double q)
{
	uint64_t n = 0, sum = 0;
	unsigned i;

	for (i = 0; i < CLAIM_WAIT_BINS; i++)
		n += bins[i];
	if (n == 0)
		return 0;
	for (i = 0; i < CLAIM_WAIT_BINS; i++) {
		sum += bins[i];
		if ((double)sum >= q * (double)n)
			return i == CLAIM_WAIT_BINS - 1 ? max_us : (uint64_t)(i + 1) * CLAIM_WAIT_BIN_US;
	}
	return max_us;
}

void fleet_claim_stats(struct fleet_claim *fc, struct fleet_stats *st)
{
	uint64_t *bins = fc->sum_bin, max = 0;

	memset(fc->sum_bin, 0, sizeof(fc->sum_bin));
	st->claims_sent = fc->sent;
	st->claims_won = fc->won;
	st->claims_lost = fc->lost;
	st->claims_unconfirmed = st->claims_skipped = st->claims_held_full = 0;
	for (unsigned i = 0; i < fc->nworkers; i++) {
		const struct claim_worker *cw = &fc->w[i];

		st->claims_unconfirmed += claim_load(&cw->unconfirmed);
		st->claims_skipped += claim_load(&cw->skipped);
		st->claims_held_full += claim_load(&cw->held_full);
		for (unsigned b = 0; b < CLAIM_WAIT_BINS; b++)
			bins[b] += claim_load(&cw->wait_bin[b]);
		if (claim_load(&cw->wait_max_us) > max)
			max = claim_load(&cw->wait_max_us);
	}
	st->claim_wait_p50_us = claim_wait_pct(bins, max, 0.50);
	st->claim_wait_p99_us = claim_wait_pct(bins, max, 0.99);
}
