/* worker.h: worker threads. Each owns a libev loop and the connections handed to it;
 * it reads frames, asks the engine, writes ACKs. Nothing here blocks or allocates
 * after boot: connection slots and their buffers are made by whoever starts the worker
 * (daemon_new). A worker knows nothing of the daemon: it gets its settings and the
 * callback it owes the slots' owner in struct worker_conf at start. */
#ifndef WORKER_H
#define WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent.h"
#include "conn-t.h"
#include "hist.h"
#include "stats.h"

struct pol_engine;
struct worker;
struct claim_worker;

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
	ev_tstamp opened_at;       /* loop time the worker took it (the HELLO deadline) */
	ev_tstamp stuck_since;     /* bytes of a frame waiting since (0: none; frame deadline) */
	ev_tstamp closing_since;
	struct conn c;
};

/* What a worker is given at start; copied, so the caller's copy may go. */
struct worker_conf {
	struct pol_engine *engine;
	unsigned idx;              /* the worker's index in the engine (pol_decide's `worker`) */
	double idle_timeout_s;     /* close connections silent this long; <= 0: never */
	double hello_timeout_s;    /* close connections without a HELLO this long */
	double frame_timeout_s;    /* close connections whose `in` holds a frame this long */
	/* Called on the worker thread right after a slot was released (a seq_cst store of
	 * in_use = false), so the slots' owner can resume accepting; must not block. */
	void (*slot_freed)(void *arg);
	void *arg;
	struct claim_worker *claims; /* fleet.claim: this worker's held ACKs, or NULL */
};

struct worker {
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;             /* new connections, or stop */
	ev_prepare before_sleep;   /* tells the engine we hold none of its views */
	ev_timer sweep;            /* idle and lingering connections, once a second */
	struct worker_conf conf;
	struct agent agent;
	struct agent_counts agent_flushed;
	struct slot *live;         /* list of this worker's connections */
	pthread_mutex_t inbox_lock;
	struct slot *inbox;
	_Atomic unsigned nconns;
	_Atomic bool stopping;
	_Atomic bool reclaim;      /* set by worker_reclaim: close the HELLO-less connections */
	ev_tstamp stop_deadline;
	struct worker_stats st;    /* published counters (stats-t.h) */
	/* metrics: the time from a read's first byte to its answers written, once per
	 * decision of that read; the latencies pay-response reports */
	struct hist decide_lat, upstream;
};

/* Starts w's thread with its settings; returns 0, or -1 (nothing to undo). */
int worker_start(struct worker *w, const struct worker_conf *conf);
/* Control thread: hand a claimed slot (fd set) to w. */
void worker_give(struct worker *w, struct slot *s);
/* Control thread: ask w to drain its connections and exit; then join it. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
/* Control thread, every slot taken and a connection waiting: w closes its connections
 * that have not completed their HELLO for WORKER_RECLAIM_AGE_S, freeing their slots.
 * Under that pressure the HELLO deadline shrinks from agent.hello_timeout_ms to this: a
 * HAProxy completes its HELLO in milliseconds (and gives up after its own `timeout
 * hello`, 500 ms in haproxy/payspoa.spoe.conf), so only peers that hold slots without
 * speaking SPOP are closed, while the age spares HAProxy's connections in flight. */
#define WORKER_RECLAIM_AGE_S 0.2
void worker_reclaim(struct worker *w);
/* Any thread: connections given to w and not yet closed (relaxed: a load hint). */
unsigned worker_nconns(const struct worker *w);

#endif /* WORKER_H */
