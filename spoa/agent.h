/* agent.h: SPOE messages ↔ the engine. Decodes pay-request / pay-response arguments
 * into the engine's types, asks the engine, encodes the answer as set-var actions.
 * Never allocates, blocks or logs: it runs once per NOTIFY on a worker thread. */
#ifndef AGENT_H
#define AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "pay-t.h"
#include "spop-t.h"
#include "stats-t.h"

struct pol_engine;
struct claim_worker;

/* struct agent_counts is generated from the counter list in stats-t.h. */

struct agent {
	struct pol_engine *engine;
	unsigned worker;
	uint64_t now_us;     /* set by the worker once per batch */
	struct agent_counts counts;
	struct hist *upstream;  /* latencies pay-response reports (metrics), or NULL */
	struct claim_worker *claims; /* fleet.claim: new idempotency pins claimed first, or NULL */
	/* Set by agent_notify when its decision made a new idempotency pin and claims are on:
	 * the caller may hold the ACK (claim_hold) instead of sending it, and clears it. */
	bool hold;
	struct pay_verdict held;
};

/* Answer the NOTIFY payload [p, end): writes set-var actions into *w, never none, never
 * more than w allows (optional variables are dropped first when room runs out).
 * Returns 0, or -1 when the payload is malformed (the caller disconnects, status 4). */
int agent_notify(struct agent *a, const uint8_t *p, const uint8_t *end, struct spop_wbuf *w);

/* The verdict as txn.pay.* set-var actions into *w (what agent_notify writes for a
 * pay-request). Returns 0, or -1 when backend and verdict did not fit (nothing written). */
int agent_put_verdict(struct spop_wbuf *w, const struct pay_verdict *v);

#endif /* AGENT_H */
