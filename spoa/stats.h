/* stats.h: folds and reports the daemon's counters (the list is in stats-t.h). */
#ifndef STATS_H
#define STATS_H

#include "stats-t.h"

#define STAT_ADD(field, n) atomic_store_explicit(&(field), \
	atomic_load_explicit(&(field), memory_order_relaxed) + (n), memory_order_relaxed)
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* Every counter of SPOA_STATS, in list order; stats_ndesc entries. */
extern const struct stats_desc stats_desc[];
extern const size_t stats_ndesc;

/* Worker thread: adds a connection's counters into ws and zeroes them. */
void stats_fold_conn(struct worker_stats *ws, struct conn_counts *c);
/* Worker thread: adds what the agent counted since the last fold (*flushed) into ws,
 * then remembers *a as flushed. */
void stats_fold_agent(struct worker_stats *ws, const struct agent_counts *a, struct agent_counts *flushed);
/* Control thread: adds one worker's published counters into *t. */
void stats_sum(struct spoa_totals *t, const struct worker_stats *ws);
/* Control thread: adds the outcome log reader's published counters into *t. */
void stats_sum_reader(struct spoa_totals *t, const struct outlog_stats *rs);
/* Control thread: the `stopped` log line: every counter with a log name, in list order. */
/* extra: npairs more key/value strings for the line (the engine's figures). */
void stats_log_stopped(const struct spoa_totals *t, const char *const *extra, size_t nextra);

#endif /* STATS_H */
