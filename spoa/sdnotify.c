/* sdnotify.c: sd_notify(3) without libsystemd: one AF_UNIX datagram per state change to
 * $NOTIFY_SOCKET. Control thread only; never on the decision path. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "sdnotify.h"

int sdn_open(struct sdn *n, char *err, size_t errlen)
{
	const char *sock = getenv("NOTIFY_SOCKET"), *wd = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");
	size_t len;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (wd && *wd) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(wd, &end, 10);
		if (errno || *end || v == 0) {
			snprintf(err, errlen, "WATCHDOG_USEC '%s': expected a positive number of microseconds", wd);
			return -1;
		}
		/* systemd sets WATCHDOG_PID to the main pid; a value for another process (a
		 * parent that exec'd us through a wrapper) is not ours to honour */
		if (!wpid || !*wpid || strtol(wpid, NULL, 10) == (long)getpid())
			n->watchdog_us = v;
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (!sock || !*sock)
		return 0;
	len = strlen(sock);
	if ((sock[0] != '/' && sock[0] != '@') || len >= sizeof(n->path) || len < 2) {
		snprintf(err, errlen, "NOTIFY_SOCKET '%s': expected an absolute path or @abstract name under %zu bytes",
		         sock, sizeof(n->path));
		return -1;
	}
	memcpy(n->path, sock, len);
	if (n->path[0] == '@')
		n->path[0] = 0; /* Linux abstract namespace: the name is the bytes after the NUL */
	n->pathlen = (unsigned)len;
	unsetenv("NOTIFY_SOCKET");
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int sdn_send(struct sdn *n, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ssize_t r;

	if (n->fd < 0)
		return 0;
	memcpy(sa.sun_path, n->path, n->pathlen);
	r = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n->pathlen));
	if (r < 0) {
		n->failed++;
		return -1;
	}
	n->sent++;
	return 0;
}

int sdn_reloading(struct sdn *n)
{
	char msg[64];

	/* clock_mono_us is CLOCK_MONOTONIC, the clock systemd compares against */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)clock_mono_us());
	return sdn_send(n, msg);
}

void sdn_close(struct sdn *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
