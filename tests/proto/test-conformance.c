/* test-conformance.c: SPOP conformance of the real daemon, driven over real sockets
 * from HAProxy's side. Each case starts its own ./payspoa ($PAYSPOA_BIN) with
 * conf/payspoa.conf ($PAYSPOA_CONF) on a free loopback port, and ends by proving the
 * daemon still serves a fresh connection and exits 0 on SIGTERM.
 * Case names start with the SPOP.md edge-case group they cover (g1_ .. g10_).
 * Every wait has a deadline: nothing here can hang past TEST_TIMEOUT_S. */
#define TEST_TIMEOUT_S 90

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "spop-client.h"
#include "test.h"

#define IO_MS       3000   /* any single expected answer */
#define OUR_MAX     16380  /* conf/payspoa.conf agent.max_frame_size (read back from AGENT-HELLO) */

/* --- the daemon under test (tests/lib/payspoa-proc) -------------------------------- */

static struct pp_daemon D;
static char conf_dir[64];  /* a temporary policy folder (g10_max_connections) */

static void conf_dir_cleanup(void)
{
	char cmd[128];

	if (!conf_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", conf_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", conf_dir);
	conf_dir[0] = 0;
}

/* The default policy, two workers, a free loopback port. */
static void daemon_start(void)
{
	pp_start(&D, NULL, NULL, 2, 0);
}

static int daemon_rss_kb(void)
{
	int kb = pp_rss_kb(&D);

	ASSERT(kb >= 0);
	return kb;
}

/* --- client helpers ---------------------------------------------------------------- */

static struct sc_conn *cli_open(void)
{
	struct sc_conn *c = malloc(sizeof(*c));
	int fd = sc_connect(D.addr, IO_MS);

	ASSERT(c);
	if (fd < 0)
		TEST_FAIL_("connect %s: %s", D.addr, strerror(errno));
	sc_conn_init(c, fd);
	return c;
}

static void cli_send(struct sc_conn *c, const void *b, size_t n)
{
	if (sc_send_all(c->fd, b, n, IO_MS) < 0)
		TEST_FAIL_("send %zu bytes: %s", n, strerror(errno));
}

static const char *rd_name(int r)
{
	switch (r) {
	case SC_FRAME: return "a frame";
	case SC_CLOSED: return "closed";
	case SC_TIMEOUT: return "timeout";
	default: return "a malformed frame";
	}
}

static void expect_frame(struct sc_conn *c, struct spop_frame *f)
{
	int r = sc_read_frame(c, f, IO_MS);

	if (r != SC_FRAME)
		TEST_FAIL_("expected a frame, got %s", rd_name(r));
}

/* The agent closes (EOF or RST) without sending anything more. */
static void expect_closed(struct sc_conn *c)
{
	struct spop_frame f;
	int r = sc_read_frame(c, &f, IO_MS);

	if (r == SC_FRAME)
		TEST_FAIL_("expected the close, got a frame of type %u", f.type);
	if (r != SC_CLOSED)
		TEST_FAIL_("expected the close, got %s", rd_name(r));
}

/* The next frame is AGENT-DISCONNECT (well-formed, ≤ max_frame); returns its status;
 * the connection then closes. */
static uint32_t expect_disconnect(struct sc_conn *c, uint32_t max_frame)
{
	struct spop_frame f;
	struct spop_str msg;
	uint32_t st;

	expect_frame(c, &f);
	if (f.type != SPOP_FRM_AGENT_DISCONNECT)
		TEST_FAIL_("expected AGENT-DISCONNECT, got frame type %u", f.type);
	ASSERT(f.flags & SPOP_FL_FIN);
	ASSERT_LE(f.len + 5 + spop_varint_len(f.stream_id) + spop_varint_len(f.frame_id), max_frame);
	ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &st, &msg), 0);
	ASSERT_NE(st, SPOP_ST_UNKNOWN); /* the status-code key is there */
	expect_closed(c);
	return st;
}

/* Frame length as it was on the wire (without the 4-byte prefix). */
static size_t frame_len(const struct spop_frame *f)
{
	return 5 + spop_varint_len(f->stream_id) + spop_varint_len(f->frame_id) + f->len;
}

/* Reads AGENT-HELLO; checks version, capabilities; returns its max-frame-size. */
static uint32_t expect_agent_hello(struct sc_conn *c, uint32_t haproxy_max)
{
	struct spop_frame f;
	const uint8_t *p, *end;
	bool vsn = false, caps = false;
	uint64_t mfs = 0;

	expect_frame(c, &f);
	if (f.type != SPOP_FRM_AGENT_HELLO) {
		struct spop_str msg;
		uint32_t st = 0;

		if (f.type == SPOP_FRM_AGENT_DISCONNECT)
			spop_disconnect_parse(f.payload, f.len, &st, &msg);
		TEST_FAIL_("expected AGENT-HELLO, got frame type %u (status %u)", f.type, st);
	}
	ASSERT_EQ(f.flags, SPOP_FL_FIN);
	ASSERT_EQ(f.stream_id, 0);
	ASSERT_EQ(f.frame_id, 0);
	p = f.payload;
	end = p + f.len;
	while (p < end) {
		struct spop_str k;
		struct spop_data d;

		ASSERT_EQ(spop_kv_get(&p, end, &k, &d), 0);
		if (k.len == 7 && !memcmp(k.ptr, "version", 7)) {
			ASSERT_EQ(d.type, SPOP_DATA_STR);
			ASSERT(d.v.s.len == 3 && !memcmp(d.v.s.ptr, "2.0", 3));
			vsn = true;
		} else if (k.len == 14 && !memcmp(k.ptr, "max-frame-size", 14)) {
			ASSERT(d.type == SPOP_DATA_UINT32 || d.type == SPOP_DATA_UINT64 ||
			       d.type == SPOP_DATA_INT32 || d.type == SPOP_DATA_INT64);
			mfs = d.v.u;
		} else if (k.len == 12 && !memcmp(k.ptr, "capabilities", 12)) {
			ASSERT_EQ(d.type, SPOP_DATA_STR);
			/* pipelining only: 3.1+ removed async and fragmentation */
			ASSERT(spop_list_has(d.v.s.ptr, d.v.s.len, "pipelining"));
			ASSERT(!spop_list_has(d.v.s.ptr, d.v.s.len, "async"));
			ASSERT(!spop_list_has(d.v.s.ptr, d.v.s.len, "fragmentation"));
			caps = true;
		}
	}
	ASSERT(vsn);
	ASSERT(caps);
	ASSERT_GE(mfs, SPOP_FRAME_SIZE_MIN);
	ASSERT_LE(mfs, haproxy_max);
	ASSERT_LE(frame_len(&f), mfs);
	return (uint32_t)mfs;
}

static size_t build_hello(uint8_t *buf, size_t size, uint32_t max_frame)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	size_t n = spop_haproxy_hello(&w, "2.0", max_frame, "pipelining", false, "test-engine");

	ASSERT(n > 0);
	return n;
}

/* A connection past HELLO; *max gets the negotiated max-frame-size. */
static struct sc_conn *cli_ready(uint32_t haproxy_max, uint32_t *max)
{
	struct sc_conn *c = cli_open();
	uint8_t buf[256];
	uint32_t m;

	cli_send(c, buf, build_hello(buf, sizeof(buf), haproxy_max));
	m = expect_agent_hello(c, haproxy_max);
	if (max)
		*max = m;
	return c;
}

/* A NOTIFY with one pay-request (the n-th sample payment). */
static size_t build_notify(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid, unsigned n)
{
	size_t len = sc_notify_sample(buf, size, sid, fid, n);

	ASSERT(len > 0);
	return len;
}

/* The same request trimmed to what HAProxy would send with a 256-byte frame size (the
 * SPOE configuration would then carry fewer arguments): no idem, account or card. */
static void payreq_compact(struct sc_payreq *r)
{
	r->idem = r->account = r->card_brand = r->card_funding = NULL;
}

/* A pay-request NOTIFY that fits max_frame: the full one, or the compact one. */
static size_t build_notify_fit(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid, unsigned n,
                               uint32_t max_frame)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	struct sc_payreq r;
	char id[32], idem[65];
	size_t len;

	sc_payreq_sample(&r, n, id, idem);
	len = sc_notify_payreq(&w, sid, fid, &r);
	if (len == 0 || len - 4 > max_frame) {
		w = spop_wbuf_init(buf, size);
		payreq_compact(&r);
		len = sc_notify_payreq(&w, sid, fid, &r);
	}
	ASSERT(len > 0);
	ASSERT_LE(len - 4, max_frame);
	return len;
}

/* Checks every ACK must pass (SPOP.md group 8): ids echo the NOTIFY's, the frame fits
 * the negotiated size, the payload decodes entirely into ≥ 1 set-var, each in scope txn
 * with a name that fits HAProxy 2.6's 64-byte "txn.pay.<name>" buffer. */
static void check_ack(const struct spop_frame *f, uint64_t sid, uint64_t fid, uint32_t max_frame,
                      struct sc_ack *a)
{
	int n;

	if (f->type != SPOP_FRM_ACK) {
		struct spop_str msg;
		uint32_t st = 0;

		if (f->type == SPOP_FRM_AGENT_DISCONNECT)
			spop_disconnect_parse(f->payload, f->len, &st, &msg);
		TEST_FAIL_("expected ACK for %llu/%llu, got frame type %u (status %u)",
		           (unsigned long long)sid, (unsigned long long)fid, f->type, st);
	}
	ASSERT_EQ(f->flags, SPOP_FL_FIN);
	if (f->stream_id != sid || f->frame_id != fid)
		TEST_FAIL_("ACK ids %llu/%llu, NOTIFY ids %llu/%llu", (unsigned long long)f->stream_id,
		           (unsigned long long)f->frame_id, (unsigned long long)sid, (unsigned long long)fid);
	ASSERT_LE(frame_len(f), max_frame);
	n = sc_ack_decode(f->payload, f->len, a);
	if (n < 1) {
		fprintf(stderr, "  ACK payload (%zu bytes):", f->len);
		for (size_t i = 0; i < f->len; i++)
			fprintf(stderr, "%s%02x", i % 32 ? " " : "\n    ", f->payload[i]);
		fprintf(stderr, "\n");
		TEST_FAIL_("ACK %s: %u actions decoded", n < 0 ? "malformed" : "empty", a->n);
	}
	for (unsigned i = 0; i < a->n; i++) {
		const struct sc_var *v = &a->v[i];

		ASSERT_EQ(v->action, SPOP_ACT_SET_VAR);
		ASSERT_EQ(v->scope, SPOP_SCOPE_TXN);
		ASSERT_GE(v->nlen, 1);
		ASSERT_LE(strlen("txn.pay.") + v->nlen, 63);
		for (size_t k = 0; k < v->nlen; k++) {
			char ch = v->name[k];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
				TEST_FAIL_("variable name \"%s\" has a character HAProxy refuses", v->name);
		}
		ASSERT(v->val.type == SPOP_DATA_STR || v->val.type == SPOP_DATA_INT32 ||
		       v->val.type == SPOP_DATA_INT64 || v->val.type == SPOP_DATA_UINT32 ||
		       v->val.type == SPOP_DATA_UINT64 || v->val.type == SPOP_DATA_BOOL);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(a->v[j].name, v->name) == 0)
				TEST_FAIL_("variable %s set twice", v->name);
	}
}

/* A pay-request's ACK: verdict and backend at least, values in range. */
static void check_verdict(const struct sc_ack *a)
{
	const char *verdict = sc_ack_str(a, "verdict"), *backend = sc_ack_str(a, "backend");
	const struct sc_var *prio = sc_ack_var(a, "prio");

	if (!verdict || !backend)
		TEST_FAIL_("ACK lacks verdict or backend (%u variables)", a->n);
	ASSERT(!strcmp(verdict, "allow") || !strcmp(verdict, "queue") || !strcmp(verdict, "reject"));
	ASSERT_GE(strlen(backend), 1);
	if (prio) {
		ASSERT(prio->val.type == SPOP_DATA_INT64 || prio->val.type == SPOP_DATA_INT32);
		ASSERT_GE(prio->val.v.i, -2047);
		ASSERT_LE(prio->val.v.i, 2047);
	}
}

static void expect_ack(struct sc_conn *c, uint64_t sid, uint64_t fid, uint32_t max_frame,
                       struct sc_ack *a)
{
	struct spop_frame f;

	expect_frame(c, &f);
	check_ack(&f, sid, fid, max_frame, a);
}

/* One pay-request round trip on c. */
static void roundtrip(struct sc_conn *c, uint64_t sid, uint64_t fid, uint32_t max_frame)
{
	uint8_t buf[1024];
	struct sc_ack a;

	cli_send(c, buf, build_notify_fit(buf, sizeof(buf), sid, fid, (unsigned)fid, max_frame));
	expect_ack(c, sid, fid, max_frame, &a);
	check_verdict(&a);
}

/* End of every case: the daemon is alive, serves a fresh connection, exits 0. */
static void daemon_finish(void)
{
	struct sc_conn *c;
	uint32_t max;
	int st;

	if (!pp_alive(&D))
		TEST_FAIL_("the daemon died during the case (see its log lines above)");
	c = cli_ready(OUR_MAX, &max);
	roundtrip(c, 1, 1, max);
	pp_close(c);
	st = pp_stop(&D, SIGTERM, 15000);
	if (st < 0)
		TEST_FAIL_("the daemon did not exit within 15 s of SIGTERM");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		TEST_FAIL_("the daemon ended with status 0x%x (signal %d), expected exit 0", st,
		           WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	pp_cleanup(); /* now, so that its log lines show under this case */
}

/* Raw frame: 4-byte length then the bytes given. */
static size_t raw_frame(uint8_t *out, uint32_t len, const void *body, size_t blen)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	if (blen)
		memcpy(out + 4, body, blen);
	return 4 + blen;
}

/* Send `bytes` on a fresh connection (after HELLO if `hello`), expect DISCONNECT with
 * one of the statuses given (st2 < 0: only st1), then the close. */
static void expect_rejected(bool hello, const void *bytes, size_t n, int st1, int st2)
{
	struct sc_conn *c = hello ? cli_ready(OUR_MAX, NULL) : cli_open();
	uint32_t st;

	cli_send(c, bytes, n);
	st = expect_disconnect(c, OUR_MAX);
	if ((int)st != st1 && (int)st != st2)
		TEST_FAIL_("DISCONNECT status %u, expected %d%s", st, st1, st2 >= 0 ? " or another" : "");
	pp_close(c);
}

/* ================================================================================== */
/* 1. Frame lengths                                                                    */

TEST(g1_lengths_0_to_6)
{
	static const uint8_t body[8] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 1, 1, 0 };
	uint8_t buf[16];

	daemon_start();
	for (uint32_t len = 0; len < SPOP_FRAME_MIN; len++) {
		/* after HELLO, before HELLO, and with the length prefix alone (no stall waiting
		 * for a body that would not make it legal anyway) */
		expect_rejected(true, buf, raw_frame(buf, len, body, len), SPOP_ST_INVALID, SPOP_ST_TOO_BIG);
		expect_rejected(false, buf, raw_frame(buf, len, body, len), SPOP_ST_INVALID, SPOP_ST_TOO_BIG);
		expect_rejected(true, buf, raw_frame(buf, len, body, 0), SPOP_ST_INVALID, SPOP_ST_TOO_BIG);
	}
	daemon_finish();
}

/* A NOTIFY of exactly `len` bytes (prefix excluded): one pay-request, then a message
 * "pad" whose binary argument fills the rest. */
static size_t build_notify_of_len(uint8_t *buf, size_t size, uint32_t len, uint64_t sid, uint64_t fid)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	struct sc_payreq r;
	char id[32], idem[65];
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, sid, fid);
	size_t used, rest, blen = 0, total;
	static uint8_t pad[70000];

	sc_payreq_sample(&r, 7, id, idem);
	if (len < 512)
		payreq_compact(&r);
	sc_put_pay_request(&w, &r);
	used = (size_t)(w.p - start) - 4;
	ASSERT(len > used + 16);
	rest = len - used; /* bytes the pad message takes: 4 ("pad") + 1 + 2 ("p") + 1 + varint + blen */
	for (size_t vl = 1; vl <= 3; vl++) {
		blen = rest - 8 - vl;
		if (spop_varint_len(blen) == vl)
			break;
	}
	spop_put_str(&w, "pad", 3);
	spop_put_u8(&w, 1);
	spop_put_str(&w, "p", 1);
	spop_put_u8(&w, SPOP_DATA_BIN);
	spop_put_str(&w, pad, blen);
	total = spop_frame_end(&w, start, UINT32_MAX);
	ASSERT_EQ(total, (size_t)len + 4);
	return total;
}

TEST(g1_length_max_accepted_max_plus_1_refused)
{
	static uint8_t buf[70000];
	struct sc_conn *c;
	struct sc_ack a;
	uint32_t max;

	daemon_start();
	/* exactly the negotiated max (ours: HAProxy offers more) */
	c = cli_ready(65532, &max);
	ASSERT_EQ(max, OUR_MAX);
	cli_send(c, buf, build_notify_of_len(buf, sizeof(buf), max, 5, 6));
	expect_ack(c, 5, 6, max, &a);
	check_verdict(&a);
	roundtrip(c, 7, 8, max);
	/* max + 1, as a real frame and as a bare length prefix */
	cli_send(c, buf, build_notify_of_len(buf, sizeof(buf), max + 1, 9, 10));
	ASSERT_EQ(expect_disconnect(c, max), SPOP_ST_TOO_BIG);
	pp_close(c);
	expect_rejected(true, buf, raw_frame(buf, OUR_MAX + 1, NULL, 0), SPOP_ST_TOO_BIG, -1);

	/* the same with HAProxy's smallest size, 256 */
	c = cli_ready(256, &max);
	ASSERT_EQ(max, 256);
	cli_send(c, buf, build_notify_of_len(buf, sizeof(buf), 256, 5, 6));
	expect_ack(c, 5, 6, 256, &a);
	check_verdict(&a);
	cli_send(c, buf, build_notify_of_len(buf, sizeof(buf), 257, 9, 10));
	ASSERT_EQ(expect_disconnect(c, 256), SPOP_ST_TOO_BIG);
	pp_close(c);
	daemon_finish();
}

TEST(g1_length_2p31_and_above)
{
	static const uint32_t lens[] = { 0x80000000u, 0x80000007u, 0xfffffff0u, 0xffffffffu, 65536, 1u << 24 };
	static const uint8_t body[8] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 1, 1, 0 };
	uint8_t buf[16];

	daemon_start();
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		expect_rejected(true, buf, raw_frame(buf, lens[i], body, 8), SPOP_ST_TOO_BIG, -1);
		expect_rejected(false, buf, raw_frame(buf, lens[i], NULL, 0), SPOP_ST_TOO_BIG, -1);
	}
	daemon_finish();
}

/* ================================================================================== */
/* 2. Partial and coalesced reads, short writes                                        */

TEST(g2_byte_at_a_time)
{
	uint8_t buf[1024];
	struct sc_conn *c;
	struct sc_ack a;
	size_t n;
	uint32_t max;

	daemon_start();
	c = cli_open();
	n = build_hello(buf, sizeof(buf), OUR_MAX);
	ASSERT_EQ(sc_send_bytewise(c->fd, buf, n, 3), 0);
	max = expect_agent_hello(c, OUR_MAX);
	for (unsigned i = 0; i < 3; i++) {
		n = build_notify(buf, sizeof(buf), 100 + i, 1, i);
		ASSERT_EQ(sc_send_bytewise(c->fd, buf, n, i == 0 ? 1 : 16), 0);
		expect_ack(c, 100 + i, 1, max, &a);
		check_verdict(&a);
	}
	pp_close(c);
	daemon_finish();
}

/* HELLO + NOTIFY + NOTIFY split in two writes at every offset, on fresh connections. */
TEST(g2_split_at_every_offset)
{
	uint8_t buf[2048];
	size_t n;

	daemon_start();
	n = build_hello(buf, sizeof(buf), OUR_MAX);
	n += build_notify(buf + n, sizeof(buf) - n, 3, 1, 1);
	n += build_notify(buf + n, sizeof(buf) - n, 5, 1, 2);
	for (size_t cut = 1; cut < n; cut++) {
		struct sc_conn *c = cli_open();
		struct sc_ack a;

		cli_send(c, buf, cut);
		sc_sleep_ms(1);
		cli_send(c, buf + cut, n - cut);
		expect_agent_hello(c, OUR_MAX);
		expect_ack(c, 3, 1, OUR_MAX, &a);
		expect_ack(c, 5, 1, OUR_MAX, &a);
		check_verdict(&a);
		pp_close(c);
	}
	daemon_finish();
}

TEST(g2_coalesced_hello_and_200_notifies)
{
	static uint8_t buf[200 * 512 + 256];
	struct sc_conn *c;
	struct sc_ack a;
	size_t n;

	daemon_start();
	c = cli_open();
	n = build_hello(buf, sizeof(buf), OUR_MAX);
	for (unsigned i = 0; i < 200; i++)
		n += build_notify(buf + n, sizeof(buf) - n, 2 * i + 1, i, i);
	cli_send(c, buf, n); /* one write */
	expect_agent_hello(c, OUR_MAX);
	for (unsigned i = 0; i < 200; i++) {
		expect_ack(c, 2 * i + 1, i, OUR_MAX, &a);
		check_verdict(&a);
	}
	pp_close(c);
	daemon_finish();
}

/* We do not read for a while: the daemon's send buffer fills (short writes, EAGAIN),
 * it stops reading; then we read everything, and every ACK arrives, in order. */
TEST(g2_slow_reader_backpressure)
{
	enum { N = 20000 };
	static uint8_t out[N * 320];
	struct sc_conn *c;
	size_t n = 0, sent = 0;
	unsigned acked = 0;
	uint64_t t0, deadline;

	daemon_start();
	c = cli_ready(OUR_MAX, NULL);
	/* (A tiny SO_RCVBUF would make the kernel, not the daemon, the bottleneck: with a
	 * window below the loopback MSS the sender waits on 200 ms persist timers.) */
	for (unsigned i = 0; i < N; i++)
		n += build_notify(out + n, sizeof(out) - n, i + 1, i % 7, i);
	/* phase 1: write without reading until the daemon stops taking bytes */
	t0 = sc_now_us();
	while (sent < n && sc_now_us() - t0 < 1000000) {
		ssize_t r = send(c->fd, out + sent, n - sent, MSG_NOSIGNAL);

		if (r > 0)
			sent += (size_t)r;
		else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			sc_sleep_ms(20);
		else
			TEST_FAIL_("send: %s", strerror(errno));
	}
	fprintf(stderr, "  %zu of %zu bytes sent before the daemon stopped reading\n", sent, n);
	/* phase 2: read and write together until every ACK is in */
	deadline = sc_now_us() + 30 * 1000000ull;
	while (acked < N) {
		struct spop_frame f;
		struct sc_ack a;
		int r;

		if (sent < n) {
			ssize_t w = send(c->fd, out + sent, n - sent, MSG_NOSIGNAL);

			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				TEST_FAIL_("send: %s", strerror(errno));
		}
		r = sc_read_frame(c, &f, sent < n ? 5 : IO_MS);
		if (r == SC_TIMEOUT && sent < n)
			continue;
		if (r != SC_FRAME)
			TEST_FAIL_("after %u ACKs: %s", acked, rd_name(r));
		check_ack(&f, acked + 1, acked % 7, OUR_MAX, &a);
		acked++;
		if (sc_now_us() > deadline)
			TEST_FAIL_("only %u of %u ACKs in 30 s", acked, N);
	}
	pp_close(c);
	daemon_finish();
}

/* NOTIFYs written separately a few µs apart, as HAProxy's streams do: an ACK held back
 * by Nagle until HAProxy acknowledges the previous one waits for HAProxy's delayed ACK
 * (40 ms on Linux). The daemon must set TCP_NODELAY. Stalls are timing-dependent, so
 * the case counts answers that took 35-80 ms (the delayed-ACK signature) over many
 * rounds and fails from three on (without TCP_NODELAY: about 1 round in 150, ~33 here),
 * unless they are no more than the machine's own noise: a loaded machine delays rounds
 * by any amount, a Nagle stall by 40 ms only, so rounds of 10-35 ms and 80-400 ms are
 * counted too, and the signature must stand out of them (4 x as many, plus one). */
TEST(g2_no_nagle_stall)
{
	enum { ROUNDS = 5000 };
	struct sc_conn *c;
	uint32_t max;
	unsigned stalls = 0, noise = 0;
	uint64_t worst = 0;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint8_t b[3][512];
		size_t l[3];
		uint64_t t0, dt;

		for (unsigned k = 0; k < 3; k++)
			l[k] = build_notify(b[k], sizeof(b[k]), 3 * i + k + 1, 1, 3 * i + k);
		t0 = sc_now_us();
		for (unsigned k = 0; k < 3; k++) {
			struct timespec ts = { 0, 10000 };

			cli_send(c, b[k], l[k]);
			nanosleep(&ts, NULL);
		}
		for (unsigned k = 0; k < 3; k++) {
			struct sc_ack a;

			expect_ack(c, 3 * i + k + 1, 1, max, &a);
		}
		dt = sc_now_us() - t0;
		if (dt > worst)
			worst = dt;
		stalls += dt >= 35000 && dt <= 80000;
		noise += (dt >= 10000 && dt < 35000) || (dt > 80000 && dt <= 400000);
	}
	fprintf(stderr, "  %u of %u rounds took 35-80 ms, %u took 10-35 or 80-400 ms; worst %.1f ms\n",
	        stalls, ROUNDS, noise, worst / 1e3);
	if (stalls >= 3 && stalls > 4 * (noise + 1))
		TEST_FAIL_("%u rounds stalled ~40 ms: ACKs are held by Nagle (no TCP_NODELAY?)", stalls);
	pp_close(c);
	daemon_finish();
}

/* ================================================================================== */
/* 3. Varints                                                                          */

TEST(g3_id_boundaries_echoed)
{
	static const uint64_t ids[][2] = {
		{ 0, 0 }, { 239, 240 }, { 240, 239 }, { 2287, 2288 }, { 2288, 2287 },
		{ 0xffffffffull, 0xffffffffull }, { 0x100000000ull, 1 }, { UINT64_MAX, UINT64_MAX },
		{ 1, UINT64_MAX }, { UINT64_MAX - 1, 16380 },
	};
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		roundtrip(c, ids[i][0], ids[i][1], max);
	pp_close(c);
	daemon_finish();
}

TEST(g3_bad_header_varints)
{
	/* truncated: both id varints cut by the frame's end */
	static const uint8_t trunc[] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0xf0, 0xf0 };
	static const uint8_t trunc2[] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0x01, 0xff, 0xff, 0xff };
	/* over-long: an 11-byte stream id */
	static const uint8_t over[] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01 };
	/* overflowing 10-byte stream id */
	static const uint8_t ovf[] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0x7f, 0x01 };
	uint8_t buf[64];

	daemon_start();
	expect_rejected(true, buf, raw_frame(buf, sizeof(trunc), trunc, sizeof(trunc)), SPOP_ST_INVALID, -1);
	expect_rejected(true, buf, raw_frame(buf, sizeof(trunc2), trunc2, sizeof(trunc2)), SPOP_ST_INVALID, -1);
	expect_rejected(true, buf, raw_frame(buf, sizeof(over), over, sizeof(over)), SPOP_ST_INVALID, -1);
	expect_rejected(true, buf, raw_frame(buf, sizeof(ovf), ovf, sizeof(ovf)), SPOP_ST_INVALID, -1);
	daemon_finish();
}

/* A NOTIFY frame with a payload written by fill(); returns the bytes. */
static size_t build_notify_with(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid,
                                void (*fill)(struct spop_wbuf *w))
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, sid, fid);
	size_t n;

	fill(&w);
	n = spop_frame_end(&w, start, UINT32_MAX);
	ASSERT(n > 0);
	return n;
}

static void fill_truncated_int(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 1);
	spop_put_str(w, "amount", 6);
	spop_put_u8(w, SPOP_DATA_INT64);
	spop_put_u8(w, 0xf5); /* a varint that needs more bytes than the frame has */
}

static void fill_overlong_int(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 1);
	spop_put_str(w, "amount", 6);
	spop_put_u8(w, SPOP_DATA_INT64);
	for (int i = 0; i < 10; i++)
		spop_put_u8(w, 0xff);
	spop_put_u8(w, 0x01);
}

static void fill_truncated_strlen(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 1);
	spop_put_str(w, "id", 2);
	spop_put_u8(w, SPOP_DATA_STR);
	spop_put_varint(w, 1000); /* longer than what is left */
	spop_put_u8(w, 'x');
}

static void fill_negative_amount(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 3);
	spop_put_str(w, "method", 6);
	spop_put_data_str(w, "POST", 4);
	spop_put_str(w, "path", 4);
	spop_put_data_str(w, "/v1/refunds", 11);
	spop_put_str(w, "amount", 6);
	spop_put_data_int(w, INT64_MIN); /* 10-byte varint */
}

TEST(g3_payload_varints)
{
	uint8_t buf[512];
	struct sc_conn *c;
	struct sc_ack a;
	uint32_t max;

	daemon_start();
	expect_rejected(true, buf, build_notify_with(buf, sizeof(buf), 1, 1, fill_truncated_int),
	                SPOP_ST_INVALID, -1);
	expect_rejected(true, buf, build_notify_with(buf, sizeof(buf), 1, 1, fill_overlong_int),
	                SPOP_ST_INVALID, -1);
	expect_rejected(true, buf, build_notify_with(buf, sizeof(buf), 1, 1, fill_truncated_strlen),
	                SPOP_ST_INVALID, -1);
	c = cli_ready(OUR_MAX, &max);
	cli_send(c, buf, build_notify_with(buf, sizeof(buf), 240, 2288, fill_negative_amount));
	expect_ack(c, 240, 2288, max, &a);
	check_verdict(&a);
	pp_close(c);
	daemon_finish();
}

/* ================================================================================== */
/* 4. HELLO variants                                                                   */

static void hello_ok(const struct sc_hello_opts *o)
{
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct sc_conn *c = cli_open();
	uint32_t max;

	cli_send(c, buf, sc_hello_custom(&w, o));
	max = expect_agent_hello(c, (uint32_t)o->max_frame);
	if (o->healthcheck) {
		expect_closed(c); /* answer a health check, then close */
	} else {
		roundtrip(c, 1, 1, max);
		roundtrip(c, 3, 1, max);
	}
	pp_close(c);
}

static int hello_status(const struct sc_hello_opts *o)
{
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct sc_conn *c = cli_open();
	int st;

	cli_send(c, buf, sc_hello_custom(&w, o));
	st = (int)expect_disconnect(c, SPOP_FRAME_SIZE_MIN);
	pp_close(c);
	return st;
}

TEST(g4_hello_accepted_variants)
{
	struct sc_hello_opts o = { "2.0", OUR_MAX, "pipelining", false, NULL, false };

	daemon_start();
	o.caps = "";                        hello_ok(&o); /* empty capabilities */
	o.caps = "pipelining,async";        hello_ok(&o); /* 2.6 */
	o.caps = "pipelining, async";       hello_ok(&o);
	o.caps = "fragmentation,async,pipelining"; hello_ok(&o);
	o.caps = "pipelining";
	o.engine_id = NULL;                 hello_ok(&o); /* no engine-id */
	o.engine_id = "4b2a0c1e-engine";    hello_ok(&o);
	o.versions = " 2.0 , 1.5";          hello_ok(&o);
	o.versions = "1.0,2.0";             hello_ok(&o);
	o.versions = "2.0";
	o.unknown_keys = true;              hello_ok(&o); /* keys a newer HAProxy may add */
	o.unknown_keys = false;
	o.max_frame = 256;                  hello_ok(&o);
	o.max_frame = 65532;                hello_ok(&o);
	daemon_finish();
}

TEST(g4_hello_healthcheck)
{
	/* option spop-check: empty capabilities, no engine-id, healthcheck=true */
	struct sc_hello_opts o = { "2.0", OUR_MAX, "", true, NULL, false };

	daemon_start();
	for (int i = 0; i < 20; i++)
		hello_ok(&o);
	o.caps = "pipelining,async";
	o.engine_id = "x";
	hello_ok(&o);
	daemon_finish();
}

TEST(g4_hello_refused_with_status)
{
	struct sc_hello_opts o = { "2.0", OUR_MAX, "pipelining", false, NULL, false };
	uint8_t buf[512];

	daemon_start();
	o.versions = NULL;   ASSERT_EQ(hello_status(&o), SPOP_ST_NO_VSN);
	o.versions = "1.0";  ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_VSN);
	o.versions = "12.0"; ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_VSN);
	o.versions = "2.01"; ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_VSN);
	o.versions = "";     ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_VSN);
	o.versions = "2.0";
	o.max_frame = -1;    ASSERT_EQ(hello_status(&o), SPOP_ST_NO_FRAME_SIZE);
	o.max_frame = 255;   ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_FRAME_SIZE);
	o.max_frame = 0;     ASSERT_EQ(hello_status(&o), SPOP_ST_BAD_FRAME_SIZE);
	o.max_frame = OUR_MAX;
	o.caps = NULL;       ASSERT_EQ(hello_status(&o), SPOP_ST_NO_CAP);
	o.caps = "pipelining";
	/* first frame not a HELLO: a NOTIFY, a DISCONNECT, an agent frame type */
	expect_rejected(false, buf, build_notify(buf, sizeof(buf), 1, 1, 1), SPOP_ST_INVALID, -1);
	{
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		uint8_t *start = spop_frame_begin(&w, SPOP_FRM_AGENT_HELLO, SPOP_FL_FIN, 0, 0);
		size_t n = spop_frame_end(&w, start, UINT32_MAX);

		expect_rejected(false, buf, n, SPOP_ST_INVALID, -1);
	}
	/* a malformed KV list in the HELLO */
	{
		static const uint8_t bad[] = { SPOP_FRM_HAPROXY_HELLO, 0, 0, 0, 1, 0, 0, 0x12, 's', 'u' };

		expect_rejected(false, buf, raw_frame(buf, sizeof(bad), bad, sizeof(bad)), SPOP_ST_INVALID, -1);
	}
	daemon_finish();
}

/* ================================================================================== */
/* 5. Frame-size negotiation                                                           */

TEST(g5_negotiate_min)
{
	static const uint32_t offers[] = { 256, 257, 1000, OUR_MAX - 1, OUR_MAX, OUR_MAX + 1, 65532,
	                                   0x7fffffffu, 0xffffffffu };
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
		c = cli_ready(offers[i], &max);
		if (max != (offers[i] < OUR_MAX ? offers[i] : OUR_MAX))
			TEST_FAIL_("HAProxy offered %u, agent answered %u (ours is %u)", offers[i], max, OUR_MAX);
		roundtrip(c, 1, 1, max);
		pp_close(c);
	}
	daemon_finish();
}

/* A request whose full verdict might not fit 256 bytes: long strings everywhere and
 * 10-byte ids. The ACK must still fit and carry verdict + backend. */
TEST(g5_ack_fits_256)
{
	static const char *classes[] = { NULL, "critical", "payouts", "batch", "bogus-class-hint" };
	struct sc_conn *c;
	uint32_t max;
	unsigned biggest = 0;

	daemon_start();
	c = cli_ready(256, &max);
	ASSERT_EQ(max, 256);
	for (unsigned i = 0; i < 60; i++) {
		uint8_t buf[256];
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		struct sc_payreq r;
		char id[32], idem[65];
		uint8_t *start;
		struct spop_frame f;
		struct sc_ack a;
		static const char *paths[] = { "/v1/payment_intents", "/v1/refunds", "/v1/payouts",
		                               "/v1/payment_intents/pi_3N/capture" };

		sc_payreq_sample(&r, i, id, idem);
		payreq_compact(&r);
		r.class_hint = classes[i % 5];
		r.path = paths[i % 4];
		r.currency = i % 3 ? "eur" : "jpy";
		r.card_country = i % 2 ? "BR" : "US";
		start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, UINT64_MAX - i, UINT64_MAX);
		sc_put_pay_request(&w, &r);
		ASSERT(spop_frame_end(&w, start, 256) > 0);
		cli_send(c, buf, (size_t)(w.p - buf));
		expect_frame(c, &f);
		check_ack(&f, UINT64_MAX - i, UINT64_MAX, 256, &a);
		check_verdict(&a);
		if (frame_len(&f) > biggest)
			biggest = (unsigned)frame_len(&f);
	}
	ASSERT_LE(biggest, 256);
	pp_close(c);
	daemon_finish();
}

static void fill_eight_requests(struct spop_wbuf *w)
{
	for (int i = 0; i < 8; i++) {
		spop_put_str(w, "pay-request", 11);
		spop_put_u8(w, 1);
		spop_put_str(w, "class", 5);
		spop_put_data_str(w, "batch", 5);
	}
}

/* Eight pay-request messages in one 256-byte NOTIFY: eight verdicts cannot fit one
 * 256-byte ACK. Whatever the agent does, it must not send a frame above 256 bytes nor a
 * malformed ACK: a well-formed ACK, or AGENT-DISCONNECT (3). */
TEST(g5_many_verdicts_in_256)
{
	uint8_t buf[512];
	struct sc_conn *c;
	struct spop_frame f;
	uint32_t max;

	daemon_start();
	c = cli_ready(256, &max);
	cli_send(c, buf, build_notify_with(buf, sizeof(buf), 11, 12, fill_eight_requests));
	expect_frame(c, &f);
	ASSERT_LE(frame_len(&f), 256);
	if (f.type == SPOP_FRM_ACK) {
		struct sc_ack a;

		check_ack(&f, 11, 12, 256, &a);
		check_verdict(&a);
		roundtrip(c, 13, 14, max);
	} else {
		struct spop_str msg;
		uint32_t st;

		ASSERT_EQ(f.type, SPOP_FRM_AGENT_DISCONNECT);
		ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &st, &msg), 0);
		ASSERT_EQ(st, SPOP_ST_TOO_BIG);
		expect_closed(c);
	}
	pp_close(c);
	daemon_finish();
}

/* ================================================================================== */
/* 6. Pipelining                                                                       */

/* Send `n` NOTIFYs with the given ids in one write, then collect n ACKs (in any order)
 * and check each matches exactly one NOTIFY. */
static void pipeline(struct sc_conn *c, const uint64_t (*ids)[2], unsigned n, uint32_t max)
{
	static uint8_t buf[1024 * 512];
	bool *seen = calloc(n, sizeof(bool));
	size_t len = 0;

	ASSERT(seen);
	for (unsigned i = 0; i < n; i++)
		len += build_notify(buf + len, sizeof(buf) - len, ids[i][0], ids[i][1], i);
	cli_send(c, buf, len);
	for (unsigned k = 0; k < n; k++) {
		struct spop_frame f;
		struct sc_ack a;
		unsigned j;

		expect_frame(c, &f);
		/* match the first unseen NOTIFY with these ids (3.x reuses ids) */
		for (j = 0; j < n; j++)
			if (!seen[j] && ids[j][0] == f.stream_id && ids[j][1] == f.frame_id)
				break;
		if (j == n)
			TEST_FAIL_("ACK %u has ids %llu/%llu that no pending NOTIFY had", k,
			           (unsigned long long)f.stream_id, (unsigned long long)f.frame_id);
		seen[j] = true;
		check_ack(&f, ids[j][0], ids[j][1], max, &a);
		check_verdict(&a);
	}
	free(seen);
}

TEST(g6_pipeline_26_style)
{
	enum { N = 500 };
	static uint64_t ids[N][2];
	uint64_t x = 88172645463325252ull;
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	/* the stream's unique number: large, unique, not monotonic; frame ids likewise */
	for (unsigned i = 0; i < N; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		ids[i][0] = (x >> 20) | 1ull << 40;
		ids[i][1] = x & 0xffffffffu;
	}
	pipeline(c, (const uint64_t (*)[2])ids, 64, max);
	pipeline(c, (const uint64_t (*)[2])ids + 64, N - 64, max);
	pp_close(c);
	daemon_finish();
}

TEST(g6_pipeline_3x_style)
{
	enum { ROUNDS = 10, STREAMS = 20 };
	static uint64_t ids[ROUNDS * STREAMS][2];
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	/* up to 20 streams per connection, small odd ids reused, frame id 1; all rounds in
	 * flight at once so the same ids are pending several times */
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned s = 0; s < STREAMS; s++) {
			ids[r * STREAMS + s][0] = 2 * ((s * 7 + r) % STREAMS) + 1;
			ids[r * STREAMS + s][1] = 1;
		}
	pipeline(c, (const uint64_t (*)[2])ids, STREAMS, max);
	pipeline(c, (const uint64_t (*)[2])ids, ROUNDS * STREAMS, max);
	pp_close(c);
	daemon_finish();
}

TEST(g6_pipeline_many_connections_interleaved)
{
	enum { C = 8, N = 40 };
	static uint8_t buf[C][N * 512];
	struct sc_conn *c[C];
	size_t len[C] = { 0 };
	uint32_t max = 0;

	daemon_start();
	for (int k = 0; k < C; k++) {
		c[k] = cli_ready(OUR_MAX, &max);
		for (unsigned i = 0; i < N; i++)
			len[k] += build_notify(buf[k] + len[k], sizeof(buf[k]) - len[k], 1000 * (unsigned)k + i, i, i);
	}
	/* interleave the writes in 97-byte pieces across connections */
	for (size_t off = 0; ; off += 97) {
		bool any = false;

		for (int k = 0; k < C; k++)
			if (off < len[k]) {
				cli_send(c[k], buf[k] + off, len[k] - off < 97 ? len[k] - off : 97);
				any = true;
			}
		if (!any)
			break;
	}
	for (int k = 0; k < C; k++) {
		for (unsigned i = 0; i < N; i++) {
			struct sc_ack a;

			expect_ack(c[k], 1000 * (unsigned)k + i, i, max, &a);
			check_verdict(&a);
		}
		pp_close(c[k]);
	}
	daemon_finish();
}

/* ================================================================================== */
/* 7. NOTIFY content                                                                   */

static void fill_nothing(struct spop_wbuf *w) { (void)w; }

static void fill_several_messages(struct spop_wbuf *w)
{
	struct sc_payreq r;
	char id[32], idem[65];

	spop_put_str(w, "something-else", 14);
	spop_put_u8(w, 1);
	spop_put_str(w, "k", 1);
	spop_put_data_str(w, "v", 1);
	sc_payreq_sample(&r, 3, id, idem);
	sc_put_pay_request(w, &r);
	spop_put_str(w, "pay-response", 12);
	spop_put_u8(w, 4);
	spop_put_str(w, "id", 2);
	spop_put_data_str(w, "req-0", 5);
	spop_put_str(w, "status", 6);
	spop_put_data_int(w, 200);
	spop_put_str(w, "backend", 7);
	spop_put_data_str(w, "stripe_eu", 9);
	spop_put_str(w, "latency_ms", 10);
	spop_put_data_int(w, 180);
}

static void fill_unnamed_args(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 4);
	spop_put_str(w, "", 0);                 /* unnamed, as HAProxy sends args without a name */
	spop_put_data_str(w, "POST", 4);
	spop_put_str(w, "", 0);
	spop_put_data_str(w, "/v1/payment_intents", 19);
	spop_put_str(w, "", 0);
	spop_put_data_int(w, 2000);
	spop_put_str(w, "currency", 8);
	spop_put_data_str(w, "eur", 3);
}

static void fill_null_args(struct spop_wbuf *w)
{
	static const char *keys[] = { "id", "method", "path", "account", "idem", "amount", "currency",
	                              "card_country", "card_brand", "card_funding", "class" };

	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 11);
	for (int i = 0; i < 11; i++) {
		spop_put_str(w, keys[i], strlen(keys[i]));
		spop_put_data_null(w);
	}
}

static void fill_255_args(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 255);
	for (int i = 0; i < 255; i++) {
		char k[16];

		if (i == 100) {
			spop_put_str(w, "method", 6);
			spop_put_data_str(w, "POST", 4);
		} else if (i == 254) {
			spop_put_str(w, "amount", 6);
			spop_put_data_str(w, "2000", 4);
		} else {
			snprintf(k, sizeof(k), "x%d", i);
			spop_put_str(w, k, strlen(k));
			spop_put_data_int(w, i);
		}
	}
}

static void fill_unknown_only(struct spop_wbuf *w)
{
	spop_put_str(w, "check-client-ip", 15);
	spop_put_u8(w, 1);
	spop_put_str(w, "ip", 2);
	spop_put_u8(w, SPOP_DATA_IPV4);
	spop_put_u8(w, 10); spop_put_u8(w, 0); spop_put_u8(w, 0); spop_put_u8(w, 1);
	spop_put_str(w, "", 0); /* a message with an empty name and no args */
	spop_put_u8(w, 0);
}

/* Every data type, as the value of known keys (wrong types must be treated as absent)
 * and of unknown keys, in a pay-request and in a pay-response. */
static void put_every_type(struct spop_wbuf *w, const char *const *keys)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct spop_data d[13];
	int i = 0;

	d[i].type = SPOP_DATA_NULL; i++;
	d[i].type = SPOP_DATA_BOOL; d[i].v.b = true; i++;
	d[i].type = SPOP_DATA_BOOL; d[i].v.b = false; i++;
	d[i].type = SPOP_DATA_INT32; d[i].v.i = -7; i++;
	d[i].type = SPOP_DATA_UINT32; d[i].v.u = 4000000000u; i++;
	d[i].type = SPOP_DATA_INT64; d[i].v.i = -1; i++;
	d[i].type = SPOP_DATA_UINT64; d[i].v.u = UINT64_MAX; i++;
	d[i].type = SPOP_DATA_IPV4; d[i].v.ip = v6; i++;
	d[i].type = SPOP_DATA_IPV6; d[i].v.ip = v6; i++;
	d[i].type = SPOP_DATA_STR; d[i].v.s.ptr = "9999999999999999999999"; d[i].v.s.len = 22; i++;
	d[i].type = SPOP_DATA_BIN; d[i].v.s.ptr = "\0\xff"; d[i].v.s.len = 2; i++;
	d[i].type = SPOP_DATA_STR; d[i].v.s.ptr = ""; d[i].v.s.len = 0; i++;
	d[i].type = SPOP_DATA_BIN; d[i].v.s.ptr = ""; d[i].v.s.len = 0; i++;
	for (int k = 0; keys[k]; k++)
		for (int t = 0; t < i; t++) {
			spop_put_str(w, keys[k], strlen(keys[k]));
			spop_put_data(w, &d[t]);
		}
}

static const char *const req_keys[] = { "id", "amount", "currency", "class", "zz", NULL };
static const char *const resp_keys[] = { "status", "latency_ms", "backend", "yy", NULL };

static void fill_every_type(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 5 * 13);
	put_every_type(w, req_keys);
	spop_put_str(w, "pay-response", 12);
	spop_put_u8(w, 4 * 13);
	put_every_type(w, resp_keys);
	spop_put_str(w, "other", 5);
	spop_put_u8(w, 13);
	put_every_type(w, (const char *const[]){ "a", NULL });
}

static void fill_bad_type(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 1);
	spop_put_str(w, "amount", 6);
	spop_put_u8(w, 0x0a); /* type 10 does not exist */
	spop_put_u8(w, 0);
}

static void fill_missing_args(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 5); /* says five, carries one */
	spop_put_str(w, "method", 6);
	spop_put_data_str(w, "POST", 4);
}

static void fill_missing_args_unknown(struct spop_wbuf *w)
{
	spop_put_str(w, "whatever", 8);
	spop_put_u8(w, 2);
	spop_put_str(w, "k", 1);
	spop_put_data_null(w);
}

static void fill_missing_nargs(struct spop_wbuf *w)
{
	spop_put_str(w, "pay-request", 11); /* no nb-args byte */
}

TEST(g7_notify_content)
{
	static const struct {
		const char *what;
		void (*fill)(struct spop_wbuf *w);
		bool verdict;
	} ok[] = {
		{ "zero messages", fill_nothing, false },
		{ "several messages", fill_several_messages, true },
		{ "unnamed args", fill_unnamed_args, true },
		{ "NULL args", fill_null_args, true },
		{ "255 args", fill_255_args, true },
		{ "unknown messages only", fill_unknown_only, false },
		{ "every data type", fill_every_type, true },
	};
	static const struct {
		const char *what;
		void (*fill)(struct spop_wbuf *w);
	} bad[] = {
		{ "unknown data type", fill_bad_type },
		{ "fewer args than announced", fill_missing_args },
		{ "fewer args than announced, unknown message", fill_missing_args_unknown },
		{ "no nb-args byte", fill_missing_nargs },
	};
	static uint8_t buf[16384];
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sc_ack a;

		fprintf(stderr, "  case: %s\n", ok[i].what);
		cli_send(c, buf, build_notify_with(buf, sizeof(buf), 100 + i, 1, ok[i].fill));
		expect_ack(c, 100 + i, 1, max, &a);
		if (ok[i].verdict)
			check_verdict(&a);
	}
	roundtrip(c, 1, 1, max);
	pp_close(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fprintf(stderr, "  case: %s\n", bad[i].what);
		expect_rejected(true, buf, build_notify_with(buf, sizeof(buf), 1, 1, bad[i].fill),
		                SPOP_ST_INVALID, -1);
	}
	daemon_finish();
}

/* ================================================================================== */
/* 8. ACK encoding                                                                     */

TEST(g8_ack_encoding)
{
	static const char *currencies[] = { "eur", "usd", "EUR", "gbp", "jpy", "", NULL };
	static const char *methods[] = { "POST", "GET", "DELETE", NULL };
	uint8_t buf[1024];
	struct sc_conn *c;
	uint32_t max;
	unsigned verdicts[3] = { 0 };

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	for (unsigned i = 0; i < 300; i++) {
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		struct sc_payreq r;
		char id[32], idem[65];
		uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, i, i);
		const char *v;
		struct sc_ack a;

		sc_payreq_sample(&r, i, id, idem);
		r.currency = currencies[i % 7];
		r.method = methods[i % 4];
		r.amount = i % 5 == 0 ? "999999999" : i % 5 == 1 ? NULL : "2000";
		r.idem = i % 6 == 0 ? NULL : r.idem;
		sc_put_pay_request(&w, &r);
		ASSERT(spop_frame_end(&w, start, max) > 0);
		cli_send(c, buf, (size_t)(w.p - buf));
		expect_ack(c, i, i, max, &a);
		check_verdict(&a);
		v = sc_ack_str(&a, "verdict");
		verdicts[!strcmp(v, "allow") ? 0 : !strcmp(v, "queue") ? 1 : 2]++;
		if (!strcmp(v, "reject")) {
			const struct sc_var *ra = sc_ack_var(&a, "retry_after");

			if (ra)
				ASSERT_GE(ra->val.v.i, 0);
		}
		/* the documented variables have their documented types */
		{
			static const char *strs[] = { "backend", "class", "verdict", "reason", "decision" };
			static const char *ints[] = { "prio", "offset", "retry_after" };

			for (size_t k = 0; k < 5; k++) {
				const struct sc_var *x = sc_ack_var(&a, strs[k]);

				if (x && x->val.type != SPOP_DATA_STR)
					TEST_FAIL_("txn.pay.%s has type %u, expected a string", strs[k], x->val.type);
			}
			for (size_t k = 0; k < 3; k++) {
				const struct sc_var *x = sc_ack_var(&a, ints[k]);

				if (x && x->val.type != SPOP_DATA_INT64 && x->val.type != SPOP_DATA_INT32)
					TEST_FAIL_("txn.pay.%s has type %u, expected an integer", ints[k], x->val.type);
			}
		}
	}
	fprintf(stderr, "  verdicts: %u allow, %u queue, %u reject\n", verdicts[0], verdicts[1], verdicts[2]);
	pp_close(c);
	daemon_finish();
}

TEST(g8_ack_never_empty)
{
	static void (*const fills[])(struct spop_wbuf *w) = { fill_nothing, fill_unknown_only };
	uint8_t buf[512];
	struct sc_conn *c;
	uint32_t max;

	daemon_start();
	c = cli_ready(256, &max);
	for (size_t i = 0; i < 2; i++) {
		struct sc_ack a;

		cli_send(c, buf, build_notify_with(buf, sizeof(buf), 2288 + i, 240, fills[i]));
		expect_ack(c, 2288 + i, 240, max, &a); /* check_ack: ≥ 1 action, txn scope, short names */
	}
	{
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, 9, 9);
		struct sc_ack a;

		/* a pay-response alone sets nothing by itself: still never an empty ACK */
		spop_put_str(&w, "pay-response", 12);
		spop_put_u8(&w, 2);
		spop_put_str(&w, "status", 6);
		spop_put_data_int(&w, 402);
		spop_put_str(&w, "decline", 7);
		spop_put_data_str(&w, "insufficient_funds", 18);
		ASSERT(spop_frame_end(&w, start, max) > 0);
		cli_send(c, buf, (size_t)(w.p - buf));
		expect_ack(c, 9, 9, max, &a);
	}
	pp_close(c);
	daemon_finish();
}

/* ================================================================================== */
/* 9. Flags and frame types                                                            */

static size_t build_frame_flags(uint8_t *buf, size_t size, uint8_t type, uint32_t flags,
                                uint64_t sid, uint64_t fid)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	uint8_t *start = spop_frame_begin(&w, type, flags, sid, fid);
	struct sc_payreq r;
	char id[32], idem[65];

	sc_payreq_sample(&r, 1, id, idem);
	if (type == SPOP_FRM_NOTIFY)
		sc_put_pay_request(&w, &r);
	return spop_frame_end(&w, start, UINT32_MAX);
}

TEST(g9_no_fin_is_10)
{
	uint8_t buf[1024];
	struct sc_conn *c;
	size_t n;

	daemon_start();
	expect_rejected(true, buf, build_frame_flags(buf, sizeof(buf), SPOP_FRM_NOTIFY, 0, 1, 1),
	                SPOP_ST_FRAG_NOT_SUP, -1);
	/* no FIN but ABORT: still a fragment */
	expect_rejected(true, buf, build_frame_flags(buf, sizeof(buf), SPOP_FRM_NOTIFY, SPOP_FL_ABORT, 1, 1),
	                SPOP_ST_FRAG_NOT_SUP, -1);
	/* a HELLO without FIN */
	c = cli_open();
	{
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));

		n = spop_haproxy_hello(&w, "2.0", OUR_MAX, "pipelining", false, NULL);
		buf[8] &= (uint8_t)~SPOP_FL_FIN; /* flags are bytes 5..8 */
		cli_send(c, buf, n);
		ASSERT_EQ(expect_disconnect(c, OUR_MAX), SPOP_ST_FRAG_NOT_SUP);
	}
	pp_close(c);
	/* ACKs already owed are sent before the DISCONNECT */
	c = cli_ready(OUR_MAX, NULL);
	n = build_notify(buf, sizeof(buf), 3, 1, 1);
	n += build_frame_flags(buf + n, sizeof(buf) - n, SPOP_FRM_NOTIFY, 0, 5, 1);
	cli_send(c, buf, n);
	{
		struct sc_ack a;

		expect_ack(c, 3, 1, OUR_MAX, &a);
	}
	ASSERT_EQ(expect_disconnect(c, OUR_MAX), SPOP_ST_FRAG_NOT_SUP);
	pp_close(c);
	daemon_finish();
}

TEST(g9_abort_gets_no_ack)
{
	uint8_t buf[4096];
	struct sc_conn *c;
	struct sc_ack a;
	size_t n = 0;
	uint32_t max;

	daemon_start();
	c = cli_ready(OUR_MAX, &max);
	n += build_frame_flags(buf + n, sizeof(buf) - n, SPOP_FRM_NOTIFY, SPOP_FL_FIN | SPOP_FL_ABORT, 7, 1);
	n += build_notify(buf + n, sizeof(buf) - n, 9, 2, 2);
	n += build_frame_flags(buf + n, sizeof(buf) - n, SPOP_FRM_NOTIFY, SPOP_FL_FIN | SPOP_FL_ABORT, 11, 1);
	n += build_notify(buf + n, sizeof(buf) - n, 13, 3, 3);
	cli_send(c, buf, n);
	expect_ack(c, 9, 2, max, &a);   /* not 7/1: the aborted one is not answered */
	expect_ack(c, 13, 3, max, &a);
	roundtrip(c, 15, 4, max);       /* the connection goes on */
	{
		struct spop_frame f;

		ASSERT_EQ(sc_read_quiet(c, &f, 200), SC_TIMEOUT); /* nothing else arrives */
	}
	pp_close(c);
	daemon_finish();
}

TEST(g9_unknown_frame_types_are_4)
{
	static const uint8_t types[] = { 0, 4, 5, 50, 100, SPOP_FRM_HAPROXY_HELLO, SPOP_FRM_AGENT_HELLO,
	                                 SPOP_FRM_AGENT_DISCONNECT, SPOP_FRM_ACK, 104, 255 };
	uint8_t buf[1024];

	daemon_start();
	for (size_t i = 0; i < sizeof(types); i++)
		expect_rejected(true, buf, build_frame_flags(buf, sizeof(buf), types[i], SPOP_FL_FIN, 1, 1),
		                SPOP_ST_INVALID, -1);
	daemon_finish();
}

/* ================================================================================== */
/* 10. Lifecycle                                                                       */

TEST(g10_haproxy_disconnect)
{
	static uint8_t buf[64 * 512];
	struct sc_conn *c;
	struct spop_wbuf w;
	size_t n;
	uint32_t max;

	daemon_start();
	/* alone */
	c = cli_ready(OUR_MAX, &max);
	w = spop_wbuf_init(buf, sizeof(buf));
	cli_send(c, buf, spop_haproxy_disconnect(&w, 0, "normal"));
	ASSERT_EQ(expect_disconnect(c, max), SPOP_ST_NORMAL);
	pp_close(c);
	/* after 50 NOTIFYs in the same write: all answered first */
	c = cli_ready(OUR_MAX, &max);
	n = 0;
	for (unsigned i = 0; i < 50; i++)
		n += build_notify(buf + n, sizeof(buf) - n, 1 + 2 * i, 1, i);
	w = spop_wbuf_init(buf + n, sizeof(buf) - n);
	n += spop_haproxy_disconnect(&w, 2, "timeout");
	cli_send(c, buf, n);
	for (unsigned i = 0; i < 50; i++) {
		struct sc_ack a;

		expect_ack(c, 1 + 2 * i, 1, max, &a);
	}
	ASSERT_EQ(expect_disconnect(c, max), SPOP_ST_NORMAL);
	pp_close(c);
	/* a DISCONNECT without any key */
	c = cli_ready(OUR_MAX, &max);
	w = spop_wbuf_init(buf, sizeof(buf));
	{
		uint8_t *start = spop_frame_begin(&w, SPOP_FRM_HAPROXY_DISCONNECT, SPOP_FL_FIN, 0, 0);

		cli_send(c, buf, spop_frame_end(&w, start, UINT32_MAX));
	}
	ASSERT_EQ(expect_disconnect(c, max), SPOP_ST_NORMAL);
	pp_close(c);
	daemon_finish();
}

TEST(g10_close_and_rst_mid_stream)
{
	static uint8_t buf[100 * 512];
	struct sc_conn *keep;
	uint32_t max;

	daemon_start();
	keep = cli_ready(OUR_MAX, &max);
	for (unsigned round = 0; round < 60; round++) {
		struct sc_conn *c = cli_ready(OUR_MAX, NULL);
		size_t n = 0;

		for (unsigned i = 0; i < 1 + round; i++)
			n += build_notify(buf + n, sizeof(buf) - n, i + 1, 1, i);
		/* half a frame, a whole batch unread, or a batch then a half frame */
		switch (round % 3) {
		case 0: cli_send(c, buf, n / 2 + 1); break;
		case 1: cli_send(c, buf, n); break;
		case 2: cli_send(c, buf, n); cli_send(c, buf, 5); break;
		}
		if (round % 2)
			sc_close_rst(c->fd);
		else
			close(c->fd);
		free(c);
		roundtrip(keep, round + 1, 1, max); /* the others do not notice */
	}
	/* before HELLO, and mid-HELLO */
	for (int i = 0; i < 10; i++) {
		struct sc_conn *c = cli_open();

		cli_send(c, buf, build_hello(buf, sizeof(buf), OUR_MAX) / 2);
		if (i % 2)
			sc_close_rst(c->fd);
		else
			close(c->fd);
		free(c);
		c = cli_open();
		sc_close_rst(c->fd);
		free(c);
	}
	roundtrip(keep, 1000, 1, max);
	pp_close(keep);
	daemon_finish();
}

/* One connect / HELLO / close cycle; every other one ends with RST. */
static void hello_cycle(unsigned i, bool rst_allowed)
{
	struct sc_conn *c = cli_ready(OUR_MAX, NULL);

	if (rst_allowed && i % 2)
		sc_close_rst(c->fd);
	else
		close(c->fd);
	free(c);
}

TEST(g10_reconnect_storm_rss_bounded)
{
	enum { WARM = 1500, STORM = 5000 };
	struct sc_conn *keep;
	uint32_t max;
	int rss0, rss1, rss2;

	daemon_start();
	keep = cli_ready(OUR_MAX, &max);
	rss0 = daemon_rss_kb();
	/* warm-up: past max_connections (512) cycles, so every slot's buffers are touched */
	for (unsigned i = 0; i < WARM; i++)
		hello_cycle(i, true);
	roundtrip(keep, 1, 1, max);
	sc_sleep_ms(100);
	rss1 = daemon_rss_kb();
	for (unsigned i = 0; i < STORM; i++) {
		hello_cycle(i, true);
		if (i % 250 == 0)
			roundtrip(keep, 2 + i, 1, max); /* the daemon keeps serving others */
	}
	sc_sleep_ms(100);
	rss2 = daemon_rss_kb();
	fprintf(stderr, "  VmRSS: start %d kB, after %d warm-up cycles %d kB, after %d more %d kB\n",
	        rss0, WARM, rss1, STORM, rss2);
	/* generous: 4 MiB for 5000 connections is < 840 bytes each */
	if (rss2 - rss1 > 4096)
		TEST_FAIL_("RSS grew %d kB over %d connections (from %d kB to %d kB)", rss2 - rss1, STORM,
		           rss1, rss2);
	roundtrip(keep, 99999, 1, max);
	pp_close(keep);
	daemon_finish();
}

/* SIGTERM with NOTIFYs in flight on several connections: every NOTIFY gets its ACK, or
 * the connection gets an AGENT-DISCONNECT; the process exits 0. */
TEST(g10_sigterm_with_requests_in_flight)
{
	/* Enough that the daemon is blocked on its output when the signal comes (the client
	 * reads nothing before it and keeps a small receive buffer): the drain must then
	 * answer, in order, every NOTIFY that was sent whole before the signal, waiting for
	 * socket room as the client reads, and only then say goodbye. */
	enum { C = 2, N = 60000 };
	static uint8_t buf[N * 512];
	static size_t end_of[N];
	struct sc_conn *c[C];
	unsigned whole[C];
	uint32_t max = 0;
	size_t n = 0;
	int st, blocked = 0;

	daemon_start();
	for (int k = 0; k < C; k++) {
		int rcv = 64 * 1024;

		c[k] = cli_ready(OUR_MAX, &max);
		setsockopt(c[k]->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	for (unsigned i = 0; i < N; i++) {
		n += build_notify(buf + n, sizeof(buf) - n, i + 1, 1, i);
		end_of[i] = n;
	}
	for (int k = 0; k < C; k++) {
		size_t sent = 0;
		int idle = 0;

		while (sent < n && idle < 10) {
			ssize_t r = send(c[k]->fd, buf + sent, n - sent, MSG_NOSIGNAL);

			if (r > 0) {
				sent += (size_t)r;
				idle = 0;
			} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				idle++;
				sc_sleep_ms(20);
			} else {
				TEST_FAIL_("send: %s", strerror(errno));
			}
		}
		blocked += sent < n;
		for (whole[k] = 0; whole[k] < N && end_of[whole[k]] <= sent; whole[k]++)
			;
	}
	ASSERT_GE(blocked, 1); /* the daemon really had answers waiting for room */
	kill(D.pid, SIGTERM);
	for (int k = 0; k < C; k++) {
		unsigned acks = 0;
		bool disc = false;

		for (;;) {
			struct spop_frame f;
			int r = sc_read_frame(c[k], &f, 10000);

			if (r == SC_CLOSED)
				break;
			if (r != SC_FRAME)
				TEST_FAIL_("connection %d after %u ACKs: %s", k, acks, rd_name(r));
			ASSERT(!disc); /* nothing after the DISCONNECT */
			if (f.type == SPOP_FRM_AGENT_DISCONNECT) {
				struct spop_str msg;
				uint32_t s;

				ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &s, &msg), 0);
				ASSERT_EQ(s, SPOP_ST_NORMAL);
				disc = true;
				continue;
			}
			{
				struct sc_ack a;

				check_ack(&f, acks + 1, 1, max, &a);
				check_verdict(&a);
			}
			acks++;
		}
		fprintf(stderr, "  connection %d: %u ACKs for %u NOTIFYs sent whole, %s\n", k, acks,
		        whole[k], disc ? "AGENT-DISCONNECT" : "no DISCONNECT");
		if (acks != whole[k] || !disc)
			TEST_FAIL_("connection %d: %u ACKs for %u NOTIFYs sent whole before SIGTERM, %s",
			           k, acks, whole[k], disc ? "then AGENT-DISCONNECT" : "no AGENT-DISCONNECT");
		pp_close(c[k]);
	}
	st = pp_wait(&D, 15000);
	if (st < 0)
		TEST_FAIL_("the daemon did not exit within 15 s of SIGTERM");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		TEST_FAIL_("exit status 0x%x, expected 0", st);
	pp_cleanup();
}

/* Copy the default policy with agent.max_connections = n into a temporary folder, next
 * to links to the files beside it (@include paths resolve against the file's folder). */
static bool conf_with_max_connections(int n, char *path, size_t size)
{
	const char *slash = strrchr(pp_conf(), '/');
	char dir[40], src[1024], cwd[512], line[1024];
	FILE *in = fopen(pp_conf(), "r"), *out;
	struct dirent *e;
	bool done = false;
	DIR *dp;

	if (!in)
		return false;
	ASSERT(getcwd(cwd, sizeof(cwd)));
	if (slash)
		snprintf(src, sizeof(src), "%s%s%.*s", pp_conf()[0] == '/' ? "" : cwd,
		         pp_conf()[0] == '/' ? "" : "/", (int)(slash - pp_conf()), pp_conf());
	else
		snprintf(src, sizeof(src), "%s", cwd);
	snprintf(dir, sizeof(dir), "/tmp/payspoa-conf-%d.d", (int)getpid() % 10000000);
	ASSERT_EQ(mkdir(dir, 0700), 0);
	snprintf(conf_dir, sizeof(conf_dir), "%s", dir);
	atexit(conf_dir_cleanup);
	dp = opendir(src);
	ASSERT(dp);
	while ((e = readdir(dp)) != NULL) {
		char from[2048], to[1024];

		if (e->d_name[0] == '.')
			continue;
		snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
		snprintf(to, sizeof(to), "%s/%s", dir, e->d_name);
		ASSERT_EQ(symlink(from, to), 0);
	}
	closedir(dp);
	snprintf(path, size, "%s/test-maxconn.conf", dir);
	out = fopen(path, "w");
	ASSERT(out);
	while (fgets(line, sizeof(line), in)) {
		char *k = strstr(line, "max_connections");
		char *hash = strchr(line, '#');

		if (!done && k && (!hash || hash > k)) {
			fprintf(out, "%.*smax_connections = %d;\n", (int)(k - line), line, n);
			done = true;
		} else {
			fputs(line, out);
		}
	}
	fclose(in);
	fclose(out);
	return done;
}

TEST(g10_max_connections)
{
	enum { MAXC = 4 };
	struct sc_conn *c[MAXC], *extra, *late;
	char path[64];
	uint8_t buf[512];
	uint32_t max;

	if (!conf_with_max_connections(MAXC, path, sizeof(path)))
		TEST_FAIL_("%s has no agent.max_connections line to change", pp_conf());
	pp_start(&D, path, NULL, 2, 0);
	/* pp_start's readiness probe took a slot for a moment: let it go */
	sc_sleep_ms(200);
	for (int k = 0; k < MAXC; k++)
		c[k] = cli_ready(OUR_MAX, &max);
	/* one more: accepted by the kernel, then closed by the daemon without a HELLO */
	extra = cli_open();
	if (sc_send_all(extra->fd, buf, build_hello(buf, sizeof(buf), OUR_MAX), IO_MS) == 0) {
		struct spop_frame f;
		int r = sc_read_frame(extra, &f, IO_MS);

		if (r == SC_FRAME)
			TEST_FAIL_("connection %d of %d was answered (frame type %u)", MAXC + 1, MAXC, f.type);
		if (r != SC_CLOSED)
			TEST_FAIL_("connection %d of %d: %s, expected a close", MAXC + 1, MAXC, rd_name(r));
	}
	pp_close(extra);
	/* the existing ones are unharmed */
	for (int k = 0; k < MAXC; k++)
		roundtrip(c[k], 1, (uint64_t)k + 1, max);
	/* a slot frees: new connections are served again */
	late = cli_open();
	pp_close(c[0]);
	cli_send(late, buf, build_hello(buf, sizeof(buf), OUR_MAX));
	expect_agent_hello(late, OUR_MAX);
	roundtrip(late, 3, 3, max);
	for (int k = 1; k < MAXC; k++)
		roundtrip(c[k], 5, 5, max);
	pp_close(late);
	for (int k = 1; k < MAXC; k++)
		pp_close(c[k]);
	sc_sleep_ms(100);
	daemon_finish();
}

TEST(unix_socket_listener)
{
	char addr[108];
	struct sc_conn *c;
	uint32_t max;

	snprintf(addr, sizeof(addr), "unix:/tmp/payspoa-conf-%d.sock", (int)getpid());
	pp_start(&D, NULL, addr, 1, 0);
	c = cli_ready(OUR_MAX, &max);
	for (unsigned i = 0; i < 20; i++)
		roundtrip(c, 2 * i + 1, 1, max);
	pp_close(c);
	daemon_finish();
}

static int argc_;
static char **argv_;

/* With arguments, only the cases whose names contain one of them run. */
static bool wanted(const char *name)
{
	if (argc_ < 2)
		return true;
	for (int i = 1; i < argc_; i++)
		if (strstr(name, argv_[i]))
			return true;
	return false;
}

#define RUN_IF(name) do { if (wanted(#name)) RUN(name); } while (0)

int main(int argc, char **argv)
{
	argc_ = argc;
	argv_ = argv;
	if (access(pp_bin(), X_OK) != 0) {
		printf("FAIL conformance_setup\n");
		fprintf(stderr, "  %s is not executable (set PAYSPOA_BIN; make payspoa)\n", pp_bin());
		return 1;
	}
	RUN_IF(g1_lengths_0_to_6);
	RUN_IF(g1_length_max_accepted_max_plus_1_refused);
	RUN_IF(g1_length_2p31_and_above);
	RUN_IF(g2_byte_at_a_time);
	RUN_IF(g2_split_at_every_offset);
	RUN_IF(g2_coalesced_hello_and_200_notifies);
	RUN_IF(g2_slow_reader_backpressure);
	RUN_IF(g2_no_nagle_stall);
	RUN_IF(g3_id_boundaries_echoed);
	RUN_IF(g3_bad_header_varints);
	RUN_IF(g3_payload_varints);
	RUN_IF(g4_hello_accepted_variants);
	RUN_IF(g4_hello_healthcheck);
	RUN_IF(g4_hello_refused_with_status);
	RUN_IF(g5_negotiate_min);
	RUN_IF(g5_ack_fits_256);
	RUN_IF(g5_many_verdicts_in_256);
	RUN_IF(g6_pipeline_26_style);
	RUN_IF(g6_pipeline_3x_style);
	RUN_IF(g6_pipeline_many_connections_interleaved);
	RUN_IF(g7_notify_content);
	RUN_IF(g8_ack_encoding);
	RUN_IF(g8_ack_never_empty);
	RUN_IF(g9_no_fin_is_10);
	RUN_IF(g9_abort_gets_no_ack);
	RUN_IF(g9_unknown_frame_types_are_4);
	RUN_IF(g10_haproxy_disconnect);
	RUN_IF(g10_close_and_rst_mid_stream);
	RUN_IF(g10_reconnect_storm_rss_bounded);
	RUN_IF(g10_sigterm_with_requests_in_flight);
	RUN_IF(g10_max_connections);
	RUN_IF(unix_socket_listener);
	return test_summary();
}
