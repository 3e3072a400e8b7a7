/* ops.c: systemd's notify protocol and watchdog, the privilege drop, probes and webhooks
 * wired into the control thread (daemon.c calls one function per event). Nothing here
 * runs on a worker. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "privs.h"

static void ops_on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;

	/* from the control loop itself: a loop stuck anywhere stops the pings, and systemd
	 * restarts the daemon */
	sdn_send(&d->sdn, "WATCHDOG=1");
}

int ops_open(struct daemon *d, const struct policy *p, char *err, size_t errlen)
{
	if (sdn_open(&d->sdn, err, errlen) < 0)
		return -1;
	if (httpc_global_init() < 0) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	d->httpc = httpc_new(d->loop, err, errlen);
	if (!d->httpc)
		return -1;
	d->probes = probe_set_new(d->loop, d->httpc, d->engine, p, err, errlen);
	if (!d->probes)
		return -1;
	d->webhook = webhook_new(d->loop, d->httpc, p, err, errlen);
	if (!d->webhook)
		return -1;
	if (priv_drop(d->agent.user, d->agent.group, err, errlen) < 0)
		return -1;
	if (d->agent.user)
		log_json(LOG_LVL_INFO, "privileges_dropped", "user", d->agent.user, "group",
		         d->agent.group ? d->agent.group : d->agent.user, NULL);
	return 0;
}

void ops_ready(struct daemon *d)
{
	char ms[24];

	sdn_send(&d->sdn, "READY=1");
	if (!d->sdn.watchdog_us)
		return;
	ev_timer_init(&d->watchdog, ops_on_watchdog, 0., (double)d->sdn.watchdog_us / 2e6);
	d->watchdog.data = d;
	ev_timer_again(d->loop, &d->watchdog);
	sdn_send(&d->sdn, "WATCHDOG=1");
	snprintf(ms, sizeof(ms), "%.0f", (double)d->sdn.watchdog_us / 2e3);
	log_json(LOG_LVL_INFO, "watchdog", "ping_every_ms", ms, NULL);
}

void ops_reloading(struct daemon *d)
{
	sdn_reloading(&d->sdn);
}

void ops_reloaded(struct daemon *d, const struct policy *p)
{
	char err[512];

	if (p) {
		struct probe_set *ps = probe_set_new(d->loop, d->httpc, d->engine, p, err, sizeof(err));

		if (!ps) {
			log_json(LOG_LVL_ERROR, "probes_not_reloaded", "error", err, "keeping", "the previous probes", NULL);
		} else {
			probe_set_counts(d->probes, &d->probe_old);
			probe_set_free(d->probes);
			d->probes = ps;
		}
		if (webhook_reconfigure(d->webhook, p, err, sizeof(err)) < 0)
			log_json(LOG_LVL_ERROR, "webhooks_not_reloaded", "error", err, "keeping", "the previous settings", NULL);
		webhook_rebase(d->webhook);
	}
	sdn_send(&d->sdn, "READY=1");
}

void ops_tick(struct daemon *d, uint64_t now_us)
{
	webhook_watch(d->webhook, d->engine, now_us);
}

void ops_stopping(struct daemon *d)
{
	sdn_send(&d->sdn, "STOPPING=1");
}

void ops_totals(const struct daemon *d, struct spoa_totals *t)
{
	struct probe_counts pc = d->probe_old;
	struct webhook_counts wc = { 0 };

	probe_set_counts(d->probes, &pc);
	webhook_get_counts(d->webhook, &wc);
	t->probes_sent = pc.sent;
	t->probes_failed = pc.failed;
	t->probes_skipped = pc.skipped;
	t->webhook_events = wc.events;
	t->webhooks_sent = wc.sent;
	t->webhooks_retried = wc.retried;
	t->webhooks_failed = wc.failed;
	t->webhooks_dropped = wc.dropped;
}

void ops_close(struct daemon *d)
{
	if (d->loop)
		ev_timer_stop(d->loop, &d->watchdog);
	probe_set_free(d->probes);
	d->probes = NULL;
	webhook_free(d->webhook);
	d->webhook = NULL;
	httpc_free(d->httpc);
	d->httpc = NULL;
	if (d->sdn.pathlen) /* opened by ops_open (a zeroed struct sdn has fd 0, not -1) */
		sdn_close(&d->sdn);
}
