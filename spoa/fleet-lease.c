/* fleet-lease.c: budgets shared by a fleet, leased in slices from global token buckets in
 * Redis (on the control thread's loop). Must never block the loop or touch a worker's
 * path: the workers take leased tokens from the engine's lease cells (engine-lease.h),
 * this module fills and empties those cells.
 *
 * One global bucket per account and per account × endpoint budget (P = fleet.prefix):
 *   P:budget:<account>[:<endpoint>]   hash {tok, ts}: tokens, Redis's TIME of the last
 *                                     refill (µs); PEXPIRE a full refill plus 1 s
 * refilled by a server-side script from Redis's own clock at the policy's rate (the nodes'
 * clocks need not agree), capacity = burst. Every fleet.lease_ms the node asks, in one
 * script call for every budget with demand, for the tokens its recent demand needs over
 * the next fleet.lease_ahead_ms, less what it holds. When the bucket is short a node gets
 * at most its fair share (what is there / nodes, at least one token). The top class's
 * reserve holds fleet-wide: a request for the other classes leaves reserve × burst in the
 * bucket, which only the top class's request (its own pool here) may take.
 *
 * Tokens unused expire: at each lease a pool above what the recent demand needs for
 * lease_ahead_ms is cut to it, so no node hoards a budget it no longer uses (the demand,
 * smoothed, halves each lease when the requests stop). The tokens cut while the bucket
 * is neither short nor low (half its burst left) are given back to the global bucket with
 * the next lease (capacity still burst), so a node that leased ahead for a class that
 * then came rarely does not waste the fleet's budget. Not while it is short or low: the
 * fleet is at its budget, a token given back would be leased again at once while every
 * node's pool holds its own, and the pools and the bucket together would hold more than
 * one burst (over-admission). A give-back whose reply is lost is not sent again (a token
 * lost, never one minted twice).
 *
 * Redis away (not connected, or the last lease unanswered for fleet.timeout_ms): each
 * budget refills here at rate / nodes (last known node count), capacity burst / nodes,
 * logged once (`fleet_lease_fallback`), gauge lease_fallback = 1; leases resume with the
 * connection (`fleet_lease_resumed`). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "engine-lease.h"
#include "fleet.h"
#include "log.h"

#define FLEET_LEASE_MAX  POL_LEASE_MAX_CELLS
#define FLEET_LEASE_ARGS 6 /* per budget: rate, burst, reserve, want, want for the top class,
                            * tokens given back */

/* KEYS the buckets; ARGV[1] the nodes, then per bucket its FLEET_LEASE_ARGS. Returns per
 * bucket {granted, granted to the top class, whole tokens left}. */
static const char fleet_lua_lease[] =
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
	"local n = math.max(1, tonumber(ARGV[1])) "
	"local function give(w, avail) "
	"  if w <= 0 or avail < 1 then return 0 end "
	"  local g = math.min(w, math.floor(avail)) "
	"  if g < w then g = math.min(g, math.max(1, math.floor(avail / n))) end "
	"  return g "
	"end "
	"local out = {} "
	"for i = 1, #KEYS do "
	"  local a = 1 + (i - 1) * 6 "
	"  local rate, burst, res = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]) "
	"  local b = redis.call('HMGET', KEYS[i], 'tok', 'ts') "
	"  local tok, ts = tonumber(b[1]), tonumber(b[2]) "
	"  if not tok or not ts then tok = burst; ts = now end "
	"  tok = math.min(burst, tok + math.max(0, now - ts) * rate / 1000000 + tonumber(ARGV[a + 6])) "
	"  local gt = give(tonumber(ARGV[a + 5]), tok) "
	"  tok = tok - gt "
	"  local g = give(tonumber(ARGV[a + 4]), tok - res * burst) "
	"  tok = tok - g "
	"  redis.call('HSET', KEYS[i], 'tok', string.format('%.6f', tok), 'ts', string.format('%.0f', now)) "
	"  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000) "
	"  out[3 * i - 2] = g "
	"  out[3 * i - 1] = gt "
	"  out[3 * i] = math.floor(tok) "
	"end "
	"return out";

struct fleet_lease_cell {  /* control-thread state of one leased budget */
	uint64_t asked, asked_top;  /* the workers' attempt counters at the last lease */
	double demand, demand_top;  /* attempts per lease, smoothed */
	double frac;                /* fallback: the refill's fraction of a token */
	int64_t back;               /* tokens cut from the pools, to give back to the bucket */
	bool short_, short_top;     /* the last grant was less than asked */
	bool low;                   /* the bucket had less than half its burst left after it */
};

struct fleet_lease {
	ev_timer tick;
	uint16_t gen;               /* the view the cells below belong to */
	unsigned n;
	bool fallback, sent;        /* a lease awaits its reply */
	uint64_t sent_us;
	uint16_t sent_gen;
	unsigned nsent;
	unsigned idx[FLEET_LEASE_MAX]; /* budgets of the lease in flight */
	int64_t want[FLEET_LEASE_MAX][2];
	struct fleet_lease_cell c[FLEET_LEASE_MAX];
	char key[FLEET_LEASE_MAX][160];
	char arg[FLEET_LEASE_MAX][FLEET_LEASE_ARGS][32];
	char nodes[16], nkeys[16];
	const char *argv[4 + (1 + FLEET_LEASE_ARGS) * FLEET_LEASE_MAX];
	size_t argvlen[4 + (1 + FLEET_LEASE_ARGS) * FLEET_LEASE_MAX];
};

static unsigned fleet_lease_nodes(const struct fleet *f)
{
	if (f->st.nodes)
		return (unsigned)f->st.nodes;
	return f->cfg.expected_nodes > 0 ? (unsigned)f->cfg.expected_nodes : 1;
}

static void fleet_lease_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	struct fleet_lease *L = f->lease;
	const redisReply *r = reply;
	struct pol_lease_info in;
	uint16_t gen;
	unsigned i, n;

	fleet_command_done(f);
	if (!L->sent)
		return;
	L->sent = false;
	if (!fleet_reply_ok(f, r) || r->type != REDIS_REPLY_ARRAY || r->elements != 3 * (size_t)L->nsent) {
		f->st.lease_errors++;
		return;
	}
	n = pol_engine_lease_cells(f->engine, &gen);
	if (gen != L->sent_gen)
		return; /* a reload: the budgets asked for are not the cells now */
	for (i = 0; i < L->nsent; i++) {
		const redisReply *g = r->element[3 * i], *gt = r->element[3 * i + 1], *left = r->element[3 * i + 2];

		if (L->idx[i] >= n || g->type != REDIS_REPLY_INTEGER || gt->type != REDIS_REPLY_INTEGER ||
		    left->type != REDIS_REPLY_INTEGER || g->integer < 0 || gt->integer < 0) {
			f->st.lease_errors++;
			continue;
		}
		pol_engine_lease_info(f->engine, L->idx[i], &in);
		pol_lease_grant(in.cell, g->integer, false);
		pol_lease_grant(in.cell, gt->integer, true);
		f->st.lease_tokens_granted += (uint64_t)(g->integer + gt->integer);
		L->c[L->idx[i]].short_ = g->integer < L->want[i][0];
		L->c[L->idx[i]].short_top = gt->integer < L->want[i][1];
		L->c[L->idx[i]].low = (double)left->integer < in.burst / 2;
		f->st.lease_short += g->integer < L->want[i][0] || gt->integer < L->want[i][1];
	}
}

static void fleet_lease_key(const struct fleet *f, char *buf, size_t size, const struct pol_lease_info *in)
{
	if (in->endpoint)
		snprintf(buf, size, "%s:budget:%s:%s", f->prefix, in->account, in->endpoint);
	else
		snprintf(buf, size, "%s:budget:%s", f->prefix, in->account);
}

/* Fallback, one lease's worth: rate / nodes, capacity burst / nodes (at least one). */
static void fleet_lease_refill(struct fleet *f, struct fleet_lease_cell *c, const struct pol_lease_info *in,
                               unsigned nodes)
{
	double cap = fmax(1, floor(in->burst / nodes));
	int64_t level = atomic_load_explicit(&in->cell->tokens, memory_order_relaxed), add;

	c->frac += in->rate / nodes * f->cfg.lease_ms / 1000.0;
	add = (int64_t)c->frac;
	c->frac -= (double)add;
	if ((double)(level + add) > cap)
		add = (int64_t)cap - level;
	if (add > 0)
		pol_lease_grant(in->cell, add, false);
	atomic_store_explicit(&in->cell->stock, (int64_t)cap, memory_order_relaxed);
}

/* One pool's lease: the demand smoothed, what it needs for lease_ahead_ms, the surplus
 * expired; returns the tokens to ask for. */
static int64_t fleet_lease_pool(struct fleet *f, struct pol_lease_cell *cell, double *demand, uint64_t asked,
                                uint64_t *last, bool top, bool short_, int64_t *back)
{
	/* short: the global bucket granted less than asked, so a stock for lease_ahead_ms
	 * would add no throughput, only tokens granted in one second and spent in the next
	 * (a 1 s window above the budget): lease for the next lease only */
	double d = (double)(asked - *last), ahead = short_ ? 1 : (double)f->cfg.lease_ahead_ms / f->cfg.lease_ms;
	int64_t need, level;

	*last = asked;
	*demand = fmax(d, *demand * 0.5);
	need = (int64_t)ceil(*demand * ahead);
	level = atomic_load_explicit(top ? &cell->top : &cell->tokens, memory_order_relaxed);
	if (f->lease->fallback)
		return 0; /* a local bucket (fleet_lease_refill): its capacity bounds it */
	if (level > need)
		*back += pol_lease_expire(cell, level - need, top);
	if (!top)
		atomic_store_explicit(&cell->stock, need, memory_order_relaxed);
	return level < need ? need - level : 0;
}

static void fleet_lease_mode(struct fleet *f, bool fallback)
{
	struct fleet_lease *L = f->lease;
	char n[16];

	if (L->fallback == fallback)
		return;
	L->fallback = fallback;
	f->st.lease_fallback = fallback;
	snprintf(n, sizeof(n), "%u", fleet_lease_nodes(f));
	if (fallback)
		log_json(LOG_LVL_WARNING, "fleet_lease_fallback", "node", f->node, "nodes", n, "effect",
		         "each budget refills here at budget / nodes until Redis answers again", NULL);
	else
		log_json(LOG_LVL_INFO, "fleet_lease_resumed", "node", f->node, "nodes", n, NULL);
}

static void fleet_lease_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct fleet *f = t->data;
	struct fleet_lease *L = f->lease;
	struct pol_lease_info in;
	uint64_t now = clock_mono_us();
	unsigned i, n, k = 0, nodes = fleet_lease_nodes(f);
	uint16_t gen;
	size_t a;

	n = pol_engine_lease_cells(f->engine, &gen);
	if (gen != L->gen || n != L->n) {
		memset(L->c, 0, sizeof(L->c));
		L->gen = gen;
		L->n = n;
	}
	if (L->sent && now - L->sent_us > (uint64_t)f->cfg.timeout_ms * 1000) {
		f->st.lease_errors++; /* the command FIFO drops the connection too */
		L->sent = false;
	}
	fleet_lease_mode(f, !f->cmd_up || (L->sent && now - L->sent_us > (uint64_t)f->cfg.lease_ahead_ms * 1000));
	for (i = 0; i < n; i++) {
		struct fleet_lease_cell *c = &L->c[i];
		int64_t w, wt;

		pol_engine_lease_info(f->engine, i, &in);
		w = fleet_lease_pool(f, in.cell, &c->demand, atomic_load_explicit(&in.cell->asked, memory_order_relaxed),
		                     &c->asked, false, c->short_, &c->back);
		wt = fleet_lease_pool(f, in.cell, &c->demand_top,
		                      atomic_load_explicit(&in.cell->asked_top, memory_order_relaxed), &c->asked_top, true,
		                      c->short_top, &c->back);
		/* credit while the bucket is neither short nor low (half its burst left at the
		 * last grant): at most the node's share of the burst spent before its grant (the
		 * fleet's bucket holds that much anyway). Not while it is low: the nodes' credits
		 * together would then be a burst the bucket no longer holds, spent at once when
		 * a class with a reserve comes in a crowd (over-admission, bench/run-fleet-budget) */
		atomic_store_explicit(&in.cell->credit,
		                      L->fallback || c->short_ || c->low ? 0 : (int64_t)fmax(1, floor(in.burst / nodes)),
		                      memory_order_relaxed);
		if (L->fallback) {
			fleet_lease_refill(f, c, &in, nodes);
			continue;
		}
		if (c->short_ || c->short_top || c->low)
			c->back = 0; /* the fleet at its budget: cut tokens are dropped */
		if ((w <= 0 && wt <= 0 && c->back <= 0) || L->sent)
			continue;
		L->idx[k] = i;
		L->want[k][0] = w;
		L->want[k][1] = wt;
		fleet_lease_key(f, L->key[k], sizeof(L->key[k]), &in);
		snprintf(L->arg[k][0], sizeof(L->arg[k][0]), "%.6f", in.rate);
		snprintf(L->arg[k][1], sizeof(L->arg[k][1]), "%.6f", in.burst);
		snprintf(L->arg[k][2], sizeof(L->arg[k][2]), "%.6f", in.reserve);
		snprintf(L->arg[k][3], sizeof(L->arg[k][3]), "%" PRId64, w);
		snprintf(L->arg[k][4], sizeof(L->arg[k][4]), "%" PRId64, wt);
		snprintf(L->arg[k][5], sizeof(L->arg[k][5]), "%" PRId64, c->back);
		f->st.lease_tokens_returned += (uint64_t)c->back;
		c->back = 0;
		k++;
	}
	if (k == 0)
		return;
	snprintf(L->nodes, sizeof(L->nodes), "%u", nodes);
	L->argv[0] = "EVAL";
	L->argv[1] = fleet_lua_lease;
	snprintf(L->nkeys, sizeof(L->nkeys), "%u", k);
	L->argv[2] = L->nkeys;
	for (i = 0; i < k; i++)
		L->argv[3 + i] = L->key[i];
	L->argv[3 + k] = L->nodes;
	for (i = 0; i < k; i++)
		for (a = 0; a < FLEET_LEASE_ARGS; a++)
			L->argv[4 + k + FLEET_LEASE_ARGS * i + a] = L->arg[i][a];
	for (a = 0; a < 4 + (1 + FLEET_LEASE_ARGS) * (size_t)k; a++)
		L->argvlen[a] = strlen(L->argv[a]);
	if (fleet_command(f, fleet_lease_on_reply, f, (int)(4 + (1 + FLEET_LEASE_ARGS) * k), L->argv,
	                  L->argvlen) < 0) {
		f->st.lease_errors++;
		return;
	}
	L->sent = true;
	L->sent_us = now;
	L->sent_gen = gen;
	L->nsent = k;
	f->st.leases_sent++;
}

int fleet_lease_prepare(struct fleet *f, char *err, size_t errlen)
{
	if (f->cfg.lease_ms <= 0)
		return 0;
	if (!(f->lease = calloc(1, sizeof(*f->lease))) || pol_engine_lease(f->engine) < 0) {
		snprintf(err, errlen, "fleet: out of memory for the budget leases");
		return -1;
	}
	/* until Redis answers, the budgets refill here (a node that starts while Redis is
	 * down still serves) */
	f->lease->fallback = true;
	f->st.lease_fallback = 1;
	return 0;
}

void fleet_lease_start(struct fleet *f)
{
	if (!f->lease)
		return;
	ev_timer_init(&f->lease->tick, fleet_lease_on_tick, f->cfg.lease_ms / 1000.0, f->cfg.lease_ms / 1000.0);
	f->lease->tick.data = f;
	ev_timer_start(f->loop, &f->lease->tick);
}

void fleet_lease_stop(struct fleet *f)
{
	if (f->lease && f->loop)
		ev_timer_stop(f->loop, &f->lease->tick);
}

void fleet_lease_free(struct fleet *f)
{
	free(f->lease);
	f->lease = NULL;
}
