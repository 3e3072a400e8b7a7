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

#endif /* FLEET_H */
