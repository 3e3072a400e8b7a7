/* daemon.h: the process: listeners, workers, the control loop (signals, reload, tick). */
#ifndef DAEMON_H
#define DAEMON_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "admin.h"
#include "httpc.h"
#include "fleet-t.h"
#include "listen.h"
#include "metrics.h"
#include "outlog.h"
#include "policy.h"
#include "probe.h"
#include "sdnotify.h"
#include "snap.h"
#include "stats-t.h"
#include "webhook.h"

struct worker;
struct slot;

struct daemon_opts {
	const char *config;          /* policy file */
	const char *listen[POL_MAX_LISTENERS];
	int nlisten;                 /* > 0 overrides the policy's listeners */
	int workers;                 /* > 0 overrides the policy */
	int debug;
};

struct daemon {
	struct daemon_opts opts;
	struct pol_engine *engine;
	struct pol_agent agent;      /* settings in force (copied at boot) */
	struct ev_loop *loop;        /* control thread */
	unsigned nworkers;
	struct worker *workers;
	struct slot *slots;
	unsigned nslots;
	unsigned next_slot, next_worker;
	uint8_t *bufs;               /* every slot's in + out buffers, one allocation */
	size_t in_size, out_size;
	int nlisten;
	int lfd[POL_MAX_LISTENERS];
	ev_io accept_io[POL_MAX_LISTENERS];
	struct listen_addr laddr[POL_MAX_LISTENERS];
	ev_timer accept_pause;       /* after EMFILE or an accept error */
	ev_async slot_freed;         /* rung by a worker that freed a slot while accepting paused */
	_Atomic bool accept_paused;  /* read by workers (on_worker_slot_freed) */
	int reserve_fd;              /* closed to accept-and-drop on EMFILE */
	int held_fd;                 /* accepted with every slot taken, waiting for a reclaimed one */
	bool held_unix;
	ev_tstamp held_since;
	ev_timer held_timer;         /* asks for reclaims, refuses held_fd after HOLD_S */
	ev_signal sig_term, sig_int, sig_hup, sig_usr1;
	ev_timer tick;
	/* snapshots (agent.state_file): the control thread captures, a thread of its own
	 * encodes and writes, snap_done brings the result back */
	ev_timer snap_timer;
	ev_async snap_done;
	pthread_t snap_thread;
	bool snap_busy, snap_again;  /* again: asked for while one was being written */
	struct pol_state *snap_st;
	const char *snap_why;
	uint64_t snap_wall_us, snap_t0_us;
	int snap_rc;
	char snap_err[256];
	struct snap_result snap_res;
	/* the log outcome channel (agent.outcome_socket): its reader owns engine slot
	 * nworkers, after the decision workers' */
	struct outlog outlog;
	/* the fleet (fleet.redis): pins shared through Redis, on this loop; off when
	 * fleet_on is false */
	struct fleet fleet;
	bool fleet_on;
	uint64_t refused;            /* connections over max_connections (stats-t.h) */
	/* operations (admin.c, metrics.c): served on this loop, never on a worker */
	struct admin admin;
	struct metrics metrics;
	uint64_t started_us;         /* monotonic, at daemon_run */
	uint64_t snap_last_wall_us;  /* wall clock of the last snapshot written, 0 none */
	uint64_t snap_last_us;       /* how long it took */
	uint64_t snap_written, snap_failed;
	uint64_t pin_evicted[3];     /* the engine's pin_evicted at the last warning */
	/* operations (ops.c): systemd notifications, probes, webhooks */
	struct sdn sdn;
	ev_timer watchdog;           /* WATCHDOG=1 every WATCHDOG_USEC / 2 */
	struct httpc *httpc;         /* libcurl multi on the control loop */
	struct probe_set *probes;
	struct probe_counts probe_old; /* counts of the probe sets a reload replaced */
	struct webhook *webhook;
	int exit_code;
};

/* Build everything from the options; returns NULL with err filled. */
struct daemon *daemon_new(const struct daemon_opts *o, char *err, size_t errlen);
/* Run until SIGTERM/SIGINT; drains, then returns the exit code. */
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);

/* Control thread, for the admin socket: reload the policy file as SIGHUP does (0, or -1
 * with err filled, the old policy kept); have a snapshot written as SIGUSR1 does (0, or -1
 * when no agent.state_file is set); every daemon counter summed (stats-t.h). */
int daemon_reload(struct daemon *d, char *err, size_t errlen);
int daemon_save(struct daemon *d, const char *why);
void daemon_totals(struct daemon *d, struct spoa_totals *t);

#endif /* DAEMON_H */
