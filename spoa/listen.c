/* listen.c: parse listener addresses and open listening sockets. Boot-time only. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"

int listen_parse(const char *s, struct listen_addr *a, char *err, size_t errlen)
{
	char host[128];
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
		size_t n = strlen(s + 5);

		if (n == 0 || n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "%s: unix socket path empty or longer than %zu bytes",
			         s, sizeof(un->sun_path) - 1);
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s + 5, n + 1);
		a->len = (socklen_t)sizeof(*un);
		return 0;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
		port = colon + 1;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", s, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "%s: expected host:port, [ipv6]:port or unix:/path", s);
	return -1;
}

int listen_unix_claim(const char *path, int type, char *err, size_t errlen)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) < 0)
		return 0; /* nothing there: bind says what else is wrong */
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: exists and is not a socket (left as it is)", path);
		return -1;
	}
	if (strlen(path) >= sizeof(un.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	memcpy(un.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&un, sizeof(un));
	e = errno;
	close(fd);
	/* a full backlog (EAGAIN) is a live listener too */
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "%s: another process is serving this socket (a running payspoa?); refusing to take it over",
		         path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "%s: cannot tell whether it is in use: %s", path, strerror(e));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: stale socket: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int listen_open(const struct listen_addr *a, char *err, size_t errlen)
{
	int fd, one = 1;

	if (a->ss.ss_family == AF_UNIX &&
	    listen_unix_claim(((const struct sockaddr_un *)&a->ss)->sun_path, SOCK_STREAM, err, errlen) < 0)
		return -1;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (a->ss.ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 1024) < 0)
		goto fail;
	/* Whoever can connect can feed outcomes (open breakers, cut budgets): only the owner
	 * and its group (HAProxy's, e.g. with systemd's Group=) may. */
	if (a->ss.ss_family == AF_UNIX &&
	    chmod(((const struct sockaddr_un *)&a->ss)->sun_path, 0660) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", a->text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}
