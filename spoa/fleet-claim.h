/* fleet-claim.h: a keyed first attempt's ACK held until the fleet's claim of its
 * idempotency key in Redis answers (fleet.claim). The worker never waits: it parks the
 * ACK, pushes the claim into a wait-free ring and serves other frames; the control thread
 * sends the claims, batched, and rings the worker back with the answers; a worker timer
 * sends what is still held after fleet.claim_timeout_ms as decided. */
#ifndef FLEET_CLAIM_H
#define FLEET_CLAIM_H

#include "fleet-claim-t.h"

/* ---- control thread ---- */

/* After fleet_prepare, before the workers start: claims for nworkers workers, attached
 * to f (f->claim). Returns it, or NULL with err filled (no memory). */
struct fleet_claim *fleet_claim_new(struct fleet *f, struct pol_engine *e, unsigned nworkers, int timeout_ms,
                                    char *err, size_t errlen);
void fleet_claim_free(struct fleet_claim *fc); /* accepts NULL; the workers have stopped */
void fleet_claim_start(struct fleet_claim *fc, struct ev_loop *loop);
/* After the workers stopped (their loops are gone), before the fleet drops Redis. */
void fleet_claim_stop(struct fleet_claim *fc);
/* Redis up and resynchronised (true), or gone (false): workers hold ACKs only while live. */
void fleet_claim_set_live(struct fleet_claim *fc, bool live);
/* Sends what the workers' rings hold (or answers CLAIM_UNKNOWN when not live). */
void fleet_claim_drain(struct fleet_claim *fc);
/* Adds the claim counters and wait percentiles to st. */
void fleet_claim_stats(struct fleet_claim *fc, struct fleet_stats *st);
/* Worker idx's side, for the worker (NULL when fc is NULL). */
struct claim_worker *fleet_claim_worker(struct fleet_claim *fc, unsigned idx);

/* ---- worker thread ---- */

/* On the worker's loop, before it serves: the reply wake-up and the deadline timer. kick
 * is called after held ACKs were written into a connection's `out`. */
void claim_worker_start(struct claim_worker *cw, struct ev_loop *loop, claim_kick_fn *kick, void *arg);
/* Holds the ACK of v (a decision with v->claim) for frame (stream_id, frame_id) of c and
 * sends the claim. Returns 0 when held (the caller writes nothing), -1 when the ACK must
 * go now (not live, table or ring full: counted). Wait-free, no allocation. */
int claim_hold(struct claim_worker *cw, struct conn *c, uint64_t stream_id, uint64_t frame_id,
               const struct pay_verdict *v, uint64_t now_us);
/* c is about to say goodbye: its held ACKs are written into c->out now, as decided (the
 * caller flushes). */
void claim_conn_flush(struct claim_worker *cw, struct conn *c);
/* c is closed: its held ACKs are dropped (HAProxy has given up on them). */
void claim_conn_gone(struct claim_worker *cw, struct conn *c);
/* The worker stops: every held ACK is sent as decided. */
void claim_release_all(struct claim_worker *cw);
/* ACKs held now (tests). */
unsigned claim_held_count(const struct claim_worker *cw);

/* Percentile q (0..1) of a wait histogram (CLAIM_WAIT_BINS bins), µs: the bin's upper
 * bound, max_us for the open last bin; 0 when empty. */
uint64_t claim_wait_pct(const uint64_t *bins, uint64_t max_us, double q);

#endif /* FLEET_CLAIM_H */
