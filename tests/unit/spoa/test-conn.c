/* test-conn.c: unit tests of the SPOP connection state machine (spoa/conn.c), driven on
 * buffers the way the worker drives it, without sockets: HELLO negotiation, NOTIFY → ACK
 * with the NOTIFY's own ids, pipelining and byte-at-a-time delivery, the DISCONNECT
 * status of each bad frame, HAPROXY-DISCONNECT, health checks, and back-pressure when
 * `out` is full. A real engine (conf/payspoa.conf) answers the NOTIFYs. */
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "conn.h"
#include "policy.h"
#include "spop-client.h"
#include "spop.h"
#include "test.h"

#define OUR_MAX  16380        /* agent.max_frame_size of conf/payspoa.conf */
#define BUF_SIZE (64 * 1024)  /* the daemon's `in` and `out` (spoa/daemon.c) */
#define MAX_GOT  4096

static uint8_t in_buf[BUF_SIZE], out_buf[BUF_SIZE];
static struct conn c;
static struct agent ag;

/* What the socket took from `out`, in order, and the frames parsed from it. */
static uint8_t sink[4 << 20];
static size_t sink_len;
static struct spop_frame got[MAX_GOT];
static unsigned ngot;

static void setup(void)
{
	char err[512];
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	pol_engine_free(ag.engine); /* a case that runs several connections */
	memset(&ag, 0, sizeof(ag));
	if (!(ag.engine = pol_engine_new(p, 1, err, sizeof(err))))
		TEST_FAIL_("%s", err);
	ag.now_us = 1000000;
	conn_init(&c, in_buf, BUF_SIZE, out_buf, BUF_SIZE, OUR_MAX);
	sink_len = 0;
	ngot = 0;
}

/* ---- HAProxy's side: frames into c.in ------------------------------------------------- */

/* Bytes arrive as a read() would put them; they must fit the room conn leaves. */
static void feed(const void *p, size_t n)
{
	ASSERT_LE(n, conn_in_room(&c));
	memcpy(c.in + c.in_len, p, n);
	c.in_len += n;
}

static size_t hello_opts(uint8_t *buf, size_t size, const struct sc_hello_opts *o)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	size_t n = sc_hello_custom(&w, o);

	ASSERT(n > 0);
	return n;
}

/* The HELLO HAProxy 2.6 and 3.x send, with its max-frame-size. */
static size_t hello(uint8_t *buf, size_t size, int64_t max_frame)
{
	struct sc_hello_opts o = { .versions = "2.0", .max_frame = max_frame, .caps = "pipelining" };

	return hello_opts(buf, size, &o);
}

/* A NOTIFY with one pay-request (the n-th sample payment). */
static size_t notify(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid, unsigned n)
{
	size_t len = sc_notify_sample(buf, size, sid, fid, n);

	ASSERT(len > 0);
	return len;
}

/* Any frame, payload given as bytes. */
static size_t frame(uint8_t *buf, size_t size, uint8_t type, uint32_t flags, uint64_t sid,
                    uint64_t fid, const void *payload, size_t plen)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	uint8_t *start = spop_frame_begin(&w, type, flags, sid, fid);
	size_t n;

	for (size_t i = 0; i < plen; i++)
		spop_put_u8(&w, ((const uint8_t *)payload)[i]);
	n = spop_frame_end(&w, start, UINT32_MAX);
	ASSERT(n > 0);
	return n;
}

static void feed_hello(int64_t max_frame)
{
	uint8_t b[256];

	feed(b, hello(b, sizeof(b), max_frame));
}

static void feed_notify(uint64_t sid, uint64_t fid, unsigned n)
{
	uint8_t b[1024];

	feed(b, notify(b, sizeof(b), sid, fid, n));
}

/* ---- the agent's side: what conn wrote into c.out --------------------------------------- */

/* The socket takes up to n bytes of `out`. */
static void drain(size_t n)
{
	size_t pending = c.out_len - c.out_off;

	if (n > pending)
		n = pending;
	ASSERT_LE(sink_len + n, sizeof(sink));
	memcpy(sink + sink_len, c.out + c.out_off, n);
	sink_len += n;
	conn_out_written(&c, n);
}

static void drain_all(void)
{
	drain(SIZE_MAX);
}

/* Parses everything the socket took into got[]: whole frames only, nothing left over. */
static void parse_sink(void)
{
	size_t off = 0;

	ngot = 0;
	while (off < sink_len) {
		int r = spop_frame_get(sink + off, sink_len - off, UINT32_MAX, &got[ngot]);

		if (r <= 0)
			TEST_FAIL_("bytes %zu..%zu of the output are not a whole frame (%d)", off, sink_len, r);
		ASSERT_EQ(got[ngot].flags, SPOP_FL_FIN);
		ASSERT(ngot + 1 < MAX_GOT);
		ngot++;
		off += (size_t)r;
	}
}

/* One value of a HELLO / DISCONNECT KV list; false if the key is absent. */
static bool kv(const struct spop_frame *f, const char *key, struct spop_data *d)
{
	const uint8_t *p = f->payload, *end = f->payload + f->len;

	while (p < end) {
		struct spop_str k;

		ASSERT_EQ(spop_kv_get(&p, end, &k, d), 0);
		if (k.len == strlen(key) && memcmp(k.ptr, key, k.len) == 0)
			return true;
	}
	return false;
}

static uint32_t disconnect_status(const struct spop_frame *f)
{
	struct spop_str msg;
	uint32_t st;

	ASSERT_EQ(f->type, SPOP_FRM_AGENT_DISCONNECT);
	ASSERT_EQ(spop_disconnect_parse(f->payload, f->len, &st, &msg), 0);
	ASSERT(msg.len > 0);
	return st;
}

/* The output so far is one AGENT-HELLO, in got[0]. */
static void expect_only_agent_hello(void)
{
	drain_all();
	parse_sink();
	ASSERT_EQ(ngot, 1);
	ASSERT_EQ(got[0].type, SPOP_FRM_AGENT_HELLO);
	ASSERT_EQ(got[0].stream_id, 0);
	ASSERT_EQ(got[0].frame_id, 0);
}

/* got[i] is an ACK for (sid, fid) that sets a verdict and a backend in txn. */
static void assert_ack(unsigned i, uint64_t sid, uint64_t fid)
{
	static struct sc_ack a;

	ASSERT(i < ngot);
	ASSERT_EQ(got[i].type, SPOP_FRM_ACK);
	if (got[i].stream_id != sid || got[i].frame_id != fid)
		TEST_FAIL_("frame %u: ACK for %llu/%llu, expected %llu/%llu", i,
		           (unsigned long long)got[i].stream_id, (unsigned long long)got[i].frame_id,
		           (unsigned long long)sid, (unsigned long long)fid);
	ASSERT(sc_ack_decode(got[i].payload, got[i].len, &a) >= 2);
	ASSERT(sc_ack_str(&a, "verdict") != NULL);
	ASSERT(sc_ack_str(&a, "backend") != NULL);
	ASSERT_EQ(sc_ack_var(&a, "backend")->scope, SPOP_SCOPE_TXN);
}

/* The connection ended with our DISCONNECT(status) as its last frame and reads nothing
 * more: further input is neither answered nor kept. */
static void assert_closed_with(uint32_t status)
{
	uint8_t b[1024];
	size_t before;

	drain_all();
	parse_sink();
	ASSERT(ngot >= 1);
	ASSERT_EQ(disconnect_status(&got[ngot - 1]), status);
	ASSERT_EQ(c.state, CONN_ST_CLOSING);
	ASSERT_EQ(c.close_status, status);
	ASSERT_EQ(c.in_len, 0);
	before = sink_len;
	feed(b, notify(b, sizeof(b), 1, 1, 0));
	ASSERT_EQ(conn_process(&c, &ag), 0);
	drain_all();
	ASSERT_EQ(sink_len, before);
}

/* ---- HELLO ------------------------------------------------------------------------------ */

TEST(hello_negotiates_the_smaller_max_frame_size)
{
	struct spop_data d;

	setup();
	feed_hello(1024);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(c.state, CONN_ST_READY);
	ASSERT_EQ(c.max_frame, 1024);
	ASSERT_EQ(c.our_max_frame, OUR_MAX);
	ASSERT_EQ(c.in_len, 0);
	expect_only_agent_hello();
	ASSERT(kv(&got[0], "version", &d));
	ASSERT_EQ(d.type, SPOP_DATA_STR);
	ASSERT_EQ(d.v.s.len, 3);
	ASSERT_MEMEQ(d.v.s.ptr, "2.0", 3);
	ASSERT(kv(&got[0], "max-frame-size", &d));
	ASSERT_EQ(d.type, SPOP_DATA_UINT32);
	ASSERT_EQ(d.v.u, 1024);
	ASSERT(kv(&got[0], "capabilities", &d));
	ASSERT_EQ(d.type, SPOP_DATA_STR);
	ASSERT(spop_list_has(d.v.s.ptr, d.v.s.len, "pipelining"));
	ASSERT_LE(got[0].len + 9, 1024);
}

TEST(hello_keeps_ours_when_haproxy_offers_more)
{
	struct spop_data d;

	setup();
	feed_hello(SPOP_FRAME_SIZE_MAX);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(c.max_frame, OUR_MAX);
	expect_only_agent_hello();
	ASSERT(kv(&got[0], "max-frame-size", &d));
	ASSERT_EQ(d.v.u, OUR_MAX);
}

/* Version lists, engine ids and keys a later HAProxy may add are all accepted. */
TEST(hello_accepts_version_lists_and_unknown_keys)
{
	static const struct sc_hello_opts ok[] = {
		{ .versions = "1.0, 2.0", .max_frame = 16380, .caps = "pipelining,async" },
		{ .versions = " 2.0 ,3.0", .max_frame = 256, .caps = "pipelining" },
		{ .versions = "2.0", .max_frame = 65532, .caps = "pipelining", .engine_id = "e1",
		  .unknown_keys = true },
	};

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint8_t b[512];

		setup();
		feed(b, hello_opts(b, sizeof(b), &ok[i]));
		ASSERT_EQ(conn_process(&c, &ag), 1);
		if (c.state != CONN_ST_READY)
			TEST_FAIL_("HELLO %u refused with status %u", i, c.close_status);
	}
}

/* Each way a HELLO can be wrong answers its own status (SPOE.txt §3.5). */
TEST(hello_refusals_carry_their_status)
{
	static const struct {
		struct sc_hello_opts o;
		uint32_t status;
	} bad[] = {
		{ { .versions = NULL, .max_frame = 16380, .caps = "pipelining" }, SPOP_ST_NO_VSN },
		{ { .versions = "1.0", .max_frame = 16380, .caps = "pipelining" }, SPOP_ST_BAD_VSN },
		{ { .versions = "2.0", .max_frame = -1, .caps = "pipelining" }, SPOP_ST_NO_FRAME_SIZE },
		{ { .versions = "2.0", .max_frame = 255, .caps = "pipelining" }, SPOP_ST_BAD_FRAME_SIZE },
		{ { .versions = "2.0", .max_frame = 16380, .caps = NULL }, SPOP_ST_NO_CAP },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t b[512];

		setup();
		feed(b, hello_opts(b, sizeof(b), &bad[i].o));
		feed_notify(1, 1, 0); /* pipelined behind the HELLO: never answered */
		ASSERT_EQ(conn_process(&c, &ag), 1);
		assert_closed_with(bad[i].status);
		ASSERT_EQ(ngot, 1);
	}
}

/* A HELLO whose supported-versions is not a string is invalid (status 4). */
TEST(hello_with_wrongly_typed_key_is_invalid)
{
	uint8_t payload[64], b[128];
	struct spop_wbuf w = spop_wbuf_init(payload, sizeof(payload));

	setup();
	spop_put_str(&w, "supported-versions", 18);
	spop_put_data_int(&w, 2);
	spop_put_str(&w, "max-frame-size", 14);
	spop_put_data_uint32(&w, 16380);
	ASSERT(!w.overflow);
	feed(b, frame(b, sizeof(b), SPOP_FRM_HAPROXY_HELLO, SPOP_FL_FIN, 0, 0, payload,
	              (size_t)(w.p - payload)));
	conn_process(&c, &ag);
	assert_closed_with(SPOP_ST_INVALID);
}

/* SPOE.txt: a health check gets AGENT-HELLO, then the connection closes (no DISCONNECT). */
TEST(healthcheck_gets_hello_then_close)
{
	struct sc_hello_opts o = { .versions = "2.0", .max_frame = 16380, .caps = "pipelining",
	                           .healthcheck = true };
	uint8_t b[512];

	setup();
	feed(b, hello_opts(b, sizeof(b), &o));
	feed_notify(1, 1, 0);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(c.state, CONN_ST_CLOSING);
	ASSERT_EQ(c.close_status, SPOP_ST_NORMAL);
	ASSERT_EQ(c.in_len, 0);
	expect_only_agent_hello();
	ASSERT_EQ(c.counts.notify, 0);
}

TEST(first_frame_must_be_hello)
{
	static const uint8_t types[] = { SPOP_FRM_NOTIFY, SPOP_FRM_HAPROXY_DISCONNECT, SPOP_FRM_ACK,
	                                 SPOP_FRM_AGENT_HELLO, 42 };

	for (unsigned i = 0; i < sizeof(types); i++) {
		uint8_t b[1024];

		setup();
		if (types[i] == SPOP_FRM_NOTIFY)
			feed(b, notify(b, sizeof(b), 1, 1, 0));
		else
			feed(b, frame(b, sizeof(b), types[i], SPOP_FL_FIN, 0, 0, NULL, 0));
		feed_hello(16380); /* too late */
		ASSERT_EQ(conn_process(&c, &ag), 1);
		assert_closed_with(SPOP_ST_INVALID);
		ASSERT_EQ(ngot, 1);
	}
}

/* The length prefix of the very first frame is judged against our own maximum. */
TEST(hello_larger_than_our_max_is_too_big)
{
	uint8_t len[4] = { 0, 0, (OUR_MAX + 1) >> 8, (OUR_MAX + 1) & 0xff };

	setup();
	feed(len, 4);
	ASSERT_EQ(conn_process(&c, &ag), 0);
	assert_closed_with(SPOP_ST_TOO_BIG);
}

/* ---- NOTIFY → ACK ----------------------------------------------------------------------- */

TEST(notify_ack_carries_the_notify_ids)
{
	setup();
	feed_hello(16380);
	feed_notify(5, 9, 0);
	ASSERT_EQ(conn_process(&c, &ag), 2);
	ASSERT_EQ(c.in_len, 0);
	ASSERT_EQ(c.counts.frames_in, 2);
	ASSERT_EQ(c.counts.notify, 1);
	ASSERT_EQ(c.counts.ack, 1);
	ASSERT_EQ(ag.counts.requests, 1);
	drain_all();
	parse_sink();
	ASSERT_EQ(ngot, 2);
	assert_ack(1, 5, 9);
}

/* Ids the agent must echo, not reorder or correlate: out of order, repeated stream ids,
 * the largest varints. */
static const uint64_t ids[][2] = {
	{ 7, 3 }, { 1, 100 }, { 7, 2 }, { 0, 0 }, { 3, 1 }, { 1ull << 40, 5 },
	{ 239, 240 }, { 2287, 2288 }, { UINT64_MAX, UINT64_MAX - 1 }, { 7, 1 },
};
#define NIDS (sizeof(ids) / sizeof(ids[0]))

/* HELLO and many NOTIFYs in one read: one call answers them all, in arrival order. */
TEST(pipelined_frames_in_one_buffer)
{
	const unsigned rounds = 10;

	setup();
	feed_hello(16380);
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < NIDS; i++)
			feed_notify(ids[i][0], ids[i][1], r * NIDS + i);
	ASSERT_EQ(conn_process(&c, &ag), 1 + rounds * NIDS);
	ASSERT_EQ(c.in_len, 0);
	ASSERT_EQ(c.counts.ack, rounds * NIDS);
	drain_all();
	parse_sink();
	ASSERT_EQ(ngot, 1 + rounds * NIDS);
	ASSERT_EQ(got[0].type, SPOP_FRM_AGENT_HELLO);
	for (unsigned k = 0; k < rounds * NIDS; k++)
		assert_ack(1 + k, ids[k % NIDS][0], ids[k % NIDS][1]);
}

/* One byte per read: nothing is answered before a frame is whole, every frame is
 * answered as soon as its last byte is there, and the partial frame stays in `in`. */
TEST(byte_at_a_time)
{
	static uint8_t stream[16384];
	size_t len, ends[1 + NIDS], nends = 0;

	setup();
	len = hello(stream, sizeof(stream), 16380);
	ends[nends++] = len;
	for (unsigned i = 0; i < NIDS; i++) {
		len += notify(stream + len, sizeof(stream) - len, ids[i][0], ids[i][1], i);
		ends[nends++] = len;
	}
	for (size_t pos = 0, e = 0; pos < len; pos++) {
		unsigned n;

		feed(stream + pos, 1);
		n = conn_process(&c, &ag);
		if (pos + 1 == ends[e]) {
			ASSERT_EQ(n, 1);
			ASSERT_EQ(c.in_len, 0);
			e++;
		} else {
			ASSERT_EQ(n, 0);
			ASSERT_EQ(c.in_len, pos + 1 - (e ? ends[e - 1] : 0));
		}
		drain_all();
		ag.now_us += 1000;
	}
	parse_sink();
	ASSERT_EQ(ngot, 1 + NIDS);
	for (unsigned i = 0; i < NIDS; i++)
		assert_ack(1 + i, ids[i][0], ids[i][1]);
}

/* HAProxy gave up on a NOTIFY (ABORT): no ACK is expected, the connection goes on. */
TEST(aborted_notify_gets_no_ack)
{
	uint8_t b[1024];
	size_t n;

	setup();
	feed_hello(16380);
	n = notify(b, sizeof(b), 4, 4, 0);
	b[8] |= SPOP_FL_ABORT; /* flags: 4 bytes big-endian after length and type */
	feed(b, n);
	feed_notify(4, 5, 1);
	ASSERT_EQ(conn_process(&c, &ag), 3);
	ASSERT_EQ(c.counts.aborted, 1);
	ASSERT_EQ(c.state, CONN_ST_READY);
	drain_all();
	parse_sink();
	ASSERT_EQ(ngot, 2);
	assert_ack(1, 4, 5);
}

/* With a 256-byte frame size every frame we write fits it, and an ACK still routes.
 * (HAProxy keeps its NOTIFYs within that size too: these carry a short pay-request.) */
TEST(frames_fit_a_256_byte_max_frame_size)
{
	setup();
	feed_hello(256);
	for (unsigned i = 0; i < NIDS; i++) {
		uint8_t b[256];
		struct spop_wbuf w = spop_wbuf_init(b, sizeof(b));
		uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, ids[i][0], ids[i][1]);

		spop_put_str(&w, "pay-request", 11);
		spop_put_u8(&w, 3);
		sc_put_arg_str(&w, "method", "POST");
		sc_put_arg_str(&w, "path", "/v1/payment_intents");
		sc_put_arg_str(&w, "currency", "eur");
		feed(b, spop_frame_end(&w, start, 256));
	}
	ASSERT_EQ(conn_process(&c, &ag), 1 + NIDS);
	ASSERT_EQ(c.state, CONN_ST_READY);
	drain_all();
	parse_sink();
	ASSERT_EQ(ngot, 1 + NIDS);
	for (size_t off = 0, i = 0; i < ngot; i++) {
		uint32_t flen = (uint32_t)sink[off] << 24 | (uint32_t)sink[off + 1] << 16 |
		                (uint32_t)sink[off + 2] << 8 | sink[off + 3];

		ASSERT_LE(flen, 256);
		ASSERT_GE(flen, SPOP_FRAME_MIN);
		off += 4 + flen;
	}
	for (unsigned i = 0; i < NIDS; i++)
		assert_ack(1 + i, ids[i][0], ids[i][1]);
}

/* ---- bad frames --------------------------------------------------------------------------- */

/* After HELLO (max-frame-size 1024) and one good NOTIFY, a bad frame: the good NOTIFY's
 * ACK stays, then our DISCONNECT with the frame's status, and nothing after is read. */
TEST(bad_frames_disconnect_with_their_status)
{
	static const uint8_t bad_varint[] = { 0, 0, 0, 7, SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0xf0, 0xf0 };
	static const uint8_t short_len[] = { 0, 0, 0, 6, SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0, 0 };
	static const uint8_t zero_len[] = { 0, 0, 0, 0 };
	static const uint8_t too_big[] = { 0, 0, 0x04, 0x01 };             /* 1025 > 1024 */
	static const uint8_t huge[] = { 0x80, 0, 0, 0 };                   /* 2^31 */
	static const uint8_t truncated_msg[] = { 11, 'p', 'a', 'y', '-', 'r', 'e', 'q', 'u', 'e', 's', 't' };
	static const uint8_t bad_kv[] = { 11, 'p', 'a', 'y', '-', 'r', 'e', 'q', 'u', 'e', 's', 't', 1,
	                                  2, 'i', 'd', 0x08, 50, 'x' };      /* string longer than the frame */
	enum { RAW, NOFIN, TYPE, PAYLOAD };
	static const struct {
		const char *what;
		int kind;
		const uint8_t *bytes;
		size_t len;
		uint8_t type;
		uint32_t status;
	} cases[] = {
		{ "length above max-frame-size", RAW, too_big, sizeof(too_big), 0, SPOP_ST_TOO_BIG },
		{ "length 2^31", RAW, huge, sizeof(huge), 0, SPOP_ST_TOO_BIG },
		{ "length 0", RAW, zero_len, sizeof(zero_len), 0, SPOP_ST_INVALID },
		{ "length 6", RAW, short_len, sizeof(short_len), 0, SPOP_ST_INVALID },
		{ "stream-id varint runs off the frame", RAW, bad_varint, sizeof(bad_varint), 0, SPOP_ST_INVALID },
		{ "NOTIFY without FIN", NOFIN, NULL, 0, 0, SPOP_ST_FRAG_NOT_SUP },
		{ "second HAPROXY-HELLO", TYPE, NULL, 0, SPOP_FRM_HAPROXY_HELLO, SPOP_ST_INVALID },
		{ "unknown frame type", TYPE, NULL, 0, 42, SPOP_ST_INVALID },
		{ "an agent's frame type", TYPE, NULL, 0, SPOP_FRM_ACK, SPOP_ST_INVALID },
		{ "NOTIFY message cut short", PAYLOAD, truncated_msg, sizeof(truncated_msg), 0, SPOP_ST_INVALID },
		{ "NOTIFY argument longer than the frame", PAYLOAD, bad_kv, sizeof(bad_kv), 0, SPOP_ST_INVALID },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t b[2048];
		size_t n = 0;

		setup();
		feed_hello(1024);
		feed_notify(2, 3, 0);
		switch (cases[i].kind) {
		case RAW:
			memcpy(b, cases[i].bytes, cases[i].len);
			n = cases[i].len;
			break;
		case NOFIN:
			n = notify(b, sizeof(b), 2, 4, 1);
			b[8] &= (uint8_t)~SPOP_FL_FIN;
			break;
		case TYPE:
			n = frame(b, sizeof(b), cases[i].type, SPOP_FL_FIN, 0, 0, NULL, 0);
			break;
		case PAYLOAD:
			n = frame(b, sizeof(b), SPOP_FRM_NOTIFY, SPOP_FL_FIN, 2, 4, cases[i].bytes, cases[i].len);
			break;
		}
		feed(b, n);
		feed_notify(2, 5, 2); /* after the bad frame: never answered */
		conn_process(&c, &ag);
		drain_all();
		parse_sink();
		if (ngot != 3 || got[2].type != SPOP_FRM_AGENT_DISCONNECT ||
		    disconnect_status(&got[2]) != cases[i].status)
			TEST_FAIL_("%s: %u frames, last type %u, status %u (expected 3 frames, DISCONNECT %u)",
			           cases[i].what, ngot, ngot ? got[ngot - 1].type : 0,
			           ngot && got[ngot - 1].type == SPOP_FRM_AGENT_DISCONNECT ?
			           disconnect_status(&got[ngot - 1]) : 0, cases[i].status);
		assert_ack(1, 2, 3);
		assert_closed_with(cases[i].status);
	}
}

/* A length above the maximum is refused as soon as its 4 bytes are there, without waiting
 * for a body that may never come (or be 2 GiB). */
TEST(too_big_is_judged_on_the_length_prefix)
{
	static const uint8_t len[] = { 0, 0, 0x40, 0x00 }; /* 16384 > 16380 */

	setup();
	feed_hello(65532);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	feed(len, 3);
	ASSERT_EQ(conn_process(&c, &ag), 0);
	ASSERT_EQ(c.state, CONN_ST_READY);
	feed(len + 3, 1);
	conn_process(&c, &ag);
	assert_closed_with(SPOP_ST_TOO_BIG);
}

/* conn.h: without a decision context a NOTIFY answers a protocol error. */
TEST(notify_without_agent_is_invalid)
{
	setup();
	feed_hello(16380);
	feed_notify(1, 1, 0);
	ASSERT_EQ(conn_process(&c, NULL), 2);
	assert_closed_with(SPOP_ST_INVALID);
	ASSERT_EQ(ngot, 2);
	ASSERT_EQ(c.counts.ack, 0);
}

/* ---- DISCONNECT ----------------------------------------------------------------------------- */

/* Every NOTIFY before HAProxy's DISCONNECT is answered first; then AGENT-DISCONNECT with
 * status 0, and what follows is not read. HAProxy's own status is kept for the logs. */
TEST(haproxy_disconnect_after_pipelined_notifies)
{
	static const struct { uint32_t sent, kept; } st[] = {
		{ SPOP_ST_NORMAL, SPOP_ST_NORMAL }, { SPOP_ST_TIMEOUT, SPOP_ST_TIMEOUT },
		{ 255, 255 }, { 256, SPOP_ST_UNKNOWN }, { 100000, SPOP_ST_UNKNOWN },
	};

	for (unsigned i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		uint8_t b[256];
		struct spop_wbuf w = spop_wbuf_init(b, sizeof(b));

		setup();
		feed_hello(16380);
		feed_notify(1, 1, 0);
		feed_notify(1, 2, 1);
		feed(b, spop_haproxy_disconnect(&w, st[i].sent, "bye"));
		feed_notify(1, 3, 2);
		ASSERT_EQ(conn_process(&c, &ag), 4);
		ASSERT_EQ(c.peer_status, st[i].kept);
		assert_closed_with(SPOP_ST_NORMAL);
		ASSERT_EQ(ngot, 4);
		assert_ack(1, 1, 1);
		assert_ack(2, 1, 2);
	}
}

/* A DISCONNECT whose payload cannot be read still ends the connection normally; its
 * status is unknown. */
TEST(haproxy_disconnect_unreadable_payload)
{
	static const uint8_t junk[] = { 0xff, 0xff };
	uint8_t b[64];

	setup();
	feed_hello(16380);
	feed(b, frame(b, sizeof(b), SPOP_FRM_HAPROXY_DISCONNECT, SPOP_FL_FIN, 0, 0, junk, sizeof(junk)));
	ASSERT_EQ(conn_process(&c, &ag), 2);
	ASSERT_EQ(c.peer_status, SPOP_ST_UNKNOWN);
	assert_closed_with(SPOP_ST_NORMAL);
}

/* Our own DISCONNECT (shutdown, idle timeout) is queued once, whatever calls follow. */
TEST(agent_disconnect_is_sent_once)
{
	setup();
	feed_hello(16380);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	conn_disconnect(&c, SPOP_ST_TIMEOUT, "idle timeout");
	conn_disconnect(&c, SPOP_ST_NORMAL, "agent shutting down");
	assert_closed_with(SPOP_ST_TIMEOUT);
	ASSERT_EQ(ngot, 2);
}

/* ---- back-pressure ---------------------------------------------------------------------------- */

/* Nobody reads our ACKs: conn answers while `out` has CONN_ANSWER_ROOM free, then stops
 * and keeps the unanswered frames in `in`, consuming nothing more; `in` fills, so the
 * worker stops reading. Once the socket takes bytes, answering resumes where it stopped,
 * and every NOTIFY gets its ACK, in order. */
TEST(backpressure_when_out_is_full)
{
	const unsigned total = 2000;
	unsigned fed = 0, stuck = 0;
	uint8_t b[1024];

	setup();
	feed_hello(16380);
	while (fed < total) {
		size_t n = notify(b, sizeof(b), fed % 7, fed, fed);

		if (n > conn_in_room(&c)) {
			size_t in_before = c.in_len;

			/* `in` is full: HAProxy waits for us */
			ASSERT(!conn_out_has_room(&c));
			ASSERT_EQ(conn_process(&c, &ag), 0);
			ASSERT_EQ(c.in_len, in_before);
			ASSERT_LE(c.out_len, c.out_size);
			stuck++;
			drain_all();
			ASSERT(conn_out_has_room(&c));
		} else {
			feed(b, n);
			fed++;
		}
		conn_process(&c, &ag);
		ag.now_us += 2000;
	}
	while (c.in_len) {
		drain_all();
		ASSERT(conn_process(&c, &ag) > 0);
	}
	drain_all();
	ASSERT(stuck > 0);
	parse_sink();
	ASSERT_EQ(ngot, 1 + total);
	for (unsigned i = 0; i < total; i++)
		assert_ack(1 + i, i % 7, i);
}

/* Short writes of every size: the rest of `out` is kept and compacted, frames are never
 * split or reordered in the byte stream. */
TEST(short_writes_keep_frames_whole_and_in_order)
{
	const unsigned total = 600;
	uint32_t x = 12345;
	unsigned fed = 0;
	uint8_t b[1024];

	setup();
	feed_hello(16380);
	conn_process(&c, &ag);
	while (fed < total || c.in_len || c.out_len) {
		while (fed < total) {
			size_t n = notify(b, sizeof(b), fed, total - fed, fed);

			if (n > conn_in_room(&c))
				break;
			feed(b, n);
			fed++;
		}
		conn_process(&c, &ag);
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		drain(x % 3000);
		ag.now_us += 1000;
	}
	parse_sink();
	ASSERT_EQ(ngot, 1 + total);
	for (unsigned i = 0; i < total; i++)
		assert_ack(1 + i, i, total - i);
}

int main(void)
{
	RUN(hello_negotiates_the_smaller_max_frame_size);
	RUN(hello_keeps_ours_when_haproxy_offers_more);
	RUN(hello_accepts_version_lists_and_unknown_keys);
	RUN(hello_refusals_carry_their_status);
	RUN(hello_with_wrongly_typed_key_is_invalid);
	RUN(healthcheck_gets_hello_then_close);
	RUN(first_frame_must_be_hello);
	RUN(hello_larger_than_our_max_is_too_big);
	RUN(notify_ack_carries_the_notify_ids);
	RUN(pipelined_frames_in_one_buffer);
	RUN(byte_at_a_time);
	RUN(aborted_notify_gets_no_ack);
	RUN(frames_fit_a_256_byte_max_frame_size);
	RUN(bad_frames_disconnect_with_their_status);
	RUN(too_big_is_judged_on_the_length_prefix);
	RUN(notify_without_agent_is_invalid);
	RUN(haproxy_disconnect_after_pipelined_notifies);
	RUN(haproxy_disconnect_unreadable_payload);
	RUN(agent_disconnect_is_sent_once);
	RUN(backpressure_when_out_is_full);
	RUN(short_writes_keep_frames_whole_and_in_order);
	return test_summary();
}
