/* spop-load.c: SPOP load generator playing HAProxy's side: C connections, D NOTIFYs in
 * flight on each, each NOTIFY one realistic pay-request (DESIGN.md §3). Prints
 * messages/s, send→ACK latency percentiles, errors and, with -p, the agent's CPU time
 * per message. A program that prints figures, not a test: it asserts nothing.
 *
 * Single thread, epoll, level-triggered. Cheap per message: requests are encoded once
 * at start (a pool of distinct ones), a NOTIFY is a header plus one memcpy, all NOTIFYs
 * a read makes room for leave in one send, the clock is read once per wake-up, the
 * latency histogram is a fixed array. No allocation after start. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "spop-client.h"

#define POOL        4096            /* distinct pay-requests, cycled */
#define IN_SIZE     (256 * 1024)
#define HIST_NS     100             /* histogram resolution */
#define HIST_MAX_NS 100000000ull    /* 100 ms; above that, one overflow bucket */
#define HIST_N      (HIST_MAX_NS / HIST_NS + 1)

struct req_tpl {
	uint16_t len;
	uint8_t bytes[320];
};

struct lconn {
	int fd;
	bool ready;               /* AGENT-HELLO received */
	bool dead;
	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_off, out_len, out_size;
	uint64_t next_sid;
	unsigned inflight;
	uint64_t *sent_at;        /* per frame id (= slot, 0..depth-1); 0 = free */
	unsigned *free_slots;
	unsigned nfree;
};

static struct {
	const char *addr;
	unsigned conns, depth;
	double seconds, warmup;
	uint64_t count;
	int pid;
	uint32_t max_frame;
	bool validate;
} opt = { "127.0.0.1:12345", 4, 64, 10, 1, 0, 0, 16380, false };

static struct req_tpl pool[POOL];
static unsigned pool_next;
static uint64_t hist[HIST_N];
static uint64_t acked, errors, bad_frames, bad_ids, disconnects, max_ns;
static bool measuring, stopping;
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
	"usage: spop-load [-a ADDR] [-c CONNS] [-d DEPTH] [-t SECONDS | -n COUNT] [-w WARMUP]\n"
	"                 [-p AGENT_PID] [-m MAX_FRAME] [-V]\n"
	"  -a ADDR   agent address, host:port or unix:/path (default 127.0.0.1:12345)\n"
	"  -c N      connections (default 4)\n"
	"  -d N      NOTIFYs in flight per connection (default 64)\n"
	"  -t S      measured duration in seconds (default 10)\n"
	"  -n N      stop after N measured messages instead\n"
	"  -w S      warm-up seconds before measuring (default 1)\n"
	"  -p PID    agent process: report its CPU time (utime+stime) per message\n"
	"  -m N      max-frame-size announced in HELLO (default 16380)\n"
	"  -V        validate every ACK fully (decode all actions, require a verdict)\n");
	exit(2);
}

/* Agent CPU time in seconds (all threads), or -1. */
static double agent_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void pool_build(void)
{
	for (unsigned i = 0; i < POOL; i++) {
		struct spop_wbuf w = spop_wbuf_init(pool[i].bytes, sizeof(pool[i].bytes));
		struct sc_payreq r;
		char id[32], idem[65];

		sc_payreq_sample(&r, i, id, idem);
		sc_put_pay_request(&w, &r);
		if (w.overflow) {
			fprintf(stderr, "spop-load: request template too large\n");
			exit(1);
		}
		pool[i].len = (uint16_t)(w.p - pool[i].bytes);
	}
}

/* Queue one NOTIFY on slot `slot`. The caller guarantees out room. */
static void queue_notify(struct lconn *c, unsigned slot, uint64_t t)
{
	const struct req_tpl *r = &pool[pool_next++ % POOL];
	struct spop_wbuf w = spop_wbuf_init(c->out + c->out_len, c->out_size - c->out_len);
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, SPOP_FL_FIN, c->next_sid++, slot);
	size_t n;

	if (r->len <= (size_t)(w.end - w.p)) {
		memcpy(w.p, r->bytes, r->len);
		w.p += r->len;
	} else {
		w.overflow = true;
	}
	n = spop_frame_end(&w, start, opt.max_frame);
	if (!n) {
		fprintf(stderr, "spop-load: output buffer too small\n");
		exit(1);
	}
	c->out_len += n;
	c->sent_at[slot] = t ? t : 1;
	c->inflight++;
}

static void fill(struct lconn *c, uint64_t t)
{
	while (!stopping && c->ready && !c->dead && c->nfree)
		queue_notify(c, c->free_slots[--c->nfree], t);
}

static void record(uint64_t ns)
{
	uint64_t b = ns / HIST_NS;

	hist[b < HIST_N ? b : HIST_N - 1]++;
	if (ns > max_ns)
		max_ns = ns;
}

static void conn_dead(struct lconn *c, const char *why)
{
	if (!c->dead) {
		c->dead = true;
		errors++;
		fprintf(stderr, "spop-load: connection fd %d: %s\n", c->fd, why);
	}
}

/* Handle one agent frame. */
static void on_frame(struct lconn *c, const struct spop_frame *f, uint64_t t)
{
	if (f->type == SPOP_FRM_AGENT_HELLO) {
		c->ready = true;
		return;
	}
	if (f->type == SPOP_FRM_AGENT_DISCONNECT) {
		struct spop_str msg;
		uint32_t st = 99;
		char why[128];

		spop_disconnect_parse(f->payload, f->len, &st, &msg);
		disconnects++;
		snprintf(why, sizeof(why), "AGENT-DISCONNECT status %u \"%.*s\"", st, (int)msg.len, msg.ptr);
		conn_dead(c, why);
		return;
	}
	if (f->type != SPOP_FRM_ACK || f->len == 0) {
		bad_frames++;
		errors++;
		return;
	}
	if (f->frame_id >= opt.depth || !c->sent_at[f->frame_id]) {
		bad_ids++;
		errors++;
		return;
	}
	if (opt.validate) {
		struct sc_ack a;

		if (sc_ack_decode(f->payload, f->len, &a) < 1 || !sc_ack_str(&a, "verdict") ||
		    !sc_ack_str(&a, "backend")) {
			bad_frames++;
			errors++;
		}
	}
	if (measuring) {
		record(t - c->sent_at[f->frame_id]);
		acked++;
	}
	c->sent_at[f->frame_id] = 0;
	c->free_slots[c->nfree++] = (unsigned)f->frame_id;
	c->inflight--;
}

/* Read what is there and answer. Returns -1 when the connection ended. */
static int on_read(struct lconn *c, uint64_t t)
{
	for (;;) {
		size_t room = IN_SIZE - c->in_len, off = 0;
		ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);

		if (n == 0) {
			conn_dead(c, "closed by the agent");
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_dead(c, strerror(errno));
			return -1;
		}
		c->in_len += (size_t)n;
		for (;;) {
			struct spop_frame f;
			int r = spop_frame_get(c->in + off, c->in_len - off, SC_FRAME_LIMIT, &f);

			if (r == 0)
				break;
			if (r < 0) {
				bad_frames++;
				conn_dead(c, "malformed frame from the agent");
				return -1;
			}
			off += (size_t)r;
			on_frame(c, &f, t);
		}
		if (off) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
		}
		if ((size_t)n < room)
			return 0; /* short read: the socket is drained */
	}
}

static int on_write(struct lconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_dead(c, n < 0 ? strerror(errno) : "send returned 0");
		return -1;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return 0;
}

static void set_events(int ep, struct lconn *c, bool *want_out)
{
	bool w = c->out_off < c->out_len;

	if (w != *want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (w ? EPOLLOUT : 0), .data.ptr = c };

		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		*want_out = w;
	}
}

static double percentile(uint64_t total, double q)
{
	uint64_t want = (uint64_t)((double)total * q), seen = 0;

	if (want == 0)
		want = 1;
	for (uint64_t b = 0; b < HIST_N; b++) {
		seen += hist[b];
		if (seen >= want)
			return (double)(b * HIST_NS + HIST_NS / 2) / 1000.0;
	}
	return (double)HIST_MAX_NS / 1000.0;
}

int main(int argc, char **argv)
{
	struct lconn *cs;
	bool *want_out;
	int ep, o;
	uint64_t t0, t_meas = 0, t_end = 0, acked_at_start = 0;
	double cpu0 = -1, cpu1 = -1;

	while ((o = getopt(argc, argv, "a:c:d:t:n:w:p:m:Vh")) != -1) {
		switch (o) {
		case 'a': opt.addr = optarg; break;
		case 'c': opt.conns = (unsigned)atoi(optarg); break;
		case 'd': opt.depth = (unsigned)atoi(optarg); break;
		case 't': opt.seconds = atof(optarg); break;
		case 'n': opt.count = strtoull(optarg, NULL, 10); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'p': opt.pid = atoi(optarg); break;
		case 'm': opt.max_frame = (uint32_t)atoi(optarg); break;
		case 'V': opt.validate = true; break;
		default: usage();
		}
	}
	if (optind != argc || opt.conns == 0 || opt.depth == 0 || opt.max_frame < 256)
		usage();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_sigint);
	pool_build();
	ep = epoll_create1(EPOLL_CLOEXEC);
	cs = calloc(opt.conns, sizeof(*cs));
	want_out = calloc(opt.conns, sizeof(*want_out));
	if (ep < 0 || !cs || !want_out)
		return 1;
	for (unsigned i = 0; i < opt.conns; i++) {
		struct lconn *c = &cs[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		struct spop_wbuf w;

		c->fd = sc_connect(opt.addr, 2000);
		if (c->fd < 0) {
			fprintf(stderr, "spop-load: cannot connect to %s: %s\n", opt.addr, strerror(errno));
			return 1;
		}
		c->out_size = (size_t)opt.depth * (sizeof(pool[0].bytes) + 32) + 1024;
		c->in = malloc(IN_SIZE);
		c->out = malloc(c->out_size);
		c->sent_at = calloc(opt.depth, sizeof(*c->sent_at));
		c->free_slots = malloc(opt.depth * sizeof(*c->free_slots));
		if (!c->in || !c->out || !c->sent_at || !c->free_slots)
			return 1;
		for (unsigned s = 0; s < opt.depth; s++)
			c->free_slots[s] = opt.depth - 1 - s;
		c->nfree = opt.depth;
		c->next_sid = (uint64_t)i << 40 | 1; /* 2.6-style: large, unique per stream */
		w = spop_wbuf_init(c->out, c->out_size);
		c->out_len = spop_haproxy_hello(&w, "2.0", opt.max_frame, "pipelining", false, "spop-load");
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		on_write(c);
	}

	t0 = now_ns();
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		uint64_t t = now_ns();
		unsigned alive = 0, inflight = 0;

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;

			if (c->dead)
				continue;
			if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && on_read(c, t) < 0)
				continue;
			fill(c, t);
			if (on_write(c) < 0)
				continue;
			set_events(ep, c, &want_out[c - cs]);
		}
		/* phases: warm-up, measure, drain */
		if (!measuring && !stopping && t - t0 >= (uint64_t)(opt.warmup * 1e9)) {
			measuring = true;
			t_meas = t;
			acked_at_start = acked;
			if (opt.pid)
				cpu0 = agent_cpu_s(opt.pid);
		}
		if (measuring && !stopping && (interrupted ||
		    (opt.count ? acked - acked_at_start >= opt.count : t - t_meas >= (uint64_t)(opt.seconds * 1e9)))) {
			stopping = true;
			measuring = false;
			t_end = t;
			if (opt.pid)
				cpu1 = agent_cpu_s(opt.pid);
		}
		for (unsigned i = 0; i < opt.conns; i++) {
			alive += !cs[i].dead;
			inflight += cs[i].dead ? 0 : cs[i].inflight;
		}
		if (!alive || (stopping && (inflight == 0 || t - t_end > 2000000000ull)))
			break;
	}
	if (!t_end) {
		t_end = now_ns();
		if (opt.pid)
			cpu1 = agent_cpu_s(opt.pid);
	}

	{
		double secs = t_meas ? (double)(t_end - t_meas) / 1e9 : 0;
		uint64_t msgs = acked - acked_at_start;
		double rate = secs > 0 ? (double)msgs / secs : 0;

		printf("spop-load: %s, %u connections x %u in flight, %.2f s measured after %.1f s warm-up\n",
		       opt.addr, opt.conns, opt.depth, secs, opt.warmup);
		printf("messages:  %" PRIu64 " pay-request NOTIFY->ACK = %.0f msg/s\n", msgs, rate);
		if (msgs)
			printf("latency:   p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us (send->ACK)\n",
			       percentile(msgs, 0.50), percentile(msgs, 0.99), percentile(msgs, 0.999),
			       (double)max_ns / 1000.0);
		printf("errors:    %" PRIu64 " (disconnects %" PRIu64 ", bad frames %" PRIu64
		       ", unknown ids %" PRIu64 ")\n", errors, disconnects, bad_frames, bad_ids);
		if (opt.pid && cpu0 >= 0 && cpu1 >= 0 && msgs)
			printf("agent CPU: %.2f s over %.2f s = %.0f%% of a core, %.2f us per message\n",
			       cpu1 - cpu0, secs, 100 * (cpu1 - cpu0) / secs, (cpu1 - cpu0) * 1e6 / (double)msgs);
		else if (opt.pid)
			printf("agent CPU: unavailable (pid %d)\n", opt.pid);
		printf("RESULT msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%" PRIu64
		       " agent_cpu_us_per_msg=%.3f\n", rate, msgs ? percentile(msgs, 0.5) : 0,
		       msgs ? percentile(msgs, 0.99) : 0, msgs ? percentile(msgs, 0.999) : 0, errors,
		       opt.pid && cpu0 >= 0 && cpu1 >= 0 && msgs ? (cpu1 - cpu0) * 1e6 / (double)msgs : -1.0);
		return errors ? 1 : 0;
	}
}
