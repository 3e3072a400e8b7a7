/* worker.c: one thread, one libev loop, many SPOP connections (see worker.h).
 * The decision path runs here: no allocation, no locks, no logging, no syscalls but
 * the socket's (read, send) and the monotonic clock (vDSO). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "fleet-claim.h"
#include "log.h"
#include "policy.h"
#include "spop.h"
#include "worker.h"

#define LINGER_S 2.0 /* how long a closing connection may take to flush and see EOF */
#define DRAIN_S 5.0  /* on SIGTERM: how long the workers may take to answer what has come */

static void slot_close(struct slot *s)
{
	struct worker *w = s->w;

	ev_io_stop(w->loop, &s->io);
	claim_conn_gone(w->agent.claims, &s->c); /* HAProxy gave up on what was held */
	close(s->fd);
	s->fd = -1;
	if (s->prev)
		s->prev->next = s->next;
	else
		w->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	STAT_ADD(w->st.conns_open, -1);
	atomic_fetch_sub_explicit(&w->nconns, 1, memory_order_relaxed);
	atomic_store(&s->in_use, false); /* seq_cst: see worker_conf.slot_freed */
	w->conf.slot_freed(w->conf.arg);
	if (!w->live && w->stop_deadline != 0)
		ev_break(w->loop, EVBREAK_ALL); /* drained: no need to wait for the sweep */
}

/* Fold the per-connection and agent counters into the shared statistics. */
static void stats_publish(struct worker *w, struct conn *c)
{
	stats_fold_conn(&w->st, &c->counts);
	stats_fold_agent(&w->st, &w->agent.counts, &w->agent_flushed);
}

/* Ask libev for exactly the events the connection can use now. */
static void slot_arm(struct slot *s)
{
	struct conn *c = &s->c;
	bool want_write = c->out_len > c->out_off;
	bool want_read = s->shut || (c->state != CONN_ST_CLOSING && !atomic_load_explicit(&s->w->stopping,
	                 memory_order_relaxed) && conn_out_has_room(c) && conn_in_room(c) > 0);

	if (want_read == s->reading && want_write == s->writing)
		return;
	s->reading = want_read;
	s->writing = want_write;
	ev_io_stop(s->w->loop, &s->io);
	if (want_read || want_write) {
		ev_io_set(&s->io, s->fd, (want_read ? EV_READ : 0) | (want_write ? EV_WRITE : 0));
		ev_io_start(s->w->loop, &s->io);
	}
}

/* Write what is queued; once a closing connection has written its last frame, shut our
 * side down (the peer sees EOF after that frame) and wait for the peer's close: closing
 * with unread input would send an RST, which can destroy that last frame at the peer.
 * Returns -1 when the connection is gone. */
static int slot_flush(struct slot *s)
{
	struct conn *c = &s->c;
	struct worker *w = s->w;

	while (c->out_len > c->out_off) {
		ssize_t n = send(s->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		STAT_ADD(w->st.writes, 1);
		if (n > 0) {
			STAT_ADD(w->st.bytes_out, (uint64_t)n);
			conn_out_written(c, (size_t)n);
			s->last_active = ev_now(w->loop);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		STAT_ADD(w->st.resets, 1); /* EPIPE / ECONNRESET: the peer is gone */
		return -1;
	}
	if (c->state == CONN_ST_CLOSING && !s->shut) {
		s->shut = true;
		if (shutdown(s->fd, SHUT_WR) < 0)
			return -1;
	}
	return 0;
}

/* A shut connection: read and drop what the peer still sends until its EOF. Returns -1
 * once the peer has closed (or failed), 0 while waiting. Bounded per call: a peer that
 * keeps sending is cut off by the linger deadline of the sweep. */
static int slot_discard(struct slot *s)
{
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(s->fd, s->c.in, s->c.in_size);

		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 0;
}

/* Answer the complete frames waiting in `in` while `out` has room; keeps the books when
 * that puts the connection in CLOSING. Returns the number of frames handled. */
static unsigned slot_answer(struct slot *s)
{
	struct conn *c = &s->c;
	struct worker *w = s->w;
	unsigned n;

	if (c->state == CONN_ST_CLOSING || !c->in_len || !conn_out_has_room(c))
		return 0;
	n = conn_process(c, &w->agent);
	if (c->state == CONN_ST_CLOSING) {
		s->closing_since = ev_now(w->loop);
		STAT_ADD(w->st.disconnects_sent, 1);
		if (c->close_status != SPOP_ST_NORMAL) {
			STAT_ADD(w->st.protocol_errors, 1);
			if (log_enabled(LOG_LVL_DEBUG))
				log_json(LOG_LVL_DEBUG, "spop_disconnect", "status",
				         spop_status_str(c->close_status), NULL);
		} else if (c->peer_status != SPOP_ST_UNKNOWN) {
			STAT_ADD(w->st.peer_disconnects, 1);
		}
	}
	return n;
}

/* The frame deadline's books, after `handled` frames were answered: bytes left in `in`
 * (a frame begun, or frames waiting for the peer to read our answers) start the clock
 * unless it runs already; a frame answered restarts it; an empty `in` stops it. */
static void slot_progress(struct slot *s, unsigned handled)
{
	if (s->c.in_len == 0)
		s->stuck_since = 0;
	else if (handled > 0 || s->stuck_since == 0)
		s->stuck_since = ev_now(s->w->loop);
}

/* Read until the socket is empty, `in` is full or `out` has no room, answering as the
 * bytes come. Returns -1 when the connection is gone, 1 when a read found the socket
 * empty, 0 otherwise (a short read most likely emptied it; libev tells if not). */
static int slot_read(struct slot *s)
{
	struct conn *c = &s->c;
	struct worker *w = s->w;

	while (c->state != CONN_ST_CLOSING && conn_out_has_room(c)) {
		size_t room = conn_in_room(c);
		ssize_t n;

		if (room == 0)
			break;
		n = read(s->fd, c->in + c->in_len, room);
		STAT_ADD(w->st.reads, 1);
		if (n > 0) {
			STAT_ADD(w->st.bytes_in, (uint64_t)n);
			c->in_len += (size_t)n;
			s->last_active = ev_now(w->loop);
			slot_progress(s, slot_answer(s));
			if ((size_t)n < room)
				break; /* the socket is most likely empty: spare a read */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		/* EOF, or RST (3.1+ closes that way): a normal end either way. */
		if (n < 0)
			STAT_ADD(w->st.resets, 1);
		return -1;
	}
	return 0;
}

/* Write, then answer the frames `out` had no room for, until the socket refuses bytes
 * or nothing answerable is left. Without this, frames already read would wait for an
 * EV_READ that never comes once HAProxy has nothing more to send.
 * Returns -1 when the connection is gone, 1 while answers wait for socket room, else 0. */
static int slot_pump(struct slot *s)
{
	for (;;) {
		if (slot_flush(s) < 0)
			return -1;
		if (s->c.out_len > s->c.out_off)
			return 1;
		unsigned n = slot_answer(s);

		slot_progress(s, n);
		if (n == 0)
			return 0;
	}
}

/* Drain (the worker is stopping): answer every frame that has arrived, then say
 * goodbye and flush. While answers wait for socket room it returns, armed for
 * EV_WRITE, and on_io calls it again. */
static void slot_drain(struct slot *s)
{
	int r = 0;

	s->w->agent.now_us = clock_mono_us();
	/* Everything HAProxy sent before the signal is answered: read until the socket is
	 * known empty, answering, unless answers must first wait for socket room. A peer
	 * that keeps sending gets its goodbye after 64 rounds all the same. */
	for (int round = 0; s->c.state != CONN_ST_CLOSING; round++) {
		int empty = slot_read(s);

		if (empty < 0 || (r = slot_pump(s)) < 0)
			goto gone;
		if (r == 1)
			break;
		if ((empty == 1 || round >= 64) && s->c.state != CONN_ST_CLOSING) {
			claim_conn_flush(s->w->agent.claims, &s->c);
			conn_disconnect(&s->c, SPOP_ST_NORMAL, "agent shutting down");
			s->closing_since = ev_now(s->w->loop);
		}
	}
	if (slot_flush(s) < 0)
		goto gone;
	stats_publish(s->w, &s->c);
	slot_arm(s);
	return;
gone:
	stats_publish(s->w, &s->c);
	slot_close(s);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct slot *s = (struct slot *)io;
	uint64_t decided;

	if (s->shut) {
		if ((revents & EV_READ) && slot_discard(s) < 0)
			slot_close(s);
		return;
	}
	s->w->agent.now_us = clock_mono_us();
	decided = s->w->agent.counts.requests;
	if ((revents & EV_READ) && slot_read(s) < 0) {
		stats_publish(s->w, &s->c);
		slot_close(s);
		return;
	}
	if (atomic_load_explicit(&s->w->stopping, memory_order_relaxed)) {
		slot_drain(s);
		return;
	}
	if (slot_pump(s) < 0) {
		stats_publish(s->w, &s->c);
		slot_close(s);
		return;
	}
	/* Decision latency, one clock read per batch (vDSO, no syscall): from the batch's
	 * start, the clock read the decisions already use, to its answers handed to send. */
	if ((decided = s->w->agent.counts.requests - decided))
		hist_add(&s->w->decide_lat, clock_mono_us() - s->w->agent.now_us, decided);
	stats_publish(s->w, &s->c);
	slot_arm(s);
}

/* Held ACKs were written into c->out (fleet-claim.c): send them. */
static void slot_kick(void *arg, struct conn *c)
{
	struct slot *s = (struct slot *)((char *)c - offsetof(struct slot, c));

	if (slot_flush(s) < 0) {
		stats_publish(s->w, &s->c);
		slot_close(s);
		return;
	}
	slot_arm(s);
}

static void slot_begin(struct worker *w, struct slot *s)
{
	s->w = w;
	s->reading = s->writing = s->shut = false;
	s->last_active = s->opened_at = ev_now(w->loop);
	s->stuck_since = 0;
	s->closing_since = 0;
	s->prev = NULL;
	s->next = w->live;
	if (w->live)
		w->live->prev = s;
	w->live = s;
	STAT_ADD(w->st.conns_open, 1);
	STAT_ADD(w->st.conns_total, 1);
	ev_io_init(&s->io, on_io, s->fd, EV_READ);
	slot_arm(s);
}

/* Closes a connection that holds its slot without speaking SPOP: no goodbye (it never
 * said hello), no linger. */
static void slot_drop(struct slot *s, _Atomic uint64_t *counter)
{
	STAT_ADD(*counter, 1);
	stats_publish(s->w, &s->c);
	slot_close(s);
}

static void worker_close_silent(struct worker *w, ev_tstamp now)
{
	struct slot *s, *next;

	for (s = w->live; s; s = next) {
		next = s->next;
		if (s->c.state == CONN_ST_HELLO && now - s->opened_at >= WORKER_RECLAIM_AGE_S)
			slot_drop(s, &w->st.reclaimed);
	}
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = (struct worker *)((char *)a - offsetof(struct worker, wake));
	struct slot *s, *next;

	pthread_mutex_lock(&w->inbox_lock);
	s = w->inbox;
	w->inbox = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	for (; s; s = next) {
		next = s->inbox_next;
		slot_begin(w, s);
	}
	if (atomic_exchange(&w->reclaim, false))
		worker_close_silent(w, ev_now(loop));
	if (atomic_load(&w->stopping)) {
		claim_release_all(w->agent.claims); /* sent as decided: no claim is waited for */
		if (w->stop_deadline == 0)
			w->stop_deadline = ev_now(loop) + DRAIN_S;
		for (s = w->live; s; s = next) {
			next = s->next;
			slot_drain(s);
		}
		if (!w->live)
			ev_break(loop, EVBREAK_ALL);
	}
}

static void on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, sweep));
	ev_tstamp now = ev_now(loop), idle = w->conf.idle_timeout_s;
	struct slot *s, *next;

	for (s = w->live; s; s = next) {
		next = s->next;
		if (s->c.state == CONN_ST_CLOSING) {
			if (now - s->closing_since > LINGER_S)
				slot_close(s); /* the peer does not read: give up on the goodbye */
		} else if (s->c.state == CONN_ST_HELLO && now - s->opened_at > w->conf.hello_timeout_s) {
			slot_drop(s, &w->st.hello_timeouts);
		} else if (s->stuck_since != 0 && now - s->stuck_since > w->conf.frame_timeout_s) {
			slot_drop(s, &w->st.frame_timeouts);
		} else if (idle > 0 && now - s->last_active > idle) {
			STAT_ADD(w->st.idle_closed, 1);
			conn_disconnect(&s->c, SPOP_ST_TIMEOUT, "idle timeout");
			s->closing_since = now;
			if (slot_flush(s) < 0)
				slot_close(s);
			else
				slot_arm(s);
		}
	}
	/* stop_deadline is set by on_wake: until it has run, the drain has not begun */
	if (atomic_load(&w->stopping) && w->stop_deadline != 0 && (!w->live || now > w->stop_deadline)) {
		while (w->live)
			slot_close(w->live);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_before_sleep(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = (struct worker *)((char *)p - offsetof(struct worker, before_sleep));

	/* About to block: this worker holds nothing from the engine until its next
	 * decision, so retired policy views need not wait for it to wake. */
	pol_worker_idle(w->conf.engine, w->conf.idx);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	ev_run(w->loop, 0);
	pol_worker_idle(w->conf.engine, w->conf.idx);
	return NULL;
}

int worker_start(struct worker *w, const struct worker_conf *conf)
{
	char name[16];

	w->conf = *conf;
	w->agent.engine = conf->engine;
	w->agent.worker = conf->idx;
	w->agent.upstream = &w->upstream;
	w->agent.claims = conf->claims;
	w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!w->loop)
		return -1;
	if (conf->claims)
		claim_worker_start(conf->claims, w->loop, slot_kick, w);
	pthread_mutex_init(&w->inbox_lock, NULL);
	ev_async_init(&w->wake, on_wake);
	ev_async_start(w->loop, &w->wake);
	ev_prepare_init(&w->before_sleep, on_before_sleep);
	ev_prepare_start(w->loop, &w->before_sleep);
	ev_timer_init(&w->sweep, on_sweep, 1.0, 1.0);
	ev_timer_start(w->loop, &w->sweep);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		ev_loop_destroy(w->loop);
		w->loop = NULL;
		return -1;
	}
	/* named for top -H, perf and bench/run-e2e's per-thread figures */
	snprintf(name, sizeof(name), "payspoa-w%u", conf->idx);
	pthread_setname_np(w->thread, name);
	return 0;
}

void worker_give(struct worker *w, struct slot *s)
{
	atomic_fetch_add_explicit(&w->nconns, 1, memory_order_relaxed);
	pthread_mutex_lock(&w->inbox_lock);
	s->inbox_next = w->inbox;
	w->inbox = s;
	pthread_mutex_unlock(&w->inbox_lock);
	ev_async_send(w->loop, &w->wake);
}

unsigned worker_nconns(const struct worker *w)
{
	return atomic_load_explicit(&w->nconns, memory_order_relaxed);
}

void worker_reclaim(struct worker *w)
{
	atomic_store(&w->reclaim, true);
	ev_async_send(w->loop, &w->wake);
}

void worker_stop(struct worker *w)
{
	atomic_store(&w->stopping, true);
	ev_async_send(w->loop, &w->wake);
}

void worker_join(struct worker *w)
{
	if (!w->loop)
		return;
	pthread_join(w->thread, NULL);
	ev_loop_destroy(w->loop);
	w->loop = NULL;
	pthread_mutex_destroy(&w->inbox_lock);
}
