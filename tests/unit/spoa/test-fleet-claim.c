/* test-fleet-claim.c: unit tests of the held ACKs (spoa/fleet-claim.c) driven through the
 * connection state machine (spoa/conn.c) and a real engine (conf/payspoa.conf), on one
 * libev loop standing for both threads, without Redis: an ACK whose decision made a new
 * idempotency pin is held only while the fleet is live; the rings carry the claim out
 * and the answer back; a lost claim rewrites the backend, an unknown one sends as
 * decided; the deadline timer sends what is left; a full table answers at once; a
 * HAPROXY-DISCONNECT sends the held ACKs before the goodbye; a closed connection drops
 * them. Judged by the frames in `out`, the counters and the rings' indexes. */
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "clock.h"
#include "conn.h"
#include "fleet-claim.h"
#include "policy.h"
#include "spop-client.h"
#include "spop.h"
#include "test.h"

#define OUR_MAX  16380
#define BUF_SIZE (64 * 1024)

static uint8_t in_buf[BUF_SIZE], out_buf[BUF_SIZE];
static struct conn c;
static struct agent ag;
static struct fleet fl;
static struct fleet_claim *fc;
static struct claim_worker *cw;
static struct ev_loop *loop;
static unsigned kicks;

static void kick(void *arg, struct conn *k)
{
	ASSERT(k == &c);
	kicks++;
}

static void feed(const void *p, size_t n)
{
	ASSERT_LE(n, conn_in_room(&c));
	memcpy(c.in + c.in_len, p, n);
	c.in_len += n;
}

static void feed_notify(uint64_t sid, unsigned n)
{
	uint8_t b[1024];
	size_t len = sc_notify_sample(b, sizeof(b), sid, 1, n);

	ASSERT(len > 0);
	feed(b, len);
}

/* A fresh engine, fleet claims for one worker, a connection past its HELLO. */
static void setup(int timeout_ms)
{
	char err[512];
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));
	struct sc_hello_opts o = { .versions = "2.0", .max_frame = OUR_MAX, .caps = "pipelining" };
	uint8_t b[256];
	struct spop_wbuf w = spop_wbuf_init(b, sizeof(b));

	if (!p)
		TEST_FAIL_("%s", err);
	memset(&ag, 0, sizeof(ag));
	memset(&fl, 0, sizeof(fl));
	ASSERT((ag.engine = pol_engine_new(p, 1, err, sizeof(err))) != NULL);
	ASSERT((fc = fleet_claim_new(&fl, ag.engine, 1, timeout_ms, err, sizeof(err))) != NULL);
	ASSERT(fl.claim == fc);
	ASSERT((loop = ev_loop_new(EVFLAG_AUTO)) != NULL);
	fleet_claim_start(fc, loop);
	/* the control thread's side runs only when a case calls fleet_claim_drain */
	ev_async_stop(loop, &fc->wake);
	cw = fleet_claim_worker(fc, 0);
	ASSERT(fleet_claim_worker(fc, 1) == NULL);
	claim_worker_start(cw, loop, kick, NULL);
	ag.claims = cw;
	ag.now_us = clock_mono_us();
	conn_init(&c, in_buf, BUF_SIZE, out_buf, BUF_SIZE, OUR_MAX);
	feed(b, sc_hello_custom(&w, &o));
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(c.state, CONN_ST_READY);
	conn_out_written(&c, c.out_len);
	kicks = 0;
}

/* The frames in `out`, taken: ids and backend of each ACK; returns how many. */
static unsigned take(uint64_t *sid, char (*backend)[64], char (*reason)[128], unsigned max)
{
	unsigned n = 0;

	while (c.out_off < c.out_len) {
		struct spop_frame f;
		struct sc_ack a;
		int r = spop_frame_get(c.out + c.out_off, c.out_len - c.out_off, UINT32_MAX, &f);
		const char *s;

		ASSERT(r > 0);
		conn_out_written(&c, (size_t)r);
		if (f.type != SPOP_FRM_ACK)
			continue;
		ASSERT(n < max);
		ASSERT(sc_ack_decode(f.payload, f.len, &a) > 0);
		sid[n] = f.stream_id;
		s = sc_ack_str(&a, "backend");
		snprintf(backend[n], 64, "%s", s ? s : "");
		s = sc_ack_str(&a, "reason");
		snprintf(reason[n], 128, "%s", s ? s : "");
		n++;
	}
	return n;
}

static void teardown(void)
{
	fleet_claim_stop(fc);
	ev_loop_destroy(loop);
	fleet_claim_free(fc);
	pol_engine_free(ag.engine);
}

static void live(bool on)
{
	atomic_store(&fc->live, on);
}

TEST(not_live_acks_at_once)
{
	uint64_t sid[4];
	char be[4][64], why[4][128];

	setup(1000);
	feed_notify(7, 1);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 7);
	ASSERT_EQ(atomic_load(&cw->skipped), 1);
	ASSERT_EQ(claim_held_count(cw), 0);
	teardown();
}

/* Held; the control thread answers "unknown" (Redis not there): sent as decided. */
TEST(held_until_answer)
{
	uint64_t sid[4];
	char be[4][64], why[4][128], first[64];

	setup(60000);
	live(true);
	feed_notify(3, 12);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(c.out_len - c.out_off, 0);          /* nothing written: held */
	ASSERT_EQ(claim_held_count(cw), 1);
	ASSERT_EQ(atomic_load(&cw->rq_i.head), 1);    /* the claim is in the ring */
	ASSERT_EQ(c.counts.ack, 0);
	fleet_claim_drain(fc);                        /* fleet not live: CLAIM_UNKNOWN */
	ASSERT_EQ(atomic_load(&cw->rq_i.tail), 1);
	ASSERT_EQ(atomic_load(&cw->rp_i.head), 1);
	ev_run(loop, EVRUN_NOWAIT);
	ASSERT_EQ(kicks, 1);
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 3);
	snprintf(first, sizeof(first), "%s", be[0]);
	ASSERT_EQ(claim_held_count(cw), 0);
	ASSERT_EQ(atomic_load(&cw->unconfirmed), 1);
	ASSERT_EQ(c.counts.ack, 1);
	/* its retry follows the pin the decision made, answered at once */
	feed_notify(5, 12);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 5);
	ASSERT_STREQ(be[0], first);
	ASSERT(strstr(why[0], "pin:idem") != NULL);
	ASSERT_EQ(atomic_load(&cw->held_n), 1);
	teardown();
}

/* A lost claim: the held ACK names the backend the answer gives, with pin:fleet. */
TEST(lost_rewrites_backend)
{
	uint64_t sid[4];
	char be[4][64], why[4][128];
	uint32_t h;

	setup(60000);
	live(true);
	feed_notify(5, 21);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(claim_held_count(cw), 1);
	h = atomic_load(&cw->rp_i.head);
	cw->rp[h % CLAIM_RING] = (struct claim_rep){ "elsewhere", cw->rq[0].seq, CLAIM_LOST };
	atomic_store(&cw->rp_i.head, h + 1);
	ev_async_send(loop, &cw->wake);
	ev_run(loop, EVRUN_NOWAIT);
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 5);
	ASSERT_STREQ(be[0], "elsewhere");
	ASSERT(strstr(why[0], "pin:fleet") != NULL);
	ASSERT_EQ(atomic_load(&cw->rerouted), 1);
	/* a second answer for the same seq (late) changes nothing */
	h = atomic_load(&cw->rp_i.head);
	cw->rp[h % CLAIM_RING] = (struct claim_rep){ "other", cw->rq[0].seq, CLAIM_LOST };
	atomic_store(&cw->rp_i.head, h + 1);
	ev_async_send(loop, &cw->wake);
	ev_run(loop, EVRUN_NOWAIT);
	ASSERT_EQ(take(sid, be, why, 4), 0);
	ASSERT_EQ(atomic_load(&cw->late), 1);
	teardown();
}

/* No answer: the timer sends it once the deadline passed. */
TEST(deadline_sends_as_decided)
{
	uint64_t sid[4], deadline;
	char be[4][64], why[4][128];

	setup(5);
	live(true);
	ag.now_us = clock_mono_us();
	feed_notify(9, 31);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(claim_held_count(cw), 1);
	deadline = clock_mono_us() + 30 * 1000000ull;
	while (claim_held_count(cw) > 0) {
		ASSERT(clock_mono_us() < deadline);
		ev_run(loop, EVRUN_ONCE);
	}
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 9);
	ASSERT_EQ(atomic_load(&cw->unconfirmed), 1);
	ASSERT_GE(atomic_load(&cw->wait_max_us), 5000);
	teardown();
}

/* CLAIM_HELD held: the next one is answered at once (counted); a closed connection
 * drops the held ones. */
TEST(full_table_acks_at_once)
{
	uint64_t sid[4];
	char be[4][64], why[4][128];
	unsigned i;

	setup(60000);
	live(true);
	for (i = 0; i < CLAIM_HELD; i++) {
		ag.now_us += 100000; /* within the budgets: a refused request claims nothing */
		feed_notify(2 * i + 1, 1000 + i);
		ASSERT_EQ(conn_process(&c, &ag), 1);
	}
	ASSERT_EQ(claim_held_count(cw), CLAIM_HELD);
	ASSERT_EQ(c.out_len - c.out_off, 0);
	ag.now_us += 100000;
	feed_notify(99999, 5000);
	ASSERT_EQ(conn_process(&c, &ag), 1);
	ASSERT_EQ(take(sid, be, why, 4), 1);
	ASSERT_EQ(sid[0], 99999);
	ASSERT_EQ(atomic_load(&cw->held_full), 1);
	claim_conn_gone(cw, &c);
	ASSERT_EQ(claim_held_count(cw), 0);
	/* the answers that come for them find nothing to send */
	fleet_claim_drain(fc);
	ev_run(loop, EVRUN_NOWAIT);
	ASSERT_EQ(take(sid, be, why, 4), 0);
	ASSERT_EQ(atomic_load(&cw->late), CLAIM_HELD);
	teardown();
}

/* HAProxy says goodbye: its held ACKs go out before the AGENT-DISCONNECT. */
TEST(disconnect_sends_held_first)
{
	uint8_t b[256];
	struct spop_wbuf w = spop_wbuf_init(b, sizeof(b));
	uint8_t *start;
	size_t n;
	struct spop_frame f;
	int r;

	setup(60000);
	live(true);
	feed_notify(1, 41);
	feed_notify(3, 42);
	ASSERT_EQ(conn_process(&c, &ag), 2);
	ASSERT_EQ(claim_held_count(cw), 2);
	start = spop_frame_begin(&w, SPOP_FRM_HAPROXY_DISCONNECT, SPOP_FL_FIN, 0, 0);
	spop_put_str(&w, "status-code", 11);
	spop_put_data_uint32(&w, 0);
	spop_put_str(&w, "message", 7);
	spop_put_data_str(&w, "bye", 3);
	n = spop_frame_end(&w, start, UINT32_MAX);
	ASSERT(n > 0);
	feed(b, n);
	conn_process(&c, &ag);
	ASSERT_EQ(c.state, CONN_ST_CLOSING);
	ASSERT_EQ(claim_held_count(cw), 0);
	for (unsigned i = 0; i < 3; i++) {
		r = spop_frame_get(c.out + c.out_off, c.out_len - c.out_off, UINT32_MAX, &f);
		ASSERT(r > 0);
		ASSERT_EQ(f.type, i < 2 ? SPOP_FRM_ACK : SPOP_FRM_AGENT_DISCONNECT);
		if (i < 2)
			ASSERT_EQ(f.stream_id, 2 * i + 1);
		conn_out_written(&c, (size_t)r);
	}
	teardown();
}

int main(void)
{
	RUN(not_live_acks_at_once);
	RUN(held_until_answer);
	RUN(lost_rewrites_backend);
	RUN(deadline_sends_as_decided);
	RUN(full_table_acks_at_once);
	RUN(disconnect_sends_held_first);
	return test_summary();
}
