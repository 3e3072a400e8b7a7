/* loadgen.c: the project's HTTP/1.1 load generator (integration tests, demo, benchmarks):
 * keep-alive requests at a controlled rate, one line per response. It must never connect
 * anywhere but the numeric address it is given, never resolve a name, never follow a
 * redirect, and keep its memory bounded whatever the server does.
 *
 *   loadgen -a ADDR -f FILE [-r RATE | -c CONNS [-l]] [-d SECONDS] [-n COUNT] [-s STOPFILE]
 *           [-t TIMEOUT] [-o HEADER]... [-q]
 *
 *   -a ADDR     where to send: 127.0.0.1:8080, [::1]:8080 (an http:// prefix and a trailing
 *               slash are accepted); numeric only
 *   -f FILE     the request list (format below); "-" reads stdin
 *   -r RATE     open loop: RATE requests per second, on schedule whatever the answers
 *               take; each request goes on an idle kept-alive connection or a new one, at
 *               most CONNS at once (-c, default 256); a request due when all CONNS are
 *               busy is not sent and is counted as missed
 *   -c CONNS    closed loop (without -r): CONNS connections, each sending its next
 *               request as soon as the previous one is answered (default 1)
 *   -l          lockstep (closed loop only): rounds. All CONNS connections send their
 *               request in the same loop turn, the round ends when every one of them has
 *               ended (answered, failed or timed out), then the next round starts. Every
 *               request of round r is list entry (r - 1) mod (entries), so "-c 2 -l" with
 *               a key "pair-{r}" sends two identical requests at once per round. -n counts
 *               requests (the last round may be partial), -d and -s let the round in
 *               flight finish. A round in which a request failed without an answer is
 *               followed by the next one at the next 10 ms turn (no spin against a
 *               refusing server)
 *   -d SECONDS  stop sending after SECONDS           -n COUNT   stop after COUNT requests
 *   -s FILE     stop sending once FILE exists (looked at every 10 ms)
 *   -t SECONDS  per-request timeout (default 5): no complete answer by then → status 000
 *   -o HEADER   print response header HEADER as a column (repeatable, up to 8, in order)
 *   -q          no summary line on stderr
 *   SIGINT / SIGTERM stop sending too. Once stopped, the requests in flight finish (each
 *   within its timeout) and loadgen exits 0; a second signal exits at once.
 *
 * Request list: requests are sent in turn, cycling. Blank lines and lines starting with
 * '#' are skipped.
 *   METHOD PATH [BODY]      one request; BODY (the rest of the line) is sent with
 *                           Content-Type application/x-www-form-urlencoded unless a
 *                           header says otherwise
 *   <space or tab>Name: value   a header of the request above
 * "{n}" anywhere in a path, body or header value is replaced by the request's sequence
 * number (1, 2, ...): unique idempotency keys, distinct query strings. "{r}" is replaced
 * by the round number with -l (1, 2, ...: the same for every request of a round), and
 * without -l by the sequence number (each request is a round of its own). Host defaults
 * to ADDR.
 *
 * Output, on stdout, one line per request once it ends (not in start order: sort -n):
 *   START|LATENCY|STATUS|HEADER1|HEADER2...
 * START is when the request was issued (CLOCK_REALTIME, seconds with 6 decimals, the
 * base of bash's $EPOCHREALTIME), LATENCY microseconds from then to the last byte of the
 * answer (or to the failure), STATUS the HTTP status or 000 when there was no complete
 * answer (timeout, refused, reset), then the -o headers' values ('|' and control bytes
 * become '_'; empty when absent). With -l the requests of one round share their START
 * (issued in the same loop turn), so a script groups a round's lines by it. Lines are
 * flushed before the loop sleeps, so a reader sees each one within a loop turn. The
 * summary on stderr:
 *   loadgen: N sent in S s (R/s): N answered (2xx N, 3xx N, 4xx N, 5xx N), N timed out,
 *   N failed, N missed
 *
 * One thread, one libev loop; every connection and buffer is allocated at start. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LG_REQ_MAX   4096        /* requests in a list */
#define LG_TPL_MAX   3072        /* bytes of one request's head or body template */
#define LG_OUT_MAX   8192        /* one rendered request: head + body ({n}, {r} grow by <= 20) */
#define LG_IN_MAX    16384       /* a response's head must fit; bodies are streamed */
#define LG_HDR_MAX   8           /* -o columns */
#define LG_HV_MAX    128         /* bytes kept of one -o header value */
#define LG_CONN_MAX  20000

struct lg_req {
	char *head;       /* "METHOD PATH HTTP/1.1\r\nName: value\r\n..." without the blank line */
	char *body;       /* "" when none */
	bool send_length; /* Content-Length even when the body is empty (POST, PUT, PATCH) */
	bool is_head;     /* HEAD: the answer has no body whatever it says */
};

enum lg_state { LG_CLOSED, LG_IDLE, LG_CONNECTING, LG_SENDING, LG_READING };
enum lg_body { LG_B_NONE, LG_B_LENGTH, LG_B_CHUNKED, LG_B_EOF };
enum lg_chunk { LG_C_SIZE, LG_C_DATA, LG_C_DATA_END, LG_C_TRAILER };

struct lg_conn {
	ev_io io;                 /* EV_WRITE while connecting or sending, else EV_READ */
	ev_timer timeout;         /* the request's deadline */
	int fd;                   /* -1 when closed */
	enum lg_state state;
	bool reused;              /* the request went on a kept-alive connection */
	bool head_req;            /* a HEAD request: its answer has no body */
	bool got_bytes;           /* some of the answer arrived */
	double start;             /* ev_now() when issued */
	size_t out_len, out_off;
	size_t in_len;            /* unconsumed bytes in in[] */
	/* the answer being read */
	int status;
	bool head_done, close_after;
	enum lg_body body;
	enum lg_chunk chunk;
	uint64_t left;            /* body or chunk bytes still to come */
	char hv[LG_HDR_MAX][LG_HV_MAX];
	char out[LG_OUT_MAX];
	char in[LG_IN_MAX];
};

static struct {
	/* options */
	struct sockaddr_storage sa;
	socklen_t salen;
	char host[128];
	double rate, duration, timeout;
	uint64_t count;
	unsigned conns;
	const char *stopfile;
	const char *hdr[LG_HDR_MAX];
	unsigned nhdr;
	bool quiet;
	bool lockstep;            /* -l */
	/* requests */
	struct lg_req req[LG_REQ_MAX];
	unsigned nreq;
	/* run */
	struct ev_loop *loop;
	struct lg_conn *conn;
	unsigned *idle, nidle;    /* connections with no request (connected or not): the open
	                           * loop's pool; in the closed loop, failed ones to restart */
	unsigned inflight;
	uint64_t issued;          /* requests started (the last sequence number) */
	uint64_t scheduled;       /* open loop: requests whose time has come */
	uint64_t round;           /* -l: the current round (1, 2, ...), 0 before the first */
	unsigned round_left;      /* -l: requests of the round not ended yet */
	bool round_issuing;       /* -l: lg_round is issuing (an end now does not start one) */
	bool round_failed;        /* -l: a request of the round ended without an answer */
	bool round_due;           /* -l: the next round starts at the next 10 ms turn */
	double t0;
	bool stopping;
	int signals;
	ev_timer tick;            /* open loop: the next request's time */
	ev_timer house;           /* stop file and duration, every 10 ms */
	ev_prepare flush;         /* output flushed before the loop sleeps */
	ev_signal sigint, sigterm;
	/* counts */
	uint64_t by_class[6], timed_out, failed, missed;
} lg = { .timeout = 5.0 };

static void lg_issue(struct lg_conn *c);
static void lg_round(void);
static void lg_stop(void);

static void usage(void)
{
	fprintf(stderr,
	        "usage: loadgen -a ADDR -f FILE [-r RATE | -c CONNS [-l]] [-d SECONDS] [-n COUNT]\n"
	        "               [-s STOPFILE] [-t TIMEOUT] [-o HEADER]... [-q]\n"
	        "  (the full contract is at the top of tests/loadgen/loadgen.c)\n");
	exit(2);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- setup ---------------------------------------------------------------------------- */

/* lg_addr: ADDR → lg.sa; numeric host and port only. */
static void lg_addr(const char *arg)
{
	char buf[128], *host, *port, *end;
	unsigned long p;
	size_t n;

	if (strncmp(arg, "http://", 7) == 0)
		arg += 7;
	n = strlen(arg);
	if (n && arg[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(buf))
		die("bad address '%s'", arg);
	memcpy(buf, arg, n);
	buf[n] = '\0';
	memcpy(lg.host, buf, n + 1);
	if (buf[0] == '[') {
		host = buf + 1;
		end = strchr(host, ']');
		if (!end || end[1] != ':')
			die("bad address '%s' (want [v6]:port)", arg);
		*end = '\0';
		port = end + 2;
	} else {
		end = strrchr(buf, ':');
		if (!end)
			die("bad address '%s' (want host:port)", arg);
		*end = '\0';
		host = buf;
		port = end + 1;
	}
	p = strtoul(port, &end, 10);
	if (*port == '\0' || *end || p == 0 || p > 65535)
		die("bad port in '%s'", arg);
	memset(&lg.sa, 0, sizeof(lg.sa));
	if (buf[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&lg.sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			die("not a numeric IPv6 address: '%s'", host);
		lg.salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&lg.sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			die("not a numeric IPv4 address: '%s' (no name resolution)", host);
		lg.salen = sizeof(*s4);
	}
}

static char *lg_strdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		die("%s", "out of memory");
	return d;
}

/* The list being read: the request whose head is open, and where errors point. */
struct lg_reader {
	const char *path;
	unsigned line;
	char head[LG_TPL_MAX];
	size_t hl;
	bool open, ctype, host;
};

static void lg_load_fail(const struct lg_reader *rd, const char *msg)
{
	fprintf(stderr, "loadgen: %s:%u: %s\n", rd->path, rd->line, msg);
	exit(2);
}

/* lg_append: text at the end of the open head. */
static void lg_append(struct lg_reader *rd, const char *a, const char *b)
{
	int w = snprintf(rd->head + rd->hl, sizeof(rd->head) - rd->hl, "%s%s", a, b);

	if (w < 0 || (size_t)w >= sizeof(rd->head) - rd->hl)
		lg_load_fail(rd, "request too long");
	rd->hl += (size_t)w;
}

/* lg_close_head: the open request is complete: Host and Content-Type added if absent. */
static void lg_close_head(struct lg_reader *rd)
{
	struct lg_req *r;

	if (!rd->open)
		return;
	r = &lg.req[lg.nreq - 1];
	if (!rd->host)
		lg_append(rd, "Host: ", lg.host), lg_append(rd, "\r\n", "");
	if (!rd->ctype && r->body[0])
		lg_append(rd, "Content-Type: application/x-www-form-urlencoded\r\n", "");
	r->head = lg_strdup(rd->head);
	rd->open = false;
}

/* lg_request_line: "METHOD PATH [BODY]" opens a new request. */
static void lg_request_line(struct lg_reader *rd, char *line)
{
	char *method = line, *target, *body;
	struct lg_req *r;

	if (lg.nreq == LG_REQ_MAX)
		lg_load_fail(rd, "too many requests");
	target = strchr(method, ' ');
	if (!target)
		lg_load_fail(rd, "want 'METHOD PATH [BODY]'");
	*target++ = '\0';
	target += strspn(target, " ");
	body = strchr(target, ' ');
	if (body) {
		*body++ = '\0';
		body += strspn(body, " ");
	}
	if (target[0] != '/')
		lg_load_fail(rd, "the path must start with '/'");
	for (const char *p = method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			lg_load_fail(rd, "the method must be upper case letters");
	if (strlen(body ? body : "") >= LG_TPL_MAX)
		lg_load_fail(rd, "body too long");
	r = &lg.req[lg.nreq++];
	r->body = lg_strdup(body ? body : "");
	r->send_length = r->body[0] || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	                 !strcmp(method, "PATCH");
	r->is_head = !strcmp(method, "HEAD");
	rd->hl = 0;
	lg_append(rd, method, " ");
	lg_append(rd, target, " HTTP/1.1\r\n");
	rd->open = true;
	rd->ctype = rd->host = false;
}

/* lg_header_line: "<blank>Name: value" adds a header to the open request. */
static void lg_header_line(struct lg_reader *rd, char *line)
{
	char *h = line + strspn(line, " \t"), *colon = strchr(h, ':');

	if (!rd->open)
		lg_load_fail(rd, "a header before any request");
	if (!colon || colon == h)
		lg_load_fail(rd, "a header line must read 'Name: value'");
	if (strncasecmp(h, "content-length:", 15) == 0 || strncasecmp(h, "transfer-encoding:", 18) == 0)
		lg_load_fail(rd, "Content-Length and Transfer-Encoding are loadgen's to set");
	rd->ctype |= strncasecmp(h, "content-type:", 13) == 0;
	rd->host |= strncasecmp(h, "host:", 5) == 0;
	lg_append(rd, h, "\r\n");
}

/* lg_load: the request list (format at the top). Errors say file:line and exit 2. */
static void lg_load(const char *path)
{
	static struct lg_reader rd;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char line[LG_TPL_MAX];

	if (!f)
		die("cannot open '%s'", path);
	rd.path = path;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		rd.line++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n')
			lg_load_fail(&rd, "line too long");
		while (n && strchr("\r\n \t", line[n - 1]))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (line[0] == ' ' || line[0] == '\t') {
			lg_header_line(&rd, line);
		} else {
			lg_close_head(&rd);
			lg_request_line(&rd, line);
		}
	}
	lg_close_head(&rd);
	if (f != stdin)
		fclose(f);
	if (lg.nreq == 0)
		die("no request in '%s'", path);
}

/* ---- one request ------------------------------------------------------------------------ */

/* lg_render: template → dst with "{n}" replaced by seq and "{r}" by round. Returns the
 * length, or -1 when it does not fit in cap bytes. */
static long lg_render(char *dst, size_t cap, const char *tpl, uint64_t seq, uint64_t round)
{
	size_t n = 0;

	for (const char *p = tpl; *p;) {
		if (p[0] == '{' && (p[1] == 'n' || p[1] == 'r') && p[2] == '}') {
			int w = snprintf(dst + n, cap - n, "%" PRIu64, p[1] == 'n' ? seq : round);

			if (w < 0 || (size_t)w >= cap - n)
				return -1;
			n += (size_t)w;
			p += 3;
			continue;
		}
		if (n + 1 >= cap)
			return -1;
		dst[n++] = *p++;
	}
	dst[n] = '\0';
	return (long)n;
}

static void lg_watch(struct lg_conn *c, int events)
{
	ev_io_stop(lg.loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(lg.loop, &c->io);
}

static void lg_close(struct lg_conn *c)
{
	ev_io_stop(lg.loop, &c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = LG_CLOSED;
}

/* lg_clean: a value fit for a '|'-separated line. */
static void lg_clean(char *s)
{
	for (; *s; s++)
		if (*s == '|' || (unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '_';
}

/* lg_done: the request ended (status 0: no complete answer); one output line, counts,
 * and the connection goes back to work, to the idle list, or nowhere when stopping. */
static void lg_done(struct lg_conn *c, int status, bool timed_out)
{
	double now = ev_now(lg.loop);
	long long lat = (long long)((now - c->start) * 1e6 + 0.5);

	ev_timer_stop(lg.loop, &c->timeout);
	if (status == 0) {
		lg_close(c);
		if (timed_out)
			lg.timed_out++;
		else
			lg.failed++;
	} else {
		lg.by_class[status / 100 <= 5 ? status / 100 : 0]++;
		if (c->close_after || c->in_len) {
			lg_close(c);   /* bytes beyond the answer: no pipelining here, drop them */
		} else {
			c->state = LG_IDLE;
			lg_watch(c, EV_READ);   /* to see the server close it */
		}
	}
	printf("%.6f|%lld|%03d", c->start, lat < 0 ? 0 : lat, status);
	for (unsigned i = 0; i < lg.nhdr; i++) {
		lg_clean(c->hv[i]);
		printf("|%s", status ? c->hv[i] : "");
	}
	putchar('\n');
	lg.inflight--;
	if (lg.lockstep) {
		lg.round_left--;
		lg.round_failed |= status == 0;
	}
	if (lg.stopping) {
		if (lg.inflight == 0)
			ev_break(lg.loop, EVBREAK_ALL);
	} else if (lg.lockstep) {
		/* the last of its round starts the next one, at once unless one failed */
		if (lg.round_left == 0 && !lg.round_issuing) {
			if (lg.round_failed)
				lg.round_due = true;
			else
				lg_round();
		}
	} else if (lg.rate > 0 || status == 0) {
		/* closed loop: a failed connection starts again at the next 10 ms turn, not
		 * here (no recursion, no spin against a refusing server) */
		lg.idle[lg.nidle++] = (unsigned)(c - lg.conn);
	} else {
		lg_issue(c);
	}
}

static void lg_send(struct lg_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w > 0) {
			c->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->state = LG_SENDING;
			lg_watch(c, EV_WRITE);
			return;
		}
		lg_done(c, 0, false);
		return;
	}
	c->state = LG_READING;
	lg_watch(c, EV_READ);
}

/* lg_connect: a new non-blocking connection for c's request. */
static void lg_connect(struct lg_conn *c)
{
	int one = 1;

	c->reused = false;
	c->fd = socket(lg.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		lg_done(c, 0, false);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&lg.sa, lg.salen) == 0) {
		lg_send(c);
	} else if (errno == EINPROGRESS) {
		c->state = LG_CONNECTING;
		lg_watch(c, EV_WRITE);
	} else {
		lg_done(c, 0, false);
	}
}

/* lg_issue: the next request of the list, on c (connected or not). */
static void lg_issue(struct lg_conn *c)
{
	const struct lg_req *r;
	char body[LG_OUT_MAX];
	long hl, bl;
	uint64_t seq;
	int w;

	if (lg.stopping)
		return;
	seq = ++lg.issued;
	r = &lg.req[((lg.lockstep ? lg.round : seq) - 1) % lg.nreq];
	c->start = ev_now(lg.loop);
	c->out_off = 0;
	c->in_len = 0;
	c->status = 0;
	c->head_done = c->close_after = c->got_bytes = false;
	c->head_req = r->is_head;
	for (unsigned i = 0; i < lg.nhdr; i++)
		c->hv[i][0] = '\0';
	lg.inflight++;
	ev_timer_set(&c->timeout, lg.timeout, 0.0);
	ev_timer_start(lg.loop, &c->timeout);
	bl = lg_render(body, sizeof(body), r->body, seq, lg.lockstep ? lg.round : seq);
	hl = bl < 0 ? -1 : lg_render(c->out, sizeof(c->out), r->head, seq, lg.lockstep ? lg.round : seq);
	if (hl >= 0) {
		if (r->send_length)
			w = snprintf(c->out + hl, sizeof(c->out) - (size_t)hl, "Content-Length: %ld\r\n\r\n%s", bl, body);
		else
			w = snprintf(c->out + hl, sizeof(c->out) - (size_t)hl, "\r\n");
		if (w < 0 || (size_t)w >= sizeof(c->out) - (size_t)hl)
			hl = -1;
		else
			c->out_len = (size_t)hl + (size_t)w;
	}
	if (hl < 0) { /* a template with very many {n}: counted as failed, never sent cut */
		lg_done(c, 0, false);
		return;
	}
	if (c->fd < 0) {
		lg_connect(c);
	} else {
		c->reused = true;
		lg_send(c);
	}
	if (lg.count && lg.issued >= lg.count)
		lg_stop();
}

/* lg_round: -l. The next round: every connection's request in this loop turn (one
 * ev_now, so one START). A request that ends at once (cannot connect, cannot render)
 * counts in the round like any other; the round's end is judged after the last issue. */
static void lg_round(void)
{
	if (lg.stopping)
		return;
	lg.round++;
	lg.round_failed = false;
	lg.round_issuing = true;
	for (unsigned i = 0; i < lg.conns && !lg.stopping; i++) {
		lg.round_left++;
		lg_issue(&lg.conn[i]);
	}
	lg.round_issuing = false;
	if (lg.round_left == 0 && !lg.stopping)
		lg.round_due = true;   /* all ended already: they failed; next turn */
}

/* ---- the answer ---------------------------------------------------------------------------- */

/* lg_head: parse the status line and headers in in[0..len) (len includes the blank
 * line). Returns 0, or -1 on a malformed head. */
static int lg_head(struct lg_conn *c, size_t len)
{
	char *p = c->in, *end = c->in + len, *eol;
	bool length = false, chunked = false, http10;
	uint64_t cl = 0;

	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	http10 = p[7] == '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	c->close_after = http10;
	eol = memchr(p, '\n', (size_t)(end - p));
	for (p = eol + 1; p < end; p = eol + 1) {
		char *colon, *v, *ve;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			return -1;
		ve = eol;
		if (ve > p && ve[-1] == '\r')
			ve--;
		if (ve == p)
			break;   /* the blank line */
		colon = memchr(p, ':', (size_t)(ve - p));
		if (!colon)
			return -1;
		for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
			;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
#define IS(name) ((size_t)(colon - p) == sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0)
		if (IS("content-length")) {
			char *e;

			errno = 0;
			cl = strtoull(v, &e, 10);
			if (e != ve || v == ve || errno)
				return -1;
			length = true;
		} else if (IS("transfer-encoding")) {
			chunked = (size_t)(ve - v) >= 7 && strncasecmp(ve - 7, "chunked", 7) == 0;
		} else if (IS("connection")) {
			if ((size_t)(ve - v) == 5 && strncasecmp(v, "close", 5) == 0)
				c->close_after = true;
			else if ((size_t)(ve - v) == 10 && strncasecmp(v, "keep-alive", 10) == 0)
				c->close_after = false;
		}
#undef IS
		for (unsigned i = 0; i < lg.nhdr; i++) {
			size_t nl = strlen(lg.hdr[i]), vl = (size_t)(ve - v);

			if ((size_t)(colon - p) == nl && strncasecmp(p, lg.hdr[i], nl) == 0) {
				if (vl >= LG_HV_MAX)
					vl = LG_HV_MAX - 1;
				memcpy(c->hv[i], v, vl);
				c->hv[i][vl] = '\0';
			}
		}
	}
	if (c->status == 204 || c->status == 304 || c->status < 200 || c->head_req) {
		c->body = LG_B_NONE;
	} else if (chunked) {
		c->body = LG_B_CHUNKED;
		c->chunk = LG_C_SIZE;
	} else if (length) {
		c->body = LG_B_LENGTH;
		c->left = cl;
	} else {
		c->body = LG_B_EOF;
		c->close_after = true;
	}
	return 0;
}

/* lg_body_feed: consume body bytes from in[]. Returns 1 when the answer is complete, 0
 * when more is needed, -1 on a malformed chunked body. */
static int lg_body_feed(struct lg_conn *c)
{
	size_t off = 0;
	int done = 0;

	while (!done) {
		size_t avail = c->in_len - off;
		char *p = c->in + off, *eol;

		switch (c->body) {
		case LG_B_NONE:
			done = 1;
			break;
		case LG_B_EOF:
			off = c->in_len;   /* the end comes with the close */
			goto out;
		case LG_B_LENGTH:
			if ((uint64_t)avail >= c->left) {
				off += (size_t)c->left;
				c->left = 0;
				done = 1;
			} else {
				c->left -= avail;
				off = c->in_len;
				goto out;
			}
			break;
		case LG_B_CHUNKED:
			if (c->chunk == LG_C_DATA) {
				size_t take = (uint64_t)avail < c->left ? avail : (size_t)c->left;

				off += take;
				c->left -= take;
				if (c->left)
					goto out;
				c->chunk = LG_C_DATA_END;
				break;
			}
			eol = memchr(p, '\n', avail);
			if (!eol) {
				if (avail >= LG_IN_MAX / 2)
					return -1;   /* no line is that long */
				goto out;
			}
			off += (size_t)(eol - p) + 1;
			if (c->chunk == LG_C_SIZE) {
				char *e;

				errno = 0;
				c->left = strtoull(p, &e, 16);
				if (e == p || errno || (*e != '\r' && *e != '\n' && *e != ';' && *e != ' '))
					return -1;
				c->chunk = c->left ? LG_C_DATA : LG_C_TRAILER;
			} else if (c->chunk == LG_C_DATA_END) {
				if (eol - p > 1 || (eol - p == 1 && *p != '\r'))
					return -1;
				c->chunk = LG_C_SIZE;
			} else { /* trailer lines until the blank one */
				done = eol == p || (eol - p == 1 && *p == '\r');
			}
			break;
		}
	}
out:
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return done;
}

/* lg_parse: what in[] holds of the answer. Ends the request when complete or broken. */
static void lg_parse(struct lg_conn *c)
{
	int r;

	for (;;) {
		if (!c->head_done) {
			char *blank = NULL;
			size_t len;

			for (size_t i = 0; i + 1 < c->in_len; i++) {
				if (c->in[i] == '\n' && (c->in[i + 1] == '\n' ||
				    (c->in[i + 1] == '\r' && i + 2 < c->in_len && c->in[i + 2] == '\n'))) {
					blank = c->in + i + (c->in[i + 1] == '\n' ? 2 : 3);
					break;
				}
			}
			if (!blank) {
				if (c->in_len == LG_IN_MAX)
					lg_done(c, 0, false);   /* a head larger than we keep */
				return;
			}
			len = (size_t)(blank - c->in);
			if (lg_head(c, len) < 0) {
				lg_done(c, 0, false);
				return;
			}
			memmove(c->in, blank, c->in_len - len);
			c->in_len -= len;
			if (c->status < 200) {   /* 1xx: an interim answer, the real one follows */
				for (unsigned i = 0; i < lg.nhdr; i++)
					c->hv[i][0] = '\0';
				continue;
			}
			c->head_done = true;
		}
		r = lg_body_feed(c);
		if (r < 0)
			lg_done(c, 0, false);
		else if (r > 0)
			lg_done(c, c->status, false);
		return;
	}
}

/* lg_read: bytes from the server; EOF ends an EOF-delimited body, retries a request that
 * met a kept-alive connection closed under it, and fails any other. */
static void lg_read(struct lg_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, LG_IN_MAX - c->in_len, 0);

		if (n > 0) {
			if (c->state == LG_IDLE) {   /* an answer to nothing: drop the connection */
				lg_close(c);
				return;
			}
			c->got_bytes = true;
			c->in_len += (size_t)n;
			lg_parse(c);
			if (c->state != LG_READING || c->in_len == LG_IN_MAX)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF or error */
		if (c->state == LG_IDLE) {
			lg_close(c);
		} else if (c->head_done && c->body == LG_B_EOF && n == 0) {
			c->close_after = true;
			lg_done(c, c->status, false);
		} else if (c->reused && !c->got_bytes) {
			lg_close(c);   /* the server had closed it while idle: once more, fresh */
			c->out_off = 0;
			lg_connect(c);
		} else {
			lg_done(c, 0, false);
		}
		return;
	}
}

static void lg_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lg_conn *c = (struct lg_conn *)w;   /* io is the first member */
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	switch (c->state) {
	case LG_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			lg_done(c, 0, false);
			return;
		}
		lg_send(c);
		break;
	case LG_SENDING:
		lg_send(c);
		break;
	case LG_READING:
	case LG_IDLE:
		if (revents & EV_READ)
			lg_read(c);
		break;
	case LG_CLOSED:
		break;
	}
}

static void lg_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lg_conn *c = (struct lg_conn *)((char *)w - offsetof(struct lg_conn, timeout));

	(void)loop;
	(void)revents;
	lg_done(c, 0, true);
}

/* ---- pacing and stopping -------------------------------------------------------------------- */

/* lg_tick_cb: open loop. Request k (0-based) is due at t0 + k / rate; every request due
 * by now goes out (a stalled loop catches up in a burst, as real clients would), then the
 * timer is set for the next one. */
static void lg_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	double now = ev_now(loop);
	uint64_t due = (uint64_t)((now - lg.t0) * lg.rate) + 1;

	(void)revents;
	if (lg.duration > 0 && due > (uint64_t)(lg.duration * lg.rate + 0.5))
		due = (uint64_t)(lg.duration * lg.rate + 0.5);   /* -d: none past the end */
	while (lg.scheduled < due && !lg.stopping) {
		lg.scheduled++;
		if (lg.nidle)
			lg_issue(&lg.conn[lg.idle[--lg.nidle]]);
		else
			lg.missed++;
	}
	if (lg.stopping)
		return;
	ev_timer_set(w, lg.t0 + (double)lg.scheduled / lg.rate - now, 0.0);
	ev_timer_start(loop, w);
}

static void lg_stop(void)
{
	if (lg.stopping)
		return;
	lg.stopping = true;
	ev_timer_stop(lg.loop, &lg.tick);
	ev_timer_stop(lg.loop, &lg.house);
	if (lg.inflight == 0)
		ev_break(lg.loop, EVBREAK_ALL);
}

static void lg_house_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct stat st;

	(void)w;
	(void)revents;
	if ((lg.duration > 0 && ev_now(loop) - lg.t0 >= lg.duration) ||
	    (lg.stopfile && stat(lg.stopfile, &st) == 0))
		lg_stop();
	while (lg.rate == 0 && lg.nidle && !lg.stopping)
		lg_issue(&lg.conn[lg.idle[--lg.nidle]]);
	if (lg.round_due && !lg.stopping) {
		lg.round_due = false;
		lg_round();
	}
}

static void lg_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	if (++lg.signals > 1)
		ev_break(loop, EVBREAK_ALL);
	else
		lg_stop();
}

static void lg_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	fflush(stdout);
}

/* ---- main -------------------------------------------------------------------------------- */

static double lg_number(const char *s, const char *what, double min)
{
	char *e;
	double v = strtod(s, &e);

	if (e == s || *e || !(v >= min) || v > 1e9)
		die("bad %s", what);
	return v;
}

/* lg_fds: room for the connections, raising the soft descriptor limit if needed. */
static void lg_fds(void)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)lg.conns + 32;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
			die("%s", "-c is above the descriptor limit (ulimit -n)");
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("%s", "cannot raise the descriptor limit for -c");
	}
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	bool have_addr = false;
	double end;
	uint64_t answered = 0;
	int o;

	while ((o = getopt(argc, argv, "a:f:r:c:d:n:s:t:o:lqh")) != -1) {
		switch (o) {
		case 'a': lg_addr(optarg); have_addr = true; break;
		case 'f': file = optarg; break;
		case 'r': lg.rate = lg_number(optarg, "rate (-r)", 1e-3); break;
		case 'c': lg.conns = (unsigned)lg_number(optarg, "connection count (-c)", 1); break;
		case 'd': lg.duration = lg_number(optarg, "duration (-d)", 1e-3); break;
		case 'n': lg.count = (uint64_t)lg_number(optarg, "count (-n)", 1); break;
		case 's': lg.stopfile = optarg; break;
		case 't': lg.timeout = lg_number(optarg, "timeout (-t)", 1e-3); break;
		case 'o':
			if (lg.nhdr == LG_HDR_MAX)
				die("%s", "at most 8 -o headers");
			lg.hdr[lg.nhdr++] = optarg;
			break;
		case 'q': lg.quiet = true; break;
		case 'l': lg.lockstep = true; break;
		default: usage();
		}
	}
	if (!have_addr || !file || optind != argc)
		usage();
	if (lg.lockstep && lg.rate > 0)
		die("%s", "-l (lockstep) is for the closed loop: not with -r");
	if (lg.conns == 0)
		lg.conns = lg.rate > 0 ? 256 : 1;
	if (lg.conns > LG_CONN_MAX)
		die("%s", "-c is above 20000");
	lg_load(file);
	lg_fds();

	lg.conn = calloc(lg.conns, sizeof(*lg.conn));
	lg.idle = calloc(lg.conns, sizeof(*lg.idle));
	lg.loop = ev_default_loop(EVFLAG_AUTO);
	if (!lg.conn || !lg.idle || !lg.loop)
		die("%s", "out of memory");
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (unsigned i = 0; i < lg.conns; i++) {
		struct lg_conn *c = &lg.conn[i];

		c->fd = -1;
		ev_io_init(&c->io, lg_io_cb, -1, EV_READ);
		ev_timer_init(&c->timeout, lg_timeout_cb, lg.timeout, 0.0);
		lg.idle[lg.nidle++] = lg.conns - 1 - i;   /* conn 0 on top */
	}
	ev_signal_init(&lg.sigint, lg_signal_cb, SIGINT);
	ev_signal_init(&lg.sigterm, lg_signal_cb, SIGTERM);
	ev_signal_start(lg.loop, &lg.sigint);
	ev_signal_start(lg.loop, &lg.sigterm);
	ev_unref(lg.loop);   /* signal watchers alone do not keep the loop running */
	ev_unref(lg.loop);
	ev_prepare_init(&lg.flush, lg_flush_cb);
	ev_prepare_start(lg.loop, &lg.flush);
	ev_unref(lg.loop);
	ev_timer_init(&lg.house, lg_house_cb, 0.0, 0.01);
	ev_timer_start(lg.loop, &lg.house);
	signal(SIGPIPE, SIG_IGN);

	ev_now_update(lg.loop);
	lg.t0 = ev_now(lg.loop);
	if (lg.rate > 0) {
		ev_timer_init(&lg.tick, lg_tick_cb, 0.0, 0.0);
		ev_timer_start(lg.loop, &lg.tick);
	} else if (lg.lockstep) {
		lg.nidle = 0;
		lg_round();
	} else {
		lg.nidle = 0;
		for (unsigned i = 0; i < lg.conns && !lg.stopping; i++)
			lg_issue(&lg.conn[i]);
	}
	ev_run(lg.loop, 0);

	fflush(stdout);
	end = ev_now(lg.loop);
	for (unsigned i = 0; i < lg.conns; i++)
		lg_close(&lg.conn[i]);
	for (unsigned i = 1; i < 6; i++)
		answered += lg.by_class[i];
	if (!lg.quiet)
		fprintf(stderr, "loadgen: %" PRIu64 " sent in %.1f s (%.1f/s): %" PRIu64 " answered (2xx %" PRIu64
		        ", 3xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "), %" PRIu64 " timed out, %" PRIu64
		        " failed, %" PRIu64 " missed%s\n",
		        lg.issued, end - lg.t0, end > lg.t0 ? (double)lg.issued / (end - lg.t0) : 0.0, answered,
		        lg.by_class[2], lg.by_class[3], lg.by_class[4], lg.by_class[5], lg.timed_out, lg.failed,
		        lg.missed, lg.inflight ? " (interrupted with requests in flight)" : "");
	for (unsigned i = 0; i < lg.nreq; i++) {
		free(lg.req[i].head);
		free(lg.req[i].body);
	}
	free(lg.conn);
	free(lg.idle);
	ev_loop_destroy(lg.loop);
	return 0;
}
