/* fleet.h: pins shared by a fleet of nodes through Redis, on the control thread's loop.
 * Never on the decision path: workers journal their pins (pol_engine_journal), the
 * control thread publishes them and applies the other nodes'. */
#ifndef FLEET_H
#define FLEET_H

#include "fleet-t.h"

/* Before workers decide: turns on the engine's pin journal. cfg->redis must be set.
 * Returns 0, or -1 with err filled. */
int fleet_prepare(struct fleet *f, struct pol_engine *e, const struct pol_fleet *cfg, char *err, size_t errlen);
/* On the control thread's loop: connects (and keeps reconnecting with backoff), starts
 * the heartbeat and the journal drain. Never fails: a fleet without Redis serves alone. */
void fleet_start(struct fleet *f, struct ev_loop *loop);
/* After the workers stopped: publishes nothing more, closes the connections, logs the
 * totals (`fleet_stopped`). Accepts a fleet never prepared. */
void fleet_stop(struct fleet *f);
/* Frees what fleet_prepare allocated; accepts a fleet never prepared (zeroed). */
void fleet_free(struct fleet *f);
/* The counters now (lag percentiles computed from the histogram). */
void fleet_stats(struct fleet *f, struct fleet_stats *out);

/* Every field of FLEET_STATS, in list order, for a metrics endpoint; fleet_stats_ndesc
 * entries. */
extern const struct fleet_stats_desc fleet_stats_desc[];
extern const size_t fleet_stats_ndesc;

/* ---- for fleet-lease.c: the command connection, shared -------------------------------- */
enum { FP_HEARTBEAT, FP_PUBLISH, FP_SCAN, FP_LEASE };
struct redisReply;
typedef void (redisCallbackFn)(struct redisAsyncContext *, void *, void *);
/* Sends one command, timed (a reply later than fleet.timeout_ms drops the connection);
 * its callback must call fleet_pop first. Returns 0, or -1 (not sent). */
int fleet_send(struct fleet *f, redisCallbackFn *cb, uint8_t kind, uint8_t table, uint64_t key, int argc,
               const char **argv, const size_t *argvlen);
struct fleet_pending fleet_pop(struct fleet *f);
/* A reply: false for NULL (the connection went) or an error reply (counted, logged). */
bool fleet_reply_ok(struct fleet *f, const struct redisReply *r);

/* fleet-lease.c, called by fleet.c: turned on by fleet.lease_ms (prepare: before the
 * workers decide; returns 0 or -1 with err), a timer on the loop, stopped, freed. */
int fleet_lease_prepare(struct fleet *f, char *err, size_t errlen);
void fleet_lease_start(struct fleet *f);
void fleet_lease_stop(struct fleet *f);
void fleet_lease_free(struct fleet *f);

#endif /* FLEET_H */
