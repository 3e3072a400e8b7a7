/* fuzz-frame.c: the connection state machine (spoa/conn.c) fed arbitrary bytes in
 * arbitrary chunks, with a real engine built once from conf/payspoa.conf
 * ($PAYSPOA_CONF), and the output drained in arbitrary pieces, as the worker does.
 *
 * Input: 2 bytes seed the chunking and draining choices, 1 byte picks the largest chunk,
 * the rest is the byte stream HAProxy would send.
 * Invariants: buffers never overrun; every frame written is whole and well-formed; an
 * AGENT-HELLO comes first and only once; every ACK is ≤ the negotiated max-frame-size,
 * decodes into ≥ 1 txn set-var, and carries the ids of the NOTIFY it answers, in order;
 * nothing follows an AGENT-DISCONNECT. */
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "conn.h"
#include "fuzz-check.h"
#include "spop.h"
#include "policy.h"

#define OUR_MAX  16380
#define IN_SIZE  (64 * 1024)
#define OUT_SIZE (64 * 1024)
#define MAX_IDS  8192

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pol_engine *engine;
static uint8_t inbuf[IN_SIZE], outbuf[OUT_SIZE];
static uint64_t expect_ids[MAX_IDS][2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	engine = fuzz_engine_load("fuzz-frame");
	return 0;
}

/* What the agent must answer, worked out independently of conn.c: the ids of every
 * NOTIFY (FIN, no ABORT) after a valid HELLO, until the first frame that ends the
 * connection. An agent that fails a NOTIFY's payload stops earlier: ACKs must be a
 * prefix of this list. */
static unsigned expected_acks(const uint8_t *p, size_t len)
{
	struct spop_frame f;
	struct spop_hello h;
	uint32_t max = OUR_MAX;
	unsigned n = 0;
	int r = spop_frame_get(p, len, max, &f);

	if (r <= 0 || f.type != SPOP_FRM_HAPROXY_HELLO || !(f.flags & SPOP_FL_FIN) ||
	    spop_hello_parse(f.payload, f.len, &h) != 0 || h.healthcheck)
		return 0;
	if (h.max_frame_size < max)
		max = h.max_frame_size;
	for (size_t off = (size_t)r; n < MAX_IDS; off += (size_t)r) {
		r = spop_frame_get(p + off, len - off, max, &f);
		if (r <= 0 || !(f.flags & SPOP_FL_FIN) || f.type != SPOP_FRM_NOTIFY)
			break;
		if (f.flags & SPOP_FL_ABORT)
			continue;
		expect_ids[n][0] = f.stream_id;
		expect_ids[n][1] = f.frame_id;
		n++;
	}
	return n;
}

struct out_state {
	size_t checked;      /* bytes past c->out_off already validated */
	unsigned frames, acks, nexpect;
	bool hello_seen, disconnect_seen;
};

/* Validate the frames written since the last call. */
static void check_output(const struct conn *c, struct out_state *s)
{
	const uint8_t *p = c->out + c->out_off + s->checked, *end = c->out + c->out_len;

	FUZZ_ASSERT(c->out_off <= c->out_len && c->out_len <= c->out_size);
	FUZZ_ASSERT(c->in_len <= c->in_size);
	while (p < end) {
		struct spop_frame f;
		int r = spop_frame_get(p, (size_t)(end - p), UINT32_MAX, &f);

		FUZZ_ASSERT(r > 0); /* whole, ≥ 7 bytes, header well-formed */
		FUZZ_ASSERT(!s->disconnect_seen);
		FUZZ_ASSERT(f.flags == SPOP_FL_FIN);
		switch (f.type) {
		case SPOP_FRM_AGENT_HELLO:
			FUZZ_ASSERT(s->frames == 0 && !s->hello_seen);
			s->hello_seen = true;
			break;
		case SPOP_FRM_AGENT_DISCONNECT: {
			struct spop_str msg;
			uint32_t st;

			FUZZ_ASSERT(spop_disconnect_parse(f.payload, f.len, &st, &msg) == 0);
			FUZZ_ASSERT(st != SPOP_ST_UNKNOWN);
			FUZZ_ASSERT((size_t)r <= (size_t)c->max_frame + 4);
			s->disconnect_seen = true;
			break;
		}
		case SPOP_FRM_ACK:
			FUZZ_ASSERT(s->hello_seen);
			FUZZ_ASSERT((size_t)r <= (size_t)c->max_frame + 4);
			FUZZ_ASSERT(s->acks < s->nexpect);
			FUZZ_ASSERT(f.stream_id == expect_ids[s->acks][0]);
			FUZZ_ASSERT(f.frame_id == expect_ids[s->acks][1]);
			fuzz_check_ack_payload(f.payload, f.len);
			s->acks++;
			break;
		default:
			FUZZ_ASSERT(!"unexpected frame type from the agent");
		}
		s->frames++;
		p += r;
	}
	s->checked = (size_t)(c->out_len - c->out_off);
}

static uint32_t rng_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Write out some of what is queued: all, none, or part (frames may be cut). */
static void drain(struct conn *c, struct out_state *s, uint32_t *rng, bool all)
{
	size_t pending = c->out_len - c->out_off, n;

	if (!pending)
		return;
	switch (all ? 0 : rng_next(rng) % 4) {
	case 0: n = pending; break;
	case 1: n = 0; break;
	default: n = 1 + rng_next(rng) % pending; break;
	}
	if (n) {
		conn_out_written(c, n);
		s->checked = s->checked > n ? s->checked - n : 0;
		if (c->out_off == 0 && c->out_len == 0)
			s->checked = 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn c;
	struct agent a;
	struct out_state s = { 0 };
	uint32_t rng, maxchunk;
	size_t pos = 0;

	if (size < 3)
		return 0;
	rng = (uint32_t)data[0] << 8 | data[1] | 0x10000u;
	maxchunk = data[2] < 128 ? 1u + data[2] % 16 : 64u << (data[2] % 11);
	data += 3;
	size -= 3;
	s.nexpect = expected_acks(data, size);
	memset(&a, 0, sizeof(a));
	a.engine = engine;
	a.now_us = 1000000;
	conn_init(&c, inbuf, IN_SIZE, outbuf, OUT_SIZE, OUR_MAX);
	while (pos < size && c.state != CONN_ST_CLOSING) {
		size_t n = 1 + rng_next(&rng) % maxchunk, room = conn_in_room(&c);

		if (n > size - pos)
			n = size - pos;
		if (n > room)
			n = room;
		memcpy(c.in + c.in_len, data + pos, n);
		c.in_len += n;
		pos += n;
		conn_process(&c, &a);
		check_output(&c, &s);
		/* like the worker: when nothing more can be read or answered, write first */
		drain(&c, &s, &rng, !conn_out_has_room(&c) || conn_in_room(&c) == 0);
		a.now_us += 1000;
	}
	/* frames held back for lack of output room */
	for (int i = 0; i < 64 && c.state != CONN_ST_CLOSING && c.in_len; i++) {
		drain(&c, &s, &rng, true);
		if (!conn_process(&c, &a))
			break;
		check_output(&c, &s);
	}
	conn_disconnect(&c, SPOP_ST_NORMAL, "fuzz end");
	check_output(&c, &s);
	pol_quiesce(engine, 0);
	return 0;
}
