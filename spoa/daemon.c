/* daemon.c: the control thread. Listens and hands connections to workers, handles
 * signals (SIGTERM/SIGINT drain and exit, SIGHUP reload, SIGUSR1 snapshot), runs the
 * engine's tick, loads the snapshot at start and has snapshots written.
 * Everything that may block or allocate happens here, never on a worker. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "daemon.h"
#include "fleet-claim.h"
#include "fleet.h"
#include "log.h"
#include "ops.h"
#include "stats.h"
#include "worker.h"

#define TICK_S        0.05  /* engine tick (DESIGN.md §1) */
#define OUT_BUF_SIZE  (64 * 1024)
#define ACCEPT_BURST  64
#define HOLD_S        1.0   /* how long a connection waits for a reclaimed slot */
#define RECLAIM_EVERY_S 0.1 /* the workers are asked again this often while one waits */

static void accept_set(struct daemon *d, bool on)
{
	for (int i = 0; i < d->nlisten; i++) {
		if (on)
			ev_io_start(d->loop, &d->accept_io[i]);
		else
			ev_io_stop(d->loop, &d->accept_io[i]);
	}
	atomic_store(&d->accept_paused, !on);
}

/* Worker thread (worker_conf.slot_freed), right after it released a slot (seq_cst
 * store of in_use). With the seq_cst pair in accept_full (store accept_paused, then load
 * in_use), either this load sees the pause or the control thread sees the free slot:
 * the wake-up is never lost. */
static void on_worker_slot_freed(void *arg)
{
	struct daemon *d = arg;

	if (atomic_load(&d->accept_paused))
		ev_async_send(d->loop, &d->slot_freed);
}

/* Every slot is taken: stop accepting until one is freed. Pending connections wait in
 * the listen backlog (HAProxy's connect timeout decides how long). */
static void accept_full(struct daemon *d)
{
	accept_set(d, false);
	for (unsigned i = 0; i < d->nslots; i++) {
		if (!atomic_load(&d->slots[i].in_use)) {
			accept_set(d, true); /* freed while we were pausing */
			return;
		}
	}
}

static struct slot *slot_claim(struct daemon *d)
{
	for (unsigned i = 0; i < d->nslots; i++) {
		struct slot *s = &d->slots[(d->next_slot + i) % d->nslots];
		bool expect = false;

		if (atomic_compare_exchange_strong_explicit(&s->in_use, &expect, true,
		                                            memory_order_acquire, memory_order_relaxed)) {
			d->next_slot = (unsigned)(s - d->slots + 1) % d->nslots;
			return s;
		}
	}
	return NULL;
}

static struct worker *worker_pick(struct daemon *d)
{
	struct worker *best = NULL;
	unsigned best_n = ~0u;

	/* Fewest connections; ties rotate so equal workers share new connections. */
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[(d->next_worker + i) % d->nworkers];
		unsigned n = worker_nconns(w);

		if (n < best_n) {
			best = w;
			best_n = n;
		}
	}
	d->next_worker = (unsigned)(best - d->workers + 1) % d->nworkers;
	return best;
}

/* Stop accepting for `seconds`. The timer is set anew each time: a one-shot libev
 * timer that has fired keeps its (spent) remaining time, and restarting it as is
 * would fire at once and spin the accept loop. */
static void accept_pause(struct daemon *d, double seconds)
{
	accept_set(d, false);
	ev_timer_stop(d->loop, &d->accept_pause);
	ev_timer_set(&d->accept_pause, seconds, 0.);
	ev_timer_start(d->loop, &d->accept_pause);
}

/* Out of descriptors: the pending connections would wake the loop forever, so each
 * is taken with the reserve descriptor and closed at once (HAProxy retries it later),
 * then accepting pauses 100 ms, long enough for connections to end. */
static void accept_shed(struct daemon *d, int lfd, int err)
{
	unsigned dropped = 0;
	char n[16];

	while (d->reserve_fd >= 0 && dropped < ACCEPT_BURST) {
		int fd;

		close(d->reserve_fd);
		fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		dropped++;
	}
	snprintf(n, sizeof(n), "%u", dropped);
	log_json(LOG_LVL_WARNING, "accept_emfile", "error", strerror(err), "dropped", n, NULL);
	accept_pause(d, 0.1);
}

/* Hands the accepted fd to the claimed slot s, and the slot to a worker. */
static void slot_seat(struct daemon *d, struct slot *s, int fd, bool is_unix)
{
	/* ACKs leave in batches already: Nagle would only hold the last one back until
	 * HAProxy acknowledges the previous segment (~40 ms). */
	if (!is_unix)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	s->fd = fd;
	conn_init(&s->c, s->c.in, d->in_size, s->c.out, d->out_size, (uint32_t)d->agent.max_frame_size);
	worker_give(worker_pick(d), s);
}

/* The held connection (on_accept) takes a slot freed since, and accepting resumes. */
static void held_seat(struct daemon *d)
{
	struct slot *s;

	if (d->held_fd < 0 || !(s = slot_claim(d)))
		return;
	slot_seat(d, s, d->held_fd, d->held_unix);
	d->held_fd = -1;
	ev_timer_stop(d->loop, &d->held_timer);
	if (!ev_is_active(&d->accept_pause))
		accept_set(d, true);
}

/* While a connection is held: every RECLAIM_EVERY_S, the workers close the connections
 * that have not spoken SPOP in time (worker_reclaim). No slot came free within HOLD_S:
 * the connection is refused, as before reclaiming existed, and accepting resumes when a
 * slot frees (accept_full). */
static void on_held_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;

	if (d->held_fd < 0) {
		ev_timer_stop(loop, t);
		return;
	}
	if (ev_now(loop) - d->held_since < HOLD_S) {
		for (unsigned k = 0; k < d->nworkers; k++)
			worker_reclaim(&d->workers[k]);
		held_seat(d); /* a slot freed meanwhile */
		return;
	}
	ev_timer_stop(loop, t);
	close(d->held_fd);
	d->held_fd = -1;
	d->refused++;
	if (d->refused == 1 || d->refused % 1000 == 0)
		log_json(LOG_LVL_WARNING, "max_connections_reached", NULL);
	accept_full(d);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct daemon *d = io->data;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct slot *s;
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				accept_shed(d, io->fd, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_pause(d, 0.1); /* ENOBUFS, ENOMEM...: the listener would fire again at once */
			return;
		}
		s = slot_claim(d);
		if (!s) {
			/* Every slot taken: this connection waits (accepting paused) while the
			 * workers close their oldest HELLO-less ones; it gets the first slot freed,
			 * or is refused after HOLD_S. Peers that hold slots without speaking SPOP
			 * cannot lock a HAProxy out. */
			d->held_fd = fd;
			d->held_unix = d->laddr[io - d->accept_io].ss.ss_family == AF_UNIX;
			d->held_since = ev_now(loop);
			accept_set(d, false);
			ev_timer_stop(d->loop, &d->held_timer);
			ev_timer_set(&d->held_timer, 0., RECLAIM_EVERY_S);
			ev_timer_start(d->loop, &d->held_timer); /* asks the workers at once */
			return;
		}
		slot_seat(d, s, fd, d->laddr[io - d->accept_io].ss.ss_family == AF_UNIX);
	}
}

static void on_accept_pause_end(struct ev_loop *loop, ev_timer *t, int revents)
{
	accept_set(t->data, true);
}

static void on_slot_freed(struct ev_loop *loop, ev_async *a, int revents)
{
	struct daemon *d = a->data;

	if (d->held_fd >= 0) {
		held_seat(d);
		return;
	}
	if (atomic_load(&d->accept_paused) && !ev_is_active(&d->accept_pause))
		accept_set(d, true);
}

static void on_stop(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct daemon *d = s->data;

	log_json(LOG_LVL_INFO, "stopping", "signal", s->signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
	ops_stopping(d);
	ev_break(loop, EVBREAK_ALL);
	(void)d;
}

/* ---- snapshots ---------------------------------------------------------------------- */

static void snap_log(struct daemon *d, const char *why, int rc, const struct snap_result *r, uint64_t us,
                     const char *err)
{
	char pins[24], recs[24], bytes[24], ms[24];

	if (rc < 0) {
		log_json(LOG_LVL_ERROR, "snapshot_failed", "why", why, "file", d->agent.state_file, "error", err,
		         "keeping", "the previous snapshot", NULL);
		return;
	}
	snprintf(pins, sizeof(pins), "%llu", (unsigned long long)r->pins);
	snprintf(recs, sizeof(recs), "%llu", (unsigned long long)(r->recs + r->srt));
	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)r->bytes);
	snprintf(ms, sizeof(ms), "%.1f", (double)us / 1000);
	log_json(LOG_LVL_INFO, "snapshot_written", "why", why, "file", d->agent.state_file, "pins", pins,
	         "records", recs, "bytes", bytes, "ms", ms, NULL);
}

static void *snap_thread_main(void *arg)
{
	struct daemon *d = arg;

	d->snap_rc = snap_write(d->snap_st, d->snap_wall_us, d->agent.state_file, &d->snap_res, d->snap_err,
	                        sizeof(d->snap_err));
	ev_async_send(d->loop, &d->snap_done);
	return NULL;
}

/* Captures the learned state (quick: what the control thread owns) and hands the
 * encoding and the write, pins included (read lock-free), to a thread of its own, so
 * neither the workers nor the tick and accept wait for the disk. One at a time: a
 * request during a write is served when it ends. */
static void snap_start(struct daemon *d, const char *why)
{
	sigset_t all, old;

	if (!d->agent.state_file)
		return;
	if (d->snap_busy) {
		d->snap_again = true;
		return;
	}
	d->snap_t0_us = clock_mono_us();
	d->snap_wall_us = clock_wall_us();
	d->snap_st = pol_state_capture(d->engine, d->snap_t0_us);
	if (!d->snap_st) {
		snap_log(d, why, -1, NULL, 0, "out of memory capturing the state");
		return;
	}
	d->snap_why = why;
	/* the thread takes no signal: they are the control thread's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&d->snap_thread, NULL, snap_thread_main, d) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pol_state_free(d->snap_st);
		d->snap_st = NULL;
		snap_log(d, why, -1, NULL, 0, "cannot start the snapshot thread");
		return;
	}
	pthread_setname_np(d->snap_thread, "payspoa-snap");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	d->snap_busy = true;
}

static void snap_finish(struct daemon *d)
{
	if (!d->snap_busy)
		return;
	pthread_join(d->snap_thread, NULL);
	d->snap_busy = false;
	pol_state_free(d->snap_st);
	d->snap_st = NULL;
	snap_log(d, d->snap_why, d->snap_rc, &d->snap_res, clock_mono_us() - d->snap_t0_us, d->snap_err);
	if (d->snap_rc < 0) {
		d->snap_failed++;
	} else {
		d->snap_written++;
		d->snap_last_wall_us = d->snap_wall_us;
		d->snap_last_us = clock_mono_us() - d->snap_t0_us;
	}
}

static void on_snap_done(struct ev_loop *loop, ev_async *a, int revents)
{
	struct daemon *d = a->data;

	snap_finish(d);
	if (d->snap_again) {
		d->snap_again = false;
		snap_start(d, "requested during a write");
	}
}

static void on_snap_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	snap_start(t->data, "interval");
}

static void on_usr1(struct ev_loop *loop, ev_signal *s, int revents)
{
	snap_start(s->data, "SIGUSR1");
}

/* The last snapshot, after the drain: every decision is made, every worker stopped. */
static void snap_final(struct daemon *d)
{
	if (!d->agent.state_file)
		return;
	snap_finish(d);
	snap_start(d, "SIGTERM");
	snap_finish(d);
}

/* At start, before the first decision: a missing file is a cold start; a refused one
 * (truncated, corrupt, foreign, future version) too, with the reason. */
static void snap_load_start(struct daemon *d)
{
	struct snap_result r;
	char err[256], n[7][24];
	uint64_t t0 = clock_mono_us();
	int rc = snap_load(d->engine, d->agent.state_file, t0, clock_wall_us(), &r, err, sizeof(err));

	if (rc == 1) {
		log_json(LOG_LVL_INFO, "state_cold_start", "file", d->agent.state_file, "reason", "no snapshot yet", NULL);
		return;
	}
	if (rc < 0) {
		log_json(LOG_LVL_WARNING, "state_refused", "file", d->agent.state_file, "reason", err,
		         "effect", "cold start", NULL);
		return;
	}
	snprintf(n[0], sizeof(n[0]), "%llu", (unsigned long long)r.im.pins);
	snprintf(n[1], sizeof(n[1]), "%llu", (unsigned long long)r.im.pins_dropped);
	snprintf(n[2], sizeof(n[2]), "%llu", (unsigned long long)r.im.pins_remapped);
	snprintf(n[3], sizeof(n[3]), "%llu", (unsigned long long)(r.im.recs + r.im.srt));
	snprintf(n[4], sizeof(n[4]), "%llu", (unsigned long long)(r.im.recs_dropped + r.im.srt_dropped));
	snprintf(n[5], sizeof(n[5]), "%.1f", (double)(clock_mono_us() - t0) / 1000);
	snprintf(n[6], sizeof(n[6]), "%llu", (unsigned long long)r.im.pins_gone);
	if (!r.learned)
		log_json(LOG_LVL_WARNING, "state_learned_cold", "file", d->agent.state_file,
		         "reason", "the policy's learning settings differ from the snapshot's (fingerprint)",
		         "effect", "pins loaded, learned state starts cold", NULL);
	log_json(LOG_LVL_INFO, "state_loaded", "file", d->agent.state_file, "pins", n[0], "pins_dropped", n[1],
	         "pins_remapped", n[2], "pins_gone", n[6], "records", n[3], "records_dropped", n[4], "ms", n[5], NULL);
}

int daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	struct policy *p = pol_load(d->opts.config, err, errlen);

	ops_reloading(d);
	if (!p || pol_engine_swap(d->engine, p, err, errlen) < 0) {
		log_json(LOG_LVL_ERROR, "reload_failed", "file", d->opts.config, "error", err,
		         "keeping", "previous policy", NULL);
		ops_reloaded(d, NULL);
		return -1;
	}
	log_json(LOG_LVL_INFO, "reloaded", "file", d->opts.config, NULL);
	ops_reloaded(d, p); /* the engine owns p now, and keeps it until the next reload */
	return 0;
}

static void on_hup(struct ev_loop *loop, ev_signal *s, int revents)
{
	char err[512];

	daemon_reload(s->data, err, sizeof(err));
}

int daemon_save(struct daemon *d, const char *why)
{
	if (!d->agent.state_file)
		return -1;
	snap_start(d, why);
	return 0;
}

void daemon_totals(struct daemon *d, struct spoa_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned k = 0; k < d->nworkers; k++)
		stats_sum(t, &d->workers[k].st);
	stats_sum_reader(t, &d->outlog.st);
	t->refused = d->refused;
	ops_totals(d, t); /* probes and webhooks (ops.c) */
}

/* Pins dropped before their TTL (the tables are smaller than the traffic): one warning
 * per table and tick at most, with how many since the last one and in all. */
static void warn_pin_evictions(struct daemon *d, const struct pol_stats *st)
{
	static const char *const table[3] = { "idem", "object", "account" };
	char n[24], total[24];
	unsigned i;

	for (i = 0; i < 3; i++) {
		if (st->pin_evicted[i] == d->pin_evicted[i])
			continue;
		snprintf(n, sizeof(n), "%llu", (unsigned long long)(st->pin_evicted[i] - d->pin_evicted[i]));
		snprintf(total, sizeof(total), "%llu", (unsigned long long)st->pin_evicted[i]);
		log_json(LOG_LVL_WARNING, "pins_evicted", "table", table[i], "count", n, "total", total,
		         "effect", "pins dropped before their TTL: the table is smaller than the traffic (conf/README.md, pinning)",
		         NULL);
		d->pin_evicted[i] = st->pin_evicted[i];
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	uint64_t now = clock_mono_us();
	struct pol_stats st;

	pol_tick(d->engine, now);
	pol_engine_stats(d->engine, now, &st);
	warn_pin_evictions(d, &st);
	ops_tick(d, now);
}

/* Closes listener i, and removes its socket file if it is a Unix one this process bound
 * (never a running instance's, refused by listen_unix_claim). */
static void daemon_unlisten(struct daemon *d, int i)
{
	if (d->lfd[i] < 0)
		return;
	if (d->laddr[i].ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&d->laddr[i].ss)->sun_path);
	close(d->lfd[i]);
	d->lfd[i] = -1;
}

/* SIG_BLOCK or SIG_UNBLOCK the signals the control loop handles, in this thread. */
static void daemon_mask_signals(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(how, &set, NULL);
}

struct daemon *daemon_new(const struct daemon_opts *o, char *err, size_t errlen)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct policy *p = NULL;
	const struct policy *pol;
	const struct policy *p0; /* p, owned by the engine (its fleet settings) */
	size_t slot_bytes;

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->opts = *o;
	d->reserve_fd = -1;
	d->held_fd = -1;
	/* The signals the control loop handles wait, blocked, until daemon_run has started
	 * its watchers and unblocks them: a SIGHUP or SIGTERM that comes while the
	 * policy is built, or as soon as the port accepts, is served then instead of
	 * killing the process by its default action. Threads started meanwhile inherit the
	 * mask, so these signals reach the control thread only. */
	daemon_mask_signals(SIG_BLOCK);
	for (int i = 0; i < POL_MAX_LISTENERS; i++)
		d->lfd[i] = -1;
	p = pol_load(o->config, err, errlen);
	if (!p)
		goto fail;
	d->agent = *pol_agent(p);
	log_set_syslog(d->agent.log_syslog); /* the loader admits known facilities only */
	switch (log_id_key_load(d->agent.id_key_file, d->agent.id_key_env, err, errlen)) {
	case -1:
		goto fail;
	case 1:
		log_json(LOG_LVL_WARNING, "id_key_random", "reason", "neither agent.id_key_file nor agent.id_key_env is set",
		         "effect", "identifiers in the logs are keyed per process: lines of two runs do not match", NULL);
		break;
	}
	if (o->nlisten > 0) {
		d->agent.nlisten = o->nlisten;
		for (int i = 0; i < o->nlisten; i++)
			d->agent.listen[i] = o->listen[i];
	}
	if (o->workers > 0)
		d->agent.workers = o->workers;
	if (d->agent.workers <= 0) {
		/* HAProxy runs beside us and needs most of the CPUs; one worker answers far more
		 * than HAProxy can send from 4 (spoa/README.md, Workers), and each worker more
		 * splits HAProxy's frames over more threads that each wake for fewer. */
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		d->agent.workers = n > 4 ? (int)((n + 3) / 4) : 1;
	}
	d->nworkers = (unsigned)d->agent.workers;
	/* The operations sockets before the listeners (a bad address or a live instance's
	 * admin socket fails before anything else is bound; once the SPOP port accepts, they
	 * accept too, answered from daemon_run on). */
	if (d->agent.admin_socket && admin_open(&d->admin, d, d->agent.admin_socket, err, errlen) < 0)
		goto fail;
	if (d->agent.metrics && metrics_open(&d->metrics, d, d->agent.metrics, err, errlen) < 0)
		goto fail;
	/* The outcome socket before the listeners: once HAProxy can connect, it can log. */
	if (d->agent.outcome_socket && outlog_open(&d->outlog, d->agent.outcome_socket, err, errlen) < 0)
		goto fail;
	/* Addresses first: a bad one fails before anything is built. */
	d->nlisten = d->agent.nlisten;
	for (int i = 0; i < d->nlisten; i++)
		if (listen_parse(d->agent.listen[i], &d->laddr[i], err, errlen) < 0)
			goto fail;
	/* one engine slot per decision worker, one more for the outcome log reader */
	pol = p;
	p0 = p;
	d->engine = pol_engine_new(p, d->nworkers + d->outlog.opened, err, errlen);
	p = NULL; /* the engine owns it, even on failure */
	if (!d->engine)
		goto fail;
	if (d->agent.state_file)
		snap_load_start(d);
	if (pol_fleet(p0)->redis[0]) {
		if (fleet_prepare(&d->fleet, d->engine, pol_fleet(p0), err, errlen) < 0)
			goto fail;
		d->fleet_on = true;
		if (pol_fleet(p0)->claim &&
		    !fleet_claim_new(&d->fleet, d->engine, d->nworkers, pol_fleet(p0)->claim_timeout_ms, err, errlen))
			goto fail;
	}
	/* Connection slots and their buffers, all at boot. */
	d->nslots = (unsigned)d->agent.max_connections;
	d->in_size = (size_t)d->agent.max_frame_size + 4;
	if (d->in_size < OUT_BUF_SIZE)
		d->in_size = OUT_BUF_SIZE; /* room for many pipelined frames per read */
	d->out_size = OUT_BUF_SIZE;
	slot_bytes = d->in_size + d->out_size;
	d->slots = calloc(d->nslots, sizeof(*d->slots));
	d->bufs = malloc(slot_bytes * d->nslots);
	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	if (!d->slots || !d->bufs || !d->workers) {
		snprintf(err, errlen, "out of memory for %u connections", d->nslots);
		goto fail;
	}
	for (unsigned i = 0; i < d->nslots; i++) {
		d->slots[i].fd = -1;
		d->slots[i].c.in = d->bufs + i * slot_bytes;
		d->slots[i].c.out = d->slots[i].c.in + d->in_size;
	}
	/* Listeners last, once the engine, its snapshot and the slots are ready: the port
	 * accepts only when a connection can be served. */
	for (int i = 0; i < d->nlisten; i++) {
		d->lfd[i] = listen_open(&d->laddr[i], err, errlen);
		if (d->lfd[i] < 0)
			goto fail;
	}
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	d->loop = ev_default_loop(EVFLAG_AUTO);
	if (!d->loop) {
		snprintf(err, errlen, "cannot start the event loop");
		goto fail;
	}
	if (ops_open(d, pol, err, errlen) < 0)
		goto fail;
	return d;
fail:
	pol_free(p);
	daemon_free(d);
	return NULL;
}

/* The run's totals, summed over the workers, in the "stopped" line. */
static void log_totals(struct daemon *d, unsigned nworkers)
{
	struct spoa_totals t = { 0 };
	struct pol_stats st;
	char ev[24], fo[24], co[24], ob[24], du[24], bad[24];
	const char *extra[] = { "pins_evicted", ev, "pins_followed", fo, "pins_corrected", co,
	                        "outcomes", ob, "outcomes_dup", du, "outcomes_bad", bad };

	for (unsigned k = 0; k < nworkers; k++)
		stats_sum(&t, &d->workers[k].st);
	stats_sum_reader(&t, &d->outlog.st);
	t.refused = d->refused;
	ops_totals(d, &t);
	pol_engine_stats(d->engine, clock_mono_us(), &st);
	warn_pin_evictions(d, &st);
	snprintf(ev, sizeof(ev), "%llu", (unsigned long long)(st.pin_evicted[0] + st.pin_evicted[1] + st.pin_evicted[2]));
	snprintf(fo, sizeof(fo), "%llu", (unsigned long long)st.pin_followed);
	snprintf(co, sizeof(co), "%llu", (unsigned long long)st.pin_corrected);
	snprintf(ob, sizeof(ob), "%llu", (unsigned long long)st.observed);
	snprintf(du, sizeof(du), "%llu", (unsigned long long)st.observe_dup);
	snprintf(bad, sizeof(bad), "%llu", (unsigned long long)st.observe_bad);
	stats_log_stopped(&t, extra, sizeof(extra) / sizeof(extra[0]) / 2);
}

int daemon_run(struct daemon *d)
{
	unsigned started = 0;
	char nw[16], mf[16];

	signal(SIGPIPE, SIG_IGN);
	/* before any worker runs: workers ring it (on_worker_slot_freed) */
	ev_async_init(&d->slot_freed, on_slot_freed);
	d->slot_freed.data = d;
	ev_async_start(d->loop, &d->slot_freed);
	for (; started < d->nworkers; started++) {
		struct worker_conf wc = { d->engine, started, d->agent.idle_timeout_ms / 1000.0,
		                          d->agent.hello_timeout_ms / 1000.0, d->agent.frame_timeout_ms / 1000.0,
		                          on_worker_slot_freed, d, fleet_claim_worker(d->fleet.claim, started) };

		if (worker_start(&d->workers[started], &wc) < 0) {
			log_json(LOG_LVL_ERROR, "worker_start_failed", NULL);
			d->exit_code = 1;
			goto stop;
		}
	}
	if (d->outlog.opened) {
		if (outlog_start(&d->outlog, d->engine, d->nworkers) < 0) {
			log_json(LOG_LVL_ERROR, "outcome_reader_start_failed", NULL);
			d->exit_code = 1;
			goto stop;
		}
		char q[16];

		snprintf(q, sizeof(q), "%u", d->outlog.qlen);
		log_json(LOG_LVL_INFO, "outcome_socket", "path", d->outlog.path, "queue", q, NULL);
		if (d->outlog.qlen < OUTLOG_QLEN_GOOD)
			log_json(LOG_LVL_WARNING, "outcome_queue_short", "max_dgram_qlen", q,
			         "effect", "HAProxy drops outcome lines once this many wait (its DroppedLogs)",
			         "fix", "sysctl -w net.unix.max_dgram_qlen=512 (systemd's default)", NULL);
	}
	/* the workers run (with these signals blocked): now the control thread takes them */
	ev_signal_init(&d->sig_term, on_stop, SIGTERM);
	ev_signal_init(&d->sig_int, on_stop, SIGINT);
	ev_signal_init(&d->sig_hup, on_hup, SIGHUP);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	ev_signal_start(d->loop, &d->sig_term);
	ev_signal_start(d->loop, &d->sig_int);
	ev_signal_start(d->loop, &d->sig_hup);
	ev_signal_init(&d->sig_usr1, on_usr1, SIGUSR1);
	d->sig_usr1.data = d;
	ev_signal_start(d->loop, &d->sig_usr1);
	daemon_mask_signals(SIG_UNBLOCK); /* libev leaves the mask alone: those pending arrive now */
	ev_timer_init(&d->accept_pause, on_accept_pause_end, 0.1, 0.);
	d->accept_pause.data = d;
	ev_timer_init(&d->held_timer, on_held_timer, 0., RECLAIM_EVERY_S);
	d->held_timer.data = d;
	for (int i = 0; i < d->nlisten; i++) {
		ev_io_init(&d->accept_io[i], on_accept, d->lfd[i], EV_READ);
		d->accept_io[i].data = d;
		log_json(LOG_LVL_INFO, "listening", "addr", d->laddr[i].text, NULL);
	}
	accept_set(d, true);
	ev_async_init(&d->snap_done, on_snap_done);
	d->snap_done.data = d;
	ev_async_start(d->loop, &d->snap_done);
	if (d->agent.state_file && d->agent.state_interval_s > 0) {
		ev_timer_init(&d->snap_timer, on_snap_timer, d->agent.state_interval_s, d->agent.state_interval_s);
		d->snap_timer.data = d;
		ev_timer_start(d->loop, &d->snap_timer);
	}
	ev_timer_init(&d->tick, on_tick, TICK_S, TICK_S);
	d->tick.data = d;
	ev_timer_start(d->loop, &d->tick);
	d->started_us = clock_mono_us();
	admin_start(&d->admin, d->loop);
	metrics_start(&d->metrics, d->loop);
	if (d->fleet_on)
		fleet_start(&d->fleet, d->loop);
	snprintf(nw, sizeof(nw), "%u", d->nworkers);
	snprintf(mf, sizeof(mf), "%d", d->agent.max_frame_size);
	log_json(LOG_LVL_INFO, "started", "workers", nw, "max_frame_size", mf, "policy", d->opts.config, NULL);
	ops_ready(d);

	ev_run(d->loop, 0);

stop:
	accept_set(d, false);
	admin_stop(&d->admin);
	metrics_stop(&d->metrics);
	for (int i = 0; i < d->nlisten; i++)
		daemon_unlisten(d, i);
	for (unsigned i = 0; i < started; i++)
		worker_stop(&d->workers[i]);
	for (unsigned i = 0; i < started; i++)
		worker_join(&d->workers[i]);
	outlog_stop(&d->outlog); /* after the workers: the lines already sent are read */
	if (d->fleet_on)
		fleet_stop(&d->fleet); /* after the readers: their last pins are in the journals */
	snap_final(d);
	log_totals(d, started);
	return d->exit_code;
}

void daemon_free(struct daemon *d)
{
	if (!d)
		return;
	for (int i = 0; i < POL_MAX_LISTENERS; i++)
		daemon_unlisten(d, i);
	if (d->reserve_fd >= 0)
		close(d->reserve_fd);
	if (d->held_fd >= 0)
		close(d->held_fd);
	outlog_close(&d->outlog);
	admin_close(&d->admin);
	metrics_close(&d->metrics);
	ops_close(d);
	fleet_free(&d->fleet);
	pol_engine_free(d->engine);
	free(d->workers);
	free(d->slots);
	free(d->bufs);
	if (d->loop)
		ev_loop_destroy(d->loop);
	free(d);
}
