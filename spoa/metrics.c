/* metrics.c: the Prometheus endpoint (metrics.h). Control thread only. What it exports
 * is generated from the declared-once counter lists (pol_stats_desc, stats_desc): a
 * counter added to a list appears here with no change. Names: payspoa_<engine figure>,
 * payspoa_spoa_<daemon counter>, counters end in _total, times in seconds, and labels
 * come only from the policy (backend, account, class, endpoint names) or fixed words:
 * never a key, an id or an amount. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "daemon.h"
#include "fleet.h"
#include "hist.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "stats.h"
#include "worker.h"

#define MET_MAX_CLIENTS 8
#define MET_IN_MAX      8192               /* a request's head */
#define MET_OUT_MAX     (4 * 1024 * 1024)  /* the exposition (a few hundred KB at most) */
#define MET_IDLE_S      10.0
#define MET_LINE_S      5.0

const uint64_t hist_bounds_us[HIST_NB] = HIST_BOUNDS_US;

/* A label value as the text format wants it: \\, \" and \n escaped. */
static const char *esc(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; s && *s && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
	return buf;
}

static void head(struct ctl_cli *cli, const char *name, const char *type, const char *help)
{
	ctl_printf(cli, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* payspoa_<prefix><name>, with _total for a counter (unless the name has it). */
static void metric_name(char *buf, size_t len, const char *prefix, const char *name, const char *type)
{
	size_t n = strlen(name);
	bool total = !strcmp(type, "counter") && !(n >= 6 && !strcmp(name + n - 6, "_total"));

	snprintf(buf, len, "payspoa_%s%s%s", prefix, name, total ? "_total" : "");
}

static void render_engine_counters(struct daemon *d, struct ctl_cli *cli, uint64_t now_us)
{
	struct pol_stats st;
	char name[128];

	pol_engine_stats(d->engine, now_us, &st);
	for (size_t i = 0; i < pol_stats_ndesc; i++) {
		const struct pol_stats_desc *ds = &pol_stats_desc[i];
		const uint64_t *v = (const uint64_t *)((const char *)&st + ds->off);

		metric_name(name, sizeof(name), "", ds->name, ds->type);
		head(cli, name, ds->type, ds->help);
		if (!ds->label) {
			ctl_printf(cli, "%s %llu\n", name, (unsigned long long)v[0]);
			continue;
		}
		const char *w = ds->values;

		for (unsigned k = 0; k < ds->n; k++) {
			size_t l;

			w += strspn(w, " ");
			l = strcspn(w, " ");
			ctl_printf(cli, "%s{%s=\"%.*s\"} %llu\n", name, ds->label, (int)l, w, (unsigned long long)v[k]);
			w += l;
		}
	}
}

static void render_daemon_counters(struct daemon *d, struct ctl_cli *cli)
{
	struct spoa_totals t;
	char name[128];

	daemon_totals(d, &t);
	for (size_t i = 0; i < stats_ndesc; i++) {
		const struct stats_desc *ds = &stats_desc[i];

		metric_name(name, sizeof(name), "spoa_", ds->name, ds->type);
		head(cli, name, ds->type, ds->help);
		ctl_printf(cli, "%s %llu\n", name, (unsigned long long)*(const uint64_t *)((const char *)&t + ds->off));
	}
}

/* The fleet's counters (FLEET_STATS), payspoa_fleet_<name>, only when a fleet is set up;
 * a time in µs (<name>_us) is shown in seconds (<name>_seconds). The fleet lives on this
 * (the control) thread: read in place. */
static void render_fleet(struct daemon *d, struct ctl_cli *cli)
{
	struct fleet_stats st;
	char base[96], name[128];

	if (!d->fleet_on)
		return;
	fleet_stats(&d->fleet, &st);
	for (size_t i = 0; i < fleet_stats_ndesc; i++) {
		const struct fleet_stats_desc *ds = &fleet_stats_desc[i];
		uint64_t v = *(const uint64_t *)((const char *)&st + ds->off);
		size_t n = strlen(ds->name);
		bool us = n > 3 && !strcmp(ds->name + n - 3, "_us");

		snprintf(base, sizeof(base), "%.*s%s", (int)(us ? n - 3 : n), ds->name, us ? "_seconds" : "");
		metric_name(name, sizeof(name), "fleet_", base, ds->type);
		head(cli, name, ds->type, ds->help);
		if (us)
			ctl_printf(cli, "%s %.6f\n", name, (double)v / 1e6);
		else
			ctl_printf(cli, "%s %llu\n", name, (unsigned long long)v);
	}
}

static void render_hist(struct ctl_cli *cli, const char *name, const char *labels, const struct hist_sum *h)
{
	uint64_t cum = 0;
	const char *sep = labels[0] ? "," : "";

	for (unsigned i = 0; i < HIST_NB; i++) {
		cum += h->b[i];
		ctl_printf(cli, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, (double)hist_bounds_us[i] / 1e6,
		           (unsigned long long)cum);
	}
	cum += h->b[HIST_NB];
	ctl_printf(cli, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
	ctl_printf(cli, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	           (double)h->sum_us / 1e6);
	ctl_printf(cli, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	           (unsigned long long)cum);
}

static void render_hists(struct daemon *d, struct ctl_cli *cli)
{
	struct hist_sum dl = { { 0 }, 0 }, up = { { 0 }, 0 }, lg = { { 0 }, 0 };

	for (unsigned k = 0; k < d->nworkers; k++) {
		hist_sum_add(&dl, &d->workers[k].decide_lat);
		hist_sum_add(&up, &d->workers[k].upstream);
	}
	hist_sum_add(&lg, &d->outlog.upstream);
	head(cli, "payspoa_decision_latency_seconds", "histogram",
	     "time from a read's first byte to its answers handed to send, once per decision of that read");
	render_hist(cli, "payspoa_decision_latency_seconds", "", &dl);
	head(cli, "payspoa_upstream_latency_seconds", "histogram",
	     "upstream latency the outcomes report, by channel (with both channels, an answer is in both)");
	render_hist(cli, "payspoa_upstream_latency_seconds", "channel=\"spoe\"", &up);
	render_hist(cli, "payspoa_upstream_latency_seconds", "channel=\"log\"", &lg);
}

static void render_backends(struct daemon *d, struct ctl_cli *cli, uint64_t now_us)
{
	static const char *const brk[] = { "closed", "degraded", "half-open", "open" };
	static const char *const adm[] = { "enabled", "disabled", "drain" };
	static const char *const verdict[] = { "allow", "queue", "reject" };
	struct pol_engine *e = d->engine;
	struct pol_backend_info b;
	struct pol_learn_info l;
	struct pol_route_info r;
	char n1[192], n2[192];
	unsigned i, k;

	head(cli, "payspoa_decisions_by_route_total", "counter",
	     "decisions by backend, class and verdict (from 0 again after a reload)");
	for (i = 0; pol_engine_route_info(e, i, &r) == 0; i++)
		ctl_printf(cli, "payspoa_decisions_by_route_total{backend=\"%s\",class=\"%s\",verdict=\"%s\"} %llu\n",
		           esc(r.backend, n1, sizeof(n1)), esc(r.class_name, n2, sizeof(n2)), verdict[r.verdict % 3],
		           (unsigned long long)r.count);
	head(cli, "payspoa_breaker_state", "gauge", "breaker state of each backend (1 for the state it is in)");
	for (i = 0; pol_engine_learn_info(e, i, now_us, &l) == 0; i++)
		for (k = 0; k < 4; k++)
			ctl_printf(cli, "payspoa_breaker_state{backend=\"%s\",state=\"%s\"} %d\n", esc(l.name, n1, sizeof(n1)),
			           brk[k], !strcmp(l.breaker, brk[k]));
	head(cli, "payspoa_breaker_trips", "gauge", "times each breaker opened since it last forgot");
	for (i = 0; pol_engine_learn_info(e, i, now_us, &l) == 0; i++)
		ctl_printf(cli, "payspoa_breaker_trips{backend=\"%s\"} %u\n", esc(l.name, n1, sizeof(n1)), l.trips);
	head(cli, "payspoa_anomaly_degraded", "gauge", "1 while the backend is out of its learned normal");
	for (i = 0; pol_engine_learn_info(e, i, now_us, &l) == 0; i++)
		ctl_printf(cli, "payspoa_anomaly_degraded{backend=\"%s\"} %d\n", esc(l.name, n1, sizeof(n1)),
		           !strcmp(l.anomaly, "degraded"));
	head(cli, "payspoa_backend_admin_state", "gauge", "the admin's state of each backend (1 for the one in force)");
	for (i = 0; pol_engine_backend_info(e, i, now_us, &b) == 0; i++) {
		int cur = b.admin_disabled ? 1 : b.admin_drained ? 2 : 0;

		for (k = 0; k < 3; k++)
			ctl_printf(cli, "payspoa_backend_admin_state{backend=\"%s\",state=\"%s\"} %d\n",
			           esc(b.name, n1, sizeof(n1)), adm[k], cur == (int)k);
	}
	head(cli, "payspoa_backend_p_auth", "gauge", "P(auth) scoring uses for the backend (unknown card region)");
	for (i = 0; pol_engine_backend_info(e, i, now_us, &b) == 0; i++)
		ctl_printf(cli, "payspoa_backend_p_auth{backend=\"%s\"} %.6f\n", esc(b.name, n1, sizeof(n1)), b.p_auth);
	head(cli, "payspoa_backend_latency_seconds", "gauge", "latency scoring uses for the backend");
	for (i = 0; pol_engine_backend_info(e, i, now_us, &b) == 0; i++)
		ctl_printf(cli, "payspoa_backend_latency_seconds{backend=\"%s\"} %.6f\n", esc(b.name, n1, sizeof(n1)),
		           b.latency_ms / 1000);
}

static void render_budgets(struct daemon *d, struct ctl_cli *cli, uint64_t now_us)
{
	struct pol_engine *e = d->engine;
	struct pol_budget_info b;
	struct pol_forecast_info f;
	char n1[192], n2[192];
	unsigned i;
	static const struct { const char *name, *help; } fc[] = {
		{ "payspoa_forecast_observed_rate", "requests per second offered now (the open second's pace)" },
		{ "payspoa_forecast_next_rate", "requests per second forecast (Holt, the worse of 1 s and the horizon)" },
		{ "payspoa_forecast_day_rate", "requests per second forecast for the next minute (Holt-Winters, 0 until a day is learned)" },
		{ "payspoa_forecast_budget_rate", "the account's budget now, requests per second (adaptive)" },
		{ "payspoa_forecast_shedding", "1 while some of the class is shed on the account" },
	};

	head(cli, "payspoa_budget_rate", "gauge", "budget rate in requests per second (adaptive: cut after 429s)");
	for (i = 0; pol_engine_budget_info(e, i, now_us, &b) == 0; i++)
		ctl_printf(cli, "payspoa_budget_rate{account=\"%s\",endpoint=\"%s\"} %.3f\n", esc(b.account, n1, sizeof(n1)),
		           esc(b.endpoint ? b.endpoint : "*", n2, sizeof(n2)), b.rate);
	head(cli, "payspoa_budget_burst", "gauge", "budget burst, requests");
	for (i = 0; pol_engine_budget_info(e, i, now_us, &b) == 0; i++)
		ctl_printf(cli, "payspoa_budget_burst{account=\"%s\",endpoint=\"%s\"} %.1f\n", esc(b.account, n1, sizeof(n1)),
		           esc(b.endpoint ? b.endpoint : "*", n2, sizeof(n2)), b.burst);
	head(cli, "payspoa_budget_load", "gauge", "share of the budget's tolerance in use, 0..1");
	for (i = 0; pol_engine_budget_info(e, i, now_us, &b) == 0; i++)
		ctl_printf(cli, "payspoa_budget_load{account=\"%s\",endpoint=\"%s\"} %.4f\n", esc(b.account, n1, sizeof(n1)),
		           esc(b.endpoint ? b.endpoint : "*", n2, sizeof(n2)), b.load);
	for (unsigned m = 0; m < sizeof(fc) / sizeof(fc[0]); m++) {
		head(cli, fc[m].name, "gauge", fc[m].help);
		for (i = 0; pol_engine_forecast_info(e, i, now_us, &f) == 0; i++) {
			double v = m == 0 ? f.now_rps : m == 1 ? f.next_rps : m == 2 ? f.day_rps : m == 3 ? f.budget_rps : f.shed;

			ctl_printf(cli, "%s{account=\"%s\",class=\"%s\"} %.3f\n", fc[m].name, esc(f.account, n1, sizeof(n1)),
			           esc(f.class_name, n2, sizeof(n2)), isfinite(v) ? v : 0.0);
		}
	}
}

static void render_process(struct daemon *d, struct ctl_cli *cli, uint64_t now_us)
{
	head(cli, "payspoa_uptime_seconds", "gauge", "seconds since the daemon started serving");
	ctl_printf(cli, "payspoa_uptime_seconds %.3f\n", (double)(now_us - d->started_us) / 1e6);
	head(cli, "payspoa_workers", "gauge", "decision worker threads");
	ctl_printf(cli, "payspoa_workers %u\n", d->nworkers);
	head(cli, "payspoa_snapshots_written_total", "counter", "snapshots of the learned state written");
	ctl_printf(cli, "payspoa_snapshots_written_total %llu\n", (unsigned long long)d->snap_written);
	head(cli, "payspoa_snapshots_failed_total", "counter", "snapshots that failed (the previous one kept)");
	ctl_printf(cli, "payspoa_snapshots_failed_total %llu\n", (unsigned long long)d->snap_failed);
	if (d->snap_last_wall_us) {
		uint64_t wall = clock_wall_us();

		head(cli, "payspoa_snapshot_age_seconds", "gauge", "seconds since the last snapshot written");
		ctl_printf(cli, "payspoa_snapshot_age_seconds %.3f\n",
		           wall > d->snap_last_wall_us ? (double)(wall - d->snap_last_wall_us) / 1e6 : 0.0);
		head(cli, "payspoa_snapshot_duration_seconds", "gauge", "how long the last snapshot took (capture to rename)");
		ctl_printf(cli, "payspoa_snapshot_duration_seconds %.6f\n", (double)d->snap_last_us / 1e6);
	}
	head(cli, "payspoa_decision_sample_every", "gauge", "every nth decision is sampled for `show decisions` (0 off)");
	ctl_printf(cli, "payspoa_decision_sample_every %u\n", pol_engine_sampling(d->engine));
	head(cli, "payspoa_admin_clients", "gauge", "admin socket connections open");
	ctl_printf(cli, "payspoa_admin_clients %u\n", d->admin.started ? d->admin.srv.nclients : 0);
	head(cli, "payspoa_admin_clients_evicted_total", "counter",
	     "admin connections closed to make room at the cap (the least recently active)");
	ctl_printf(cli, "payspoa_admin_clients_evicted_total %llu\n",
	           (unsigned long long)(d->admin.started ? d->admin.srv.evicted : 0));
	head(cli, "payspoa_admin_clients_timed_out_total", "counter", "admin connections closed idle or too slow");
	ctl_printf(cli, "payspoa_admin_clients_timed_out_total %llu\n",
	           (unsigned long long)(d->admin.started ? d->admin.srv.timed_out : 0));
	head(cli, "payspoa_metrics_scrapes_total", "counter", "GET /metrics answered");
	ctl_printf(cli, "payspoa_metrics_scrapes_total %llu\n", d->metrics.scrapes);
}

void metrics_render(struct daemon *d, struct ctl_cli *cli)
{
	uint64_t now_us = clock_mono_us();

	render_engine_counters(d, cli, now_us);
	render_backends(d, cli, now_us);
	render_budgets(d, cli, now_us);
	render_daemon_counters(d, cli);
	render_fleet(d, cli);
	render_hists(d, cli);
	render_process(d, cli, now_us);
}

static void reply(struct ctl_cli *cli, const char *status, const char *body)
{
	ctl_printf(cli, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
	           "Connection: close\r\n\r\n%s", status, strlen(body), body);
}

int metrics_parse_head(const char *in, size_t len, size_t full, bool eof)
{
	const char *end = memmem(in, len, "\r\n\r\n", 4), *eol, *sp1, *sp2, *path;
	size_t plen;

	if (!end)
		end = memmem(in, len, "\n\n", 2);
	if (!end)
		return len >= full ? 431 : eof ? 400 : 0;
	eol = memchr(in, '\n', len); /* found: the empty line's end is one */
	sp1 = memchr(in, ' ', (size_t)(eol - in));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || (size_t)(eol - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7))
		return 400;
	if (sp1 - in != 3 || memcmp(in, "GET", 3))
		return 405;
	path = sp1 + 1;
	for (plen = 0; path + plen < sp2 && path[plen] != '?'; plen++)
		;
	return plen == 8 && !memcmp(path, "/metrics", 8) ? 200 : 404;
}

/* ctl_conf.on_input: one request per connection (Connection: close). */
static void metrics_on_input(struct ctl_cli *cli)
{
	struct metrics *m = cli->srv->conf.arg;
	int st = metrics_parse_head(cli->in, cli->in_len, MET_IN_MAX, cli->eof);

	if (st == 0)
		return;
	cli->closing = true;
	ctl_consume(cli, cli->in_len);
	switch (st) {
	case 200:
		m->scrapes++;
		ctl_printf(cli, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		           "Connection: close\r\n\r\n");
		metrics_render(m->d, cli);
		if (cli->truncated)
			log_json(LOG_LVL_WARNING, "metrics_truncated", "limit_bytes", "4194304", NULL);
		break;
	case 404:
		m->not_found++;
		reply(cli, "404 Not Found", "not found: try /metrics\n");
		break;
	case 405:
		m->bad_requests++;
		reply(cli, "405 Method Not Allowed", "only GET\n");
		break;
	case 431:
		m->bad_requests++;
		reply(cli, "431 Request Header Fields Too Large", "request head too large\n");
		break;
	default:
		m->bad_requests++;
		reply(cli, "400 Bad Request", "bad request\n");
	}
}

int metrics_open(struct metrics *m, struct daemon *d, const char *addr, char *err, size_t errlen)
{
	struct listen_addr la;
	char full[160];

	m->d = d;
	/* "host:port", or ":port" / a bare port for loopback (never every interface by accident) */
	if (strspn(addr, "0123456789") == strlen(addr))
		snprintf(full, sizeof(full), "127.0.0.1:%s", addr);
	else if (addr[0] == ':')
		snprintf(full, sizeof(full), "127.0.0.1%s", addr);
	else
		snprintf(full, sizeof(full), "%s", addr);
	if (!strncmp(full, "unix:", 5)) {
		snprintf(err, errlen, "agent.metrics: %s: expected host:port (TCP)", addr);
		return -1;
	}
	if (listen_parse(full, &la, err, errlen) < 0)
		return -1;
	m->fd = listen_open(&la, err, errlen);
	if (m->fd < 0)
		return -1;
	snprintf(m->addr, sizeof(m->addr), "%s", full);
	m->opened = true;
	return 0;
}

void metrics_start(struct metrics *m, struct ev_loop *loop)
{
	struct ctl_conf conf = { "metrics", MET_MAX_CLIENTS, MET_IN_MAX, MET_OUT_MAX, MET_IDLE_S, MET_LINE_S,
	                         metrics_on_input, m };

	if (!m->opened)
		return;
	ctl_start(&m->srv, loop, m->fd, &conf);
	m->started = true;
	log_json(LOG_LVL_INFO, "metrics", "addr", m->addr, "path", "/metrics", NULL);
}

void metrics_stop(struct metrics *m)
{
	if (!m->started)
		return;
	ctl_stop(&m->srv);
	m->started = m->opened = false;
}

void metrics_close(struct metrics *m)
{
	if (!m->opened)
		return;
	close(m->fd);
	m->opened = false;
}
