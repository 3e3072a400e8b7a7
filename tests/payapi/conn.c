/* conn.c: the emulated payment API's connections on the libev loop: accept, read, answer
 * the complete requests in order, write, keep-alive, slow-mode delays, lingering close.
 * Buffers are per connection and bounded (PA_IN_MAX in, PA_OUT_MAX out); past
 * `-c MAXCONN` connections or out of descriptors, accepting pauses instead of spinning. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "payapi.h"

struct pa_conn {
	ev_io rio, wio;
	ev_timer idle;         /* closes idle keep-alive connections */
	ev_timer delay;        /* holds a response in slow mode */
	int fd;
	bool closing;          /* close once out[] is flushed */
	bool delayed;          /* out[] waits for the delay timer */
	bool sent_continue;    /* 100 Continue already sent for the request in in[] */
	bool peer_closed;      /* EOF read: answer what is complete, then close */
	bool lingering;        /* answered and shut down for writing: reading until EOF */
	uint32_t in_len;
	uint32_t out_len, out_off;
	char in[PA_IN_MAX];
	char out[PA_OUT_MAX];
};

static void pa_conn_close(struct pa_conn *c)
{
	ev_io_stop(pa.loop, &c->rio);
	ev_io_stop(pa.loop, &c->wio);
	ev_timer_stop(pa.loop, &c->idle);
	ev_timer_stop(pa.loop, &c->delay);
	close(c->fd);
	free(c);
	pa.nconn--;
	if (!ev_is_active(&pa.lio) && !ev_is_active(&pa.accept_pause))
		ev_io_start(pa.loop, &pa.lio);
}

/* Puts a complete response into out[]; the connection closes after it unless kept alive. */
static void pa_conn_respond(struct pa_conn *c, const struct pa_resp *rs, bool keep_alive)
{
	struct pa_jw w = { c->out + c->out_len, 0, PA_OUT_MAX - c->out_len, false };

	pa_http_respond(&w, rs, keep_alive);
	if (w.full) {   /* cannot happen with the sizes above; fail safe anyway */
		c->closing = true;
		return;
	}
	c->out_len += (uint32_t)w.len;
	if (!keep_alive)
		c->closing = true;
}

/* A bare error for malformed HTTP; the connection closes after it. */
static void pa_conn_bad(struct pa_conn *c, unsigned status)
{
	struct pa_resp rs;

	pa.st.bad_requests++;
	pa_resp_init(&rs);
	pa_simple_error(&rs, status, "invalid_request_error", NULL, NULL, pa_reason_phrase(status));
	pa_conn_respond(c, &rs, false);
}

static int pa_conn_flush(struct pa_conn *c);
static void pa_conn_process(struct pa_conn *c);

/* The last answer is sent and the connection must close. Closing at once while the client
 * is still sending (a pipelined request, the rest of a rejected body) would make the
 * kernel answer with a RST that can destroy the answer before the client reads it, so:
 * shut down our side, read and discard until the client closes, at most PA_LINGER_S. */
#define PA_LINGER_S 2.0
static void pa_conn_linger(struct pa_conn *c)
{
	if (c->peer_closed || shutdown(c->fd, SHUT_WR) < 0) {
		pa_conn_close(c);
		return;
	}
	c->lingering = true;
	ev_io_stop(pa.loop, &c->wio);
	ev_io_start(pa.loop, &c->rio);
	c->idle.repeat = PA_LINGER_S;
	ev_timer_again(pa.loop, &c->idle);
}

/* Writes out[]. Returns -1 if the connection is gone (closed and freed), 0 if the rest
 * waits for writability, 1 if out[] is empty and the next request may be parsed. */
static int pa_conn_flush(struct pa_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(pa.loop, &c->wio);
			ev_io_stop(pa.loop, &c->rio);   /* no new requests while one is unsent */
			return 0;
		}
		if (n <= 0) {
			pa_conn_close(c);
			return -1;
		}
		c->out_off += (uint32_t)n;
	}
	ev_io_stop(pa.loop, &c->wio);
	c->out_off = c->out_len = 0;
	if (c->closing) {
		pa_conn_linger(c);
		return -1;
	}
	if (!c->peer_closed)
		ev_io_start(pa.loop, &c->rio);
	return 1;
}

static void pa_delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, delay));

	c->delayed = false;
	if (pa_conn_flush(c) > 0)
		pa_conn_process(c);
}

/* Handles the complete requests in in[] one at a time, so responses stay in order; stops
 * while a response is delayed or unsent (the callbacks resume it). */
static void pa_conn_process(struct pa_conn *c)
{
	for (;;) {
		struct pa_req rq;
		struct pa_resp rs;
		bool api;
		long used;

		if (c->delayed || c->out_len || c->closing)
			return;
		used = pa_http_parse(c->in, c->in_len, &rq);
		if (used < 0) {
			pa_conn_bad(c, (unsigned)-used);
			c->in_len = 0;
			pa_conn_flush(c);
			return;
		}
		if (used == 0) {
			if (c->peer_closed) {   /* nothing complete will ever come */
				pa_conn_close(c);
				return;
			}
			/* a client that waits for 100 Continue before sending the body */
			if (rq.expect_continue && !c->sent_continue) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

				memcpy(c->out, cont, sizeof(cont) - 1);
				c->out_len = sizeof(cont) - 1;
				c->sent_continue = true;
				pa_conn_flush(c);
			}
			return;
		}
		pa_resp_init(&rs);
		pa_handle(&rs, &rq);
		c->sent_continue = false;
		if (rs.hangup) {
			pa_conn_close(c);
			return;
		}
		api = !pa_is_control(&rq);
		if (api)
			pa.st.by_status[rs.status < 600 ? rs.status : 0]++;
		pa_conn_respond(c, &rs, rq.keep_alive);
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (uint32_t)used;
		if (api && pa.bhv.latency_ms) {
			c->delayed = true;
			ev_io_stop(pa.loop, &c->rio);
			ev_timer_set(&c->delay, pa.bhv.latency_ms / 1000.0, 0.0);
			ev_timer_start(pa.loop, &c->delay);
			return;
		}
		if (pa_conn_flush(c) <= 0)
			return;
	}
}

static void pa_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, rio));

	if (c->lingering) {
		char sink[4096];
		ssize_t n;

		while ((n = recv(c->fd, sink, sizeof(sink), 0)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			pa_conn_close(c);
		return;
	}

	while (c->in_len < PA_IN_MAX) {
		ssize_t n = recv(c->fd, c->in + c->in_len, PA_IN_MAX - c->in_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			pa_conn_close(c);
			return;
		}
		if (n == 0) {   /* the client finished sending: answer what is complete, then close */
			c->peer_closed = true;
			ev_io_stop(loop, &c->rio);
			break;
		}
		c->in_len += (uint32_t)n;
	}
	ev_timer_again(loop, &c->idle);
	pa_conn_process(c);
}

static void pa_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, wio));

	ev_timer_again(loop, &c->idle);
	if (pa_conn_flush(c) > 0)
		pa_conn_process(c);
}

static void pa_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pa_conn *c = (struct pa_conn *)((char *)w - offsetof(struct pa_conn, idle));

	if (c->delayed) {   /* a slow response is not idleness */
		ev_timer_again(loop, w);
		return;
	}
	pa_conn_close(c);
}

void pa_accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_io_start(loop, &pa.lio);
}

void pa_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (;;) {
		struct pa_conn *c;
		int fd = accept4(pa.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: pause instead of spinning */
				ev_io_stop(loop, &pa.lio);
				ev_timer_set(&pa.accept_pause, 0.1, 0.0);
				ev_timer_start(loop, &pa.accept_pause);
			}
			return;
		}
		if (pa.nconn >= pa.maxconn || !(c = malloc(sizeof(*c)))) {
			close(fd);
			if (pa.nconn >= pa.maxconn)
				ev_io_stop(loop, &pa.lio);   /* resumed by pa_conn_close */
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->closing = c->delayed = c->sent_continue = c->peer_closed = c->lingering = false;
		c->in_len = c->out_len = c->out_off = 0;
		ev_io_init(&c->rio, pa_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, pa_write_cb, fd, EV_WRITE);
		ev_init(&c->idle, pa_idle_cb);
		c->idle.repeat = PA_IDLE_S;
		ev_init(&c->delay, pa_delay_cb);
		ev_io_start(loop, &c->rio);
		ev_timer_again(loop, &c->idle);
		pa.nconn++;
		pa.st.connections++;
	}
}
