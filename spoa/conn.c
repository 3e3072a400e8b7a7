/* conn.c: the SPOP connection state machine (HELLO → NOTIFY/ACK → DISCONNECT).
 * Must not do I/O or allocate: the worker owns the socket and the buffers. */
#include <string.h>

#include "agent.h"
#include "conn.h"
#include "fleet-claim.h"
#include "spop.h"

void conn_init(struct conn *c, uint8_t *in, size_t in_size, uint8_t *out, size_t out_size,
               uint32_t our_max_frame)
{
	memset(c, 0, sizeof(*c));
	c->state = CONN_ST_HELLO;
	c->peer_status = SPOP_ST_UNKNOWN;
	c->max_frame = c->our_max_frame = our_max_frame;
	c->in = in;
	c->in_size = in_size;
	c->out = out;
	c->out_size = out_size;
}

size_t conn_in_room(struct conn *c)
{
	return c->in_size - c->in_len;
}

/* Make the free room of `out` contiguous at its end. */
static void out_compact(struct conn *c)
{
	if (c->out_off == 0)
		return;
	memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
	c->out_len -= c->out_off;
	c->out_off = 0;
}

int conn_out_has_room(const struct conn *c)
{
	return c->out_size - (c->out_len - c->out_off) >= CONN_ANSWER_ROOM;
}

void conn_out_written(struct conn *c, size_t n)
{
	c->out_off += n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

/* A writer over the free tail of `out`, never longer than one negotiated frame. */
static struct spop_wbuf out_writer(struct conn *c)
{
	size_t room;

	if (c->out_size - c->out_len < CONN_ANSWER_ROOM)
		out_compact(c);
	room = c->out_size - c->out_len;
	if (room > (size_t)c->max_frame + 4)
		room = (size_t)c->max_frame + 4;
	return spop_wbuf_init(c->out + c->out_len, room);
}

void conn_disconnect(struct conn *c, int status, const char *msg)
{
	struct spop_wbuf w;
	size_t n;

	if (c->state == CONN_ST_CLOSING)
		return;
	w = out_writer(c);
	n = spop_agent_disconnect(&w, (uint32_t)status, msg, c->max_frame);
	c->out_len += n; /* 0 when it did not fit: the connection then just closes */
	c->close_status = (uint8_t)status;
	c->state = CONN_ST_CLOSING;
}

static void on_hello(struct conn *c, const struct spop_frame *f)
{
	struct spop_hello h;
	struct spop_wbuf w;
	int st;

	st = spop_hello_parse(f->payload, f->len, &h);
	if (st) {
		conn_disconnect(c, st, spop_status_str(st));
		return;
	}
	if (h.max_frame_size < c->max_frame)
		c->max_frame = h.max_frame_size;
	w = out_writer(c);
	c->out_len += spop_agent_hello(&w, c->max_frame);
	if (h.healthcheck)
		c->state = CONN_ST_CLOSING; /* SPOE.txt: answer a health check, then close */
	else
		c->state = CONN_ST_READY;
}

static void on_notify(struct conn *c, struct agent *a, const struct spop_frame *f)
{
	struct spop_wbuf w = out_writer(c);
	uint8_t *start;
	size_t n;

	c->counts.notify++;
	start = spop_frame_begin(&w, SPOP_FRM_ACK, SPOP_FL_FIN, f->stream_id, f->frame_id);
	if (!a || agent_notify(a, f->payload, f->payload + f->len, &w) < 0) {
		conn_disconnect(c, SPOP_ST_INVALID, "invalid NOTIFY payload");
		return;
	}
	n = spop_frame_end(&w, start, c->max_frame);
	if (!n) {
		/* The agent bounds its ACK by w, so only a frame-size below the ACK's
		 * mandatory part gets here. */
		conn_disconnect(c, SPOP_ST_TOO_BIG, "ACK does not fit max-frame-size");
		return;
	}
	if (a->hold) {
		/* a new idempotency pin: the ACK waits for the fleet's claim (or goes now) */
		a->hold = false;
		if (claim_hold(a->claims, c, f->stream_id, f->frame_id, &a->held, a->now_us) == 0)
			return;
	}
	c->out_len += n;
	c->counts.ack++;
}

int conn_ack(struct conn *c, uint64_t stream_id, uint64_t frame_id, const struct pay_verdict *v)
{
	struct spop_wbuf w;
	uint8_t *start;
	size_t n;

	if (c->state != CONN_ST_READY)
		return -1;
	w = out_writer(c);
	start = spop_frame_begin(&w, SPOP_FRM_ACK, SPOP_FL_FIN, stream_id, frame_id);
	if (agent_put_verdict(&w, v) < 0 || !(n = spop_frame_end(&w, start, c->max_frame)))
		return -1;
	c->out_len += n;
	c->counts.ack++;
	return 0;
}

static void on_disconnect(struct conn *c, struct agent *a, const struct spop_frame *f)
{
	struct spop_str msg;
	uint32_t st;

	if (spop_disconnect_parse(f->payload, f->len, &st, &msg) < 0)
		st = SPOP_ST_UNKNOWN;
	c->peer_status = st > 255 ? SPOP_ST_UNKNOWN : (uint8_t)st;
	/* Every earlier NOTIFY is answered (decisions are synchronous; ACKs held for a
	 * fleet claim go now, as decided), so the in-flight work is done: answer and close. */
	if (a)
		claim_conn_flush(a->claims, c);
	conn_disconnect(c, SPOP_ST_NORMAL, "bye");
}

/* One frame; returns 0 to go on, -1 when the connection is closing. */
static int on_frame(struct conn *c, struct agent *a, const struct spop_frame *f)
{
	c->counts.frames_in++;
	if (!(f->flags & SPOP_FL_FIN)) {
		conn_disconnect(c, SPOP_ST_FRAG_NOT_SUP, spop_status_str(SPOP_ST_FRAG_NOT_SUP));
		return -1;
	}
	if (c->state == CONN_ST_HELLO) {
		if (f->type != SPOP_FRM_HAPROXY_HELLO) {
			conn_disconnect(c, SPOP_ST_INVALID, "expected HAPROXY-HELLO");
			return -1;
		}
		on_hello(c, f);
		return c->state == CONN_ST_READY ? 0 : -1;
	}
	switch (f->type) {
	case SPOP_FRM_NOTIFY:
		if (f->flags & SPOP_FL_ABORT) {
			c->counts.aborted++; /* HAProxy gave up on it: no ACK is expected */
			return 0;
		}
		on_notify(c, a, f);
		break;
	case SPOP_FRM_HAPROXY_DISCONNECT:
		on_disconnect(c, a, f);
		break;
	default:
		conn_disconnect(c, SPOP_ST_INVALID, "unexpected frame type");
		break;
	}
	return c->state == CONN_ST_READY ? 0 : -1;
}

unsigned conn_process(struct conn *c, struct agent *a)
{
	size_t off = 0;
	unsigned n = 0;

	while (c->state != CONN_ST_CLOSING && conn_out_has_room(c)) {
		struct spop_frame f;
		int r = spop_frame_get(c->in + off, c->in_len - off, c->max_frame, &f);

		if (r == 0)
			break;
		if (r < 0) {
			conn_disconnect(c, -r, spop_status_str(-r));
			break;
		}
		off += (size_t)r;
		n++;
		if (on_frame(c, a, &f) < 0)
			break;
	}
	if (c->state == CONN_ST_CLOSING) {
		c->in_len = 0; /* nothing after an error or a DISCONNECT is read */
	} else if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return n;
}
