/* outlog.h: the log outcome channel's reader. HAProxy logs one JSON line per payment
 * request to a unix datagram socket (agent.outcome_socket); a thread of its own, not a
 * decision worker, reads them in batches (recvmmsg), parses them (logline.h) and hands
 * each outcome to the engine with pol_observe on the engine worker slot it owns.
 * Bad lines are counted and dropped, never fatal. */
#ifndef OUTLOG_H
#define OUTLOG_H

#include <pthread.h>
#include <stdbool.h>

#include "hist.h"
#include "stats-t.h"

struct pol_engine;

/* Lines read per recvmmsg call. */
#define OUTLOG_BATCH 64
/* After each drain the reader naps this long before it waits again, so that lines
 * arriving one by one are read in batches: at most 1 / OUTLOG_NAP_US wake-ups per second
 * whatever the request rate (one per line without it: a wake-up costs more than the line).
 * Outcomes reach the engine up to this much later, nothing next to the seconds over
 * which breakers and estimates move; the socket's buffer holds far more than a nap's
 * worth of lines at any rate HAProxy sustains. */
#define OUTLOG_NAP_US 2000

struct outlog {
	struct pol_engine *engine;
	unsigned slot;           /* the engine worker slot this thread alone uses */
	int fd;                  /* the datagram socket, -1 when closed */
	int wake[2];             /* pipe: a byte written to wake[1] stops the thread */
	pthread_t thread;
	bool opened, bound, running;
	char path[108];
	char *bufs;              /* OUTLOG_BATCH × (LOGLINE_MAX + 1), allocated at open */
	struct outlog_stats st;  /* published counters (stats-t.h, owner reader) */
	struct hist upstream;    /* latencies the log lines report (metrics) */
};

/* Creates the socket at path (an existing socket file there is replaced), mode 0660,
 * with a receive buffer as large as the kernel allows us (a full buffer makes HAProxy
 * drop lines, counted in its DroppedLogs). Returns 0, or -1 with err filled. */
int outlog_open(struct outlog *r, const char *path, char *err, size_t errlen);
/* Starts the reader thread on engine slot `slot` (pol_engine_new counted it). Returns 0
 * or -1. */
int outlog_start(struct outlog *r, struct pol_engine *e, unsigned slot);
/* Reads what is already queued, then stops and joins the thread. Accepts a reader that
 * never started. */
void outlog_stop(struct outlog *r);
/* Closes and removes the socket, frees the buffers. Accepts a zeroed or closed reader. */
void outlog_close(struct outlog *r);

#endif /* OUTLOG_H */
