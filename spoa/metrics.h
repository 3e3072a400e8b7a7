/* metrics.h: the Prometheus endpoint (agent.metrics): `GET /metrics` over HTTP/1.x in the
 * text format 0.0.4, served on the control thread's loop. Every counter of the declared-
 * once lists (policy/counters-t.h, spoa/stats-t.h) is exported by iterating their
 * descriptors, plus the engine's labelled state and the latency histograms (spoa/README.md,
 * "Metrics"). */
#ifndef METRICS_H
#define METRICS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "ctl.h"

struct daemon;

struct metrics {
	struct ctl_srv srv;
	struct daemon *d;
	bool opened, started;
	int fd;
	char addr[160];
	unsigned long long scrapes, not_found, bad_requests;
};

/* Boot: listens on "host:port" (TCP). Returns 0, or -1 with err filled. */
int metrics_open(struct metrics *m, struct daemon *d, const char *addr, char *err, size_t errlen);
void metrics_start(struct metrics *m, struct ev_loop *loop);
void metrics_stop(struct metrics *m);
void metrics_close(struct metrics *m);

/* The whole exposition into cli's output (also what `show metrics` could print). */
struct ctl_cli;
void metrics_render(struct daemon *d, struct ctl_cli *cli);

/* The request head in[0, len) (pure: also the fuzz target's entry): 0 while it is not
 * complete (no empty line yet, and neither full nor at eof), else the HTTP status to
 * answer: 200 for `GET /metrics` (a query string allowed), 404 another path, 405 another
 * method, 400 malformed (or cut by eof), 431 a head that fills `full` bytes. */
int metrics_parse_head(const char *in, size_t len, size_t full, bool eof);

#endif /* METRICS_H */
