/* outlog.h: the log outcome channel's reader. HAProxy logs one JSON line per payment
 * request to a unix datagram socket (agent.outcome_socket); a thread of its own, not a
 * decision worker, reads them in batches (recvmmsg), parses them (logline.h) and hands
 * each batch to the engine (pol_observe_batch) on the engine worker slot it owns.
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
/* Batches one drain reads at most before the reader looks at its stop pipe again. */
#define OUTLOG_DRAIN_BATCHES 16
/* While lines keep coming, the reader naps between drains, so that lines arriving one
 * by one are read in batches (a wake-up costs more than a line): at most OUTLOG_NAP_US,
 * and short enough that a nap's lines fill a quarter of the socket's queue at the rate
 * last seen. That queue is net.unix.max_dgram_qlen datagrams whatever the buffer's
 * bytes (10 by the kernel's default, 512 once systemd set it at boot): past it HAProxy
 * drops lines (its DroppedLogs). A nap that would be under OUTLOG_NAP_MIN_US is not
 * taken: the reader waits in poll and reads what each wake-up finds. Outcomes reach the
 * engine at most a nap later: a fifth of the control thread's 50 ms tick, which merges
 * them, and nothing next to the unanswered-decision grace (200 ms at least) or the
 * seconds over which breakers and estimates move. 10 ms rather than 2: a nap's wake-up
 * costs ~13 µs on a VM, and at 2,000 lines/s the reader woke every 4 lines. */
#define OUTLOG_NAP_US 10000
#define OUTLOG_NAP_MIN_US 100
/* Below this net.unix.max_dgram_qlen the daemon warns at start (systemd's default). */
#define OUTLOG_QLEN_GOOD 512

struct outlog {
	struct pol_engine *engine;
	unsigned slot;           /* the engine worker slot this thread alone uses */
	int fd;                  /* the datagram socket, -1 when closed */
	int wake[2];             /* pipe: a byte written to wake[1] stops the thread */
	pthread_t thread;
	bool opened, bound, running;
	char path[108];
	char *bufs;              /* OUTLOG_BATCH × (LOGLINE_MAX + 1), allocated at open */
	unsigned qlen;           /* net.unix.max_dgram_qlen at open (see OUTLOG_NAP_US) */
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
