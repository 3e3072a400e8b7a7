/* admin.h: the admin socket (agent.admin_socket): HAProxy runtime-API style commands on
 * a unix stream socket, served on the control thread's loop (spoa/README.md, "Admin
 * socket"). Never touches a worker: it reads the engine's control-thread accessors. */
#ifndef ADMIN_H
#define ADMIN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "ctl.h"

struct daemon;

struct admin {
	struct ctl_srv srv;
	struct daemon *d;
	bool opened, started;
	int fd;
};

/* Boot: opens the socket at path (0600; a stale file replaced, a live one refused).
 * Returns 0, or -1 with err filled. */
int admin_open(struct admin *a, struct daemon *d, const char *path, char *err, size_t errlen);
/* Serve on the control loop (no-op when not opened); stop closes every client and the
 * socket; close releases what open took when never started. All accept a closed admin. */
void admin_start(struct admin *a, struct ev_loop *loop);
void admin_stop(struct admin *a);
void admin_close(struct admin *a);

#endif /* ADMIN_H */
