/* ctl.h: small non-blocking text servers on the control thread's loop (the admin socket,
 * the metrics endpoint): bounded input, bounded output, idle and line deadlines, a cap
 * on clients. A slow or hostile client costs its own buffers and nothing else: it can
 * neither block the loop nor keep a well-behaved client out for long. */
#ifndef CTL_H
#define CTL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ctl_srv;

struct ctl_cli {
	struct ctl_srv *srv;
	ev_io io;
	int fd;
	char *in, *out;            /* in_max and out_max bytes (struct ctl_conf) */
	size_t in_len, out_len, out_off;
	bool eof;                  /* the peer has shut its side: answer, flush, close */
	bool closing;              /* close once the output is flushed */
	bool truncated;            /* ctl_printf ran out of room since the last ctl_mark */
	ev_tstamp last;            /* loop time of the last byte in or out */
	ev_tstamp line_since;      /* loop time the pending partial input began, 0 if none */
	ev_tstamp born;
	bool cred;                 /* uid, pid known (SO_PEERCRED, unix sockets) */
	uid_t uid;
	pid_t pid;
	char peer[64];             /* "uid=…,pid=…" or "ip:port" for logs */
	struct ctl_cli *next, *prev;
};

struct ctl_conf {
	const char *name;          /* for logs: "admin", "metrics" */
	unsigned max_clients;      /* at the cap, the least recently active is closed */
	size_t in_max, out_max;
	double idle_s;             /* no byte in or out this long: closed */
	double line_s;             /* a partial request older than this: closed */
	/* Called with new input (or at EOF, cli->eof set): consume what is complete from
	 * cli->in (ctl_consume), append answers (ctl_printf). Stops early while the output
	 * holds more than out_max / 2; called again once it drained. */
	void (*on_input)(struct ctl_cli *cli);
	void *arg;
};

struct ctl_srv {
	struct ctl_conf conf;
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	ev_timer sweep;
	struct ctl_cli *clients;   /* most recently active first */
	unsigned nclients;
	uint64_t accepted, evicted, timed_out, overflows;
	bool unix_path;            /* fd is a unix socket at path: unlinked at close */
	char path[108];
};

/* Opens a unix stream socket at path, mode 0600. A socket file left by a dead instance is
 * replaced; one a live process still accepts on is not (error). -1 with err filled. */
int ctl_listen_unix(const char *path, char *err, size_t errlen);
/* Starts serving listening socket fd (taken over: closed by ctl_stop). Returns 0 or -1. */
int ctl_start(struct ctl_srv *s, struct ev_loop *loop, int fd, const struct ctl_conf *conf);
/* Closes every client and the listener (unlinks a unix path set in s->path). Accepts a
 * server never started. */
void ctl_stop(struct ctl_srv *s);

/* Appends to the client's output; what does not fit is cut and cli->truncated set.
 * Returns 0, or -1 when cut. */
int ctl_printf(struct ctl_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n bytes from the front of cli->in. */
void ctl_consume(struct ctl_cli *cli, size_t n);
/* Bytes of output waiting. */
size_t ctl_pending(const struct ctl_cli *cli);

#endif /* CTL_H */
