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

/* ---- the command parser (pure: also the fuzz target's entry, tests/fuzz/fuzz-admin.c) ---- */

#define ADMIN_LINE_MAX 4096  /* bytes of input a command may take, its separator included */
#define ADMIN_MAX_WORDS 8

/* The next command of in[0, len): commands end at '\n' or ';' (a '\r' before the '\n'
 * is dropped); at eof the rest is one more. Copies it, NUL-terminated, into line (at
 * least ADMIN_LINE_MAX bytes) and sets *used to the bytes it takes. Returns 1 (a command,
 * maybe empty), 0 (incomplete: wait for more), ADMIN_ERR_LONG (no end within
 * ADMIN_LINE_MAX - 1 bytes), ADMIN_ERR_NUL (a NUL byte in it: *used skips it). */
enum { ADMIN_ERR_LONG = -1, ADMIN_ERR_NUL = -2 };
int admin_next_command(const char *in, size_t len, bool eof, char *line, size_t *used);
/* Splits line in place on blanks into at most max words. Returns the count, or -1 when
 * there are more. */
int admin_split(char *line, char **w, int max);

#endif /* ADMIN_H */
