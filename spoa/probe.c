/* probe.c: active probes. Each backend with a probe_url is fetched every
 * probe_interval_s through the control thread's libcurl multi (httpc.c): TLS peer and
 * host always verified (OpenSSL, CA file optional); a transport error, a TLS failure, a
 * timeout or another status than probe_status is a failure. Every result goes to the
 * engine's breaker and anomaly chart (pol_engine_probe_result); failures and recoveries
 * are logged once per change with the reason. Never on a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "policy-t.h"
#include "probe.h"

struct probe {
	struct httpc_req req;        /* first: the transfer's callback finds the probe */
	ev_timer timer;
	struct probe_set *set;
	char backend[POL_NAME_MAX + 1];
	char url[POL_URL_MAX + 1];
	char ca_file[256];
	long status;                 /* expected */
	int failing;                 /* -1 unknown, 0 healthy, 1 failing (logged on change) */
};

struct probe_set {
	struct ev_loop *loop;
	struct httpc *h;
	struct pol_engine *e;
	struct probe_counts n;
	int nprobes;
	struct probe probes[];
};

static void probe_result(struct probe *pr, int ok, double ms, const char *why)
{
	struct probe_set *ps = pr->set;
	char lat[32];

	if (!ok)
		ps->n.failed++;
	pol_engine_probe_result(ps->e, pr->backend, ok, ms, clock_mono_us());
	if (pr->failing == !ok)
		return;
	snprintf(lat, sizeof(lat), "%.1f", ms);
	if (!ok)
		log_json(LOG_LVL_WARNING, "probe_failed", "backend", pr->backend, "url", pr->url, "reason", why,
		         "ms", lat, "effect", "counted as a PSP error by the breaker and the anomaly chart", NULL);
	else if (pr->failing == 1)
		log_json(LOG_LVL_INFO, "probe_recovered", "backend", pr->backend, "url", pr->url, "ms", lat, NULL);
	pr->failing = !ok;
}

static void probe_done(struct httpc_req *r, CURLcode res, long status, double secs, const char *err)
{
	struct probe *pr = (struct probe *)r;
	char why[CURL_ERROR_SIZE + 64];

	if (res != CURLE_OK) {
		snprintf(why, sizeof(why), "%s (curl error %d)", err, (int)res);
		probe_result(pr, 0, secs * 1000, why);
	} else if (status != pr->status) {
		snprintf(why, sizeof(why), "HTTP status %ld, expected %ld", status, pr->status);
		probe_result(pr, 0, secs * 1000, why);
	} else {
		probe_result(pr, 1, secs * 1000, "");
	}
}

/* Discards the body: a probe judges the status only. */
static size_t probe_discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static void probe_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct probe *pr = t->data;
	struct probe_set *ps = pr->set;

	/* a probe still running has its own timeout coming: no second one beside it */
	if (pr->req.active) {
		ps->n.skipped++;
		return;
	}
	if (httpc_start(ps->h, &pr->req) < 0) {
		probe_result(pr, 0, -1, "the HTTP client refused the transfer");
		return;
	}
	ps->n.sent++;
}

struct probe_set *probe_set_new(struct ev_loop *loop, struct httpc *h, struct pol_engine *e,
                                const struct policy *p, char *err, size_t errlen)
{
	struct probe_set *ps;
	int i, n = 0;

	for (i = 0; i < p->nbackends; i++)
		n += p->backends[i].probe_url[0] != 0;
	ps = calloc(1, sizeof(*ps) + (size_t)n * sizeof(ps->probes[0]));
	if (!ps)
		goto fail;
	ps->loop = loop;
	ps->h = h;
	ps->e = e;
	for (i = 0; i < p->nbackends; i++) {
		const struct pol_backend *b = &p->backends[i];
		struct probe *pr = &ps->probes[ps->nprobes];
		double timeout = b->probe_timeout_s;

		if (!b->probe_url[0])
			continue;
		pr->set = ps;
		pr->failing = -1;
		pr->status = b->probe_status;
		snprintf(pr->backend, sizeof(pr->backend), "%s", b->name);
		snprintf(pr->url, sizeof(pr->url), "%s", b->probe_url);
		snprintf(pr->ca_file, sizeof(pr->ca_file), "%s", b->probe_ca_file);
		if (httpc_req_init(&pr->req, probe_done, pr, timeout) < 0)
			goto fail;
		ps->nprobes++;
		curl_easy_setopt(pr->req.easy, CURLOPT_URL, pr->url);
		curl_easy_setopt(pr->req.easy, CURLOPT_WRITEFUNCTION, probe_discard);
		if (pr->ca_file[0])
			curl_easy_setopt(pr->req.easy, CURLOPT_CAINFO, pr->ca_file);
		/* a fresh connection each time: a probe checks that the backend accepts new
		 * ones (TLS handshake included), not that an old one still works */
		curl_easy_setopt(pr->req.easy, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(pr->req.easy, CURLOPT_FRESH_CONNECT, 1L);
		ev_timer_init(&pr->timer, probe_on_timer, 0., b->probe_interval_s);
		pr->timer.data = pr;
		ev_timer_start(loop, &pr->timer);
		log_json(LOG_LVL_INFO, "probe_started", "backend", pr->backend, "url", pr->url, NULL);
	}
	return ps;
fail:
	snprintf(err, errlen, "probes: out of memory");
	probe_set_free(ps);
	return NULL;
}

void probe_set_free(struct probe_set *ps)
{
	int i;

	if (!ps)
		return;
	for (i = 0; i < ps->nprobes; i++) {
		ev_timer_stop(ps->loop, &ps->probes[i].timer);
		httpc_cancel(ps->h, &ps->probes[i].req);
		httpc_req_free(&ps->probes[i].req);
	}
	free(ps);
}

void probe_set_counts(const struct probe_set *ps, struct probe_counts *c)
{
	if (!ps)
		return;
	c->sent += ps->n.sent;
	c->failed += ps->n.failed;
	c->skipped += ps->n.skipped;
}
