/* scenario.c: reads a simulator scenario file (schema in bench/scenarios/README.md) into
 * a struct sim_scenario, through the policy's config helpers (policy/cfg.h). Strict like
 * the policy loader: an unknown key, a wrong type or a dangling name is an error
 * "file:line: message". Allocates only inside the config reader while loading. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "scenario.h"

/* A string, absent = unchanged, "" allowed, "*" stored as "" (any). */
static int sc_str(struct cfg_ctx *l, const struct cfg_node *g, const char *key, char *out, size_t n)
{
	return cfg_str(l, g, key, CFG_EMPTY_OK | CFG_STAR_ANY, out, n) < 0 ? -1 : 0;
}

/* A list or array member that must be present when `need`; NULL with *rc = 0 when absent
 * and optional, NULL with *rc = -1 on an error. */
static const struct cfg_node *sc_list(struct cfg_ctx *l, const struct cfg_node *g, const char *key, bool need,
                                      int *rc)
{
	const struct cfg_node *s = NULL;

	*rc = cfg_seq(l, g, key, need, &s) < 0 ? -1 : 0;
	return *rc ? NULL : s;
}

static int sc_cur_index(const struct sim_scenario *sc, const char *code)
{
	int i;

	for (i = 0; i < sc->ncur; i++)
		if (strcasecmp(sc->cur[i].code, code) == 0)
			return i;
	return -1;
}

static int sc_backend_index(const struct sim_scenario *sc, const char *name)
{
	int i;

	for (i = 0; i < sc->nbackends; i++)
		if (strcmp(sc->backends[i].name, name) == 0)
			return i;
	return -1;
}

/* An account's index by name (accounts come from the backends), -1 if none. */
static int sc_account_index(const struct sim_scenario *sc, const char *name)
{
	int a = 0;

	while (a < sc->naccounts && strcmp(sc->accounts[a].name, name))
		a++;
	return a < sc->naccounts ? a : -1;
}

/* A segment pattern "cur/region/brand/funding" ("*" or an empty field matches all). */
static int sc_match(struct cfg_ctx *l, const struct cfg_node *g, const char *key, struct sim_match *m)
{
	char buf[4 * SIM_NAME], *f[4] = { NULL }, *save = NULL, *t;
	int n = 0;

	memset(m, 0, sizeof(*m));
	buf[0] = 0;
	if (sc_str(l, g, key, buf, sizeof(buf)))
		return -1;
	if (!buf[0])
		return 0;
	for (t = strtok_r(buf, "/", &save); t && n < 4; t = strtok_r(NULL, "/", &save))
		f[n++] = t;
	if (t || n == 0)
		return cfg_fail(l, cfg_get(g, key), "'%s' must be cur/region/brand/funding", key);
	snprintf(m->cur, sizeof(m->cur), "%s", f[0] && strcmp(f[0], "*") ? f[0] : "");
	snprintf(m->region, sizeof(m->region), "%s", f[1] && strcmp(f[1], "*") ? f[1] : "");
	snprintf(m->brand, sizeof(m->brand), "%s", f[2] && strcmp(f[2], "*") ? f[2] : "");
	snprintf(m->funding, sizeof(m->funding), "%s", f[3] && strcmp(f[3], "*") ? f[3] : "");
	return 0;
}

/* A list of currency codes into a mask. */
static int sc_cur_mask(struct cfg_ctx *l, const struct sim_scenario *sc, const struct cfg_node *g,
                       const char *key, uint32_t *mask)
{
	const struct cfg_node *s;
	int i, rc, c;

	if (!(s = sc_list(l, g, key, true, &rc)))
		return rc ? rc : -1;
	*mask = 0;
	for (i = 0; i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		const char *v = cfg_string(e);

		if (!v || (c = sc_cur_index(sc, v)) < 0)
			return cfg_fail(l, e, "'%s': not a currency of the scenario's `currencies`", v ? v : "?");
		*mask |= 1U << c;
	}
	return 0;
}

static int sc_fee(struct cfg_ctx *l, const struct cfg_node *g, struct sim_fee *f)
{
	static const char *const keys[] = { "percent", "fixed", "cross_border", "fx", "rates", NULL };
	static const char *const rkeys[] = { "card_region", "funding", "percent", "fixed", "all_in", NULL };
	const struct cfg_node *rows;
	int i, rc;

	if (!cfg_is_group(g))
		return cfg_fail(l, g, "'fees' must be a group");
	if (cfg_keys(l, g, "", keys) || cfg_num(l, g, "percent", false, 0, 100, &f->pct) || cfg_num(l, g, "fixed", false, 0, 1e6, &f->fixed) ||
	    cfg_num(l, g, "cross_border", false, 0, 100, &f->cross_border) || cfg_num(l, g, "fx", false, 0, 100, &f->fx))
		return -1;
	rows = sc_list(l, g, "rates", false, &rc);
	if (rc)
		return rc;
	for (i = 0; rows && i < cfg_count(rows); i++) {
		const struct cfg_node *r = cfg_at(rows, i);
		struct sim_fee_row *w = &f->rows[i];
		double fixed = -1;

		if (i >= SIM_MAX_FEE_ROWS)
			return cfg_fail(l, r, "at most %d fee rates", SIM_MAX_FEE_ROWS);
		if (!cfg_is_group(r) || cfg_keys(l, r, "", rkeys) ||
		    sc_str(l, r, "card_region", w->region, sizeof(w->region)) ||
		    sc_str(l, r, "funding", w->funding, sizeof(w->funding)) ||
		    cfg_num(l, r, "percent", false, 0, 100, &w->pct) || cfg_num(l, r, "fixed", false, 0, 1e6, &fixed) ||
		    cfg_bool(l, r, "all_in", &w->all_in))
			return rc ? rc : cfg_fail(l, r, "bad fee rate");
		w->has_fixed = fixed >= 0;
		w->fixed = fixed >= 0 ? fixed : 0;
		f->nrows = i + 1;
	}
	return 0;
}

static int sc_backend(struct cfg_ctx *l, struct sim_scenario *sc, const struct cfg_node *g, struct sim_backend *b)
{
	static const char *const keys[] = { "name", "account", "region", "currencies", "settlement", "fees",
		"auth", "auth_rules", "latency_ms", "latency_sigma", "timeout_ms", "error_rate",
		"soft_declines", "rate_limit", "latency_load_ms", NULL };
	static const char *const akeys[] = { "match", "p", NULL };
	static const char *const rlkeys[] = { "rate", "burst", NULL };
	const struct cfg_node *s;
	int i, rc;

	b->auth = 0.9;
	b->lat_median_ms = 250;
	b->lat_sigma = 0.35;
	b->timeout_ms = 10000;
	b->soft_declines = 0.6;
	if (!cfg_is_group(g))
		return cfg_fail(l, g, "a backend must be a group");
	if (cfg_keys(l, g, "", keys) || sc_str(l, g, "name", b->name, sizeof(b->name)) ||
	    sc_str(l, g, "account", b->account, sizeof(b->account)) ||
	    sc_str(l, g, "region", b->region, sizeof(b->region)) ||
	    sc_cur_mask(l, sc, g, "currencies", &b->currencies) ||
	    cfg_num(l, g, "auth", false, 0, 1, &b->auth) || cfg_num(l, g, "latency_ms", false, 0.1, 1e6, &b->lat_median_ms) ||
	    cfg_num(l, g, "latency_sigma", false, 0, 3, &b->lat_sigma) || cfg_num(l, g, "timeout_ms", false, 1, 1e7, &b->timeout_ms) ||
	    cfg_num(l, g, "error_rate", false, 0, 1, &b->error_rate) || cfg_num(l, g, "soft_declines", false, 0, 1, &b->soft_declines) ||
	    cfg_num(l, g, "latency_load_ms", false, 0, 1e5, &b->load_ms))
		return -1;
	if (!b->name[0] || !b->account[0] || !b->region[0])
		return cfg_fail(l, g, "a backend needs a name, an account and a region");
	if (cfg_get(g, "settlement")) {
		if (sc_cur_mask(l, sc, g, "settlement", &b->settlement))
			return -1;
	} else {
		b->settlement = b->currencies;
	}
	if (!(s = cfg_get(g, "fees")))
		return cfg_fail(l, g, "backend '%s' has no fees", b->name);
	if (sc_fee(l, s, &b->fee))
		return -1;
	s = sc_list(l, g, "auth_rules", false, &rc);
	if (rc)
		return rc;
	for (i = 0; s && i < cfg_count(s); i++) {
		const struct cfg_node *r = cfg_at(s, i);

		if (i >= SIM_MAX_AUTH)
			return cfg_fail(l, r, "at most %d auth rules", SIM_MAX_AUTH);
		b->auth_rules[i].p = -1;
		if (!cfg_is_group(r) || cfg_keys(l, r, "", akeys) || sc_match(l, r, "match", &b->auth_rules[i].m) ||
		    cfg_num(l, r, "p", false, 0, 1, &b->auth_rules[i].p))
			return cfg_fail(l, r, "bad auth rule");
		if (b->auth_rules[i].p < 0)
			return cfg_fail(l, r, "an auth rule needs p");
		b->nauth = i + 1;
	}
	/* The account's rate limit: backends on one account share one bucket. */
	for (i = 0; i < sc->naccounts && strcmp(sc->accounts[i].name, b->account); i++)
		;
	if (i == sc->naccounts) {
		if (i >= SIM_MAX_ACCOUNTS)
			return cfg_fail(l, g, "too many accounts");
		memcpy(sc->accounts[i].name, b->account, SIM_NAME); /* both SIM_NAME, NUL-terminated */
		sc->accounts[i].rate = 100;
		sc->accounts[i].burst = 100;
		sc->naccounts++;
	}
	b->acct = i;
	if ((s = cfg_get(g, "rate_limit"))) {
		if (!cfg_is_group(s) || cfg_keys(l, s, "", rlkeys) ||
		    cfg_num(l, s, "rate", false, 0.01, 1e6, &sc->accounts[i].rate) ||
		    cfg_num(l, s, "burst", false, 1, 1e6, &sc->accounts[i].burst))
			return cfg_fail(l, s, "bad rate_limit");
	}
	return 0;
}

static int sc_traffic(struct cfg_ctx *l, struct sim_scenario *sc, const struct cfg_node *g)
{
	static const char *const keys[] = { "rate", "daily", "weekly", "start_hour", "start_wday", "surges",
		"retry", "classes", "segments", NULL };
	static const char *const skeys[] = { "start_s", "end_s", "ramp_s", "factor", NULL };
	static const char *const rkeys[] = { "share", "max", "backoff_s", NULL };
	static const char *const ckeys[] = { "name", "share", "kind", "method", "path", "hint", NULL };
	static const char *const gkeys[] = { "currency", "country", "region", "brand", "funding", "share",
		"amount", "amount_sigma", NULL };
	const struct cfg_node *s;
	double wday = 0, rmax = 2;
	int i, rc;

	if (!cfg_is_group(g))
		return cfg_fail(l, g, "'traffic' must be a group");
	if (cfg_keys(l, g, "", keys) || cfg_num(l, g, "rate", false, 0.001, 1e5, &sc->rate) ||
	    cfg_num(l, g, "start_hour", false, 0, 24, &sc->start_hour) || cfg_num(l, g, "start_wday", false, 0, 6, &wday))
		return -1;
	sc->start_wday = (int)wday;
	for (i = 0; i < 24; i++)
		sc->daily[i] = 1;
	for (i = 0; i < 7; i++)
		sc->weekly[i] = 1;
	if ((s = cfg_get(g, "daily"))) {
		if (cfg_count(s) != 24)
			return cfg_fail(l, s, "'daily' must hold 24 hourly multipliers");
		for (i = 0; i < 24; i++)
			if (cfg_elem_num(l, s, i, &sc->daily[i]))
				return -1;
	}
	if ((s = cfg_get(g, "weekly"))) {
		if (cfg_count(s) != 7)
			return cfg_fail(l, s, "'weekly' must hold 7 daily multipliers, Monday first");
		for (i = 0; i < 7; i++)
			if (cfg_elem_num(l, s, i, &sc->weekly[i]))
				return -1;
	}
	s = sc_list(l, g, "surges", false, &rc);
	if (rc)
		return rc;
	for (i = 0; s && i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		struct sim_surge *u = &sc->surges[i];

		if (i >= SIM_MAX_SURGES)
			return cfg_fail(l, e, "at most %d surges", SIM_MAX_SURGES);
		u->factor = 1;
		if (!cfg_is_group(e) || cfg_keys(l, e, "", skeys) || cfg_num(l, e, "start_s", false, 0, 1e9, &u->start_s) ||
		    cfg_num(l, e, "end_s", false, 0, 1e9, &u->end_s) || cfg_num(l, e, "ramp_s", false, 0, 1e9, &u->ramp_s) ||
		    cfg_num(l, e, "factor", false, 0, 1000, &u->factor))
			return cfg_fail(l, e, "bad surge");
		if (u->end_s <= u->start_s)
			return cfg_fail(l, e, "a surge must end after it starts");
		sc->nsurges = i + 1;
	}
	sc->retry_share = 0.5;
	sc->retry_backoff_s = 1;
	if ((s = cfg_get(g, "retry"))) {
		if (!cfg_is_group(s) || cfg_keys(l, s, "", rkeys) || cfg_num(l, s, "share", false, 0, 1, &sc->retry_share) ||
		    cfg_num(l, s, "max", false, 0, 20, &rmax) || cfg_num(l, s, "backoff_s", false, 0, 3600, &sc->retry_backoff_s))
			return cfg_fail(l, s, "bad retry");
	}
	sc->retry_max = (int)rmax;

	if (!(s = sc_list(l, g, "classes", true, &rc)))
		return rc;
	sc->checkout = -1;
	for (i = 0; i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		struct sim_class *c = &sc->classes[i];
		char kind[16] = "charge";

		if (i >= SIM_MAX_CLASSES)
			return cfg_fail(l, e, "at most %d classes", SIM_MAX_CLASSES);
		snprintf(c->method, sizeof(c->method), "POST");
		if (!cfg_is_group(e) || cfg_keys(l, e, "", ckeys) || sc_str(l, e, "name", c->name, sizeof(c->name)) ||
		    cfg_num(l, e, "share", false, 0, 1e6, &c->share) || sc_str(l, e, "kind", kind, sizeof(kind)) ||
		    sc_str(l, e, "method", c->method, sizeof(c->method)) || sc_str(l, e, "path", c->path, sizeof(c->path)) ||
		    sc_str(l, e, "hint", c->hint, sizeof(c->hint)))
			return cfg_fail(l, e, "bad class");
		if (!strcmp(kind, "charge"))
			c->kind = SIM_CHARGE;
		else if (!strcmp(kind, "object"))
			c->kind = SIM_OBJECT;
		else if (!strcmp(kind, "plain"))
			c->kind = SIM_PLAIN;
		else
			return cfg_fail(l, e, "kind must be charge, object or plain");
		if (!c->name[0] || !c->path[0])
			return cfg_fail(l, e, "a class needs a name and a path");
		if (c->kind == SIM_OBJECT && !strstr(c->path, "{id}"))
			return cfg_fail(l, e, "an object class's path needs {id}");
		if (!strcmp(c->name, "checkout"))
			sc->checkout = i;
		sc->nclasses = i + 1;
	}
	if (!(s = sc_list(l, g, "segments", true, &rc)))
		return rc;
	for (i = 0; i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		struct sim_segment *u = &sc->segs[i];
		char cur[SIM_CODE] = "";

		if (i >= SIM_MAX_SEGS)
			return cfg_fail(l, e, "at most %d segments", SIM_MAX_SEGS);
		u->amount_median = 5000;
		u->amount_sigma = 0.8;
		snprintf(u->brand, sizeof(u->brand), "visa");
		snprintf(u->funding, sizeof(u->funding), "credit");
		if (!cfg_is_group(e) || cfg_keys(l, e, "", gkeys) || sc_str(l, e, "currency", cur, sizeof(cur)) ||
		    sc_str(l, e, "country", u->country, sizeof(u->country)) ||
		    sc_str(l, e, "region", u->region, sizeof(u->region)) || sc_str(l, e, "brand", u->brand, sizeof(u->brand)) ||
		    sc_str(l, e, "funding", u->funding, sizeof(u->funding)) || cfg_num(l, e, "share", false, 0, 1e6, &u->share) ||
		    cfg_num(l, e, "amount", false, 1, 1e9, &u->amount_median) || cfg_num(l, e, "amount_sigma", false, 0, 3, &u->amount_sigma))
			return cfg_fail(l, e, "bad segment");
		if ((u->cur = sc_cur_index(sc, cur)) < 0)
			return cfg_fail(l, e, "segment currency '%s' is not in `currencies`", cur);
		if (strlen(u->country) != 2 || !u->region[0])
			return cfg_fail(l, e, "a segment needs a 2-letter country and a region");
		sc->nsegs = i + 1;
	}
	return 0;
}

static int sc_incident(struct cfg_ctx *l, struct sim_scenario *sc, const struct cfg_node *g, struct sim_incident *in)
{
	static const char *const keys[] = { "name", "kind", "backend", "start_s", "end_s", "mode", "error_rate",
		"factor", "to", "rate", "match", "detect", "ramp_s", "decline", NULL };
	static const char *const declines[SIM_INC_DECLINE_COUNT] = { "insufficient_funds", "generic_decline",
		"do_not_honor", "processing_error", "issuer_not_available" };
	static const char *const kinds[SIM_INC_COUNT] = { "outage", "brownout", "latency", "auth_drift",
		"decline_storm", "rate_limit" };
	char kind[32] = "", backend[SIM_NAME] = "", mode[16] = "503", decline[32] = "";
	int k;

	in->factor = 1;
	in->error_rate = 0.3;
	in->to = -1;
	in->rate = -1;
	if (!cfg_is_group(g) || cfg_keys(l, g, "", keys) || sc_str(l, g, "name", in->name, sizeof(in->name)) ||
	    sc_str(l, g, "kind", kind, sizeof(kind)) || sc_str(l, g, "backend", backend, sizeof(backend)) ||
	    cfg_num(l, g, "start_s", false, 0, 1e9, &in->start_s) || cfg_num(l, g, "end_s", false, 0, 1e9, &in->end_s) ||
	    sc_str(l, g, "mode", mode, sizeof(mode)) || cfg_num(l, g, "error_rate", false, 0, 1, &in->error_rate) ||
	    cfg_num(l, g, "factor", false, 0, 1e4, &in->factor) || cfg_num(l, g, "to", false, 0, 1, &in->to) ||
	    cfg_num(l, g, "rate", false, 0, 1e6, &in->rate) || sc_match(l, g, "match", &in->m) ||
	    cfg_num(l, g, "ramp_s", false, 0, 1e9, &in->ramp_s) || sc_str(l, g, "decline", decline, sizeof(decline)))
		return -1;
	for (k = 0; k < SIM_INC_COUNT && strcmp(kinds[k], kind); k++)
		;
	if (k == SIM_INC_COUNT)
		return cfg_fail(l, g, "incident kind must be outage, brownout, latency, auth_drift, decline_storm "
		                     "or rate_limit");
	in->kind = (enum sim_incident_kind)k;
	/* Absent: a storm's extra declines are the customer's insufficient_funds, an auth
	 * drift's the usual draw (soft codes, -1). Outages and brownouts answer Stripe's 5xx
	 * (api_error), which carry no decline code. */
	in->decline = in->kind == SIM_INC_DECLINES ? SIM_INC_DECLINE_FUNDS : -1;
	if (decline[0]) {
		if (in->kind != SIM_INC_DECLINES && in->kind != SIM_INC_AUTH_DRIFT)
			return cfg_fail(l, g, "decline applies to decline_storm and auth_drift (a %s's errors are "
			                     "Stripe's 5xx, api_error, without a decline code)", kind);
		for (k = 0; k < SIM_INC_DECLINE_COUNT && strcmp(declines[k], decline); k++)
			;
		if (k == SIM_INC_DECLINE_COUNT)
			return cfg_fail(l, g, "decline must be insufficient_funds, generic_decline, do_not_honor, "
			                     "processing_error or issuer_not_available");
		in->decline = k;
	}
	if (!in->name[0])
		snprintf(in->name, sizeof(in->name), "%s", kind);
	if (in->end_s <= in->start_s)
		return cfg_fail(l, g, "incident '%s' must end after it starts", in->name);
	in->backend = -1;
	if (backend[0] && (in->backend = sc_backend_index(sc, backend)) < 0)
		return cfg_fail(l, g, "incident '%s': no backend '%s'", in->name, backend);
	if (in->kind != SIM_INC_DECLINES && in->backend < 0)
		return cfg_fail(l, g, "incident '%s' needs a backend", in->name);
	if (in->kind == SIM_INC_OUTAGE && strcmp(mode, "503") && strcmp(mode, "timeout"))
		return cfg_fail(l, g, "outage mode must be \"503\" or \"timeout\"");
	in->timeouts = !strcmp(mode, "timeout");
	if (in->kind == SIM_INC_AUTH_DRIFT && in->to < 0)
		return cfg_fail(l, g, "auth_drift needs `to`");
	if (in->kind == SIM_INC_RATE_LIMIT && in->rate < 0)
		return cfg_fail(l, g, "rate_limit needs `rate`");
	in->detect = in->backend >= 0 && in->kind != SIM_INC_RATE_LIMIT && in->kind != SIM_INC_DECLINES;
	if (cfg_bool(l, g, "detect", &in->detect))
		return -1;
	return 0;
}

/* endpoint_limits: true per-endpoint buckets; each counts the classes whose request
 * (method, and path with "{id}" standing for an object id) its glob matches. After the
 * backends and the traffic. */
static int sc_endpoints(struct cfg_ctx *l, struct sim_scenario *sc, const struct cfg_node *root)
{
	static const char *const keys[] = { "account", "method", "path", "rate", "burst", NULL };
	const struct cfg_node *s;
	int i, c, rc;

	if (!(s = sc_list(l, root, "endpoint_limits", false, &rc)))
		return rc;
	for (i = 0; i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		struct sim_endpoint *ep = &sc->endpoints[i];
		char acct[SIM_NAME] = "";

		if (i >= SIM_MAX_ENDPOINTS)
			return cfg_fail(l, e, "at most %d endpoint limits", SIM_MAX_ENDPOINTS);
		ep->rate = ep->burst = -1;
		if (!cfg_is_group(e) || cfg_keys(l, e, "", keys) || sc_str(l, e, "account", acct, sizeof(acct)) ||
		    sc_str(l, e, "method", ep->method, sizeof(ep->method)) || sc_str(l, e, "path", ep->path, sizeof(ep->path)) ||
		    cfg_num(l, e, "rate", false, 0.01, 1e6, &ep->rate) || cfg_num(l, e, "burst", false, 1, 1e6, &ep->burst))
			return -1;
		if ((ep->acct = sc_account_index(sc, acct)) < 0 || !ep->path[0] || ep->rate < 0)
			return cfg_fail(l, e, "an endpoint limit needs an account of some backend, a path and a rate");
		if (ep->burst < 0)
			ep->burst = ep->rate;
		for (c = 0; c < sc->nclasses; c++) {
			const struct sim_class *cl = &sc->classes[c];
			const char *brace = strstr(cl->path, "{id}");
			char req[160];

			if (brace)
				snprintf(req, sizeof(req), "%.*spi_0%s", (int)(brace - cl->path), cl->path, brace + 4);
			else
				snprintf(req, sizeof(req), "%s", cl->path);
			if ((!ep->method[0] || !strcasecmp(ep->method, cl->method)) && fnmatch(ep->path, req, 0) == 0)
				ep->classes |= 1U << c;
		}
		sc->nendpoints = i + 1;
	}
	return 0;
}

int sc_load(const char *path, struct sim_scenario *sc, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "description", "policy", "policy_noforecast", "seed",
		"duration_s", "tick_ms", "headline", "primary", "currencies", "backends", "rate_limits", "traffic",
		"incidents", "haproxy", "endpoint_limits", NULL };
	static const char *const hkeys[] = { "maxconn", "timeout_queue_s", NULL };
	static const char *const rlkeys[] = { "account", "rate", "burst", NULL };
	static const char *const heads[] = { "checkout_success", "auth_rate", "fees_bps", "upstream_429" };
	struct cfg_ctx l = { path, err, errlen, CFG_WORDS_SCENARIO };
	const struct cfg_node *root, *s;
	char pol[256] = "", nofc[256] = "", head[32] = "checkout_success", primary[SIM_NAME] = "";
	double seed = 1;
	struct cfg_file *cf;
	const char *slash;
	int i, rc = -1;

	memset(sc, 0, sizeof(*sc));
	snprintf(sc->file, sizeof(sc->file), "%s", path);
	slash = strrchr(path, '/');
	snprintf(sc->dir, sizeof(sc->dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	sc->duration_s = 600;
	sc->tick_ms = 50;
	sc->maxconn = 128;
	sc->timeout_queue_s = 5;
	cf = cfg_read_file(path, sc->dir, err, errlen); /* @include is relative to the scenario */
	if (!cf)
		return -1;
	root = cfg_root(cf);
	if (cfg_keys(&l, root, "", keys) || sc_str(&l, root, "name", sc->name, sizeof(sc->name)) ||
	    sc_str(&l, root, "description", sc->description, sizeof(sc->description)) ||
	    sc_str(&l, root, "policy", pol, sizeof(pol)) || sc_str(&l, root, "policy_noforecast", nofc, sizeof(nofc)) ||
	    cfg_num(&l, root, "seed", false, 0, 9007199254740992.0, &seed) ||
	    cfg_num(&l, root, "duration_s", false, 1, 1e8, &sc->duration_s) || cfg_num(&l, root, "tick_ms", false, 1, 60000, &sc->tick_ms) ||
	    sc_str(&l, root, "headline", head, sizeof(head)) || sc_str(&l, root, "primary", primary, sizeof(primary)))
		goto out;
	sc->seed = (uint64_t)seed;
	if ((s = cfg_get(root, "haproxy"))) {
		double mc = sc->maxconn;

		if (!cfg_is_group(s)) {
			cfg_fail(&l, s, "'haproxy' must be a group: { maxconn; timeout_queue_s; }");
			goto out;
		}
		if (cfg_keys(&l, s, "", hkeys) || cfg_num(&l, s, "maxconn", false, 1, 1e6, &mc) ||
		    cfg_num(&l, s, "timeout_queue_s", false, 0.001, 3600, &sc->timeout_queue_s))
			goto out;
		sc->maxconn = (int)mc;
	}
	if (!sc->name[0] || !pol[0]) {
		cfg_fail(&l, root, "a scenario needs a name and a policy");
		goto out;
	}
	for (i = 0; i < 4 && strcmp(heads[i], head); i++)
		;
	if (i == 4) {
		cfg_fail(&l, cfg_get(root, "headline"),
		        "headline must be checkout_success, auth_rate, fees_bps or upstream_429");
		goto out;
	}
	sc->headline = (enum sim_headline)i;
	snprintf(sc->policy, sizeof(sc->policy), "%s%s%s", pol[0] == '/' ? "" : sc->dir, pol[0] == '/' ? "" : "/", pol);
	if (nofc[0])
		snprintf(sc->policy_nofc, sizeof(sc->policy_nofc), "%s%s%s", nofc[0] == '/' ? "" : sc->dir,
		         nofc[0] == '/' ? "" : "/", nofc);

	if (!(s = cfg_get(root, "currencies")) || !cfg_is_group(s)) {
		cfg_fail(&l, s ? s : root, "'currencies' must be a group: code = US cents per minor unit");
		goto out;
	}
	for (i = 0; i < cfg_count(s); i++) {
		const struct cfg_node *c = cfg_at(s, i);

		if (i >= SIM_MAX_CUR) {
			cfg_fail(&l, c, "at most %d currencies", SIM_MAX_CUR);
			goto out;
		}
		snprintf(sc->cur[i].code, SIM_CODE, "%s", cfg_name(c));
		sc->cur[i].usd = 1;
		if (cfg_num(&l, s, sc->cur[i].code, false, 1e-6, 1e6, &sc->cur[i].usd))
			goto out;
		sc->ncur = i + 1;
	}
	if (!(s = sc_list(&l, root, "backends", true, &rc)))
		goto out;
	rc = -1;
	for (i = 0; i < cfg_count(s); i++) {
		if (i >= SIM_MAX_BACKENDS) {
			cfg_fail(&l, s, "at most %d backends", SIM_MAX_BACKENDS);
			goto out;
		}
		if (sc_backend(&l, sc, cfg_at(s, i), &sc->backends[i]))
			goto out;
		sc->nbackends = i + 1;
		if (sc_backend_index(sc, sc->backends[i].name) != i) {
			cfg_fail(&l, cfg_at(s, i), "backend '%s' twice", sc->backends[i].name);
			goto out;
		}
	}
	if (sc->nbackends == 0) {
		cfg_fail(&l, s, "no backends");
		goto out;
	}
	/* rate_limits: per-account overrides of what the (often included) backends say. */
	s = sc_list(&l, root, "rate_limits", false, &rc);
	if (rc)
		goto out;
	rc = -1;
	for (i = 0; s && i < cfg_count(s); i++) {
		const struct cfg_node *e = cfg_at(s, i);
		char acct[SIM_NAME] = "";
		int a;

		if (!cfg_is_group(e) || cfg_keys(&l, e, "", rlkeys) || sc_str(&l, e, "account", acct, sizeof(acct)))
			goto out;
		if ((a = sc_account_index(sc, acct)) < 0) {
			cfg_fail(&l, e, "rate_limits: no backend has account '%s'", acct);
			goto out;
		}
		if (cfg_num(&l, e, "rate", false, 0.01, 1e6, &sc->accounts[a].rate) ||
		    cfg_num(&l, e, "burst", false, 1, 1e6, &sc->accounts[a].burst))
			goto out;
	}
	sc->primary = 0;
	if (primary[0] && (sc->primary = sc_backend_index(sc, primary)) < 0) {
		cfg_fail(&l, root, "primary: no backend '%s'", primary);
		goto out;
	}
	if (!(s = cfg_get(root, "traffic"))) {
		cfg_fail(&l, root, "'traffic' is missing");
		goto out;
	}
	if (sc_traffic(&l, sc, s))
		goto out;
	if (sc_endpoints(&l, sc, root))
		goto out;
	s = sc_list(&l, root, "incidents", false, &rc);
	if (rc)
		goto out;
	rc = -1;
	for (i = 0; s && i < cfg_count(s); i++) {
		if (i >= SIM_MAX_INCIDENTS) {
			cfg_fail(&l, s, "at most %d incidents", SIM_MAX_INCIDENTS);
			goto out;
		}
		if (sc_incident(&l, sc, cfg_at(s, i), &sc->incidents[i]))
			goto out;
		sc->nincidents = i + 1;
	}
	rc = 0;
out:
	cfg_close(cf);
	return rc;
}

/* --scale: every scenario time (duration, surges, incidents) times x; shapes stay. */
void sc_scale(struct sim_scenario *sc, double x)
{
	int i;

	sc->duration_s *= x;
	for (i = 0; i < sc->nsurges; i++) {
		sc->surges[i].start_s *= x;
		sc->surges[i].end_s *= x;
		sc->surges[i].ramp_s *= x;
	}
	for (i = 0; i < sc->nincidents; i++) {
		sc->incidents[i].start_s *= x;
		sc->incidents[i].end_s *= x;
		sc->incidents[i].ramp_s *= x;
	}
}
