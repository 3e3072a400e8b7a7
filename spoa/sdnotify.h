/* sdnotify.h: systemd's notify protocol (sd_notify(3)) spoken directly: READY, RELOADING,
 * STOPPING and watchdog pings as datagrams to $NOTIFY_SOCKET. Control thread only. */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

struct sdn {
	int fd;                      /* -1: not under systemd (no NOTIFY_SOCKET): every call is a no-op */
	uint64_t watchdog_us;        /* WATCHDOG_USEC meant for this process, 0 = none */
	char path[108];              /* sun_path; an abstract address starts with '\0' */
	unsigned pathlen;            /* bytes of path that count (abstract names have no NUL) */
	uint64_t sent, failed;       /* datagrams */
};

/* Reads NOTIFY_SOCKET (an absolute path, or "@name" for an abstract socket), WATCHDOG_USEC
 * and WATCHDOG_PID (the watchdog is ours only if it names our pid or is absent), then
 * unsets them so that no child inherits them. Returns 0 (also when not under systemd),
 * or -1 with err filled for a malformed NOTIFY_SOCKET or WATCHDOG_USEC. */
int sdn_open(struct sdn *n, char *err, size_t errlen);
/* Sends one state string ("READY=1", "STOPPING=1", ...); a no-op without a socket.
 * Returns 0, or -1 (counted in failed; systemd may simply not listen). Never blocks. */
int sdn_send(struct sdn *n, const char *state);
/* "RELOADING=1\nMONOTONIC_USEC=<now>": systemd 253+ (Type=notify-reload) requires the
 * timestamp, older ones ignore it. */
int sdn_reloading(struct sdn *n);
void sdn_close(struct sdn *n);

#endif /* SDNOTIFY_H */
