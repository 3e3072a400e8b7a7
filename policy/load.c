/* load.c: reads and validates a policy file into a struct policy, through cfg.h (the
 * libconfig helpers) and the settings tables of settings.c (the singleton sections).
 * Strict: an unknown key, a wrong type, a value out of range or a reference to something
 * undefined is an error written as "file:line: message"; the first error stops the load.
 * Allocates (boot or control thread only); never logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aimd.h"
#include "anomaly.h"
#include "breaker.h"
#include "cfg.h"
#include "classify.h"
#include "forecast.h"
#include "outcome.h"
#include "policy-t.h"
#include "policy.h"
#include "pstr.h"
#include "settings.h"
#include "srate.h"

/* The loader's context: where errors go (c first: a struct ld * is a struct cfg_ctx *)
 * and what is being filled. */
struct ld {
	struct cfg_ctx c;
	struct policy *p;
};

/* ---- lookups by name -------------------------------------------------------------- */

static int ld_backend_idx(const struct policy *p, const char *name)
{
	int i;

	for (i = 0; i < p->nbackends; i++)
		if (strcmp(p->backends[i].name, name) == 0)
			return i;
	return -1;
}

static int ld_class_idx(const struct policy *p, const char *name)
{
	int i;

	for (i = 0; i < p->nclasses; i++)
		if (strcmp(p->classes[i].name, name) == 0)
			return i;
	return -1;
}

/* Region name → index; "other" is the implicit region of unlisted countries. */
static int ld_region_idx(const struct policy *p, const char *name)
{
	int i;

	for (i = 0; i <= p->nregions; i++)
		if (strcmp(p->region_names[i], name) == 0)
			return i == p->nregions ? POL_REGION_OTHER : i;
	return -1;
}

/* Interns a currency code; returns its index or -1 (error written). */
static int ld_currency(struct ld *l, const struct cfg_node *s, const char *code)
{
	struct policy *p = l->p;
	uint32_t v = pstr_currency(code, (uint32_t)strlen(code));
	int i;

	if (!v)
		return cfg_fail(&l->c, s, "'%s' is not an ISO 4217 currency code", code);
	for (i = 0; i < p->ncurrencies; i++)
		if (p->currencies[i] == v)
			return i;
	if (p->ncurrencies == POL_MAX_CURRENCIES)
		return cfg_fail(&l->c, s, "more than %d distinct currencies", POL_MAX_CURRENCIES);
	p->currencies[p->ncurrencies] = v;
	return p->ncurrencies++;
}

static int ld_currency_mask(struct ld *l, const struct cfg_node *a, uint64_t *mask)
{
	int i, n = a ? cfg_count(a) : 0;

	*mask = 0;
	for (i = 0; i < n; i++) {
		int c = ld_currency(l, cfg_at(a, i), cfg_elem_str(a, i));

		if (c < 0)
			return -1;
		*mask |= 1ULL << c;
	}
	return 0;
}

/* A name an HAProxy config or a reason token can carry. */
static int ld_check_name(struct ld *l, const struct cfg_node *s, const char *what, const char *v)
{
	const char *c;

	for (c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '-' || *c == '.'))
			return cfg_fail(&l->c, s, "%s '%s' may only hold letters, digits, '_', '-' and '.'", what, v);
	return 0;
}

/* ---- singleton sections: read through their tables (settings.c) -------------------- */

static int ld_section(struct ld *l, const struct cfg_node *root, const struct pol_section *sec)
{
	return pol_section_read(&l->c, root, sec, l->p);
}

/* The module's own check, reported at the section's line (or the file's, when the
 * section is absent). */
static int ld_check(struct ld *l, const struct cfg_node *root, const char *what, const char *why)
{
	return why ? cfg_fail(&l->c, cfg_get(root, what), "%s: %s", what, why) : 0;
}

/* The fleet's settings that depend on each other; NULL when they hold. */
static const char *ld_fleet_check(const struct pol_fleet *f)
{
	const char *c;

	if (f->node_ttl_ms < 2 * f->heartbeat_ms)
		return "'node_ttl_ms' must be at least twice 'heartbeat_ms' (one lost heartbeat drops no node)";
	if (f->lease_ms && f->lease_ahead_ms < f->lease_ms)
		return "'lease_ahead_ms' must be at least 'lease_ms' (a lease covers the time to the next one)";
	if (f->redis[0] && strncmp(f->redis, "unix:", 5) != 0 &&
	    (!(c = strrchr(f->redis, ':')) || c == f->redis || !c[1]))
		return "'redis': \"host:port\" or \"unix:/path\"";
	if (strncmp(f->redis, "unix:", 5) == 0 && f->redis[5] != '/')
		return "'redis': a unix socket is an absolute path (\"unix:/path\")";
	for (c = f->node; *c; c++)
		if (*c <= ' ' || *c == '\x7f')
			return "'node': no spaces or control characters";
	for (c = f->prefix; *c; c++)
		if (*c <= ' ' || *c == '\x7f')
			return "'prefix': no spaces or control characters";
	return NULL;
}

/* ---- regions and fee schedules ----------------------------------------------------- */

static int ld_regions(struct ld *l, const struct cfg_node *root)
{
	struct policy *p = l->p;
	const struct cfg_node *g;
	int i, j, n, rc;

	memset(p->country_region, POL_REGION_OTHER, sizeof(p->country_region));
	rc = cfg_member(&l->c, root, "regions", CFG_GROUP, false, &g);
	n = rc == 0 ? cfg_count(g) : 0;
	if (rc < 0)
		return -1;
	if (n > POL_MAX_REGIONS)
		return cfg_fail(&l->c, g, "'regions' has %d entries, at most %d", n, POL_MAX_REGIONS);
	for (i = 0; i < n; i++) {
		const struct cfg_node *r = cfg_at(g, i);
		const char *name = cfg_name(r);

		if (strcmp(name, "other") == 0 || strcmp(name, "any") == 0)
			return cfg_fail(&l->c, r, "region name '%s' is reserved", name);
		if (!cfg_is_seq(r))
			return cfg_fail(&l->c, r, "region '%s' must be an array of country codes", name);
		if (cfg_copy(&l->c, r, "region", name, p->region_names[i], sizeof(p->region_names[i])))
			return -1;
		for (j = 0; j < cfg_count(r); j++) {
			const struct cfg_node *e = cfg_at(r, j);
			const char *cc = cfg_string(e);
			int a, b;

			if (!cc || strlen(cc) != 2 ||
			    (a = pstr_lower(cc[0]) - 'a') < 0 || a > 25 || (b = pstr_lower(cc[1]) - 'a') < 0 || b > 25)
				return cfg_fail(&l->c, e, "region '%s': expected ISO 3166-1 alpha-2 country codes", name);
			if (p->country_region[a * 26 + b] != POL_REGION_OTHER)
				return cfg_fail(&l->c, e, "country '%s' is in two regions", cc);
			p->country_region[a * 26 + b] = (uint8_t)i;
		}
	}
	p->nregions = n;
	snprintf(p->region_names[n], sizeof(p->region_names[n]), "other");
	return 0;
}

static int ld_funding(const char *v)
{
	static const char *const names[POL_FUND_COUNT] = { "any", "credit", "debit", "prepaid" };
	int i;

	for (i = 0; i < POL_FUND_COUNT; i++)
		if (strcmp(names[i], v) == 0)
			return i;
	return -1;
}

static int ld_fee_rate(struct ld *l, const struct cfg_node *g, struct pol_fee_rate *r)
{
	static const char *const keys[] = { "card_region", "funding", "percent", "interchange", "scheme",
		"markup", "fixed", "all_in", NULL };
	char name[POL_NAME_MAX + 1] = "any";
	double ic = -1, scheme = 0, markup = 0;
	int v;

	r->pct = -1;
	if (cfg_keys(&l->c, g, "a fee rate", keys) ||
	    cfg_str(&l->c, g, "card_region", 0, name, sizeof(name)) < 0)
		return -1;
	if (strcmp(name, "any") == 0)
		r->region = POL_REGION_ANY;
	else if ((v = ld_region_idx(l->p, name)) >= 0)
		r->region = (uint8_t)v;
	else
		return cfg_fail(&l->c, g, "undefined region '%s'", name);
	snprintf(name, sizeof(name), "any");
	if (cfg_str(&l->c, g, "funding", 0, name, sizeof(name)) < 0)
		return -1;
	if ((v = ld_funding(name)) < 0)
		return cfg_fail(&l->c, g, "'funding' must be \"any\", \"credit\", \"debit\" or \"prepaid\"");
	r->funding = (uint8_t)v;
	if (cfg_num(&l->c, g, "percent", false, 0, 100, &r->pct) ||
	    cfg_num(&l->c, g, "interchange", false, 0, 100, &ic) ||
	    cfg_num(&l->c, g, "scheme", false, 0, 100, &scheme) ||
	    cfg_num(&l->c, g, "markup", false, 0, 100, &markup))
		return -1;
	if ((r->pct >= 0) == (ic >= 0))
		return cfg_fail(&l->c, g, "a fee rate needs either 'percent' or IC++ ('interchange', 'scheme', 'markup')");
	if (ic >= 0)
		r->pct = ic + scheme + markup;
	else if (cfg_get(g, "scheme") || cfg_get(g, "markup"))
		return cfg_fail(&l->c, g, "'scheme' and 'markup' go with 'interchange', not with 'percent'");
	r->has_fixed = cfg_get(g, "fixed") != NULL;
	return cfg_num(&l->c, g, "fixed", false, 0, 1e6, &r->fixed) || cfg_bool(&l->c, g, "all_in", &r->all_in) ? -1 : 0;
}

static int ld_fees(struct ld *l, const struct cfg_node *root)
{
	struct policy *p = l->p;
	const struct cfg_node *lst, *rates;
	int i, j;

	if (cfg_grouplist(&l->c, root, "fee_schedules", true, POL_MAX_FEES, &lst))
		return -1;
	for (i = 0; i < cfg_count(lst); i++) {
		const struct cfg_node *g = cfg_at(lst, i);
		struct pol_fee *f = &p->fees[i];

		f->line = (int)cfg_line(g);
		if (pol_section_read(&l->c, g, &pol_sec_fee, f) ||
		    cfg_grouplist(&l->c, g, "rates", false, POL_MAX_FEE_RATES, &rates) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->fees[j].name, f->name) == 0)
				return cfg_fail(&l->c, g, "fee schedule '%s' is defined twice", f->name);
		for (j = 0; rates && j < cfg_count(rates); j++)
			if (ld_fee_rate(l, cfg_at(rates, j), &f->rates[j]))
				return -1;
		f->nrates = j;
		p->nfees = i + 1;
	}
	return 0;
}

/* ---- backends ----------------------------------------------------------------------- */

static int ld_account(struct ld *l, const struct cfg_node *s, const char *id)
{
	struct policy *p = l->p;
	int i;

	for (i = 0; i < p->naccounts; i++)
		if (strcmp(p->accounts[i].id, id) == 0)
			return i;
	if (p->naccounts == POL_MAX_ACCOUNTS)
		return cfg_fail(&l->c, s, "more than %d accounts", POL_MAX_ACCOUNTS);
	snprintf(p->accounts[i].id, sizeof(p->accounts[i].id), "%s", id);
	return p->naccounts++;
}

/* auth_rates: per-region overrides of the auth_rate the table has spread. */
static int ld_auth_rates(struct ld *l, const struct cfg_node *g, struct pol_backend *b)
{
	const struct cfg_node *m;
	double v;
	int i, rc;

	rc = cfg_member(&l->c, g, "auth_rates", CFG_GROUP, false, &m);
	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < cfg_count(m); i++) {
		const struct cfg_node *e = cfg_at(m, i);
		int r = ld_region_idx(l->p, cfg_name(e));

		if (r < 0)
			return cfg_fail(&l->c, e, "auth_rates: undefined region '%s'", cfg_name(e));
		if (cfg_num(&l->c, m, cfg_name(e), true, 0, 1, &v))
			return -1;
		b->p_auth[r] = (float)v;
	}
	return 0;
}

static int ld_backends(struct ld *l, const struct cfg_node *root)
{
	struct policy *p = l->p;
	const struct cfg_node *lst, *cur, *set;
	char ref[POL_NAME_MAX + 1];
	int i, j, v;

	if (cfg_grouplist(&l->c, root, "backends", true, POL_MAX_BACKENDS, &lst))
		return -1;
	for (i = 0; i < cfg_count(lst); i++) {
		const struct cfg_node *g = cfg_at(lst, i);
		struct pol_backend *b = &p->backends[i];

		b->line = (int)cfg_line(g);
		if (pol_section_read(&l->c, g, &pol_sec_backend, b) ||
		    ld_check_name(l, g, "backend name", b->name) ||
		    cfg_str(&l->c, g, "region", CFG_REQUIRED, ref, sizeof(ref)))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->backends[j].name, b->name) == 0)
				return cfg_fail(&l->c, g, "backend '%s' is defined twice", b->name);
		if ((v = ld_region_idx(p, ref)) < 0)
			return cfg_fail(&l->c, cfg_get(g, "region"), "undefined region '%s'", ref);
		b->region = (uint8_t)v;
		if ((v = ld_account(l, g, b->account)) < 0)
			return -1;
		b->account_idx = v;
		if (cfg_str(&l->c, g, "fee_schedule", CFG_REQUIRED, ref, sizeof(ref)))
			return -1;
		for (j = 0; j < p->nfees; j++)
			if (strcmp(p->fees[j].name, ref) == 0)
				break;
		if (j == p->nfees)
			return cfg_fail(&l->c, cfg_get(g, "fee_schedule"), "undefined fee schedule '%s'", ref);
		b->fee = j;
		if (cfg_strlist(&l->c, g, "currencies", true, POL_MAX_CURRENCIES, &cur) ||
		    ld_currency_mask(l, cur, &b->currencies) ||
		    cfg_strlist(&l->c, g, "settlement", false, POL_MAX_CURRENCIES, &set) < 0 ||
		    ld_currency_mask(l, set, &b->settlement) ||
		    ld_auth_rates(l, g, b))
			return -1;
		if (!set)
			b->settlement = b->currencies;
		p->nbackends = i + 1;
	}
	for (i = 0; i < p->nbackends; i++)
		for (j = 0; j < p->nbackends; j++)
			if (p->backends[i].account_idx == p->backends[j].account_idx)
				p->backends[i].same_account |= 1ULL << j;

	p->default_backend = 0;
	if ((v = cfg_str(&l->c, root, "default_backend", 0, ref, sizeof(ref))) < 0)
		return -1;
	if (v == 0 && (p->default_backend = ld_backend_idx(p, ref)) < 0)
		return cfg_fail(&l->c, cfg_get(root, "default_backend"), "undefined backend '%s'", ref);
	return 0;
}

/* Backend names or entity names in array `key` → mask. */
static int ld_backend_mask(struct ld *l, const struct cfg_node *a, bool entities, uint64_t *mask)
{
	const struct policy *p = l->p;
	int i, j;

	for (i = 0; a && i < cfg_count(a); i++) {
		const char *v = cfg_elem_str(a, i);
		uint64_t m = 0;

		for (j = 0; j < p->nbackends; j++)
			if (strcmp(entities ? p->backends[j].entity : p->backends[j].name, v) == 0)
				m |= 1ULL << j;
		if (!m)
			return cfg_fail(&l->c, cfg_at(a, i), "undefined %s '%s'",
			               entities ? "entity" : "backend", v);
		*mask |= m;
	}
	return 0;
}

/* ---- classes and classification ------------------------------------------------------ */

static int ld_classes(struct ld *l, const struct cfg_node *root)
{
	struct policy *p = l->p;
	const struct cfg_node *lst;
	double total = 0;
	int i, j;

	if (cfg_grouplist(&l->c, root, "classes", true, POL_MAX_CLASSES, &lst))
		return -1;
	for (i = 0; i < cfg_count(lst); i++) {
		const struct cfg_node *g = cfg_at(lst, i);
		struct pol_class *c = &p->classes[i];

		c->line = (int)cfg_line(g);
		if (pol_section_read(&l->c, g, &pol_sec_class, c) || ld_check_name(l, g, "class name", c->name))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->classes[j].name, c->name) == 0)
				return cfg_fail(&l->c, g, "class '%s' is defined twice", c->name);
		total += c->reserve;
		if (total > 0.9 + 1e-9)
			return cfg_fail(&l->c, g, "class reserves add up to more than 0.9");
		p->nclasses = i + 1;
	}
	/* A class may use a budget only down to what classes served before it reserved. */
	for (i = 0; i < p->nclasses; i++)
		for (j = 0; j < p->nclasses; j++)
			if (p->classes[j].prio < p->classes[i].prio)
				p->classes[i].reserved_above += p->classes[j].reserve;
	for (i = 0; i < p->nclasses; i++) {
		p->classes[i].most_protected = true;
		for (j = 0; j < p->nclasses; j++)
			if (p->classes[j].shed_order > p->classes[i].shed_order)
				p->classes[i].most_protected = false;
	}
	return 0;
}

static int ld_method(struct ld *l, const struct cfg_node *g, char *buf, size_t size)
{
	int rc = cfg_str(&l->c, g, "method", 0, buf, size);
	char *c;

	if (rc < 0)
		return -1;
	for (c = buf; *c; c++) {
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
		if (*c < 'A' || *c > 'Z')
			return cfg_fail(&l->c, cfg_get(g, "method"), "'method' must be an HTTP method");
	}
	return 0;
}

static int ld_pattern(struct ld *l, const struct cfg_node *g, char *buf, size_t size)
{
	const char *why;
	int rc = cfg_str(&l->c, g, "path", 0, buf, size);

	if (rc < 0)
		return -1;
	if (rc == 0 && (why = cls_pattern_check(buf)))
		return cfg_fail(&l->c, cfg_get(g, "path"), "path pattern '%s': %s", buf, why);
	return 0;
}

static int ld_classify(struct ld *l, const struct cfg_node *root)
{
	static const char *const keys[] = { "default", "trust_hints", "rules", NULL };
	static const char *const rkeys[] = { "method", "path", "hint", "class", NULL };
	struct policy *p = l->p;
	const struct cfg_node *g, *lst;
	char ref[POL_NAME_MAX + 1];
	int i, rc;

	p->default_class = 0;
	rc = cfg_member(&l->c, root, "classify", CFG_GROUP, false, &g);
	if (rc)
		return rc < 0 ? -1 : 0;
	if (cfg_keys(&l->c, g, "classify", keys) ||
	    cfg_bool(&l->c, g, "trust_hints", &p->trust_hints) ||
	    (rc = cfg_str(&l->c, g, "default", 0, ref, sizeof(ref))) < 0)
		return -1;
	if (rc == 0 && (p->default_class = ld_class_idx(p, ref)) < 0)
		return cfg_fail(&l->c, cfg_get(g, "default"), "undefined class '%s'", ref);
	if (cfg_grouplist(&l->c, g, "rules", false, POL_MAX_RULES, &lst) < 0)
		return -1;
	for (i = 0; lst && i < cfg_count(lst); i++) {
		const struct cfg_node *r = cfg_at(lst, i);
		struct pol_rule *ru = &p->rules[i];

		ru->line = (int)cfg_line(r);
		if (cfg_keys(&l->c, r, "a classification rule", rkeys) ||
		    ld_method(l, r, ru->method, sizeof(ru->method)) ||
		    ld_pattern(l, r, ru->path, sizeof(ru->path)) ||
		    cfg_str(&l->c, r, "hint", 0, ru->hint, sizeof(ru->hint)) < 0 ||
		    cfg_str(&l->c, r, "class", CFG_REQUIRED, ref, sizeof(ref)))
			return -1;
		if ((ru->cls = ld_class_idx(p, ref)) < 0)
			return cfg_fail(&l->c, cfg_get(r, "class"), "undefined class '%s'", ref);
		p->nrules = i + 1;
	}
	return 0;
}

/* ---- compliance, connect ------------------------------------------------------------ */

static int ld_compliance(struct ld *l, const struct cfg_node *root)
{
	static const char *const keys[] = { "name", "card_regions", "currencies", "entities", "backends", NULL };
	struct policy *p = l->p;
	const struct cfg_node *lst, *a, *ents, *bes;
	int i, j;

	if (cfg_grouplist(&l->c, root, "compliance", false, POL_MAX_COMPLIANCE, &lst) < 0)
		return -1;
	for (i = 0; lst && i < cfg_count(lst); i++) {
		const struct cfg_node *g = cfg_at(lst, i);
		struct pol_compliance *c = &p->compliance[i];

		c->line = (int)cfg_line(g);
		snprintf(c->name, sizeof(c->name), "rule%d", i + 1);
		if (cfg_keys(&l->c, g, "a compliance rule", keys) ||
		    cfg_str(&l->c, g, "name", 0, c->name, sizeof(c->name)) < 0 ||
		    cfg_strlist(&l->c, g, "card_regions", false, POL_MAX_REGIONS + 1, &a) < 0)
			return -1;
		for (j = 0; a && j < cfg_count(a); j++) {
			int r = ld_region_idx(p, cfg_elem_str(a, j));

			if (r < 0)
				return cfg_fail(&l->c, cfg_at(a, j), "undefined region '%s'", cfg_elem_str(a, j));
			c->regions |= 1U << r;
		}
		if (cfg_strlist(&l->c, g, "currencies", false, POL_MAX_CURRENCIES, &a) < 0 ||
		    ld_currency_mask(l, a, &c->currencies) ||
		    cfg_strlist(&l->c, g, "entities", false, POL_MAX_BACKENDS, &ents) < 0 ||
		    cfg_strlist(&l->c, g, "backends", false, POL_MAX_BACKENDS, &bes) < 0 ||
		    ld_backend_mask(l, ents, true, &c->allowed) ||
		    ld_backend_mask(l, bes, false, &c->allowed))
			return -1;
		if (!ents && !bes)
			return cfg_fail(&l->c, g, "a compliance rule needs 'entities' or 'backends'");
		p->ncompliance = i + 1;
	}
	return 0;
}

static int ld_connect(struct ld *l, const struct cfg_node *root)
{
	static const char *const keys[] = { "account", "backends", NULL };
	struct policy *p = l->p;
	const struct cfg_node *lst, *a;
	int i, j;

	if (cfg_grouplist(&l->c, root, "connect", false, POL_MAX_CONNECT, &lst) < 0)
		return -1;
	for (i = 0; lst && i < cfg_count(lst); i++) {
		const struct cfg_node *g = cfg_at(lst, i);
		struct pol_connect *c = &p->connect[i];

		if (cfg_keys(&l->c, g, "a connect entry", keys) ||
		    cfg_str(&l->c, g, "account", CFG_REQUIRED, c->account, sizeof(c->account)) ||
		    cfg_strlist(&l->c, g, "backends", true, POL_MAX_BACKENDS, &a) ||
		    ld_backend_mask(l, a, false, &c->backends))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->connect[j].account, c->account) == 0)
				return cfg_fail(&l->c, g, "connect account '%s' is listed twice", c->account);
		p->nconnect = i + 1;
	}
	return 0;
}

/* ---- throttling ---------------------------------------------------------------------- */

static int ld_budget(struct ld *l, const struct cfg_node *g, struct pol_budget *b)
{
	if (cfg_num(&l->c, g, "rate", false, 0.01, 1e6, &b->rate) ||
	    cfg_num(&l->c, g, "burst", false, 1, 1e6, &b->burst))
		return -1;
	return 0;
}

static int ld_throttle(struct ld *l, const struct cfg_node *root)
{
	static const char *const akeys[] = { "account", "rate", "burst", NULL };
	static const char *const ekeys[] = { "name", "method", "path", "rate", "burst", NULL };
	struct policy *p = l->p;
	const struct cfg_node *g = cfg_get(root, "throttle"), *lst;
	char id[POL_NAME_MAX + 1];
	int i, j;

	if (ld_section(l, root, &pol_sec_throttle))
		return -1;
	for (i = 0; i < p->naccounts; i++)
		p->accounts[i].budget = p->thr.account;
	if (cfg_grouplist(&l->c, g, "accounts", false, POL_MAX_ACCOUNTS, &lst) < 0)
		return -1;
	for (i = 0; lst && i < cfg_count(lst); i++) {
		const struct cfg_node *e = cfg_at(lst, i);

		if (cfg_keys(&l->c, e, "a throttle account", akeys) || cfg_str(&l->c, e, "account", CFG_REQUIRED, id, sizeof(id)))
			return -1;
		for (j = 0; j < p->naccounts; j++)
			if (strcmp(p->accounts[j].id, id) == 0)
				break;
		if (j == p->naccounts)
			return cfg_fail(&l->c, e, "undefined account '%s' (no backend uses it)", id);
		if (ld_budget(l, e, &p->accounts[j].budget))
			return -1;
	}
	if (cfg_grouplist(&l->c, g, "endpoints", false, POL_MAX_ENDPOINTS, &lst) < 0)
		return -1;
	for (i = 0; lst && i < cfg_count(lst); i++) {
		const struct cfg_node *e = cfg_at(lst, i);
		struct pol_endpoint *ep = &p->thr.endpoints[i];

		ep->line = (int)cfg_line(e);
		ep->budget = p->thr.endpoint;
		if (cfg_keys(&l->c, e, "a throttle endpoint", ekeys) ||
		    cfg_str(&l->c, e, "name", CFG_REQUIRED, ep->name, sizeof(ep->name)) ||
		    ld_check_name(l, e, "endpoint name", ep->name) ||
		    ld_method(l, e, ep->method, sizeof(ep->method)) ||
		    ld_pattern(l, e, ep->path, sizeof(ep->path)) ||
		    ld_budget(l, e, &ep->budget))
			return -1;
		if (!ep->path[0])
			return cfg_fail(&l->c, e, "missing 'path'");
		for (j = 0; j < i; j++)
			if (strcmp(p->thr.endpoints[j].name, ep->name) == 0)
				return cfg_fail(&l->c, e, "endpoint '%s' is defined twice", ep->name);
		p->thr.nendpoints = i + 1;
	}
	return 0;
}

static int ld_learning(struct ld *l, const struct cfg_node *root)
{
	struct policy *p = l->p;
	int i;

	if (ld_section(l, root, &pol_sec_learning) || ld_check(l, root, "learning", srt_cfg_check(&p->learn.cfg)))
		return -1;
	for (i = 0; i < p->nclasses; i++)
		if (p->classes[i].explore < 0)
			p->classes[i].explore = p->learn.explore;
	return 0;
}

/* ---- pin sizing ---------------------------------------------------------------------- */

/* Keyed requests per second the budgets may admit: every admitted request may carry an
 * Idempotency-Key, so the idempotency table must hold this × its TTL. */
static double ld_keyed_rate(const struct policy *p)
{
	double r = 0;
	int i;

	for (i = 0; i < p->naccounts; i++)
		r += p->accounts[i].budget.rate;
	return r;
}

uint64_t pol_pin_need(const struct policy *p)
{
	double n = ld_keyed_rate(p) * p->pin.idem_ttl_s;

	return n > 536870912.0 ? 536870912u : (uint64_t)(n + 0.5);
}

static void ld_pin_size(struct policy *p)
{
	if (p->pin.idem_slots == 0)
		p->pin.idem_slots = (uint32_t)pol_pin_need(p);
	if (p->pin.idem_slots == 0)
		p->pin.idem_slots = 64;
}

/* "10.4 h", "3 d", "45 min", "12 s" */
static void ld_duration(char *b, size_t n, double s)
{
	if (s >= 2 * 86400)
		snprintf(b, n, "%.3g d", s / 86400);
	else if (s >= 3600)
		snprintf(b, n, "%.3g h", s / 3600);
	else if (s >= 60)
		snprintf(b, n, "%.3g min", s / 60);
	else
		snprintf(b, n, "%.3g s", s);
}

/* "174", "420000", "0.0253" */
static void ld_rate(char *b, size_t n, double r)
{
	snprintf(b, n, r >= 100 ? "%.0f" : "%.3g", r);
}

int pol_pin_guarantee(const struct policy *p, char *buf, size_t len)
{
	static const char *const what[] = { "idempotency", "object", "connected account" };
	uint32_t cap[3] = { p->pin.idem_slots, p->pin.object_slots, p->pin.account_slots };
	uint32_t ttl[3] = { p->pin.idem_ttl_s, p->pin.object_ttl_s, p->pin.account_ttl_s };
	double rate = ld_keyed_rate(p);
	char a[32], b[32], r1[32], r2[32];
	size_t n = 0;
	int i, shorter = 0;

	if (len)
		buf[0] = 0;
	for (i = 0; i < 3 && n < len; i++) {
		double up_to = (double)cap[i] / ttl[i];

		ld_duration(a, sizeof(a), ttl[i]);
		ld_rate(r1, sizeof(r1), up_to);
		ld_rate(r2, sizeof(r2), rate);
		if (i == 0 && up_to + 1e-9 < rate) {
			ld_duration(b, sizeof(b), cap[i] / rate);
			n += (size_t)snprintf(buf + n, len - n,
			                      "%s pins are kept %s up to %s req/s of keyed requests; at the budgets' "
			                      "%s req/s, for %s (pinning.idem_slots = %u, the budgets need %llu)\n",
			                      what[i], a, r1, r2, b, cap[i], (unsigned long long)pol_pin_need(p));
			shorter = 1;
		} else {
			n += (size_t)snprintf(buf + n, len - n, "%s pins are kept %s up to %s new %s/s%s\n", what[i],
			                      a, r1, i == 0 ? "keys" : i == 1 ? "objects" : "accounts",
			                      i == 0 ? " (what the budgets admit)" : "");
		}
	}
	return shorter;
}

/* ---- entry points ------------------------------------------------------------------ */

static struct policy *ld_build(const struct cfg_file *f, const char *name, char *err, size_t errlen)
{
	static const char *const keys[] = { "agent", "regions", "fee_schedules", "backends",
		"default_backend", "classes", "classify", "compliance", "connect", "pinning", "throttle",
		"scoring", "breaker", "learning", "anomaly", "forecast", "adaptive", "outcomes", "webhooks", "fleet", NULL };
	struct ld l = { .c = { .file = name, .err = err, .errlen = errlen } };
	const struct cfg_node *root = cfg_root(f);
	struct brk_cfg *b;

	l.p = calloc(1, sizeof(*l.p));
	if (!l.p) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	b = &l.p->breaker.cfg;
	snprintf(l.p->file, sizeof(l.p->file), "%s", name);
	if (cfg_keys(&l.c, root, "the policy", keys) ||
	    ld_section(&l, root, &pol_sec_agent) ||
	    ld_regions(&l, root) ||
	    ld_fees(&l, root) ||
	    ld_backends(&l, root) ||
	    ld_classes(&l, root) ||
	    ld_classify(&l, root) ||
	    ld_compliance(&l, root) ||
	    ld_connect(&l, root) ||
	    ld_section(&l, root, &pol_sec_pinning) ||
	    ld_throttle(&l, root) ||
	    (ld_pin_size(l.p), 0) ||
	    ld_section(&l, root, &pol_sec_scoring) ||
	    ld_section(&l, root, &pol_sec_breaker) ||
	    (b->open_max_us < b->open_base_us &&
	     cfg_fail(&l.c, cfg_get(root, "breaker"), "breaker: 'open_max_s' must be >= 'open_s'")) ||
	    ld_check(&l, root, "breaker", brk_cfg_check(b)) ||
	    ld_learning(&l, root) ||
	    ld_section(&l, root, &pol_sec_anomaly) ||
	    ld_check(&l, root, "anomaly", anom_cfg_check(&l.p->anomaly.cfg)) ||
	    ld_section(&l, root, &pol_sec_forecast) ||
	    ld_check(&l, root, "forecast", fc_cfg_check(&l.p->forecast.cfg)) ||
	    ld_section(&l, root, &pol_sec_adaptive) ||
	    ld_section(&l, root, &pol_sec_outcomes) ||
	    ld_section(&l, root, &pol_sec_webhooks) ||
	    (l.p->hook.nurls && !l.p->hook.secret_file[0] && !l.p->hook.secret_env[0] &&
	     cfg_fail(&l.c, cfg_get(root, "webhooks"), "webhooks: 'urls' needs 'secret_file' or 'secret_env'")) ||
	    (l.p->hook.backoff_max_s < l.p->hook.backoff_s &&
	     cfg_fail(&l.c, cfg_get(root, "webhooks"), "webhooks: 'backoff_max_s' must be >= 'backoff_s'")) ||
	    ld_section(&l, root, &pol_sec_fleet) ||
	    ld_check(&l, root, "fleet", ld_fleet_check(&l.p->fleet)))
		goto fail;
	return l.p;
fail:
	free(l.p);
	return NULL;
}

struct policy *pol_load(const char *path, char *err, size_t errlen)
{
	struct policy *p = NULL;
	struct cfg_file *f;
	char dir[4096];
	const char *slash = strrchr(path, '/');

	/* @include paths are relative to the including file's directory. */
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
	else
		snprintf(dir, sizeof(dir), ".");
	if ((f = cfg_read_file(path, dir, err, errlen)))
		p = ld_build(f, path, err, errlen);
	cfg_close(f);
	return p;
}

struct policy *pol_load_string(const char *text, const char *name, char *err, size_t errlen)
{
	struct policy *p = NULL;
	struct cfg_file *f;

	/* A string has no directory to resolve @include against, and a fuzzer must not be
	 * able to make the loader open files. */
	if (strstr(text, "@include")) {
		snprintf(err, errlen, "%s:0: @include is only allowed in files", name);
		return NULL;
	}
	if ((f = cfg_read_string(text, name, err, errlen)))
		p = ld_build(f, name, err, errlen);
	cfg_close(f);
	return p;
}

void pol_free(struct policy *p)
{
	free(p);
}

const struct pol_agent *pol_agent(const struct policy *p)
{
	return &p->agent;
}

const struct pol_fleet *pol_fleet(const struct policy *p)
{
	return &p->fleet;
}
