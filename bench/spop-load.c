/* spop-load.c: SPOP load generator playing HAProxy's side: C connections, D NOTIFYs in
 * flight on each, each NOTIFY one realistic pay-request (DESIGN.md §3). Prints
 * messages/s, send→ACK latency percentiles, errors and, with -p, the agent's CPU time
 * per message. A program that prints figures, not a test: it asserts nothing.
 *
 * For budget benchmarks (bench/run-fleet-budget): -r paces the NOTIFYs to a rate, -b
 * hints a share of the requests as background, -u gives every message an idempotency key
 * of its own (a key seen before would follow its pin, not the budget), and -A writes the
 * verdicts per 10 ms wall-clock slot (so that the files of several spop-loads add up):
 * lines "slot verdict class backend count reason" (reason "-" for allow, spaces as +).
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
#include <time.h>
#include <unistd.h>

#include "spop-client.h"

#define POOL        4096            /* distinct pay-requests, cycled */
#define IN_SIZE     (256 * 1024)
#define HIST_NS     100             /* histogram resolution */
#define HIST_MAX_NS 100000000ull    /* 100 ms; above that, one overflow bucket */
#define HIST_N      (HIST_MAX_NS / HIST_NS + 1)

struct req_tpl {
	uint16_t len;
	uint16_t idem_off;        /* the idempotency key's offset in bytes (for -u) */
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
	double rate;              /* -r: NOTIFYs per second, 0 = as fast as the agent answers */
	unsigned bg_pct;          /* -b: percent of the requests hinted background */
	bool unique;              /* -u: a fresh idempotency key per message */
	const char *admit_file;   /* -A: verdicts per 10 ms slot */
} opt = { "127.0.0.1:12345", 4, 64, 10, 1, 0, 0, 16380, false, 0, 0, false, NULL };

static struct req_tpl pool[POOL];
static unsigned pool_next;
static uint64_t hist[HIST_N];
static uint64_t acked, errors, bad_frames, bad_ids, disconnects, max_ns;
static bool measuring, stopping;
static uint64_t sent_total, pace_base, t_start; /* -r */
static uint64_t key_salt, key_seq;             /* -u */

/* -A: verdict counts per 10 ms slot of CLOCK_REALTIME and (verdict, class, backend) */
#define ADM_KINDS 64
#define ADM_SLOT_NS 10000000ull
static struct { char verdict[8], cls[16], backend[32], reason[48]; } adm_kind[ADM_KINDS];
static unsigned adm_nkinds;
static uint32_t *adm;         /* [slot][ADM_KINDS] */
static uint64_t adm_slot0, adm_nslots, adm_rt_off, adm_lost;
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
	"                 [-p AGENT_PID] [-m MAX_FRAME] [-V] [-r RATE] [-b PCT] [-u] [-A FILE]\n"
	"  -a ADDR   agent address, host:port or unix:/path (default 127.0.0.1:12345)\n"
	"  -c N      connections (default 4)\n"
	"  -d N      NOTIFYs in flight per connection (default 64)\n"
	"  -t S      measured duration in seconds (default 10)\n"
	"  -n N      stop after N measured messages instead\n"
	"  -w S      warm-up seconds before measuring (default 1)\n"
	"  -p PID    agent process: report its CPU time (utime+stime) per message\n"
	"  -m N      max-frame-size announced in HELLO (default 16380)\n"
	"  -V        validate every ACK fully (decode all actions, require a verdict)\n"
	"  -r RATE   send at most RATE NOTIFYs per second in all (default: as fast as answered)\n"
	"  -b PCT    hint PCT %% of the requests as class background (default 0: checkout)\n"
	"  -u        a fresh idempotency key per message (default: the pool's 4,096 keys)\n"
	"  -A FILE   write the verdicts per 10 ms wall-clock slot, from the start to the end:\n"
	"            lines \"slot verdict class backend count reason\" (slot = Unix time / 10 ms)\n");
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

		const uint8_t *k;

		sc_payreq_sample(&r, i, id, idem);
		if (i * 37 % 100 < opt.bg_pct) /* spread: any 100 running requests hold bg_pct */
			r.class_hint = "background";
		sc_put_pay_request(&w, &r);
		if (w.overflow) {
			fprintf(stderr, "spop-load: request template too large\n");
			exit(1);
		}
		pool[i].len = (uint16_t)(w.p - pool[i].bytes);
		k = memmem(pool[i].bytes, pool[i].len, idem, 64);
		pool[i].idem_off = k ? (uint16_t)(k - pool[i].bytes) : 0;
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
		if (opt.unique && r->idem_off) { /* the key's first 16 hex digits: salt ^ sequence */
			static const char hex[] = "0123456789abcdef";
			uint64_t k = key_salt ^ key_seq++;

			for (int i = 15; i >= 0; i--, k >>= 4)
				w.p[r->idem_off + i] = (uint8_t)hex[k & 15];
		}
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
	sent_total++;
}

/* -r: may one more NOTIFY leave at t? A backlog (the agent slower than the rate) is
 * forgotten rather than sent in one burst. */
static bool pace_ok(uint64_t t)
{
	uint64_t due;

	if (opt.rate <= 0)
		return true;
	due = (uint64_t)((double)(t - t_start) * opt.rate / 1e9);
	if (due > pace_base + sent_total + (uint64_t)opt.conns * opt.depth)
		pace_base = due - sent_total - (uint64_t)opt.conns * opt.depth;
	return pace_base + sent_total < due;
}

static void fill(struct lconn *c, uint64_t t)
{
	while (!stopping && c->ready && !c->dead && c->nfree && pace_ok(t))
		queue_notify(c, c->free_slots[--c->nfree], t);
}

/* -A: count one ACK's verdict in its wall-clock slot. */
static void adm_record(const uint8_t *p, size_t len, uint64_t t)
{
	struct sc_ack a;
	const char *v, *cls, *be, *why;
	char reason[48];
	uint64_t slot = (t + adm_rt_off) / ADM_SLOT_NS;
	unsigned k;

	if (sc_ack_decode(p, len, &a) < 0 || !(v = sc_ack_str(&a, "verdict")))
		return;
	cls = sc_ack_str(&a, "class");
	be = sc_ack_str(&a, "backend");
	cls = cls && *cls ? cls : "-";
	be = be && *be ? be : "-";
	why = strcmp(v, "allow") ? sc_ack_str(&a, "reason") : NULL;
	snprintf(reason, sizeof(reason), "%s", why && *why ? why : "-");
	for (char *q = reason; *q; q++)
		if (*q == ' ')
			*q = '+';
	for (k = 0; k < adm_nkinds; k++)
		if (!strcmp(adm_kind[k].verdict, v) && !strcmp(adm_kind[k].cls, cls) && !strcmp(adm_kind[k].backend, be) &&
		    !strcmp(adm_kind[k].reason, reason))
			break;
	if (k == adm_nkinds) {
		if (k == ADM_KINDS) {
			adm_lost++;
			return;
		}
		snprintf(adm_kind[k].verdict, sizeof(adm_kind[k].verdict), "%s", v);
		snprintf(adm_kind[k].cls, sizeof(adm_kind[k].cls), "%s", cls);
		snprintf(adm_kind[k].backend, sizeof(adm_kind[k].backend), "%s", be);
		snprintf(adm_kind[k].reason, sizeof(adm_kind[k].reason), "%s", reason);
		adm_nkinds++;
	}
	if (slot < adm_slot0 || slot - adm_slot0 >= adm_nslots) {
		adm_lost++;
		return;
	}
	adm[(slot - adm_slot0) * ADM_KINDS + k]++;
}

static int adm_write(void)
{
	FILE *f = fopen(opt.admit_file, "w");

	if (!f)
		return -1;
	for (uint64_t s = 0; s < adm_nslots; s++)
		for (unsigned k = 0; k < adm_nkinds; k++)
			if (adm[s * ADM_KINDS + k])
				fprintf(f, "%" PRIu64 " %s %s %s %u %s\n", adm_slot0 + s, adm_kind[k].verdict, adm_kind[k].cls,
				        adm_kind[k].backend, adm[s * ADM_KINDS + k], adm_kind[k].reason);
	return fclose(f);
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
	if (adm)
		adm_record(f->payload, f->len, t);
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

	while ((o = getopt(argc, argv, "a:c:d:t:n:w:p:m:Vr:b:uA:h")) != -1) {
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
		case 'r': opt.rate = atof(optarg); break;
		case 'b': opt.bg_pct = (unsigned)atoi(optarg); break;
		case 'u': opt.unique = true; break;
		case 'A': opt.admit_file = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || opt.conns == 0 || opt.depth == 0 || opt.max_frame < 256 || opt.bg_pct > 100 ||
	    opt.rate < 0)
		usage();
	key_salt = ((uint64_t)getpid() << 40) ^ now_ns();
	if (opt.unique) /* several spop-loads started together do not send the same mix at once */
		pool_next = (unsigned)(key_salt % POOL);
	if (opt.admit_file) {
		struct timespec rt;
		uint64_t mono = now_ns();

		clock_gettime(CLOCK_REALTIME, &rt);
		adm_rt_off = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec - mono;
		adm_slot0 = (mono + adm_rt_off) / ADM_SLOT_NS;
		/* warm-up, the measure (-n: up to an hour), the 2 s drain and a margin */
		adm_nslots = (uint64_t)((opt.warmup + (opt.count ? 3600 : opt.seconds) + 4) * 1e9 / ADM_SLOT_NS);
		if (!(adm = calloc(adm_nslots * ADM_KINDS, sizeof(*adm))))
			return 1;
	}
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

	t0 = t_start = now_ns();
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, opt.rate > 0 ? 1 : 100);
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
		for (unsigned i = 0; opt.rate > 0 && i < opt.conns; i++) { /* paced: send what is due */
			struct lconn *c = &cs[i];

			if (c->dead || !c->nfree)
				continue;
			fill(c, t);
			if (on_write(c) < 0)
				continue;
			set_events(ep, c, &want_out[i]);
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
		if (opt.admit_file && adm_write() < 0)
			fprintf(stderr, "spop-load: cannot write %s\n", opt.admit_file);
		if (adm_lost)
			fprintf(stderr, "spop-load: %" PRIu64 " verdicts not recorded (out of slots or kinds)\n", adm_lost);
		printf("RESULT msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%" PRIu64
		       " agent_cpu_us_per_msg=%.3f\n", rate, msgs ? percentile(msgs, 0.5) : 0,
		       msgs ? percentile(msgs, 0.99) : 0, msgs ? percentile(msgs, 0.999) : 0, errors,
		       opt.pid && cpu0 >= 0 && cpu1 >= 0 && msgs ? (cpu1 - cpu0) * 1e6 / (double)msgs : -1.0);
		return errors ? 1 : 0;
	}
}
