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

int listen_open(const struct listen_addr *a, char *err, size_t errlen)
{
	int fd, one = 1;

	if (a->ss.ss_family == AF_UNIX) {
		const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;
		struct stat st;

		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
	}
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
