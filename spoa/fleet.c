/* fleet.c: a fleet of payspoa nodes sharing their pins through Redis (hiredis, async,
 * on the control thread's libev loop). Must never block the loop or touch a worker:
 * every Redis command is asynchronous and timed by our own timer (hiredis 0.14 has no
 * async timeouts), and Redis being away only means pins are not shared until it is back.
 *
 * Redis keys (P = fleet.prefix):
 *   P:node:<node>        this node's heartbeat, PX fleet.node_ttl_ms
 *   P:nodes              sorted set node → expiry (Redis's own clock, ms): the nodes seen
 *   P:pin:<t>:<key hex>  "<backend> <account>", PX the pin's TTL left; t = enum pol_pin_table
 *   P:pins               channel: "<node> <t> <key hex> <backend> <account> <wall µs>"
 *   P:learn              channel: outcome counts and breaker openings (fleet-learn.c)
 * A claim is written with NX: the first node to write a key's pin wins it for the fleet,
 * and a node that finds another account there moves its own pin to it. A rewrite to what
 * HAProxy really used (force) overwrites. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libev.h>

#include "clock.h"
#include "fleet-claim.h"
#include "fleet.h"
#include "fleetmsg.h"
#include "log.h"

enum { FP_HEARTBEAT, FP_PUBLISH, FP_SCAN, FP_COMMAND };

#define FLEET_BACKOFF_MIN_MS 50u
#define FLEET_SCAN_COUNT     "1000"
#define FLEET_REP_BATCH      1024u /* re-published pins per poll at most */

/* The heartbeat: this node's key, its place in the set of nodes, the nodes whose expiry
 * passed dropped; returns how many are left. Redis's clock decides expiry, so the
 * nodes' clocks need not agree. */
static const char fleet_lua_heartbeat[] =
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
	"redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1]) "
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) "
	"return redis.call('ZCARD', KEYS[2])";

/* A batch of pins: KEYS their keys; ARGV[1] one force flag per pin ('1': a rewrite),
 * ARGV[2] the channel, then per pin its value, ttl ms and message. Per pin, returns 1
 * when written and published, 0 when Redis held the same value, else the value Redis
 * holds (another node claimed the key first). */
static const char fleet_lua_publish[] =
	"local out = {} "
	"for i = 1, #KEYS do "
	"  local v, ttl, msg = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2] "
	"  local r = 1 "
	"  if string.sub(ARGV[1], i, i) == '1' then "
	"    redis.call('SET', KEYS[i], v, 'PX', ttl) "
	"  elseif not redis.call('SET', KEYS[i], v, 'NX', 'PX', ttl) then "
	"    local cur = redis.call('GET', KEYS[i]) "
	"    if cur == v then r = 0 elseif cur then r = cur else redis.call('SET', KEYS[i], v, 'PX', ttl) end "
	"  end "
	"  if r == 1 then redis.call('PUBLISH', ARGV[2], msg) end "
	"  out[i] = r "
	"end "
	"return out";

/* One step of the scan of the fleet's pins: {next cursor, key, value, key, value, ...}. */
static const char fleet_lua_scan[] =
	"local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3]) "
	"local out = { r[1] } "
	"for _, k in ipairs(r[2]) do "
	"  local v = redis.call('GET', k) "
	"  if v then out[#out + 1] = k; out[#out + 1] = v end "
	"end "
	"return out";

static void fleet_connect(struct fleet *f);
static void fleet_drop(struct fleet *f, const char *why);

static void fleet_log_err(const char *event, const char *why, const char *detail)
{
	log_json(LOG_LVL_WARNING, event, "reason", why, "detail", detail ? detail : "",
	         "effect", "pins stay local until Redis is back (decisions go on)", NULL);
}

/* ---- the FIFO of commands awaiting a reply ------------------------------------------- */

static uint32_t fleet_inflight(const struct fleet *f)
{
	return f->p_head - f->p_tail;
}

/* Sends one command on the command connection, timed; cb gets priv. Returns 0, or -1
 * (not connected, too many in flight, hiredis refused: the caller treats it as not sent). */
static int fleet_send_priv(struct fleet *f, redisCallbackFn *cb, void *priv, uint8_t kind, uint8_t table,
                           uint64_t key, int argc, const char **argv, const size_t *argvlen)
{
	struct fleet_pending *p;

	if (!f->cmd || !f->cmd_up || fleet_inflight(f) >= FLEET_INFLIGHT)
		return -1;
	p = &f->pend[f->p_head % FLEET_INFLIGHT];
	*p = (struct fleet_pending){ clock_mono_us(), key, kind, table };
	if (redisAsyncCommandArgv(f->cmd, cb, priv, argc, argv, argvlen) != REDIS_OK)
		return -1;
	f->p_head++;
	return 0;
}

static int fleet_send(struct fleet *f, redisCallbackFn *cb, uint8_t kind, uint8_t table, uint64_t key,
                      int argc, const char **argv, const size_t *argvlen)
{
	return fleet_send_priv(f, cb, f, kind, table, key, argc, argv, argvlen);
}

int fleet_command(struct fleet *f, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                  const size_t *argvlen)
{
	return fleet_send_priv(f, cb, priv, FP_COMMAND, 0, 0, argc, argv, argvlen);
}

/* Every command callback starts here: the command this reply answers. */
static struct fleet_pending fleet_pop(struct fleet *f)
{
	struct fleet_pending p = { 0 };

	if (fleet_inflight(f) > 0)
		p = f->pend[f->p_tail++ % FLEET_INFLIGHT];
	return p;
}

void fleet_command_done(struct fleet *f)
{
	fleet_pop(f);
}

bool fleet_live(const struct fleet *f)
{
	return f->live && f->cmd_up;
}

/* A reply: NULL when the connection went (counted where it went), an error counted. */
bool fleet_reply_ok(struct fleet *f, const redisReply *r)
{
	if (!r)
		return false;
	if (r->type == REDIS_REPLY_ERROR) {
		f->st.redis_errors++;
		log_json(LOG_LVL_WARNING, "fleet_redis_error", "error", r->str, NULL);
		return false;
	}
	return true;
}

/* ---- applying the fleet's pins ------------------------------------------------------- */

static void fleet_lag(struct fleet *f, uint64_t sent_wall_us)
{
	uint64_t now = clock_wall_us(), lag = now > sent_wall_us ? now - sent_wall_us : 0, bin = lag / 100;

	f->lag_bin[bin < FLEET_LAG_BINS ? bin : FLEET_LAG_BINS - 1]++;
	if (lag > f->lag_max_us)
		f->lag_max_us = lag;
	f->st.lag_samples++;
}

static void fleet_apply(struct fleet *f, unsigned table, uint64_t key, const char *be, const char *acct)
{
	int rc = pol_engine_pin_apply(f->engine, table, key, be, acct);

	if (rc < 0)
		f->st.pins_failed++;
	else if (rc == POL_PIN_MOVED)
		f->st.pins_moved++;
}

/* A message on the channel: another node's pin (our own come back too: skipped). */
static void fleet_on_message(struct fleet *f, const char *m, size_t len)
{
	struct fleet_msg msg;

	if (fleet_msg_parse(m, len, &msg) < 0) {
		f->st.pins_failed++;
		return;
	}
	if (strcmp(msg.node, f->node) == 0)
		return;
	f->st.pins_received++;
	fleet_apply(f, msg.table, msg.key, msg.backend, msg.account);
	fleet_lag(f, msg.wall_us);
}

/* ---- publishing this node's pins ----------------------------------------------------- */

static void fleet_on_publish(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	const redisReply *r = reply;
	const struct fleet_batch *b;
	char be[FLEET_NAME_MAX], acct[FLEET_NAME_MAX];
	size_t i;

	fleet_pop(f);
	if (f->b_head == f->b_tail)
		return; /* dropped meanwhile */
	b = &f->batch[f->b_tail++ % FLEET_BATCHES];
	if (!fleet_reply_ok(f, r))
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != b->n) {
		f->st.redis_errors++;
		return;
	}
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];

		if (e->type == REDIS_REPLY_INTEGER) {
			f->st.pins_published += e->integer == 1;
			continue;
		}
		/* another node claimed the key first: its account is the fleet's */
		if (e->type != REDIS_REPLY_STRING || fleet_value_parse(e->str, e->len, be, acct) < 0) {
			f->st.pins_failed++;
			continue;
		}
		if (pol_engine_pin_apply(f->engine, b->table[i], b->key[i], be, acct) == POL_PIN_MOVED) {
			f->st.pins_conflicts++;
			f->st.pins_moved++;
		}
	}
}

/* Sends the batch being built, if any. Returns 0, or -1 (not sent: its pins are lost
 * until the next resync, and counted in pins_unpublished). */
int fleet_batch_argv(struct fleet *f, struct fleet_batch *b, const char **argv, size_t *argvlen)
{
	size_t i, n = b->n;

	b->force[n] = 0;
	snprintf(b->nkeys, sizeof(b->nkeys), "%zu", n);
	argv[0] = "EVAL";
	argv[1] = fleet_lua_publish;
	argv[2] = b->nkeys;
	for (i = 0; i < n; i++) {
		argv[3 + i] = b->text[i].key;
		argv[3 + n + 2 + 3 * i] = b->text[i].value;
		argv[3 + n + 2 + 3 * i + 1] = b->text[i].ttl;
		argv[3 + n + 2 + 3 * i + 2] = b->text[i].msg;
	}
	argv[3 + n] = b->force;
	argv[3 + n + 1] = f->channel;
	for (i = 0; i < 3 + 4 * n + 2; i++)
		argvlen[i] = strlen(argv[i]);
	return (int)(3 + 4 * n + 2);
}

static int fleet_flush(struct fleet *f)
{
	struct fleet_batch *b = &f->batch[f->b_head % FLEET_BATCHES];
	size_t n = b->n;
	int argc;

	if (n == 0)
		return 0;
	argc = fleet_batch_argv(f, b, f->argv, f->argvlen);
	if (fleet_send(f, fleet_on_publish, FP_PUBLISH, 0, 0, argc, f->argv, f->argvlen) < 0) {
		f->st.pins_unpublished += n;
		b->n = 0;
		return -1;
	}
	f->b_head++;
	f->batch[f->b_head % FLEET_BATCHES].n = 0;
	return 0;
}

/* Room for this many more pins before the batches in flight are all taken. */
static size_t fleet_room(const struct fleet *f)
{
	uint32_t busy = f->b_head - f->b_tail;

	if (!f->cmd_up || busy >= FLEET_BATCHES - 1)
		return 0;
	return (size_t)(FLEET_BATCHES - 1 - busy) * FLEET_BATCH - f->batch[f->b_head % FLEET_BATCHES].n;
}

/* Adds one pin (ttl_ms of life left) to the batch being built, sent when full (or by the
 * poll). Returns 0, or -1 (no room: not queued). */
static int fleet_publish(struct fleet *f, unsigned table, uint64_t key, const char *backend, const char *account,
                         uint32_t ttl_ms, bool force, uint64_t wall_us)
{
	struct fleet_batch *b;

	if (fleet_room(f) == 0)
		return -1;
	b = &f->batch[f->b_head % FLEET_BATCHES];
	fleet_batch_add(f, b, table, key, backend, account, ttl_ms, force, wall_us);
	if (b->n == FLEET_BATCH)
		fleet_flush(f);
	return 0;
}

void fleet_batch_add(struct fleet *f, struct fleet_batch *b, unsigned table, uint64_t key, const char *backend,
                     const char *account, uint32_t ttl_ms, bool force, uint64_t wall_us)
{
	struct fleet_msg m = { .table = table, .key = key, .wall_us = wall_us };

	memcpy(m.node, f->node, sizeof(m.node));
	snprintf(m.backend, sizeof(m.backend), "%s", backend);
	snprintf(m.account, sizeof(m.account), "%s", account);
	fleet_key_format(b->text[b->n].key, sizeof(b->text[0].key), f->prefix, table, key);
	fleet_value_format(b->text[b->n].value, sizeof(b->text[0].value), backend, account);
	snprintf(b->text[b->n].ttl, sizeof(b->text[0].ttl), "%" PRIu32, ttl_ms ? ttl_ms : 1);
	fleet_msg_format(b->text[b->n].msg, sizeof(b->text[0].msg), &m);
	b->table[b->n] = (uint8_t)table;
	b->key[b->n] = key;
	b->force[b->n] = force ? '1' : '0';
	b->n++;
}

static void fleet_on_note(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                          bool force, uint64_t at_us)
{
	struct fleet *f = arg;
	uint64_t now = clock_mono_us(), wall = clock_wall_us();
	uint64_t age = now > at_us ? now - at_us : 0;

	if (!f->live || fleet_publish(f, table, key, backend, account, pol_engine_pin_ttl(f->engine, table) * 1000u,
	                                force, wall - age) < 0)
		f->st.pins_unpublished++;
}

/* ---- resync: the fleet's pins in, this node's out ------------------------------------- */

static void fleet_collect(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                          uint32_t age_s)
{
	struct fleet *f = arg;
	uint32_t ttl = pol_engine_pin_ttl(f->engine, table);
	struct fleet_rep *r;

	if (age_s >= ttl)
		return;
	if (f->nrep % 4096 == 0) {
		struct fleet_rep *n = realloc(f->rep, (f->nrep + 4096) * sizeof(*n));

		if (!n)
			return; /* what is left is published by its next claim or resync */
		f->rep = n;
	}
	r = &f->rep[f->nrep++];
	*r = (struct fleet_rep){ key, backend, account, (ttl - age_s) * 1000u, (uint8_t)table };
}

static void fleet_synced(struct fleet *f)
{
	char n[4][24];

	f->synced = true;
	f->st.resyncs++;
	if (f->claim)
		fleet_claim_set_live(f->claim, true);
	f->st.redis_up = 1;
	snprintf(n[0], sizeof(n[0]), "%" PRIu64, f->st.pins_loaded);
	snprintf(n[1], sizeof(n[1]), "%" PRIu64, f->st.pins_republished);
	snprintf(n[2], sizeof(n[2]), "%" PRIu64, f->st.resyncs);
	snprintf(n[3], sizeof(n[3]), "%" PRIu64, f->st.nodes);
	log_json(LOG_LVL_INFO, "fleet_resynced", "node", f->node, "pins_loaded", n[0], "pins_republished", n[1],
	         "resyncs", n[2], "nodes", n[3], NULL);
}

/* Re-publishes the next batch of this node's live pins (from the poll). */
static void fleet_republish(struct fleet *f)
{
	unsigned sent = 0;

	while (f->irep < f->nrep && sent < FLEET_REP_BATCH && fleet_room(f) > FLEET_BATCHES / 2 * FLEET_BATCH) {
		const struct fleet_rep *r = &f->rep[f->irep];

		if (fleet_publish(f, r->table, r->key, r->backend, r->account, r->ttl_ms, false, clock_wall_us()) < 0)
			return;
		f->irep++;
		f->st.pins_republished++;
		sent++;
	}
	fleet_flush(f);
	if (f->irep == f->nrep) {
		free(f->rep);
		f->rep = NULL;
		f->nrep = f->irep = 0;
		fleet_synced(f);
	}
}

static void fleet_scan_next(struct fleet *f);

static void fleet_on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	const redisReply *r = reply;
	char be[FLEET_NAME_MAX], acct[FLEET_NAME_MAX];
	unsigned table;
	uint64_t key;
	size_t i;

	fleet_pop(f);
	if (!fleet_reply_ok(f, r)) {
		f->scanning = false;
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len >= sizeof(f->cursor)) {
		f->st.redis_errors++;
		f->scanning = false;
		fleet_drop(f, "unexpected scan reply");
		return;
	}
	for (i = 1; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    fleet_key_parse(f->prefix, k->str, k->len, &table, &key) < 0 ||
		    fleet_value_parse(v->str, v->len, be, acct) < 0) {
			f->st.pins_failed++;
			continue;
		}
		fleet_apply(f, table, key, be, acct);
		f->st.pins_loaded++;
	}
	memcpy(f->cursor, r->element[0]->str, r->element[0]->len);
	f->cursor[r->element[0]->len] = 0;
	if (strcmp(f->cursor, "0") != 0) {
		fleet_scan_next(f);
		return;
	}
	/* loaded: now this node's live pins, a batch per poll (the poll publishes them) */
	f->scanning = false;
	f->live = true; /* pins made from here on are published as they come */
	pol_engine_pins_each(f->engine, clock_mono_us(), fleet_collect, f);
	if (f->nrep == 0)
		fleet_synced(f);
}

static void fleet_scan_next(struct fleet *f)
{
	char match[96];
	const char *argv[7];
	size_t len[7];
	int i;

	snprintf(match, sizeof(match), "%s:pin:*", f->prefix);
	argv[0] = "EVAL";
	argv[1] = fleet_lua_scan;
	argv[2] = "0";
	argv[3] = f->cursor;
	argv[4] = match;
	argv[5] = FLEET_SCAN_COUNT;
	for (i = 0; i < 6; i++)
		len[i] = strlen(argv[i]);
	f->scanning = fleet_send(f, fleet_on_scan, FP_SCAN, 0, 0, 6, argv, len) == 0;
	if (!f->scanning)
		fleet_drop(f, "cannot send the scan");
}

/* ---- heartbeat ----------------------------------------------------------------------- */

static void fleet_on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	const redisReply *r = reply;
	char n[24];

	fleet_pop(f);
	if (!fleet_reply_ok(f, r) || r->type != REDIS_REPLY_INTEGER)
		return;
	f->st.heartbeats++;
	if ((uint64_t)r->integer != f->st.nodes) {
		snprintf(n, sizeof(n), "%lld", r->integer);
		log_json(LOG_LVL_INFO, "fleet_nodes", "node", f->node, "nodes", n, NULL);
	}
	f->st.nodes = (uint64_t)r->integer;
}

static void fleet_heartbeat(struct fleet *f)
{
	char k[160], zk[160], ttl[16];
	const char *argv[7];
	size_t len[7];
	int i;

	snprintf(k, sizeof(k), "%s:node:%s", f->prefix, f->node);
	snprintf(zk, sizeof(zk), "%s:nodes", f->prefix);
	snprintf(ttl, sizeof(ttl), "%d", f->cfg.node_ttl_ms);
	argv[0] = "EVAL";
	argv[1] = fleet_lua_heartbeat;
	argv[2] = "2";
	argv[3] = k;
	argv[4] = zk;
	argv[5] = f->node;
	argv[6] = ttl;
	for (i = 0; i < 7; i++)
		len[i] = strlen(argv[i]);
	fleet_send(f, fleet_on_heartbeat, FP_HEARTBEAT, 0, 0, 7, argv, len);
}

static void fleet_log_stats(struct fleet *f, enum log_level lvl, const char *event, const struct fleet_stats *st);

/* Each heartbeat: the heartbeat, and (debug) the counters when they changed. */
static void fleet_on_hb_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct fleet *f = t->data;
	struct fleet_stats st;

	fleet_heartbeat(f);
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	fleet_stats(f, &st);
	if (memcmp(&st, &f->logged, sizeof(st)) != 0) {
		fleet_log_stats(f, LOG_LVL_DEBUG, "fleet_stats", &st);
		f->logged = st;
	}
}

/* ---- connections --------------------------------------------------------------------- */

static void fleet_on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	const redisReply *r = reply;

	if (!r || f->sub != ac)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(r->element[0]->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
		if (fleet_learn_channel(f) && r->element[1]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[1]->str, fleet_learn_channel(f)) == 0)
			fleet_learn_on_message(f, r->element[2]->str, r->element[2]->len);
		else
			fleet_on_message(f, r->element[2]->str, r->element[2]->len);
	} else if (strcmp(r->element[0]->str, "subscribe") == 0 && !f->scanning && !f->synced &&
	           r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, f->channel) == 0) {
		/* subscribed: what is published from now on arrives, so what was before is
		 * loaded now (a pin published in between comes both ways, harmlessly) */
		snprintf(f->cursor, sizeof(f->cursor), "0");
		fleet_heartbeat(f);
		fleet_scan_next(f);
	}
}

static void fleet_on_connect(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		if (f->cmd == ac)
			f->cmd = NULL;
		if (f->sub == ac)
			f->sub = NULL;
		f->st.redis_errors++;
		fleet_drop(f, ac->errstr);
		return;
	}
	if (f->cmd == ac)
		f->cmd_up = true;
	if (f->sub == ac)
		f->sub_up = true;
	if (f->cmd_up && f->sub_up) {
		f->st.connects++;
		f->backoff_ms = FLEET_BACKOFF_MIN_MS;
		log_json(LOG_LVL_INFO, "fleet_redis_up", "node", f->node, "redis", f->cfg.redis, NULL);
		if ((fleet_learn_channel(f)
		         ? redisAsyncCommand(f->sub, fleet_on_sub, f, "SUBSCRIBE %s %s", f->channel, fleet_learn_channel(f))
		         : redisAsyncCommand(f->sub, fleet_on_sub, f, "SUBSCRIBE %s", f->channel)) != REDIS_OK)
			fleet_drop(f, "cannot subscribe");
	}
}

static void fleet_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct fleet *f = ac->data;

	/* hiredis frees the context after this callback */
	if (f->cmd == ac)
		f->cmd = NULL;
	else if (f->sub == ac)
		f->sub = NULL;
	else
		return; /* one we dropped ourselves */
	fleet_drop(f, status == REDIS_OK ? "closed" : ac->errstr);
}

/* Drops both connections (if any) and, unless stopping, schedules the next attempt.
 * Safe from hiredis callbacks (hiredis defers the free of a context in its callback). */
static void fleet_drop(struct fleet *f, const char *why)
{
	redisAsyncContext *c = f->cmd, *s = f->sub;
	bool had = f->synced;

	f->cmd = f->sub = NULL;
	f->cmd_up = f->sub_up = false;
	if (c)
		redisAsyncFree(c); /* pending callbacks run with NULL replies */
	if (s)
		redisAsyncFree(s);
	f->p_tail = f->p_head;
	f->st.pins_unpublished += f->batch[f->b_head % FLEET_BATCHES].n;
	f->batch[f->b_head % FLEET_BATCHES].n = 0;
	f->b_tail = f->b_head;
	f->scanning = false;
	free(f->rep);
	f->rep = NULL;
	f->nrep = f->irep = 0;
	if (f->synced)
		f->st.disconnects++;
	f->synced = f->live = false;
	f->st.redis_up = 0;
	if (f->claim)
		fleet_claim_set_live(f->claim, false);
	if (!f->stopping && (had || !f->was_up)) {
		/* one line per outage (and one at start when Redis is not there) */
		fleet_log_err("fleet_redis_down", why ? why : "unknown", f->cfg.redis);
		f->was_up = true;
	}
	if (f->stopping || ev_is_active(&f->retry))
		return;
	ev_timer_set(&f->retry, f->backoff_ms / 1000.0, 0.);
	ev_timer_start(f->loop, &f->retry);
	f->backoff_ms = f->backoff_ms * 2 > (unsigned)f->cfg.reconnect_max_ms ? (unsigned)f->cfg.reconnect_max_ms
	                                                                        : f->backoff_ms * 2;
}

static redisAsyncContext *fleet_open(struct fleet *f)
{
	redisAsyncContext *c;
	char host[256];
	const char *colon;

	if (strncmp(f->cfg.redis, "unix:", 5) == 0) {
		c = redisAsyncConnectUnix(f->cfg.redis + 5);
	} else {
		colon = strrchr(f->cfg.redis, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - f->cfg.redis), f->cfg.redis);
		c = redisAsyncConnect(host, atoi(colon + 1));
	}
	if (!c)
		return NULL;
	if (c->err) {
		log_json(LOG_LVL_DEBUG, "fleet_connect_failed", "error", c->errstr, NULL);
		redisAsyncFree(c);
		return NULL;
	}
	c->data = f;
	redisLibevAttach(f->loop, c);
	redisAsyncSetConnectCallback(c, fleet_on_connect);
	redisAsyncSetDisconnectCallback(c, fleet_on_disconnect);
	return c;
}

static void fleet_connect(struct fleet *f)
{
	f->attempt_us = clock_mono_us();
	f->cmd = fleet_open(f);
	f->sub = f->cmd ? fleet_open(f) : NULL;
	if (!f->cmd || !f->sub) {
		f->st.redis_errors++;
		fleet_drop(f, "cannot open a connection");
	}
}

static void fleet_on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	fleet_connect(t->data);
}

/* Every FLEET_POLL_S: the journal out, the resync's next batch, the timeouts. */
static void fleet_on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct fleet *f = t->data;
	uint64_t now = clock_mono_us(), limit = (uint64_t)f->cfg.timeout_ms * 1000;
	size_t room;

	if ((f->cmd || f->sub) && !(f->cmd_up && f->sub_up) && now - f->attempt_us > limit) {
		f->st.timeouts++;
		fleet_drop(f, "connect timed out");
	} else if (fleet_inflight(f) > 0 && now - f->pend[f->p_tail % FLEET_INFLIGHT].sent_us > limit) {
		f->st.timeouts++;
		fleet_drop(f, "command timed out");
	}
	if (f->rep)
		fleet_republish(f);
	/* drain always (the rings must not fill while Redis is away); publish when synced */
	room = f->live ? fleet_room(f) : SIZE_MAX;
	pol_engine_journal_drain(f->engine, room, fleet_on_note, f);
	fleet_flush(f);
}

/* ---- the module's entry points ------------------------------------------------------- */

int fleet_prepare(struct fleet *f, struct pol_engine *e, const struct pol_fleet *cfg, char *err, size_t errlen)
{
	char host[64];

	memset(f, 0, sizeof(*f));
	f->engine = e;
	f->cfg = *cfg;
	f->prefix = f->cfg.prefix[0] ? f->cfg.prefix : "payspoa";
	if (f->cfg.node[0]) {
		snprintf(f->node, sizeof(f->node), "%s", f->cfg.node);
	} else {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "node");
		host[sizeof(host) - 1] = 0;
		snprintf(f->node, sizeof(f->node), "%s-%ld", host, (long)getpid());
	}
	snprintf(f->channel, sizeof(f->channel), "%s:pins", f->prefix);
	f->backoff_ms = FLEET_BACKOFF_MIN_MS;
	if (!(f->batch = calloc(FLEET_BATCHES, sizeof(*f->batch))) || pol_engine_journal(e, cfg->journal_slots) < 0) {
		snprintf(err, errlen, "fleet: out of memory for the pin journals");
		fleet_free(f);
		return -1;
	}
	if (fleet_lease_prepare(f, err, errlen) < 0 || fleet_learn_prepare(f, err, errlen) < 0) {
		fleet_free(f);
		return -1;
	}
	return 0;
}

void fleet_free(struct fleet *f)
{
	free(f->batch);
	f->batch = NULL;
	free(f->rep);
	f->rep = NULL;
	fleet_claim_free(f->claim);
	f->claim = NULL;
	fleet_lease_free(f);
	fleet_learn_free(f);
}

void fleet_start(struct fleet *f, struct ev_loop *loop)
{
	f->loop = loop;
	ev_timer_init(&f->poll, fleet_on_poll, FLEET_POLL_S, FLEET_POLL_S);
	ev_timer_init(&f->hb, fleet_on_hb_timer, f->cfg.heartbeat_ms / 1000.0, f->cfg.heartbeat_ms / 1000.0);
	ev_timer_init(&f->retry, fleet_on_retry, 0., 0.);
	f->poll.data = f->hb.data = f->retry.data = f;
	ev_timer_start(loop, &f->poll);
	ev_timer_start(loop, &f->hb);
	if (f->claim)
		fleet_claim_start(f->claim, loop);
	log_json(LOG_LVL_INFO, "fleet", "node", f->node, "redis", f->cfg.redis, "prefix", f->prefix, NULL);
	fleet_connect(f);
	fleet_lease_start(f);
	fleet_learn_start(f);
}

void fleet_stats(struct fleet *f, struct fleet_stats *out)
{
	uint64_t n = 0, sum = 0;
	unsigned i;

	for (i = 0; i < FLEET_LAG_BINS; i++)
		n += f->lag_bin[i];
	f->st.lag_p50_us = f->st.lag_p99_us = 0;
	for (i = 0; i < FLEET_LAG_BINS && n; i++) {
		sum += f->lag_bin[i];
		if (!f->st.lag_p50_us && sum * 2 >= n)
			f->st.lag_p50_us = (i + 1) * 100ull; /* the bin's upper bound */
		if (sum * 100 >= n * 99) {
			f->st.lag_p99_us = i == FLEET_LAG_BINS - 1 ? f->lag_max_us : (i + 1) * 100ull;
			break;
		}
	}
	if (f->claim)
		fleet_claim_stats(f->claim, &f->st);
	*out = f->st;
}

const struct fleet_stats_desc fleet_stats_desc[] = {
#define X(name, type, help) { #name, #type, help, offsetof(struct fleet_stats, name) },
	FLEET_STATS(X)
#undef X
};
const size_t fleet_stats_ndesc = sizeof(fleet_stats_desc) / sizeof(fleet_stats_desc[0]);

/* One line with every counter (FLEET_STATS order). */
static void fleet_log_stats(struct fleet *f, enum log_level lvl, const char *event, const struct fleet_stats *st)
{
	enum { N = sizeof(fleet_stats_desc) / sizeof(fleet_stats_desc[0]) };
	char val[N][24];
	const char *kv[2 * (N + 1)];
	size_t i;

	kv[0] = "node";
	kv[1] = f->node;
	for (i = 0; i < N; i++) {
		snprintf(val[i], sizeof(val[i]), "%" PRIu64,
		         *(const uint64_t *)(const void *)((const char *)st + fleet_stats_desc[i].off));
		kv[2 + 2 * i] = fleet_stats_desc[i].name;
		kv[3 + 2 * i] = val[i];
	}
	log_json_kv(lvl, event, kv, N + 1);
}

void fleet_stop(struct fleet *f)
{
	struct fleet_stats st;

	if (!f->engine || !f->loop)
		return;
	/* the last pins the workers made (sent only if the connection flushes before the
	 * close below: a node that stops leaves the rest to its snapshot and next resync) */
	pol_engine_journal_drain(f->engine, SIZE_MAX, fleet_on_note, f);
	fleet_flush(f);
	f->stopping = true;
	ev_timer_stop(f->loop, &f->poll);
	ev_timer_stop(f->loop, &f->hb);
	ev_timer_stop(f->loop, &f->retry);
	if (f->claim)
		fleet_claim_stop(f->claim);
	fleet_lease_stop(f);
	fleet_learn_stop(f);
	fleet_drop(f, "stopping");
	fleet_stats(f, &st);
	fleet_log_stats(f, LOG_LVL_INFO, "fleet_stopped", &st);
	f->loop = NULL;
}
