/* spop-client.h: HAProxy's side of SPOP for the conformance tests and the load
 * generator: connect, send with a deadline, read one agent frame with a deadline,
 * build HELLO / NOTIFY / pay-request frames, decode an ACK into a name → value table.
 * Built into the test library (libtest.a) that tests and benches link. Must not be
 * used by the daemon: it blocks in poll() and keeps no limits on itself beyond its
 * fixed buffer.
 *
 * Return conventions: socket helpers return -1 on error/timeout and ≥ 0 otherwise;
 * sc_read_frame returns SC_FRAME, SC_CLOSED, SC_TIMEOUT or SC_BAD. */
#ifndef SPOP_CLIENT_H
#define SPOP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "spop.h"

/* Largest agent frame the client accepts to decode: above any max-frame-size, so that
 * a frame larger than what was negotiated is seen (and judged by the test) rather than
 * refused by the reader. */
#define SC_FRAME_LIMIT (1u << 20)
#define SC_BUF_SIZE    (256 * 1024)

enum { SC_FRAME = 1, SC_CLOSED = 0, SC_TIMEOUT = -1, SC_BAD = -2 };

uint64_t sc_now_us(void);

void sc_sleep_ms(unsigned ms);

/* Milliseconds left until deadline_us (0 when passed). */
int sc_left_ms(uint64_t deadline_us);

/* Parse "host:port" (numeric IPv4), "[v6]:port" or "unix:/path". Returns 0 or -1. */
int sc_addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len);

/* A non-blocking connected socket, or -1 (refused, or not connected within timeout). */
int sc_connect(const char *addr, int timeout_ms);

/* Close with RST instead of FIN (SO_LINGER 0), as HAProxy 3.1+ does. */
void sc_close_rst(int fd);

/* Send all n bytes before the timeout. Returns 0, or -1 (timeout, EPIPE, reset). */
int sc_send_all(int fd, const void *buf, size_t n, int timeout_ms);

/* Send one byte per send() call, pausing every `pause_every` bytes (0: never) so the
 * agent sees its input in tiny pieces. */
int sc_send_bytewise(int fd, const void *buf, size_t n, unsigned pause_every);

/* The reading side of one connection. `buf` holds bytes received and not yet framed. */
struct sc_conn {
	int fd;
	size_t start;        /* first byte not yet returned in a frame */
	size_t len;          /* end of the bytes in buf */
	size_t consumed;     /* bytes of the frame returned last, dropped on the next read */
	bool reset;          /* the last SC_CLOSED was an ECONNRESET */
	uint8_t buf[SC_BUF_SIZE];
};

void sc_conn_init(struct sc_conn *c, int fd);

/* Read the next agent frame. Returns SC_FRAME with *f borrowing from c->buf until the
 * next call, SC_CLOSED on EOF or reset (with no partial frame pending: a partial frame
 * before EOF is SC_BAD), SC_TIMEOUT, or SC_BAD for a frame the codec rejects (shorter
 * than 7 bytes, bad header varints, or longer than SC_FRAME_LIMIT). timeout_ms is scaled by
 * TEST_TIME_SCALE (test.h), as are the other waits of this file. */
int sc_read_frame(struct sc_conn *c, struct spop_frame *f, int timeout_ms);
/* sc_read_frame with a deadline TEST_TIME_SCALE does not stretch: for "nothing arrives
 * within timeout_ms" (SC_TIMEOUT expected), where a longer wait would reach the daemon's
 * own timers and change what is asserted. */
int sc_read_quiet(struct sc_conn *c, struct spop_frame *f, int timeout_ms);

/* --- frames from HAProxy's side ---------------------------------------------------- */

/* Which keys a test HELLO carries. */
struct sc_hello_opts {
	const char *versions;      /* NULL: key omitted */
	int64_t max_frame;         /* < 0: key omitted */
	const char *caps;          /* NULL: key omitted */
	bool healthcheck;
	const char *engine_id;     /* NULL: key omitted */
	bool unknown_keys;         /* add keys a future HAProxy might send */
};

size_t sc_hello_custom(struct spop_wbuf *w, const struct sc_hello_opts *o);

/* The arguments of one pay-request (DESIGN.md §3); NULL fields travel as NULL. */
struct sc_payreq {
	const char *id, *method, *path, *account, *idem, *amount, *currency;
	const char *card_country, *card_brand, *card_funding, *class_hint;
};

void sc_put_arg_str(struct spop_wbuf *w, const char *key, const char *val);

/* One `pay-request` message (name, 11 args), as HAProxy encodes it. */
void sc_put_pay_request(struct spop_wbuf *w, const struct sc_payreq *r);

/* A typical card payment; `n` varies the id and the idempotency key. */
void sc_payreq_sample(struct sc_payreq *r, unsigned n, char id[32], char idem[65]);

/* The head of a proto test's policy: two USD accounts of one entity, pa cheaper than pb
 * (every fresh payment goes to pa, the default backend), one class. */
#define SC_POLICY_TWO_USD_ACCOUNTS \
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n" \
	"backends = (\n" \
	" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n" \
	" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"b\"; }\n" \
	");\n" \
	"default_backend = \"pa\";\n" \
	"classes = ( { name = \"std\"; } );\n"

/* A US visa credit card payment of 20.00 USD, POST /v1/payment_intents, keyed by idem;
 * every other field zero. */
void sc_payreq_usd(struct sc_payreq *r, const char *idem);

/* A NOTIFY frame holding one pay-request. Returns the frame's bytes or 0. */
size_t sc_notify_payreq(struct spop_wbuf *w, uint64_t sid, uint64_t fid,
                        const struct sc_payreq *r);

/* A NOTIFY frame holding the n-th sample pay-request (sc_payreq_sample), written into
 * buf. Returns the frame's bytes or 0 when it does not fit. */
size_t sc_notify_sample(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid, unsigned n);

/* --- ACK decoding ------------------------------------------------------------------ */

struct sc_var {
	uint8_t action, scope;
	char name[256];          /* NUL-terminated copy */
	size_t nlen;
	struct spop_data val;    /* strings are copied into sval */
	char sval[256];
};

struct sc_ack {
	unsigned n;
	struct sc_var v[64];
};

/* Decode an ACK payload into a table. Returns the number of actions, or -1 when an
 * action is malformed, a name or string is longer than the table holds, or there are
 * more than 64 actions. */
int sc_ack_decode(const uint8_t *p, size_t len, struct sc_ack *a);

const struct sc_var *sc_ack_var(const struct sc_ack *a, const char *name);

/* A string variable's value, or NULL if absent or not a string. */
const char *sc_ack_str(const struct sc_ack *a, const char *name);

#endif /* SPOP_CLIENT_H */
