/* fleet-learn.c: learning shared by a fleet through Redis (issue 10), on the control
 * thread's loop; never on a worker's path. The engine's learning tick collects the outcome
 * counts it adds to the master posteriors and notes the breakers this node's own evidence
 * opened (policy/engine-share.h); this module publishes them and applies the other nodes'.
 *
 * Channel P:learn (P = fleet.prefix), texts of policy/merge.h:
 *   L <node> <seq> <n>;<backend> <cur> <cty> <brand> <fund> <s> <f>...   every fleet.learn_ms
 *   B <node> <seq> <backend>                                            a breaker opened here
 * received on the subscription connection the pins use (fleet.c). seq counts this
 * process's publications from the wall clock (µs) at its start, so a node restarted under
 * the same name is newer than its last publication (merge.h, mrg_accept). A text is
 * applied once: this node's own echo and replays are refused (mrg_accept); what another
 * node's delta adds to the posteriors never enters this node's delta (engine-share.c), so
 * nothing is counted twice and nothing travels back.
 *
 * Redis away: nothing waits. The engine's delta is exported into a pending delta every
 * fleet.learn_ms regardless; it accumulates (up to its cap: the rest counted in
 * learn_dropped) and is published once the command connection is back, after twice
 * fleet.reconnect_max_ms (so that the other nodes, which retry at least that often, have
 * subscribed again: a text published while a node is not subscribed is lost to it, and
 * texts published meanwhile by others are lost to this node likewise). An L line sent
 * when the connection went is dropped (counted) rather than sent twice. Breaker openings
 * wait in a small queue likewise, for fleet.node_ttl_ms at most (older, they are dropped,
 * counted: the breaker may have closed since). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "engine-share.h"
#include "fleet.h"
#include "log.h"

#define FLEET_LEARN_CELLS  4096u  /* cells of a delta (3/4 usable): backends x segments */
#define FLEET_LEARN_REC    128u   /* bytes of one L record at most (name 63, 4 x 8 hex, 2 x 10) */
#define FLEET_LEARN_POLL_S 0.005  /* breaker openings out, and the L line's period checked */
#define FLEET_LEARN_BRK    64u    /* breaker openings queued while Redis is away */

struct fleet_learn {
	ev_timer poll;
	char channel[96];
	uint64_t seq;                    /* this process's last publication */
	uint64_t last_us;                /* the last export */
	struct mrg_delta pend, in;       /* to publish; a received text's */
	struct mrg_cell *pend_mem, *in_mem;
	uint64_t pend_dropped;           /* pend.dropped already counted */
	bool sent;                       /* an L line awaits its reply */
	uint64_t sent_n;                 /* its outcomes */
	char *text;                      /* the L line */
	size_t text_len;
	struct mrg_peers peers;
	struct {
		char backend[MRG_NAME_MAX];
		uint64_t at_us;              /* when it opened here (monotonic) */
	} brk[FLEET_LEARN_BRK];
	unsigned nbrk;
	char line[MRG_NODE_MAX + MRG_NAME_MAX + 64]; /* a B line */
	bool up, was_up;                 /* the command connection at the last poll; ever */
	uint64_t hold_until_us;          /* after a reconnect: publish from then on */
};

const char *fleet_learn_channel(const struct fleet *f)
{
	return f->learn ? f->learn->channel : NULL;
}

static uint64_t fleet_learn_outcomes(const struct mrg_delta *d)
{
	uint64_t n = 0;
	uint32_t i;

	for (i = 0; i < d->cap; i++)
		if (d->cell[i].used)
			n += (uint64_t)d->cell[i].s + d->cell[i].f;
	return n;
}

static int fleet_learn_publish(struct fleet *f, void (*cb)(redisAsyncContext *, void *, void *), const char *text,
                               size_t len)
{
	const char *argv[3] = { "PUBLISH", f->learn->channel, text };
	size_t argvlen[3] = { 7, strlen(f->learn->channel), len };

	return fleet_command(f, cb, f, 3, argv, argvlen);
}

static void fleet_learn_on_learn_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;
	struct fleet_learn *l = f->learn;

	fleet_command_done(f);
	if (!l->sent)
		return;
	l->sent = false;
	if (fleet_reply_ok(f, reply))
		f->st.learn_published++;
	else
		f->st.learn_dropped += l->sent_n; /* maybe delivered: never sent twice */
}

static void fleet_learn_on_breaker_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fleet *f = priv;

	fleet_command_done(f);
	if (fleet_reply_ok(f, reply))
		f->st.breakers_published++;
}

/* Queues one breaker opening (from the engine), deduplicated. */
static void fleet_learn_opened(void *arg, const char *backend)
{
	struct fleet *f = arg;
	struct fleet_learn *l = f->learn;
	unsigned i;

	for (i = 0; i < l->nbrk; i++)
		if (strcmp(l->brk[i].backend, backend) == 0)
			return;
	if (l->nbrk == FLEET_LEARN_BRK) {
		f->st.learn_dropped++;
		return;
	}
	snprintf(l->brk[l->nbrk].backend, MRG_NAME_MAX, "%s", backend);
	l->brk[l->nbrk++].at_us = clock_mono_us();
}

static void fleet_learn_send_breakers(struct fleet *f)
{
	struct fleet_learn *l = f->learn;
	char wall[24];
	unsigned i, done = 0;
	int n;

	for (i = 0; i < l->nbrk && f->cmd_up && clock_mono_us() >= l->hold_until_us; i++) {
		/* an opening that waited out a Redis outage longer than fleet.node_ttl_ms is
		 * history, not news (this breaker may be half-open or closed by now): dropped */
		if (clock_mono_us() - l->brk[i].at_us > (uint64_t)f->cfg.node_ttl_ms * 1000) {
			f->st.learn_dropped++;
			done++;
			continue;
		}
		n = mrg_encode_breaker(f->node, l->seq + 1, l->brk[i].backend, l->line, sizeof(l->line));
		if (n < 0) { /* a name not sendable: dropped */
			f->st.learn_dropped++;
			done++;
			continue;
		}
		if (fleet_learn_publish(f, fleet_learn_on_breaker_reply, l->line, (size_t)n) < 0)
			break;
		l->seq++;
		done++;
		snprintf(wall, sizeof(wall), "%" PRIu64, clock_wall_us());
		log_json(LOG_LVL_INFO, "fleet_breaker_published", "node", f->node, "backend", l->brk[i].backend, "wall_us", wall,
		         NULL);
	}
	memmove(l->brk, l->brk + done, (l->nbrk - done) * sizeof(l->brk[0]));
	l->nbrk -= done;
}

static void fleet_learn_send_delta(struct fleet *f)
{
	struct fleet_learn *l = f->learn;
	int n;

	if (l->sent || !f->cmd_up || l->pend.n == 0 || clock_mono_us() < l->hold_until_us)
		return;
	n = mrg_encode(&l->pend, f->node, l->seq + 1, l->text, l->text_len);
	if (n < 0) { /* a name not sendable (the table bounds the length): not publishable */
		f->st.learn_dropped += fleet_learn_outcomes(&l->pend);
		mrg_reset(&l->pend);
		return;
	}
	if (fleet_learn_publish(f, fleet_learn_on_learn_reply, l->text, (size_t)n) < 0)
		return; /* kept for the next period */
	l->seq++;
	l->sent = true;
	l->sent_n = fleet_learn_outcomes(&l->pend);
	mrg_reset(&l->pend);
}

static void fleet_learn_on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct fleet *f = t->data;
	struct fleet_learn *l = f->learn;
	uint64_t now = clock_mono_us();

	/* Back after an outage: the others resubscribe within their reconnect backoff
	 * (reconnect_max_ms at most); what is published before they do is lost to them
	 * (pub/sub keeps nothing), so this node's held texts wait for that long. */
	if (f->cmd_up && !l->up && l->was_up)
		l->hold_until_us = now + 2 * (uint64_t)f->cfg.reconnect_max_ms * 1000;
	if (f->cmd_up)
		l->was_up = true;
	l->up = f->cmd_up;
	pol_engine_learn_opened(f->engine, fleet_learn_opened, f);
	fleet_learn_send_breakers(f);
	if (now - l->last_us < (uint64_t)f->cfg.learn_ms * 1000)
		return;
	l->last_us = now;
	/* always exported (the engine's delta must not fill while Redis is away) */
	pol_engine_learn_export(f->engine, &l->pend);
	if (l->pend.dropped != l->pend_dropped) {
		f->st.learn_dropped += l->pend.dropped - l->pend_dropped;
		l->pend_dropped = l->pend.dropped;
	}
	fleet_learn_send_delta(f);
}

void fleet_learn_on_message(struct fleet *f, const char *m, size_t len)
{
	struct fleet_learn *l = f->learn;
	struct mrg_msg msg;
	char wall[24];
	int rc;

	if (!l)
		return;
	if (mrg_parse(m, len, &msg, &l->in) < 0) {
		f->st.learn_refused++;
		return;
	}
	switch (mrg_accept(&l->peers, f->node, msg.node, msg.seq)) {
	case MRG_OWN:
		return;
	case MRG_APPLY:
		break;
	default: /* a replay, an older text, too many nodes */
		f->st.learn_refused++;
		return;
	}
	if (msg.kind == MRG_LEARN) {
		f->st.learn_received++;
		f->st.learn_applied += pol_engine_learn_apply(f->engine, &l->in, clock_mono_us());
		return;
	}
	f->st.breakers_received++;
	rc = pol_engine_learn_breaker(f->engine, msg.backend, clock_mono_us());
	snprintf(wall, sizeof(wall), "%" PRIu64, clock_wall_us());
	if (rc == POL_SHARE_OPENED)
		f->st.breakers_opened_remote++;
	else if (rc == POL_SHARE_KEPT)
		f->st.breakers_kept_local++;
	log_json(rc == POL_SHARE_OPENED ? LOG_LVL_INFO : LOG_LVL_DEBUG, "fleet_breaker_received", "node", f->node,
	         "from", msg.node, "backend", msg.backend, "wall_us", wall, "effect",
	         rc == POL_SHARE_OPENED ? "opened here"
	         : rc == POL_SHARE_KEPT ? "kept closed: this node's own recent calls say healthy"
	         : rc < 0              ? "no backend of that name here"
	                               : "already open or half-open here",
	         NULL);
}

int fleet_learn_prepare(struct fleet *f, char *err, size_t errlen)
{
	struct fleet_learn *l;

	if (f->cfg.learn_ms <= 0)
		return 0;
	if (!(l = f->learn = calloc(1, sizeof(*l))) || !(l->pend_mem = calloc(FLEET_LEARN_CELLS, sizeof(*l->pend_mem))) ||
	    !(l->in_mem = calloc(FLEET_LEARN_CELLS, sizeof(*l->in_mem))) ||
	    !(l->text = malloc(l->text_len = FLEET_LEARN_CELLS * FLEET_LEARN_REC + 2 * MRG_NODE_MAX)) ||
	    mrg_init(&l->pend, l->pend_mem, FLEET_LEARN_CELLS) < 0 || mrg_init(&l->in, l->in_mem, FLEET_LEARN_CELLS) < 0 ||
	    pol_engine_learn_share(f->engine, FLEET_LEARN_CELLS) < 0) {
		snprintf(err, errlen, "fleet: out of memory for the shared learning");
		return -1;
	}
	snprintf(l->channel, sizeof(l->channel), "%s:learn", f->prefix);
	l->seq = clock_wall_us(); /* newer than any text of an earlier process of this name */
	return 0;
}

void fleet_learn_start(struct fleet *f)
{
	if (!f->learn)
		return;
	f->learn->last_us = clock_mono_us();
	ev_timer_init(&f->learn->poll, fleet_learn_on_poll, FLEET_LEARN_POLL_S, FLEET_LEARN_POLL_S);
	f->learn->poll.data = f;
	ev_timer_start(f->loop, &f->learn->poll);
}

void fleet_learn_stop(struct fleet *f)
{
	if (f->learn && f->loop)
		ev_timer_stop(f->loop, &f->learn->poll);
}

void fleet_learn_free(struct fleet *f)
{
	if (!f->learn)
		return;
	free(f->learn->pend_mem);
	free(f->learn->in_mem);
	free(f->learn->text);
	free(f->learn);
	f->learn = NULL;
}
