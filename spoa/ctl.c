/* ctl.c: the non-blocking text servers of the control thread (ctl.h). Runs on the
 * control thread's loop only; allocates per client at accept (never on a worker). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "listen.h"
#include "log.h"

#define CTL_ACCEPT_BURST 64

int ctl_listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	mode_t old;
	int fd = -1, rc;

	if (strlen(path) == 0 || strlen(path) >= sizeof(un.sun_path)) {
		snprintf(err, errlen, "%s: unix socket path empty or longer than %zu bytes", path,
		         sizeof(un.sun_path) - 1);
		return -1;
	}
	memcpy(un.sun_path, path, strlen(path) + 1);
	/* a live instance's socket is refused, a stale one removed (listen.c) */
	if (listen_unix_claim(path, SOCK_STREAM, err, errlen) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	old = umask(0177); /* created 0600: no window where others may connect */
	rc = bind(fd, (struct sockaddr *)&un, sizeof(un));
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

size_t ctl_pending(const struct ctl_cli *cli)
{
	return cli->out_len - cli->out_off;
}

int ctl_printf(struct ctl_cli *cli, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (cli->out_off && cli->out_off == cli->out_len)
		cli->out_off = cli->out_len = 0;
	if (cli->out_off > cli->srv->conf.out_max / 2) { /* compact: keep room at the end */
		memmove(cli->out, cli->out + cli->out_off, cli->out_len - cli->out_off);
		cli->out_len -= cli->out_off;
		cli->out_off = 0;
	}
	room = cli->srv->conf.out_max - cli->out_len;
	va_start(ap, fmt);
	n = vsnprintf(cli->out + cli->out_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= room) {
		cli->out_len += room ? room - 1 : 0; /* what fit, without vsnprintf's NUL */
		cli->truncated = true;
		return -1;
	}
	cli->out_len += (size_t)n;
	return 0;
}

void ctl_consume(struct ctl_cli *cli, size_t n)
{
	if (n > cli->in_len)
		n = cli->in_len;
	memmove(cli->in, cli->in + n, cli->in_len - n);
	cli->in_len -= n;
	cli->line_since = cli->in_len ? ev_now(cli->srv->loop) : 0;
}

static void ctl_cli_close(struct ctl_cli *cli)
{
	struct ctl_srv *s = cli->srv;

	ev_io_stop(s->loop, &cli->io);
	close(cli->fd);
	if (cli->prev)
		cli->prev->next = cli->next;
	else
		s->clients = cli->next;
	if (cli->next)
		cli->next->prev = cli->prev;
	s->nclients--;
	free(cli);
}

/* Most recently active first: the one evicted at the cap is the tail. */
static void ctl_cli_touch(struct ctl_cli *cli)
{
	struct ctl_srv *s = cli->srv;

	cli->last = ev_now(s->loop);
	if (!cli->prev)
		return;
	cli->prev->next = cli->next;
	if (cli->next)
		cli->next->prev = cli->prev;
	cli->prev = NULL;
	cli->next = s->clients;
	s->clients->prev = cli;
	s->clients = cli;
}

/* Returns -1 when the peer is gone. */
static int ctl_flush(struct ctl_cli *cli)
{
	while (cli->out_len > cli->out_off) {
		ssize_t n = send(cli->fd, cli->out + cli->out_off, cli->out_len - cli->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			cli->out_off += (size_t)n;
			ctl_cli_touch(cli);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	cli->out_off = cli->out_len = 0;
	return 0;
}

/* Answers what can be answered, writes, and asks libev for what the client can use now;
 * closes it when it is done or gone. */
static void ctl_cli_run(struct ctl_cli *cli)
{
	struct ctl_srv *s = cli->srv;
	size_t half = s->conf.out_max / 2;
	int ev = 0;

	for (;;) {
		size_t before = cli->in_len;
		bool was_eof = cli->eof;

		if (cli->closing || ctl_pending(cli) > half || (!cli->in_len && !cli->eof))
			break;
		s->conf.on_input(cli);
		if (ctl_flush(cli) < 0)
			goto gone;
		if (cli->in_len == before && ctl_pending(cli) <= half) {
			if (cli->in_len == s->conf.in_max) { /* full and nothing complete in it */
				s->overflows++;
				cli->closing = true;
			}
			if (was_eof)
				cli->closing = true; /* at EOF, everything was answered */
			break;
		}
	}
	if (ctl_flush(cli) < 0)
		goto gone;
	if ((cli->closing || (cli->eof && !cli->in_len)) && !ctl_pending(cli))
		goto gone;
	if (!cli->eof && !cli->closing && cli->in_len < s->conf.in_max && ctl_pending(cli) <= half)
		ev |= EV_READ;
	if (ctl_pending(cli))
		ev |= EV_WRITE;
	ev_io_stop(s->loop, &cli->io);
	if (ev) {
		ev_io_set(&cli->io, cli->fd, ev);
		ev_io_start(s->loop, &cli->io);
	}
	return;
gone:
	ctl_cli_close(cli);
}

static void ctl_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctl_cli *cli = (struct ctl_cli *)((char *)io - offsetof(struct ctl_cli, io));
	struct ctl_srv *s = cli->srv;

	if (revents & EV_READ) {
		while (!cli->eof && cli->in_len < s->conf.in_max) {
			ssize_t n = read(cli->fd, cli->in + cli->in_len, s->conf.in_max - cli->in_len);

			if (n > 0) {
				if (!cli->in_len)
					cli->line_since = ev_now(loop);
				cli->in_len += (size_t)n;
				ctl_cli_touch(cli);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0) {
				ctl_cli_close(cli);
				return;
			}
			cli->eof = true;
		}
	}
	ctl_cli_run(cli);
}

static void ctl_on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct ctl_srv *s = (struct ctl_srv *)((char *)io - offsetof(struct ctl_srv, accept_io));

	for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
		struct ctl_cli *cli;
		struct ucred uc;
		socklen_t ul = sizeof(uc);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of descriptors: the next readiness retries */
		}
		if (s->nclients >= s->conf.max_clients) {
			struct ctl_cli *old = s->clients;

			while (old->next)
				old = old->next;
			s->evicted++;
			ctl_cli_close(old); /* the least recently active makes room */
		}
		cli = calloc(1, sizeof(*cli) + s->conf.in_max + s->conf.out_max);
		if (!cli) {
			close(fd);
			continue;
		}
		cli->srv = s;
		cli->fd = fd;
		cli->in = (char *)(cli + 1);
		cli->out = cli->in + s->conf.in_max;
		cli->born = cli->last = ev_now(loop);
		if (ss.ss_family == AF_UNIX && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
			cli->cred = true;
			cli->uid = uc.uid;
			cli->pid = uc.pid;
			snprintf(cli->peer, sizeof(cli->peer), "uid=%u,pid=%d", (unsigned)uc.uid, (int)uc.pid);
		} else if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			char a[INET_ADDRSTRLEN];

			snprintf(cli->peer, sizeof(cli->peer), "%s:%u", inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a)),
			         ntohs(in->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			char a[INET6_ADDRSTRLEN];

			snprintf(cli->peer, sizeof(cli->peer), "[%s]:%u",
			         inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a)), ntohs(in6->sin6_port));
		}
		cli->next = s->clients;
		if (s->clients)
			s->clients->prev = cli;
		s->clients = cli;
		s->nclients++;
		s->accepted++;
		ev_io_init(&cli->io, ctl_on_io, fd, EV_READ);
		ev_io_start(loop, &cli->io);
	}
}

/* Once a second: the idle, and the partial requests that take too long (a client
 * sending a byte at a time keeps its connection only for line_s). */
static void ctl_on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ctl_srv *s = (struct ctl_srv *)((char *)t - offsetof(struct ctl_srv, sweep));
	ev_tstamp now = ev_now(loop);
	struct ctl_cli *cli, *next;

	for (cli = s->clients; cli; cli = next) {
		next = cli->next;
		if (now - cli->last > s->conf.idle_s ||
		    (cli->line_since > 0 && now - cli->line_since > s->conf.line_s)) {
			s->timed_out++;
			ctl_cli_close(cli);
		}
	}
}

int ctl_start(struct ctl_srv *s, struct ev_loop *loop, int fd, const struct ctl_conf *conf)
{
	s->conf = *conf;
	s->loop = loop;
	s->fd = fd;
	ev_io_init(&s->accept_io, ctl_on_accept, fd, EV_READ);
	ev_io_start(loop, &s->accept_io);
	ev_timer_init(&s->sweep, ctl_on_sweep, 1.0, 1.0);
	ev_timer_start(loop, &s->sweep);
	return 0;
}

void ctl_stop(struct ctl_srv *s)
{
	if (!s->loop)
		return;
	while (s->clients)
		ctl_cli_close(s->clients);
	ev_io_stop(s->loop, &s->accept_io);
	ev_timer_stop(s->loop, &s->sweep);
	close(s->fd);
	s->fd = -1;
	if (s->unix_path && s->path[0])
		unlink(s->path);
	s->loop = NULL;
}
