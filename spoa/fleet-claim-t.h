/* fleet-claim-t.h: ACKs held until the fleet's claim of their idempotency key answers
 * (fleet-claim.c). Types only. */
#ifndef FLEET_CLAIM_T_H
#define FLEET_CLAIM_T_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet-t.h"
#include "policy.h"

#define CLAIM_HELD      1024u  /* ACKs one worker may hold at once (a power of two) */
#define CLAIM_RING      2048u  /* requests (and replies) in flight per worker (a power of two, ≥ CLAIM_HELD) */
#define CLAIM_WAIT_BINS 4096u  /* wait histogram: 10 µs bins up to 40.95 ms, the last one open */
#define CLAIM_WAIT_BIN_US 10u

/* What the fleet said about a claim. */
enum claim_result {
	CLAIM_WON = 0,   /* the key is this node's (or the fleet holds it on the same account) */
	CLAIM_LOST,      /* the fleet holds it on another account: route there (backend) */
	CLAIM_GONE,      /* ... on an account this policy does not have: refused (pin:gone) */
	CLAIM_UNKNOWN,   /* no answer (Redis away, dropped, not sent): sent as decided */
};

struct claim_req {   /* worker → control thread */
	uint64_t key;        /* the idempotency table's key */
	uint32_t seq;        /* the held ACK (claim_worker.held[seq % CLAIM_HELD]) */
	uint8_t id;          /* the pin id the worker's decision claimed */
};

struct claim_rep {   /* control thread → worker */
	const char *backend; /* CLAIM_LOST: the engine's interned name (stable) */
	uint32_t seq;
	uint8_t result;      /* enum claim_result */
};

/* A single-producer single-consumer ring (head written by the producer, tail by the
 * consumer, both with release): wait-free, no allocation. */
struct claim_ring_idx {
	_Atomic uint32_t head __attribute__((aligned(64)));
	_Atomic uint32_t tail __attribute__((aligned(64)));
};

struct conn;

/* An ACK held: the verdict as the worker decided it, with its strings copied (the
 * policy view's may go at the worker's next quiescent point), and where it goes. */
struct claim_held {
	struct conn *c;          /* NULL: free (or already sent) */
	uint64_t stream_id, frame_id;
	uint64_t since_us;       /* held since (the decision's clock) */
	uint32_t seq;
	bool ready;              /* answered but `out` had no room: sent at the next timer */
	struct pay_verdict v;    /* backend, class_name point into the copies below */
	char backend[64], class_name[64];
};

struct fleet_claim;

/* Called after held ACKs were written into c->out: the worker flushes the connection
 * (and may close it: the claim code touches c no more after the call). */
typedef void claim_kick_fn(void *arg, struct conn *c);

/* One worker's side. The rings are shared with the control thread; the rest is the
 * worker's alone, but for the counters (relaxed single-writer stores, read by anyone). */
struct claim_worker {
	struct fleet_claim *fc;
	struct claim_ring_idx rq_i, rp_i;
	struct claim_req rq[CLAIM_RING];
	struct claim_rep rp[CLAIM_RING];
	/* the worker's own */
	struct ev_loop *loop;    /* NULL until claim_worker_start */
	ev_async wake;           /* replies came (control thread → worker) */
	ev_timer timer;          /* the oldest held ACK's deadline */
	claim_kick_fn *kick;
	void *kick_arg;
	uint32_t h_head, h_tail; /* seqs [h_tail, h_head) may be held; h_tail is the oldest */
	uint32_t nheld;
	struct claim_held held[CLAIM_HELD];
	/* counters (this worker writes them) */
	_Atomic uint64_t held_n, unconfirmed, skipped, held_full, rerouted, refused, late;
	_Atomic uint64_t wait_bin[CLAIM_WAIT_BINS];
	_Atomic uint64_t wait_max_us;
};

#define CLAIM_BATCH   128u  /* keys per claim script */
#define CLAIM_BATCHES 32u   /* scripts in flight at most */

/* One claim script in flight: its keys' texts (struct fleet_batch) and whose they are. */
struct claim_batch {
	struct fleet_claim *fc;
	bool busy;               /* sent, its reply not yet in */
	struct fleet_batch b;
	uint16_t worker[CLAIM_BATCH];
	uint32_t seq[CLAIM_BATCH];
	uint8_t id[CLAIM_BATCH];
};

/* The control thread's side (one per daemon). */
struct fleet_claim {
	struct fleet *f;
	struct pol_engine *e;
	unsigned nworkers;
	struct claim_worker *w;  /* nworkers */
	_Atomic bool live;       /* Redis up and resynchronised: workers hold ACKs */
	uint64_t timeout_us;
	struct ev_loop *loop;    /* the control thread's, NULL until fleet_claim_start */
	ev_async wake;           /* claims came (worker → control thread) */
	struct claim_batch *batch; /* CLAIM_BATCHES, a ring: b_tail awaits its reply first */
	uint32_t b_head, b_tail;
	const char *argv[3 + 4 * CLAIM_BATCH + 2];
	size_t argvlen[3 + 4 * CLAIM_BATCH + 2];
	/* counters (the control thread writes them) */
	uint64_t sent, won, lost, failed, replies_full;
	uint64_t sum_bin[CLAIM_WAIT_BINS]; /* fleet_claim_stats' sum of the workers' waits */
};

#endif /* FLEET_CLAIM_T_H */
