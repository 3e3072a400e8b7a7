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

/* For fleet-claim.c, fleet-lease.c and fleet-learn.c, on the control thread.
 * fleet_command sends one command on the command connection, timed by
 * fleet.timeout_ms like the fleet's own; cb gets priv and
 * must call fleet_command_done first (a NULL reply: the connection went). Returns 0, or
 * -1 (not sent). fleet_live: pins are published as they come (Redis up, resync begun). */
struct redisAsyncContext;
struct redisReply;
int fleet_command(struct fleet *f, void (*cb)(struct redisAsyncContext *, void *, void *), void *priv, int argc,
                  const char **argv, const size_t *argvlen);
void fleet_command_done(struct fleet *f);
bool fleet_live(const struct fleet *f);
/* A reply is usable: not NULL, not an error (counted and logged). */
bool fleet_reply_ok(struct fleet *f, const struct redisReply *r);
/* Adds a pin's texts to b (room checked by the caller); fleet_batch_argv makes b the
 * publishing script's arguments (3 + 4 n + 2 of them, pointing into b) and returns argc.
 * The script answers per pin 1 (written, published), 0 (Redis held the same value) or
 * the value Redis holds. */
void fleet_batch_add(struct fleet *f, struct fleet_batch *b, unsigned table, uint64_t key, const char *backend,
                     const char *account, uint32_t ttl_ms, bool force, uint64_t wall_us);
int fleet_batch_argv(struct fleet *f, struct fleet_batch *b, const char **argv, size_t *argvlen);

/* Every field of FLEET_STATS, in list order, for a metrics endpoint; fleet_stats_ndesc
 * entries. */
extern const struct fleet_stats_desc fleet_stats_desc[];
extern const size_t fleet_stats_ndesc;

/* fleet-lease.c, called by fleet.c: turned on by fleet.lease_ms (prepare: before the
 * workers decide; returns 0 or -1 with err), a timer on the loop, stopped, freed. */
int fleet_lease_prepare(struct fleet *f, char *err, size_t errlen);
void fleet_lease_start(struct fleet *f);
void fleet_lease_stop(struct fleet *f);
void fleet_lease_free(struct fleet *f);

/* fleet-learn.c, called by fleet.c: turned on by fleet.learn_ms (prepare: before the
 * workers decide; 0 or -1 with err), a timer on the loop, stopped, freed; its channel
 * (NULL when off), subscribed beside the pins', and a message received on it. */
int fleet_learn_prepare(struct fleet *f, char *err, size_t errlen);
void fleet_learn_start(struct fleet *f);
void fleet_learn_stop(struct fleet *f);
void fleet_learn_free(struct fleet *f);
const char *fleet_learn_channel(const struct fleet *f);
void fleet_learn_on_message(struct fleet *f, const char *m, size_t len);

#endif /* FLEET_H */
