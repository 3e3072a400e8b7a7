/* webhook.h: signed webhooks. Events seen on the control thread (breaker, anomaly,
 * shedding, budget cuts, pin evictions) are POSTed as JSON to the policy's webhooks.urls
 * with a Stripe-style signature, from a bounded queue, with retries and backoff. */
#ifndef WEBHOOK_H
#define WEBHOOK_H

#include <ev.h>
#include <stdint.h>

#include "httpc.h"
#include "policy.h"

struct webhook;

struct webhook_counts {
	uint64_t events;             /* events emitted (once per event, whatever the URLs) */
	uint64_t sent;               /* deliveries answered 2xx */
	uint64_t retried;            /* attempts after the first */
	uint64_t failed;             /* deliveries given up after webhooks.retries */
	uint64_t dropped;            /* deliveries refused by a full queue */
};

/* From the policy's webhooks section (the secret is read now: call it before dropping
 * privileges). The queue (webhooks.queue items of ~1.4 KB, each item's libcurl handle
 * made at its first use) is allocated even without URLs, so that a reload can add some;
 * without URLs nothing is emitted. NULL with err filled: the secret cannot be read or is
 * empty, or out of memory. */
struct webhook *webhook_new(struct ev_loop *loop, struct httpc *h, const struct policy *p, char *err,
                            size_t errlen);
/* Reload: new URLs, secret and attempt settings for the events to come (deliveries under
 * way keep theirs; the queue keeps its size). -1 with err (the old settings stay). */
int webhook_reconfigure(struct webhook *w, const struct policy *p, char *err, size_t errlen);
/* Deliveries under way are cancelled; accepts NULL. */
void webhook_free(struct webhook *w);

/* Each tick (control thread): compares what the engine shows now with the last tick and
 * emits an event per change. The first call after webhook_new or webhook_rebase only
 * records (a reload must not look like a storm of changes). */
void webhook_watch(struct webhook *w, struct pol_engine *e, uint64_t now_us);
void webhook_rebase(struct webhook *w);

/* Queues one event (type "breaker.opened", data a JSON object) for every URL. */
void webhook_emit(struct webhook *w, const char *type, const char *data_json);

void webhook_get_counts(const struct webhook *w, struct webhook_counts *c);

/* "t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>" into out (>= 80 bytes plus
 * the digits of t). Returns 0, or -1 (out too small, HMAC failure). */
int webhook_sign(const uint8_t *secret, size_t secretlen, long long t, const char *body, size_t len,
                 char *out, size_t outlen);

#endif /* WEBHOOK_H */
