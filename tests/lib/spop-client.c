/* spop-client.c: HAProxy's side of SPOP for tests and benches (contracts in
 * spop-client.h). Blocks in poll() with deadlines; never linked into the daemon. */
#include "spop-client.h"
#include "test.h"

uint64_t sc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sc_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int sc_left_ms(uint64_t deadline_us)
{
	uint64_t now = sc_now_us();

	return now >= deadline_us ? 0 : (int)((deadline_us - now + 999) / 1000);
}

int sc_addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(addr + 5) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, addr + 5);
		*len = sizeof(*un);
		return 0;
	}
	{
		char host[64];
		const char *colon = strrchr(addr, ':');
		size_t hl;
		long port;

		if (!colon)
			return -1;
		hl = (size_t)(colon - addr);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, addr, hl);
		host[hl] = 0;
		port = strtol(colon + 1, NULL, 10);
		if (port <= 0 || port > 65535)
			return -1;
		if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

			host[hl - 1] = 0;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
				return -1;
			*len = sizeof(*s6);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &s4->sin_addr) != 1)
				return -1;
			*len = sizeof(*s4);
		}
	}
	return 0;
}

int sc_connect(const char *addr, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err = 0;
	socklen_t elen = sizeof(err);
	struct pollfd pfd;

	if (sc_addr_parse(addr, &ss, &len) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EAGAIN)
		goto fail;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, test_scale_ms(timeout_ms)) != 1)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

void sc_close_rst(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int sc_send_all(int fd, const void *buf, size_t n, int timeout_ms)
{
	const uint8_t *p = buf;
	uint64_t deadline = sc_now_us() + (uint64_t)test_scale_ms(timeout_ms) * 1000u;

	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { fd, POLLOUT, 0 };
			int left = sc_left_ms(deadline);

			if (left == 0 || poll(&pfd, 1, left) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

int sc_send_bytewise(int fd, const void *buf, size_t n, unsigned pause_every)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < n; i++) {
		if (sc_send_all(fd, p + i, 1, 2000) < 0)
			return -1;
		if (pause_every && i % pause_every == pause_every - 1)
			sc_sleep_ms(1);
	}
	return 0;
}

void sc_conn_init(struct sc_conn *c, int fd)
{
	c->fd = fd;
	c->start = c->len = c->consumed = 0;
	c->reset = false;
}

static int sc_read_frame_by(struct sc_conn *c, struct spop_frame *f, uint64_t deadline);

int sc_read_frame(struct sc_conn *c, struct spop_frame *f, int timeout_ms)
{
	return sc_read_frame_by(c, f, sc_now_us() + (uint64_t)test_scale_ms(timeout_ms) * 1000u);
}

int sc_read_quiet(struct sc_conn *c, struct spop_frame *f, int timeout_ms)
{
	return sc_read_frame_by(c, f, sc_now_us() + (uint64_t)timeout_ms * 1000u);
}

static int sc_read_frame_by(struct sc_conn *c, struct spop_frame *f, uint64_t deadline)
{

	/* Frames are taken from buf + start; the buffer is compacted only when full, so that
	 * reading thousands of small frames costs no memmove each. */
	c->start += c->consumed;
	c->consumed = 0;
	for (;;) {
		int r = spop_frame_get(c->buf + c->start, c->len - c->start, SC_FRAME_LIMIT, f);
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		ssize_t n;
		int left;

		if (r > 0) {
			c->consumed = (size_t)r;
			return SC_FRAME;
		}
		if (r < 0)
			return SC_BAD;
		if (c->len == sizeof(c->buf) && c->start) {
			memmove(c->buf, c->buf + c->start, c->len - c->start);
			c->len -= c->start;
			c->start = 0;
		}
		if (c->len == sizeof(c->buf))
			return SC_BAD;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			c->reset = n < 0;
			return c->len > c->start ? SC_BAD : SC_CLOSED;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return SC_BAD;
		left = sc_left_ms(deadline);
		if (left == 0)
			return SC_TIMEOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return SC_BAD;
	}
}

size_t sc_hello_custom(struct spop_wbuf *w, const struct sc_hello_opts *o)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_HAPROXY_HELLO, SPOP_FL_FIN, 0, 0);

	if (o->unknown_keys) {
		spop_put_str(w, "x-future", 8);
		spop_put_data_str(w, "whatever", 8);
		spop_put_str(w, "x-number", 8);
		spop_put_data_int(w, -5);
	}
	if (o->versions) {
		spop_put_str(w, "supported-versions", 18);
		spop_put_data_str(w, o->versions, strlen(o->versions));
	}
	if (o->max_frame >= 0) {
		spop_put_str(w, "max-frame-size", 14);
		spop_put_data_uint32(w, (uint32_t)o->max_frame);
	}
	if (o->caps) {
		spop_put_str(w, "capabilities", 12);
		spop_put_data_str(w, o->caps, strlen(o->caps));
	}
	if (o->healthcheck) {
		spop_put_str(w, "healthcheck", 11);
		spop_put_data_bool(w, true);
	}
	if (o->engine_id) {
		spop_put_str(w, "engine-id", 9);
		spop_put_data_str(w, o->engine_id, strlen(o->engine_id));
	}
	return spop_frame_end(w, start, UINT32_MAX);
}

void sc_put_arg_str(struct spop_wbuf *w, const char *key, const char *val)
{
	spop_put_str(w, key, strlen(key));
	if (val)
		spop_put_data_str(w, val, strlen(val));
	else
		spop_put_data_null(w);
}

void sc_put_pay_request(struct spop_wbuf *w, const struct sc_payreq *r)
{
	spop_put_str(w, "pay-request", 11);
	spop_put_u8(w, 11);
	sc_put_arg_str(w, "id", r->id);
	sc_put_arg_str(w, "method", r->method);
	sc_put_arg_str(w, "path", r->path);
	sc_put_arg_str(w, "account", r->account);
	sc_put_arg_str(w, "idem", r->idem);
	sc_put_arg_str(w, "amount", r->amount);
	sc_put_arg_str(w, "currency", r->currency);
	sc_put_arg_str(w, "card_country", r->card_country);
	sc_put_arg_str(w, "card_brand", r->card_brand);
	sc_put_arg_str(w, "card_funding", r->card_funding);
	sc_put_arg_str(w, "class", r->class_hint);
}

void sc_payreq_usd(struct sc_payreq *r, const char *idem)
{
	memset(r, 0, sizeof(*r));
	r->method = "POST";
	r->path = "/v1/payment_intents";
	r->idem = idem;
	r->amount = "2000";
	r->currency = "usd";
	r->card_country = "US";
	r->card_brand = "visa";
	r->card_funding = "credit";
}

void sc_payreq_sample(struct sc_payreq *r, unsigned n, char id[32], char idem[65])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t x = 0x9e3779b97f4a7c15ull * (n + 1);

	snprintf(id, 32, "req-%08u", n);
	for (int i = 0; i < 64; i++) {
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ull;
		idem[i] = hex[(x >> 60) & 15];
	}
	idem[64] = 0;
	r->id = id;
	r->method = "POST";
	r->path = "/v1/payment_intents";
	r->account = n % 3 ? "acct_1Nv0FGQ9RKHgCVdK" : NULL;
	r->idem = idem;
	r->amount = "2000";
	r->currency = n % 4 == 3 ? "usd" : "eur";
	r->card_country = n % 5 == 4 ? "US" : "FR";
	r->card_brand = "visa";
	r->card_funding = n % 2 ? "debit" : "credit";
	r->class_hint = NULL;
}

size_t sc_notify_payreq(struct spop_wbuf *w, uint64_t sid, uint64_t fid,
                        const struct sc_payreq *r)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, sid, fid);

	sc_put_pay_request(w, r);
	return spop_frame_end(w, start, UINT32_MAX);
}

int sc_ack_decode(const uint8_t *p, size_t len, struct sc_ack *a)
{
	const uint8_t *end = p + len;

	a->n = 0;
	while (p < end) {
		struct sc_var *v;
		struct spop_str name;

		if (a->n == sizeof(a->v) / sizeof(a->v[0]))
			return -1;
		v = &a->v[a->n];
		if (spop_action_get(&p, end, &v->action, &v->scope, &name, &v->val) < 0)
			return -1;
		if (name.len >= sizeof(v->name))
			return -1;
		memcpy(v->name, name.ptr, name.len);
		v->name[name.len] = 0;
		v->nlen = name.len;
		v->sval[0] = 0;
		if (v->val.type == SPOP_DATA_STR || v->val.type == SPOP_DATA_BIN) {
			if (v->val.v.s.len >= sizeof(v->sval))
				return -1;
			memcpy(v->sval, v->val.v.s.ptr, v->val.v.s.len);
			v->sval[v->val.v.s.len] = 0;
			v->val.v.s.ptr = v->sval;
		}
		a->n++;
	}
	return (int)a->n;
}

const struct sc_var *sc_ack_var(const struct sc_ack *a, const char *name)
{
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0)
			return &a->v[i];
	return NULL;
}

const char *sc_ack_str(const struct sc_ack *a, const char *name)
{
	const struct sc_var *v = sc_ack_var(a, name);

	return v && v->val.type == SPOP_DATA_STR ? v->sval : NULL;
}

size_t sc_notify_sample(uint8_t *buf, size_t size, uint64_t sid, uint64_t fid, unsigned n)
{
	struct spop_wbuf w = spop_wbuf_init(buf, size);
	struct sc_payreq r;
	char id[32], idem[65];

	sc_payreq_sample(&r, n, id, idem);
	return sc_notify_payreq(&w, sid, fid, &r);
}
