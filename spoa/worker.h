/* worker.h: worker threads. Each owns a libev loop and the connections handed to it;
 * it reads frames, asks the engine, writes ACKs. Nothing here blocks or allocates
 * after boot: connection slots and their buffers are made by daemon_new. */
#ifndef WORKER_H
#define WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent.h"
#include "conn-t.h"

struct daemon;
struct worker;

/* A connection slot. `in_use` is the only field two threads touch: the control thread
 * claims a free slot (acquire) and the owning worker frees it (release). */
struct slot {
	ev_io io;                  /* first: the libev callback gets &slot->io */
	int fd;
	_Atomic bool in_use;
	bool reading;              /* EV_READ currently requested */
	bool writing;              /* EV_WRITE currently requested */
	bool shut;                 /* our last frame is out (SHUT_WR): reading only to see EOF */
	struct worker *w;
	struct slot *next, *prev;  /* the worker's list of live connections */
	struct slot *inbox_next;   /* hand-over from the control thread */
	ev_tstamp last_active;     /* loop time of the last byte in or out */
	ev_tstamp closing_since;
	struct conn c;
};

/* Counters a worker writes and the control thread reads: single writer, relaxed. */
struct worker_stats {
	_Atomic uint64_t conns_open, conns_total, frames_in, notify, ack, aborted;
	_Atomic uint64_t requests, responses, unknown, bad_args, allow, queue, reject, truncated;
	_Atomic uint64_t duplicates;
	_Atomic uint64_t disconnects_sent, protocol_errors, peer_disconnects, resets, idle_closed;
	_Atomic uint64_t bytes_in, bytes_out, reads, writes;
};

struct worker {
	unsigned idx;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;             /* new connections, or stop */
	ev_prepare before_sleep;   /* tells the engine we hold none of its views */
	ev_timer sweep;            /* idle and lingering connections, once a second */
	struct daemon *d;
	struct agent agent;
	struct agent_counts agent_flushed;
	struct conn_counts conn_flushed;
	struct slot *live;         /* list of this worker's connections */
	pthread_mutex_t inbox_lock;
	struct slot *inbox;
	_Atomic unsigned nconns;
	_Atomic bool stopping;
	ev_tstamp stop_deadline;
	struct worker_stats st;
};

int worker_start(struct worker *w, struct daemon *d, unsigned idx);
/* Control thread: hand a claimed slot (fd set) to w. */
void worker_give(struct worker *w, struct slot *s);
/* Control thread: ask w to drain its connections and exit; then join it. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);

#define STAT_ADD(field, n) atomic_store_explicit(&(field), \
	atomic_load_explicit(&(field), memory_order_relaxed) + (n), memory_order_relaxed)
#define STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

#endif /* WORKER_H */
