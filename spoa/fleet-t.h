/* fleet-t.h: a fleet of nodes sharing pins through Redis (fleet.c). Types only. */
#ifndef FLEET_T_H
#define FLEET_T_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* FLEET_STATS(X): the fleet's counters and gauges, X(name, type, help), declared once;
 * the control thread alone writes them (struct fleet_stats), the `fleet_stopped` log
 * line and the metrics read them. */
#define FLEET_STATS(X) \
	X(redis_up,         gauge,   "1 while both Redis connections are up and the pins are resynchronised, else 0") \
	X(nodes,            gauge,   "nodes seen in the fleet at the last heartbeat (this one included; last known while Redis is away)") \
	X(connects,         counter, "Redis connections made (commands and subscription, counted once per pair)") \
	X(disconnects,      counter, "times the fleet lost Redis (connection error, closed, or a command timed out)") \
	X(timeouts,         counter, "Redis commands or connects unanswered within fleet.timeout_ms (the connection is dropped)") \
	X(redis_errors,     counter, "Redis error replies and failed connection attempts") \
	X(heartbeats,       counter, "heartbeats answered") \
	X(resyncs,          counter, "resynchronisations completed (live pins loaded from Redis and this node's re-published)") \
	X(pins_published,   counter, "pins this node made, written to Redis and published to the fleet") \
	X(pins_unpublished, counter, "pins made while Redis was away (published again by the next resync)") \
	X(pins_received,    counter, "pins of other nodes received on the channel") \
	X(pins_loaded,      counter, "pins of the fleet loaded from Redis by a resync") \
	X(pins_republished, counter, "live local pins written again to Redis by a resync") \
	X(pins_conflicts,   counter, "pins this node made on one account that the fleet held on another (lost the race: moved)") \
	X(pins_moved,       counter, "local pins rewritten to the fleet's account (conflicts and corrections from other nodes)") \
	X(pins_failed,      counter, "fleet pins not applied here (no room in the table, no backend id left, malformed)") \
	X(lag_p50_us,       gauge,   "replication lag, median: from the pin's decision on its node to its application here, µs") \
	X(lag_p99_us,       gauge,   "replication lag, 99th percentile, µs") \
	X(lag_samples,      counter, "pins received whose lag was measured") \
	X(claims_sent,      counter, "new idempotency pins claimed in Redis while their ACK was held (fleet.claim)") \
	X(claims_won,       counter, "claims the fleet confirmed: the key is this node's (or on the same account)") \
	X(claims_lost,      counter, "claims the fleet held on another account: the held ACK was rerouted there (or refused, pin:gone)") \
	X(claims_unconfirmed, counter, "held ACKs sent as decided without the fleet's answer (fleet.claim_timeout_ms passed, or Redis went)") \
	X(claims_skipped,   counter, "new idempotency pins not claimed first because Redis was away or not resynchronised (ACK sent at once)") \
	X(claims_held_full, counter, "new idempotency pins not claimed first because the worker's held-ACK table or ring was full") \
	X(claim_wait_p50_us, gauge,  "time an ACK was held for its claim, median, µs") \
	X(claim_wait_p99_us, gauge,  "time an ACK was held for its claim, 99th percentile, µs") \
	X(leases_sent,      counter, "budget lease requests sent to Redis (one script call per lease tick, every budget with demand)") \
	X(lease_tokens_granted, counter, "tokens the fleet's global buckets granted this node") \
	X(lease_tokens_returned, counter, "leased tokens this node did not need, given back to the fleet's global buckets") \
	X(lease_short,      counter, "budget leases granted fewer tokens than asked (the global budget is short)") \
	X(lease_fallback,   gauge,   "1 while the budgets refill locally at budget / nodes (Redis away or slow), else 0") \
	X(lease_errors,     counter, "lease requests unanswered, refused or malformed") \
	X(learn_published,  counter, "outcome-count texts (L lines) this node published to the fleet (fleet.learn_ms)") \
	X(learn_received,   counter, "outcome-count texts of other nodes applied here") \
	X(learn_applied,    counter, "outcomes of other nodes added to this node's posteriors") \
	X(learn_dropped,    counter, "outcomes (or breaker openings) not shared: pending table full, in flight when Redis went, name not sendable, an opening queued longer than node_ttl_ms") \
	X(learn_refused,    counter, "texts of other nodes not applied: malformed, a replay or older than one applied, too many nodes") \
	X(breakers_published, counter, "breaker openings of this node published to the fleet (B lines)") \
	X(breakers_received, counter, "breaker openings of other nodes received") \
	X(breakers_opened_remote, counter, "breakers opened here because another node's opened") \
	X(breakers_kept_local, counter, "breaker openings of other nodes not followed: this node's own recent calls said healthy")

struct fleet_stats {
#define X(name, type, help) uint64_t name;
	FLEET_STATS(X)
#undef X
};

struct fleet_stats_desc {   /* a counter as a metrics endpoint shows it */
	const char *name, *type, *help;
	size_t off;                 /* of its value in struct fleet_stats */
};

#define FLEET_INFLIGHT  4096u  /* commands awaiting a reply on the command connection */
#define FLEET_LAG_BINS  2048u  /* lag histogram: 100 µs bins up to 204.7 ms, the last one open */
#define FLEET_POLL_S    0.002  /* journal drain and command timeouts */

/* What a command awaiting its reply was: replies come in order, so a FIFO of these
 * tells every callback its command (and how long it has waited). */
struct fleet_pending {
	uint64_t sent_us;
	uint64_t key;
	uint8_t kind, table;
};

#define FLEET_BATCH    128u  /* pins per publishing script */
#define FLEET_BATCHES  32u   /* batches in flight at most (one being built) */

/* Pins written to Redis by one script call: their texts while it is being built, their
 * table and key until its reply (a conflict is applied to them). */
struct fleet_batch {
	unsigned n;
	uint8_t table[FLEET_BATCH];
	uint64_t key[FLEET_BATCH];
	char force[FLEET_BATCH + 1];  /* '1' or '0' per pin: ARGV[1] */
	char nkeys[16];               /* EVAL's key count, while sent */
	struct {
		char key[160], value[2 * 64], ttl[16], msg[400];
	} text[FLEET_BATCH];
};

struct fleet_rep {  /* a live local pin, waiting for the resync to publish it again */
	uint64_t key;
	const char *backend, *account; /* the engine's interned names: stable */
	uint32_t ttl_ms;
	uint8_t table;
};

struct redisAsyncContext;
struct fleet_claim;
struct fleet_lease;
struct fleet_learn;

struct fleet {
	struct ev_loop *loop;
	struct pol_engine *engine;
	struct pol_fleet cfg;
	char node[128];               /* FLEET_NODE_MAX (fleetmsg.h) */
	const char *prefix;
	char channel[96];
	struct redisAsyncContext *cmd, *sub;
	bool cmd_up, sub_up;          /* connected */
	bool live;                    /* publishing pins as they come (the resync collected the rest) */
	bool synced;                  /* the resync after the last connect is done */
	bool stopping;
	bool was_up;                  /* a connection was tried: later failures log once per outage */
	uint64_t attempt_us;          /* the current connection attempt started */
	unsigned backoff_ms;
	ev_timer poll, hb, retry;
	struct fleet_pending pend[FLEET_INFLIGHT];
	uint32_t p_head, p_tail;
	struct fleet_batch *batch;   /* FLEET_BATCHES, a ring: b_tail awaits its reply first */
	uint32_t b_head, b_tail;                 /* batch[b_head] is being built */
	const char *argv[3 + 4 * FLEET_BATCH + 2];
	size_t argvlen[3 + 4 * FLEET_BATCH + 2];
	/* resync: scanning the fleet's pins, then re-publishing this node's */
	bool scanning;
	char cursor[24];
	struct fleet_rep *rep;
	size_t nrep, irep;
	uint64_t lag_bin[FLEET_LAG_BINS];
	uint64_t lag_max_us;
	struct fleet_lease *lease;    /* budgets leased from global buckets (fleet-lease.c); NULL = off */
	struct fleet_stats st;
	struct fleet_stats logged;    /* at the last fleet_stats line (debug) */
	struct fleet_claim *claim;    /* fleet.claim: ACKs held for their claim (fleet-claim.c), or NULL */
	struct fleet_learn *learn;    /* learning shared (fleet-learn.c, fleet.learn_ms); NULL = off */
};

#endif /* FLEET_T_H */
