/* stats-t.h: every daemon counter, declared once. Types only.
 *
 * SPOA_STATS(X) lists them as X(name, type, owner, log, help):
 *   name   the field name in every struct below (and, prefixed, the metric name)
 *   type   counter (only ever grows) or gauge (goes up and down), as Prometheus says
 *   owner  who counts it: conn (struct conn_counts, per connection, no atomics: the
 *          worker folds and zeroes it), agent (struct agent_counts, per worker, folded
 *          as the difference since the last fold), worker (counted straight into the
 *          worker's struct worker_stats), daemon (the control thread's own), reader
 *          (the log outcome channel's reader thread: struct outlog_stats, spoa/outlog.h)
 *   log    the field's name in the `stopped` log line, or "" when it is not logged
 *          (tests and operators read those names: never rename one)
 *   help   one line for the metrics endpoint's HELP
 * The structs, the worker's fold, the totals and the `stopped` line (stats.c) are
 * generated from this list: a new counter is one line here plus the place it counts.
 * The `stopped` line lists its fields in this order. */
#ifndef STATS_T_H
#define STATS_T_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SPOA_STATS(X) \
	X(conns_open,       gauge,   worker, "",                 "SPOP connections open") \
	X(conns_total,      counter, worker, "connections",      "SPOP connections accepted by a worker") \
	X(requests,         counter, agent,  "requests",         "pay-request messages decided") \
	X(responses,        counter, agent,  "responses",        "pay-response messages observed") \
	X(reject,           counter, agent,  "rejected",         "decisions answered with verdict reject") \
	X(unknown,          counter, agent,  "unknown_messages", "SPOE messages with another name, ignored") \
	X(bad_args,         counter, agent,  "bad_args",         "arguments of the wrong type, treated as absent") \
	X(protocol_errors,  counter, worker, "protocol_errors",  "connections we closed for a protocol error") \
	X(resets,           counter, worker, "resets",           "connections the peer reset (EPIPE, ECONNRESET)") \
	X(idle_closed,      counter, worker, "idle_closed",      "connections closed after agent.idle_timeout_ms") \
	X(hello_timeouts,   counter, worker, "hello_timeouts",   "connections closed without a HELLO within agent.hello_timeout_ms") \
	X(frame_timeouts,   counter, worker, "frame_timeouts",   "connections closed with a frame unfinished for agent.frame_timeout_ms") \
	X(reclaimed,        counter, worker, "reclaimed",        "connections still without a HELLO closed to seat a new one when every slot was taken") \
	X(refused,          counter, daemon, "refused",          "connections refused over agent.max_connections") \
	X(frames_in,        counter, conn,   "",                 "SPOP frames received") \
	X(notify,           counter, conn,   "",                 "NOTIFY frames received") \
	X(ack,              counter, conn,   "",                 "ACK frames sent") \
	X(aborted,          counter, conn,   "",                 "NOTIFY frames with the ABORT flag, dropped") \
	X(allow,            counter, agent,  "",                 "decisions answered with verdict allow") \
	X(queue,            counter, agent,  "",                 "decisions answered with verdict queue") \
	X(truncated,        counter, agent,  "",                 "verdicts left out of an ACK for lack of frame room") \
	X(duplicates,       counter, agent,  "",                 "pay-request messages after the first in one NOTIFY, ignored") \
	X(disconnects_sent, counter, worker, "",                 "AGENT-DISCONNECT frames sent") \
	X(peer_disconnects, counter, worker, "",                 "HAPROXY-DISCONNECT frames received") \
	X(bytes_in,         counter, worker, "",                 "bytes read from SPOP sockets") \
	X(bytes_out,        counter, worker, "",                 "bytes written to SPOP sockets") \
	X(reads,            counter, worker, "",                 "read calls on SPOP sockets") \
	X(writes,           counter, worker, "",                 "send calls on SPOP sockets") \
	X(log_lines,        counter, reader, "log_lines",        "outcome log lines received on agent.outcome_socket") \
	X(log_malformed,    counter, reader, "log_malformed",    "outcome log lines that are not the expected JSON, dropped") \
	X(log_truncated,    counter, reader, "log_truncated",    "outcome log lines cut short (by HAProxy's len or the reader's buffer), dropped") \
	X(log_batches,      counter, reader, "",                 "recvmmsg calls that returned outcome log lines") \
	X(probes_sent,      counter, daemon, "probes_sent",      "active probes sent (backends[].probe_url)") \
	X(probes_failed,    counter, daemon, "probes_failed",    "active probes failed (transport, TLS, timeout or unexpected status)") \
	X(probes_skipped,   counter, daemon, "",                 "probes not sent because the previous one was still running") \
	X(webhook_events,   counter, daemon, "webhook_events",   "events emitted to webhooks (breaker, anomaly, shedding, budget cut, pin evictions)") \
	X(webhooks_sent,    counter, daemon, "webhooks_sent",    "webhook deliveries answered 2xx") \
	X(webhooks_retried, counter, daemon, "webhooks_retried", "webhook attempts after the first (backoff)") \
	X(webhooks_failed,  counter, daemon, "webhooks_failed",  "webhook deliveries given up after webhooks.retries") \
	X(webhooks_dropped, counter, daemon, "webhooks_dropped", "webhook deliveries dropped by a full queue (webhooks.queue)")

/* STATS_IF_<owner>(owner', x) expands to x when owner' is that owner: the structs below
 * pick their fields from the one list by owner. */
#define STATS_IS_conn_conn(x) x
#define STATS_IS_conn_agent(x)
#define STATS_IS_conn_worker(x)
#define STATS_IS_conn_daemon(x)
#define STATS_IS_conn_reader(x)
#define STATS_IS_agent_conn(x)
#define STATS_IS_agent_agent(x) x
#define STATS_IS_agent_worker(x)
#define STATS_IS_agent_daemon(x)
#define STATS_IS_agent_reader(x)
#define STATS_IS_worker_conn(x) x
#define STATS_IS_worker_agent(x) x
#define STATS_IS_worker_worker(x) x
#define STATS_IS_worker_daemon(x)
#define STATS_IS_worker_reader(x)
#define STATS_IS_reader_conn(x)
#define STATS_IS_reader_agent(x)
#define STATS_IS_reader_worker(x)
#define STATS_IS_reader_daemon(x)
#define STATS_IS_reader_reader(x) x
#define STATS_IF(want, owner, x) STATS_IS_##want##_##owner(x)

/* Per-connection counters; the worker adds them into its statistics and zeroes them. */
struct conn_counts {
#define X(name, type, owner, log, help) STATS_IF(conn, owner, uint64_t name;)
	SPOA_STATS(X)
#undef X
};

/* Per-worker agent counters (the agent runs on one worker: plain integers). */
struct agent_counts {
#define X(name, type, owner, log, help) STATS_IF(agent, owner, uint64_t name;)
	SPOA_STATS(X)
#undef X
};

/* What a worker publishes: every counter but the daemon's own. Single writer (the
 * worker), relaxed loads and stores (STAT_ADD), read by the control thread. */
struct worker_stats {
#define X(name, type, owner, log, help) STATS_IF(worker, owner, _Atomic uint64_t name;)
	SPOA_STATS(X)
#undef X
};

/* What the outcome log reader publishes: single writer (its thread), relaxed atomics,
 * read by the control thread. */
struct outlog_stats {
#define X(name, type, owner, log, help) STATS_IF(reader, owner, _Atomic uint64_t name;)
	SPOA_STATS(X)
#undef X
};

/* Every counter, summed over the workers, plus the daemon's and the reader's own. */
struct spoa_totals {
#define X(name, type, owner, log, help) uint64_t name;
	SPOA_STATS(X)
#undef X
};

/* One counter described for the `stopped` line and the metrics endpoint. */
struct stats_desc {
	const char *name, *type, *log, *help;
	size_t off;                 /* of its value in struct spoa_totals */
};

#endif /* STATS_T_H */
