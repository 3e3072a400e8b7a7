/* admin.c: the admin socket's commands (admin.h). Control thread only; the transport
 * (bounds, deadlines, client cap) is ctl.c's. A command never blocks: a reload parses
 * the policy here as SIGHUP does, a snapshot is written by its own thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "daemon.h"
#include "fleet.h"
#include "log.h"
#include "policy.h"
#include "stats.h"

#define ADMIN_MAX_CLIENTS 16
#define ADMIN_IN_MAX      ADMIN_LINE_MAX
#define ADMIN_OUT_MAX     (256 * 1024)
#define ADMIN_IDLE_S      60.0
#define ADMIN_LINE_S      10.0
#define ADMIN_SAMPLE_DEFAULT 64       /* every 64th decision is sampled while served */

struct admin_cmd {
	struct admin *a;
	struct ctl_cli *cli;
	char *w[ADMIN_MAX_WORDS];
	int n;
	const char *line;                 /* the whole command, for the audit log */
	uint64_t now_us;
};

static const char *const verdict_name[] = { "allow", "queue", "reject" };

static void err1(struct admin_cmd *c, const char *msg)
{
	ctl_printf(c->cli, "%s\n", msg);
}

/* The one-line error of a command, and out of it. */
#define CMD_FAIL(c, msg) do { err1((c), (msg)); return; } while (0)

/* A state change, logged with who asked (SO_PEERCRED) and how it went. */
static void audit(struct admin_cmd *c, const char *result)
{
	log_json(LOG_LVL_INFO, "admin_action", "command", c->line, "origin", c->cli->peer[0] ? c->cli->peer : "unknown",
	         "result", result, NULL);
}

static void cmd_help(struct admin_cmd *c)
{
	ctl_printf(c->cli,
	           "help                                  this list\n"
	           "show info                             process, traffic and policy summary\n"
	           "show backends                         state, breaker, anomaly, share, P(auth), latency, budget\n"
	           "show classes                          traffic classes of the policy\n"
	           "show breakers                         each backend's breaker and anomaly state\n"
	           "show budgets                          rate budgets: rate, burst, load\n"
	           "show forecast                         per account x class: observed vs forecast rate, shedding\n"
	           "show learning [<backend>] [<n>]       P(auth) posteriors by segment, top n (default 10)\n"
	           "show pins                             pin tables: live, stored, evicted, oldest age (never a key)\n"
	           "show decisions [<n>]                  the n newest sampled decisions with every candidate's score\n"
	           "show fleet                            the fleet: node, Redis, nodes seen, lag, errors, counters\n"
	           "set breaker <backend> open|closed|auto  force a breaker, or hand it back\n"
	           "set backend <backend> enable|disable|drain  admin state (drain: pinned requests only)\n"
	           "set sample <n>                        sample every nth decision per worker (0: off)\n"
	           "reload                                reload the policy file (as SIGHUP)\n"
	           "save state                            write a snapshot now (as SIGUSR1)\n"
	           "quit                                  close this connection\n");
}

static void cmd_show_info(struct admin_cmd *c)
{
	struct daemon *d = c->a->d;
	struct spoa_totals t;
	struct pol_stats st;

	daemon_totals(d, &t);
	pol_engine_stats(d->engine, c->now_us, &st);
	ctl_printf(c->cli, "pid: %d\nuptime_s: %.0f\npolicy: %s\nworkers: %u\nmax_connections: %d\n"
	           "connections_open: %llu\nconnections_total: %llu\nrefused: %llu\ndecisions: %llu\n"
	           "allow: %llu\nqueue: %llu\nreject: %llu\noutcomes: %llu\nprotocol_errors: %llu\nreloads: %llu\n"
	           "breaker_opens: %llu\nsample_every: %u\nstate_file: %s\nsnapshots_written: %llu\n",
	           (int)getpid(), (double)(c->now_us - d->started_us) / 1e6, d->opts.config, d->nworkers,
	           d->agent.max_connections, (unsigned long long)t.conns_open, (unsigned long long)t.conns_total,
	           (unsigned long long)t.refused, (unsigned long long)st.decisions, (unsigned long long)st.allow,
	           (unsigned long long)st.queue, (unsigned long long)st.reject, (unsigned long long)st.observed,
	           (unsigned long long)t.protocol_errors, (unsigned long long)st.reloads,
	           (unsigned long long)st.breaker_opens, pol_engine_sampling(d->engine),
	           d->agent.state_file ? d->agent.state_file : "-", (unsigned long long)d->snap_written);
	if (d->snap_last_wall_us)
		ctl_printf(c->cli, "snapshot_age_s: %.1f\n", (double)(clock_wall_us() - d->snap_last_wall_us) / 1e6);
}

/* Decisions per backend (all classes and verdicts) since the view began, into n[] (64
 * backends at most, POL_MAX_BACKENDS); returns the total. */
static uint64_t backend_decisions(struct pol_engine *e, uint64_t n[64])
{
	struct pol_class_info k;
	struct pol_route_info r;
	unsigned nc = 0;
	uint64_t total = 0;

	while (pol_engine_class_info(e, nc, &k) == 0)
		nc++;
	memset(n, 0, 64 * sizeof(n[0]));
	for (unsigned i = 0; nc && pol_engine_route_info(e, i, &r) == 0; i++) {
		n[(i / (nc * 3)) & 63] += r.count;
		total += r.count;
	}
	return total;
}

static void cmd_show_backends(struct admin_cmd *c)
{
	struct pol_engine *e = c->a->d->engine;
	struct pol_backend_info b;
	struct pol_learn_info l;
	static const char *const st[] = { "up", "probing", "down" };
	uint64_t n[64], total = backend_decisions(e, n);

	ctl_printf(c->cli, "# name account state admin breaker anomaly share p_auth latency_ms budget_load prior\n");
	for (unsigned i = 0; pol_engine_backend_info(e, i, c->now_us, &b) == 0; i++) {
		pol_engine_learn_info(e, i, c->now_us, &l);
		ctl_printf(c->cli, "%s %s %s %s %s %s %.3f %.4f %.1f %.3f %s\n", b.name, b.account,
		           b.state >= 0 && b.state <= 2 ? st[b.state] : "?",
		           !b.enabled ? "off-in-file" : b.admin_disabled ? "disabled" : b.admin_drained ? "drain" : "enabled",
		           l.breaker, l.anomaly, total ? (double)n[i & 63] / (double)total : 0.0, b.p_auth, b.latency_ms,
		           b.budget_load, b.prior_tested ? "tested" : "untested");
	}
}

static void cmd_show_classes(struct admin_cmd *c)
{
	struct pol_class_info k;

	ctl_printf(c->cli, "# name prio offset_ms shed_order queue_ms reserve reserved_above\n");
	for (unsigned i = 0; pol_engine_class_info(c->a->d->engine, i, &k) == 0; i++)
		ctl_printf(c->cli, "%s %d %d %d %d %.3f %.3f\n", k.name, k.prio, k.offset_ms, k.shed_order, k.queue_ms,
		           k.reserve, k.reserved_above);
}

static void cmd_show_breakers(struct admin_cmd *c)
{
	struct pol_learn_info l;

	ctl_printf(c->cli, "# backend breaker anomaly trips open_for_s factor probes\n");
	for (unsigned i = 0; pol_engine_learn_info(c->a->d->engine, i, c->now_us, &l) == 0; i++)
		ctl_printf(c->cli, "%s %s %s %u %.1f %.3f %d\n", l.name, l.breaker, l.anomaly, l.trips, l.open_for_s,
		           l.factor, l.probes);
}

static void cmd_show_budgets(struct admin_cmd *c)
{
	struct pol_budget_info b;

	ctl_printf(c->cli, "# account endpoint rate_rps burst load\n");
	for (unsigned i = 0; pol_engine_budget_info(c->a->d->engine, i, c->now_us, &b) == 0; i++)
		ctl_printf(c->cli, "%s %s %.2f %.1f %.3f\n", b.account, b.endpoint ? b.endpoint : "*", b.rate, b.burst,
		           b.load);
}

static void cmd_show_forecast(struct admin_cmd *c)
{
	struct pol_forecast_info f;

	ctl_printf(c->cli, "# account class now_rps next_rps day_rps budget_rps shed\n");
	for (unsigned i = 0; pol_engine_forecast_info(c->a->d->engine, i, c->now_us, &f) == 0; i++)
		ctl_printf(c->cli, "%s %s %.2f %.2f %.2f %.2f %s\n", f.account, f.class_name, f.now_rps, f.next_rps,
		           f.day_rps, f.budget_rps, f.shed ? "yes" : "no");
}

static int backend_index(struct pol_engine *e, const char *name)
{
	struct pol_backend_info b;

	for (unsigned i = 0; pol_engine_backend_info(e, i, 0, &b) == 0; i++)
		if (!strcmp(b.name, name))
			return (int)i;
	return -1;
}

/* A count argument: 1..max, or -1. */
static long count_arg(const char *s, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= 1 && v <= max ? v : -1;
}

static void cmd_show_learning(struct admin_cmd *c)
{
	struct pol_engine *e = c->a->d->engine;
	struct pol_seg_info seg[1 + 64];
	struct pol_backend_info b;
	long top = 10;
	int only = -1, k = 2;

	if (c->n > k && (only = backend_index(e, c->w[k])) >= 0)
		k++;
	else if (c->n > k && count_arg(c->w[k], 65) < 0)
		CMD_FAIL(c, "No such backend.");
	if (c->n > k && (top = count_arg(c->w[k++], 65)) < 0)
		CMD_FAIL(c, "Expects a count between 1 and 65.");
	if (c->n > k)
		CMD_FAIL(c, "Too many arguments: show learning [<backend>] [<n>].");
	ctl_printf(c->cli, "# backend segment n mean sd\n");
	for (unsigned i = 0; pol_engine_backend_info(e, i, 0, &b) == 0; i++) {
		int n;

		if (only >= 0 && (int)i != only)
			continue;
		n = pol_engine_learn_segs(e, i, c->now_us, seg, (unsigned)top);
		for (int j = 0; j < n; j++)
			ctl_printf(c->cli, "%s %s %.1f %.4f %.4f\n", b.name, seg[j].currency[0] ? seg[j].currency : "all",
			           seg[j].n, seg[j].mean, seg[j].sd);
	}
}

struct pins_scan {
	uint32_t oldest[POL_PIN_TABLES];
};

static void pins_oldest(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                        uint32_t age_s)
{
	struct pins_scan *s = arg;

	if (table < POL_PIN_TABLES && age_s > s->oldest[table])
		s->oldest[table] = age_s;
}

static void cmd_show_pins(struct admin_cmd *c)
{
	static const char *const table[POL_PIN_TABLES] = { "idem", "object", "account" };
	struct pins_scan scan = { { 0 } };
	struct pol_stats st;

	pol_engine_stats(c->a->d->engine, c->now_us, &st);
	pol_engine_pins_each(c->a->d->engine, c->now_us, pins_oldest, &scan);
	ctl_printf(c->cli, "# table live stored evicted_before_ttl rotations oldest_age_s\n");
	for (unsigned i = 0; i < POL_PIN_TABLES; i++)
		ctl_printf(c->cli, "%s %llu %llu %llu %llu %u\n", table[i], (unsigned long long)st.pin_live[i],
		           (unsigned long long)st.pin_stored[i], (unsigned long long)st.pin_evicted[i],
		           (unsigned long long)st.pin_rotations[i], scan.oldest[i]);
}

/* The fleet's state and every FLEET_STATS counter, "name: value" (or "no fleet"). */
static void cmd_show_fleet(struct admin_cmd *c)
{
	struct daemon *d = c->a->d;
	struct fleet_stats st;

	if (!d->fleet_on) {
		ctl_printf(c->cli, "no fleet\n");
		return;
	}
	fleet_stats(&d->fleet, &st);  /* the fleet runs on this (the control) thread */
	ctl_printf(c->cli, "node: %s\nredis: %s\nprefix: %s\n", d->fleet.node, d->fleet.cfg.redis, d->fleet.prefix);
	for (size_t i = 0; i < fleet_stats_ndesc; i++)
		ctl_printf(c->cli, "%s: %llu\n", fleet_stats_desc[i].name,
		           (unsigned long long)*(const uint64_t *)((const char *)&st + fleet_stats_desc[i].off));
}

static int sample_newer(const void *a, const void *b)
{
	const struct pol_sample *x = a, *y = b;

	return x->t_us < y->t_us ? 1 : x->t_us > y->t_us ? -1 : 0;
}

static void cmd_show_decisions(struct admin_cmd *c)
{
	struct pol_engine *e = c->a->d->engine;
	size_t max = (size_t)c->a->d->nworkers * POL_SAMPLE_RING, n;
	struct pol_sample *s;
	long want = 10;

	if (c->n > 3)
		CMD_FAIL(c, "Too many arguments: show decisions [<n>].");
	if (c->n == 3 && (want = count_arg(c->w[2], 1000)) < 0)
		CMD_FAIL(c, "Expects a count between 1 and 1000.");
	s = malloc(max * sizeof(*s));
	if (!s)
		CMD_FAIL(c, "Out of memory.");
	n = pol_engine_samples(e, s, max);
	qsort(s, n, sizeof(*s), sample_newer);
	ctl_printf(c->cli, "# sample_every=%u; per decision: age_s worker seq class backend verdict reason, "
	           "then each backend scored: backend score raw flags\n", pol_engine_sampling(e));
	for (size_t i = 0; i < n && i < (size_t)want; i++) {
		const char *cl = pol_engine_sample_class(e, &s[i]), *be = pol_engine_sample_backend(e, &s[i], s[i].backend);

		ctl_printf(c->cli, "decision %.3f %u %llu %s %s %s \"%s\"\n",
		           c->now_us > s[i].t_us ? (double)(c->now_us - s[i].t_us) / 1e6 : 0.0, s[i].worker,
		           (unsigned long long)s[i].seq, cl ? cl : "(reloaded)", be ? be : "(reloaded)",
		           s[i].verdict < 3 ? verdict_name[s[i].verdict] : "?", s[i].reason);
		for (unsigned k = 0; k < s[i].ncand; k++) {
			const char *cb = pol_engine_sample_backend(e, &s[i], s[i].cand[k].backend);

			ctl_printf(c->cli, "  %s %.2f %.2f %s%s\n", cb ? cb : "(reloaded)", s[i].cand[k].score,
			           s[i].cand[k].raw, s[i].cand[k].flags & POL_SAMPLE_F_CAND ? "candidate" : "held",
			           s[i].cand[k].flags & POL_SAMPLE_F_CHOSEN ? ",chosen" : "");
		}
	}
	free(s);
}

static void cmd_set(struct admin_cmd *c)
{
	struct pol_engine *e = c->a->d->engine;
	int rc;

	if (c->n >= 2 && !strcmp(c->w[1], "sample")) {
		char *end;
		long v = c->n == 3 ? strtol(c->w[2], &end, 10) : -1;

		if (c->n != 3 || !*c->w[2] || *end || v < 0 || v > 1000000)
			CMD_FAIL(c, "Usage: set sample <n> (0..1000000, 0 = off).");
		pol_engine_set_sampling(e, (unsigned)v);
		audit(c, "done");
		return;
	}
	if (c->n != 4 || (strcmp(c->w[1], "breaker") && strcmp(c->w[1], "backend")))
		CMD_FAIL(c, "Usage: set breaker <backend> open|closed|auto, set backend <backend> enable|disable|drain.");
	if (backend_index(e, c->w[2]) < 0)
		CMD_FAIL(c, "No such backend.");
	if (!strcmp(c->w[1], "breaker")) {
		enum pol_breaker_mode m;

		if (!strcmp(c->w[3], "open"))
			m = POL_BREAKER_OPEN;
		else if (!strcmp(c->w[3], "closed"))
			m = POL_BREAKER_CLOSED;
		else if (!strcmp(c->w[3], "auto"))
			m = POL_BREAKER_AUTO;
		else
			CMD_FAIL(c, "Expects open, closed or auto.");
		rc = pol_engine_set_breaker(e, c->w[2], m, c->now_us);
	} else if (!strcmp(c->w[3], "enable") || !strcmp(c->w[3], "disable")) {
		rc = pol_engine_set_enabled(e, c->w[2], c->w[3][0] == 'e');
	} else if (!strcmp(c->w[3], "drain")) {
		rc = pol_engine_set_drained(e, c->w[2]);
	} else {
		CMD_FAIL(c, "Expects enable, disable or drain.");
	}
	if (rc < 0)
		CMD_FAIL(c, "No such backend.");
	audit(c, "done");
}

static void cmd_reload(struct admin_cmd *c)
{
	char err[512];

	if (c->n != 1)
		CMD_FAIL(c, "Usage: reload.");
	if (daemon_reload(c->a->d, err, sizeof(err)) < 0) {
		audit(c, "failed");
		for (char *p = err; *p; p++)
			if (*p == '\n')
				*p = ' ';
		ctl_printf(c->cli, "Reload failed, previous policy kept: %s\n", err);
		return;
	}
	audit(c, "done");
	ctl_printf(c->cli, "Reloaded.\n");
}

static void cmd_save(struct admin_cmd *c)
{
	if (c->n != 2 || strcmp(c->w[1], "state"))
		CMD_FAIL(c, "Usage: save state.");
	if (daemon_save(c->a->d, "admin socket") < 0) {
		audit(c, "refused: no state_file");
		CMD_FAIL(c, "No agent.state_file in the policy: nothing to save to.");
	}
	audit(c, "started");
	ctl_printf(c->cli, "Snapshot started (see the log for snapshot_written).\n");
}

/* One command: words split on blanks, answered, then the empty line. */
static void admin_run(struct admin *a, struct ctl_cli *cli, char *line)
{
	struct admin_cmd c = { a, cli, { NULL }, 0, NULL, clock_mono_us() };
	char copy[ADMIN_IN_MAX + 1];

	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line)
		return; /* an empty command: no answer (HAProxy does the same) */
	snprintf(copy, sizeof(copy), "%s", line);
	c.line = copy;
	cli->truncated = false;
	if ((c.n = admin_split(line, c.w, ADMIN_MAX_WORDS)) < 0) {
		c.n = 0;
		err1(&c, "Too many words.");
		goto done;
	}
	if (!strcmp(c.w[0], "help") && c.n == 1)
		cmd_help(&c);
	else if (!strcmp(c.w[0], "quit") && c.n == 1)
		cli->closing = true;
	else if (!strcmp(c.w[0], "show") && c.n >= 2) {
		const char *what = c.w[1];

		if (c.n > 2 && strcmp(what, "learning") && strcmp(what, "decisions"))
			err1(&c, "Too many arguments.");
		else if (!strcmp(what, "info"))
			cmd_show_info(&c);
		else if (!strcmp(what, "backends"))
			cmd_show_backends(&c);
		else if (!strcmp(what, "classes"))
			cmd_show_classes(&c);
		else if (!strcmp(what, "breakers"))
			cmd_show_breakers(&c);
		else if (!strcmp(what, "budgets"))
			cmd_show_budgets(&c);
		else if (!strcmp(what, "forecast"))
			cmd_show_forecast(&c);
		else if (!strcmp(what, "learning"))
			cmd_show_learning(&c);
		else if (!strcmp(what, "pins"))
			cmd_show_pins(&c);
		else if (!strcmp(what, "decisions"))
			cmd_show_decisions(&c);
		else if (!strcmp(what, "fleet"))
			cmd_show_fleet(&c);
		else
			err1(&c, "Unknown 'show' target. Try 'help'.");
	} else if (!strcmp(c.w[0], "set"))
		cmd_set(&c);
	else if (!strcmp(c.w[0], "reload"))
		cmd_reload(&c);
	else if (!strcmp(c.w[0], "save"))
		cmd_save(&c);
	else
		err1(&c, "Unknown command. Try 'help'.");
done:
	if (cli->truncated) {
		/* keep the answer's end visible: drop what overflowed into the last line */
		cli->truncated = false;
		if (cli->out_len - cli->out_off > 64)
			cli->out_len -= 64;
		ctl_printf(cli, "\n(output truncated)\n");
	}
	ctl_printf(cli, "\n");
}

int admin_split(char *line, char **w, int max)
{
	char *p = line;
	int n = 0;

	for (;;) {
		p += strspn(p, " \t");
		if (!*p)
			return n;
		if (n == max)
			return -1;
		w[n++] = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = 0;
	}
}

int admin_next_command(const char *in, size_t len, bool eof, char *line, size_t *used)
{
	size_t n = 0, l;

	while (n < len && in[n] != '\n' && in[n] != ';')
		n++;
	if (n >= ADMIN_LINE_MAX - 1) {
		*used = 0;
		return ADMIN_ERR_LONG;
	}
	if (n == len && !eof) {
		*used = 0;
		return 0;
	}
	*used = n < len ? n + 1 : n;
	l = n;
	if (l && in[l - 1] == '\r')
		l--;
	if (memchr(in, 0, l))
		return ADMIN_ERR_NUL;
	memcpy(line, in, l);
	line[l] = 0;
	return 1;
}

/* ctl_conf.on_input: one command after another while the output has room. */
static void admin_on_input(struct ctl_cli *cli)
{
	struct admin *a = cli->srv->conf.arg;
	char line[ADMIN_LINE_MAX];

	while ((cli->in_len || cli->eof) && !cli->closing && ctl_pending(cli) <= ADMIN_OUT_MAX / 2) {
		size_t used;
		int rc = admin_next_command(cli->in, cli->in_len, cli->eof, line, &used);

		if (rc == 0 || (rc == 1 && used == 0 && !cli->in_len))
			return; /* incomplete, or nothing left at EOF */
		if (rc == ADMIN_ERR_LONG) {
			ctl_printf(cli, "Command line too long (at most %d bytes).\n\n", ADMIN_LINE_MAX - 2);
			cli->closing = true;
			return;
		}
		ctl_consume(cli, used);
		if (rc == ADMIN_ERR_NUL)
			ctl_printf(cli, "NUL byte in command.\n\n");
		else
			admin_run(a, cli, line);
	}
}

int admin_open(struct admin *a, struct daemon *d, const char *path, char *err, size_t errlen)
{
	a->d = d;
	a->fd = ctl_listen_unix(path, err, errlen);
	if (a->fd < 0)
		return -1;
	a->opened = true;
	snprintf(a->srv.path, sizeof(a->srv.path), "%s", path);
	a->srv.unix_path = true;
	return 0;
}

void admin_start(struct admin *a, struct ev_loop *loop)
{
	struct ctl_conf conf = { "admin", ADMIN_MAX_CLIENTS, ADMIN_IN_MAX, ADMIN_OUT_MAX, ADMIN_IDLE_S, ADMIN_LINE_S,
	                         admin_on_input, a };
	char path[sizeof(a->srv.path)];

	if (!a->opened)
		return;
	memcpy(path, a->srv.path, sizeof(path));
	ctl_start(&a->srv, loop, a->fd, &conf);
	memcpy(a->srv.path, path, sizeof(path));
	a->srv.unix_path = true;
	a->started = true;
	if (!pol_engine_sampling(a->d->engine))
		pol_engine_set_sampling(a->d->engine, ADMIN_SAMPLE_DEFAULT);
	log_json(LOG_LVL_INFO, "admin_socket", "path", path, NULL);
}

void admin_stop(struct admin *a)
{
	if (!a->started)
		return;
	ctl_stop(&a->srv);
	a->started = a->opened = false;
}

void admin_close(struct admin *a)
{
	if (!a->opened)
		return;
	close(a->fd);
	unlink(a->srv.path);
	a->opened = false;
}
