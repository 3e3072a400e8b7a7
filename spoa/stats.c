/* stats.c: the folds, totals and report of the daemon counters, generated from
 * SPOA_STATS (stats-t.h). The folds run on the workers: no allocation, no locks. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "stats.h"

const struct stats_desc stats_desc[] = {
#define X(name, type, owner, log, help) { #name, #type, log, help, offsetof(struct spoa_totals, name) },
	SPOA_STATS(X)
#undef X
};
const size_t stats_ndesc = sizeof(stats_desc) / sizeof(stats_desc[0]);

void stats_fold_conn(struct worker_stats *ws, struct conn_counts *c)
{
#define X(name, type, owner, log, help) STATS_IF(conn, owner, STAT_ADD(ws->name, c->name);)
	SPOA_STATS(X)
#undef X
	memset(c, 0, sizeof(*c));
}

void stats_fold_agent(struct worker_stats *ws, const struct agent_counts *a, struct agent_counts *flushed)
{
#define X(name, type, owner, log, help) STATS_IF(agent, owner, STAT_ADD(ws->name, a->name - flushed->name);)
	SPOA_STATS(X)
#undef X
	*flushed = *a;
}

void stats_sum(struct spoa_totals *t, const struct worker_stats *ws)
{
#define X(name, type, owner, log, help) STATS_IF(worker, owner, t->name += STAT_GET(ws->name);)
	SPOA_STATS(X)
#undef X
}

void stats_sum_reader(struct spoa_totals *t, const struct outlog_stats *rs)
{
#define X(name, type, owner, log, help) STATS_IF(reader, owner, t->name += STAT_GET(rs->name);)
	SPOA_STATS(X)
#undef X
}

/* The run's totals in the `stopped` line: what an operator checks first after a restart
 * (were there protocol errors? resets? refusals?). */
void stats_log_stopped(const struct spoa_totals *t, const char *const *extra, size_t nextra)
{
	const char *kv[2 * sizeof(stats_desc) / sizeof(stats_desc[0]) + 8];
	char val[sizeof(stats_desc) / sizeof(stats_desc[0])][24];
	size_t i, n = 0;

	for (i = 0; i < stats_ndesc; i++) {
		const struct stats_desc *d = &stats_desc[i];

		if (!d->log[0])
			continue;
		snprintf(val[i], sizeof(val[i]), "%llu",
		         (unsigned long long)*(const uint64_t *)((const char *)t + d->off));
		kv[n++] = d->log;
		kv[n++] = val[i];
	}
	for (i = 0; i < 2 * nextra && n < sizeof(kv) / sizeof(kv[0]); i++)
		kv[n++] = extra[i];
	log_json_kv(LOG_LVL_INFO, "stopped", kv, n / 2);
}
