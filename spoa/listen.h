/* listen.h: listener addresses and sockets. Syscall-like: -1 on error with err filled. */
#ifndef LISTEN_H
#define LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[128]; /* as given, for logs */
};

/* "127.0.0.1:12345", "[::1]:12345", "localhost:12345", "unix:/run/payspoa.sock" */
int listen_parse(const char *s, struct listen_addr *a, char *err, size_t errlen);
/* A non-blocking, close-on-exec listening socket bound to a (a stale Unix socket file
 * is replaced, a live one refused: listen_unix_claim). */
int listen_open(const struct listen_addr *a, char *err, size_t errlen);
/* Before binding a Unix socket of `type` (SOCK_STREAM, SOCK_DGRAM) at path: nothing
 * there, or a socket nobody serves (connect refused: a crashed run's), which is removed,
 * gives 0; a socket that accepts a connection (another instance is serving it) or any
 * file that is not a socket gives -1 with err: never steal a running instance's socket. */
int listen_unix_claim(const char *path, int type, char *err, size_t errlen);

#endif /* LISTEN_H */
