/* ops.h: the daemon's operations hooks: systemd notifications and watchdog, privilege
 * drop, active probes and webhooks, each called from one line of daemon.c. Control
 * thread only. */
#ifndef OPS_H
#define OPS_H

#include "daemon.h"
#include "stats-t.h"

/* daemon_new, once everything is bound and loaded (p: the policy in force): the notify
 * socket, the HTTP client, probes and webhooks (whose secret is read now), then the
 * privilege drop. 0, or -1 with err filled (the daemon must not start). */
int ops_open(struct daemon *d, const struct policy *p, char *err, size_t errlen);
/* daemon_run, once listening: READY=1 and the watchdog timer. */
void ops_ready(struct daemon *d);
/* SIGHUP: RELOADING=1 before the reload; after it READY=1, and with p (the new policy,
 * NULL when the reload failed) probes and webhooks follow the new settings. */
void ops_reloading(struct daemon *d);
void ops_reloaded(struct daemon *d, const struct policy *p);
void ops_tick(struct daemon *d, uint64_t now_us);
void ops_stopping(struct daemon *d);
/* The probes' and webhooks' counters into the daemon totals. */
void ops_totals(const struct daemon *d, struct spoa_totals *t);
void ops_close(struct daemon *d);

#endif /* OPS_H */
