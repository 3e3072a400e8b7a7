/* load.c: reads and validates a policy file with libconfig into a struct policy.
 * The only file of the project that includes libconfig. Strict: an unknown key, a wrong
 * type, a value out of range or a reference to something undefined is an error written
 * as "file:line: message"; the first error stops the load. Allocates (boot or control
 * thread only); never logs. */
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aimd.h"
#include "anomaly.h"
#include "breaker.h"
#include "classify.h"
#include "forecast.h"
#include "outcome.h"
#include "policy-t.h"
#include "policy.h"
#include "pstr.h"
#include "srate.h"

/* The loader's context: where errors go and what is being filled. */
struct ld {
	const char *file;
	char *err;
	size_t errlen;
	struct policy *p;
};

#define LD_MISSING 1 /* an optional key is absent: the caller keeps its default */

static const char *ld_where(const struct ld *l, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : l->file;
}

/* Writes "file:line: message" and returns -1. */
__attribute__((format(printf, 3, 4)))
static int ld_fail(struct ld *l, const config_setting_t *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(l->err, l->errlen, "%s:%u: %s", ld_where(l, s), s ? config_setting_source_line(s) : 0, msg);
	return -1;
}

static const char *ld_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:  return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:  return "an integer";
	case CONFIG_TYPE_FLOAT:  return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:   return "a boolean";
	case CONFIG_TYPE_ARRAY:  return "an array";
	case CONFIG_TYPE_LIST:   return "a list";
	}
	return "something";
}

/* Checks that every member of group g is named in keys (NULL-terminated). */
static int ld_keys(struct ld *l, const config_setting_t *g, const char *what, const char *const keys[])
{
	int i, n, k;

	if (!config_setting_is_group(g))
		return ld_fail(l, g, "%s must be a group { ... }", what);
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, i);

		for (k = 0; keys[k]; k++)
			if (strcmp(keys[k], config_setting_name(m)) == 0)
				break;
		if (!keys[k])
			return ld_fail(l, m, "unknown key '%s' in %s", config_setting_name(m), what);
	}
	return 0;
}

/* Member `key` of g, checked to be of `type` (INT accepts INT64, FLOAT accepts both
 * integers). Returns 0 and *out, LD_MISSING when absent and optional, or -1. */
static int ld_member(struct ld *l, const config_setting_t *g, const char *key, int type, bool required,
                     config_setting_t **out)
{
	config_setting_t *m = config_setting_get_member(g, key);
	int t;

	*out = m;
	if (!m) {
		if (required)
			return ld_fail(l, g, "missing '%s'", key);
		return LD_MISSING;
	}
	t = config_setting_type(m);
	if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64) ||
	    (type == CONFIG_TYPE_FLOAT && (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)) ||
	    (type == CONFIG_TYPE_LIST && t == CONFIG_TYPE_ARRAY))
		return 0;
	return ld_fail(l, m, "'%s' must be %s, not %s", key, ld_type_name(type), ld_type_name(t));
}

static int ld_int(struct ld *l, const config_setting_t *g, const char *key, bool required,
                  long long min, long long max, int *out)
{
	config_setting_t *m;
	long long v;
	int rc = ld_member(l, g, key, CONFIG_TYPE_INT, required, &m);

	if (rc)
		return rc < 0 ? -1 : 0;
	v = config_setting_get_int64(m);
	if (config_setting_type(m) == CONFIG_TYPE_INT)
		v = config_setting_get_int(m);
	if (v < min || v > max)
		return ld_fail(l, m, "'%s' = %lld is out of range %lld..%lld", key, v, min, max);
	*out = (int)v;
	return 0;
}

static int ld_num(struct ld *l, const config_setting_t *g, const char *key, bool required,
                  double min, double max, double *out)
{
	config_setting_t *m;
	double v;
	int rc = ld_member(l, g, key, CONFIG_TYPE_FLOAT, required, &m);

	if (rc)
		return rc < 0 ? -1 : 0;
	switch (config_setting_type(m)) {
	case CONFIG_TYPE_INT:   v = config_setting_get_int(m); break;
	case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(m); break;
	default:                v = config_setting_get_float(m); break;
	}
	if (!(v >= min && v <= max)) /* also rejects NaN */
		return ld_fail(l, m, "'%s' = %g is out of range %g..%g", key, v, min, max);
	*out = v;
	return 0;
}

static int ld_bool(struct ld *l, const config_setting_t *g, const char *key, bool *out)
{
	config_setting_t *m;
	int rc = ld_member(l, g, key, CONFIG_TYPE_BOOL, false, &m);

	if (rc)
		return rc < 0 ? -1 : 0;
	*out = config_setting_get_bool(m) != 0;
	return 0;
}

/* Copies a non-empty string of at most size-1 bytes into buf. */
static int ld_copy(struct ld *l, const config_setting_t *s, const char *key, const char *v,
                   char *buf, size_t size)
{
	size_t n = strlen(v);

	if (n == 0)
		return ld_fail(l, s, "'%s' must not be empty", key);
	if (n >= size)
		return ld_fail(l, s, "'%s' is too long (%zu bytes, at most %zu)", key, n, size - 1);
	memcpy(buf, v, n + 1);
	return 0;
}

/* String member. Returns 0 (copied), LD_MISSING, or -1. */
static int ld_str(struct ld *l, const config_setting_t *g, const char *key, bool required,
                  char *buf, size_t size)
{
	config_setting_t *m;
	int rc = ld_member(l, g, key, CONFIG_TYPE_STRING, required, &m);

	if (rc)
		return rc;
	return ld_copy(l, m, key, config_setting_get_string(m), buf, size);
}

/* Array or list member whose elements are all of `elem` type (strings, or groups);
 * *out = the aggregate, NULL when absent. Returns 0, LD_MISSING or -1. */
static int ld_aggregate(struct ld *l, const config_setting_t *g, const char *key, bool required,
                        int max, int elem, config_setting_t **out)
{
	int rc = ld_member(l, g, key, CONFIG_TYPE_LIST, required, out);
	int i, n;

	if (rc)
		return rc;
	n = config_setting_length(*out);
	if (n == 0 && required)
		return ld_fail(l, *out, "'%s' must not be empty", key);
	if (n > max)
		return ld_fail(l, *out, "'%s' has %d entries, at most %d", key, n, max);
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(*out, i);

		if (config_setting_type(e) != elem)
			return ld_fail(l, e, elem == CONFIG_TYPE_STRING ? "'%s' must hold strings only" :
			               "'%s' must be a list of groups ( { ... }, ... )", key);
	}
	return 0;
}

static int ld_strlist(struct ld *l, const config_setting_t *g, const char *key, bool required,
                      int max, config_setting_t **out)
{
	return ld_aggregate(l, g, key, required, max, CONFIG_TYPE_STRING, out);
}

static int ld_grouplist(struct ld *l, const config_setting_t *g, const char *key, bool required,
                        int max, config_setting_t **out)
{
	return ld_aggregate(l, g, key, required, max, CONFIG_TYPE_GROUP, out);
}

static const char *ld_elem(const config_setting_t *a, int i)
{
	return config_setting_get_string(config_setting_get_elem(a, i));
}

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
static int ld_currency(struct ld *l, const config_setting_t *s, const char *code)
{
	struct policy *p = l->p;
	uint32_t v = pstr_currency(code, (uint32_t)strlen(code));
	int i;

	if (!v)
		return ld_fail(l, s, "'%s' is not an ISO 4217 currency code", code);
	for (i = 0; i < p->ncurrencies; i++)
		if (p->currencies[i] == v)
			return i;
	if (p->ncurrencies == POL_MAX_CURRENCIES)
		return ld_fail(l, s, "more than %d distinct currencies", POL_MAX_CURRENCIES);
	p->currencies[p->ncurrencies] = v;
	return p->ncurrencies++;
}

static int ld_currency_mask(struct ld *l, const config_setting_t *a, uint64_t *mask)
{
	int i, n = a ? config_setting_length(a) : 0;

	*mask = 0;
	for (i = 0; i < n; i++) {
		int c = ld_currency(l, config_setting_get_elem(a, i), ld_elem(a, i));

		if (c < 0)
			return -1;
		*mask |= 1ULL << c;
	}
	return 0;
}

/* A name an HAProxy config or a reason token can carry. */
static int ld_check_name(struct ld *l, const config_setting_t *s, const char *what, const char *v)
{
	const char *c;

	for (c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '-' || *c == '.'))
			return ld_fail(l, s, "%s '%s' may only hold letters, digits, '_', '-' and '.'", what, v);
	return 0;
}

/* ---- agent ------------------------------------------------------------------------ */

static int ld_listen_addr(struct ld *l, const config_setting_t *s, const char *v)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(v, "unix:", 5) == 0)
		return (v[5] == '/' && strlen(v + 5) < 108) ? 0 :
		       ld_fail(l, s, "listen '%s': a unix socket needs an absolute path under 108 bytes", v);
	if (v[0] == '[') {
		colon = strchr(v, ']');
		if (!colon || colon == v + 1 || colon[1] != ':')
			return ld_fail(l, s, "listen '%s': expected \"[v6]:port\"", v);
		colon++;
	} else {
		colon = strrchr(v, ':');
		if (!colon || colon == v || memchr(v, ':', (size_t)(colon - v)))
			return ld_fail(l, s, "listen '%s': expected \"host:port\", \"[v6]:port\" or \"unix:/path\"", v);
	}
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535)
		return ld_fail(l, s, "listen '%s': port must be 1..65535", v);
	return 0;
}

static int ld_agent(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "listen", "workers", "max_connections", "max_frame_size",
		"idle_timeout_ms", "admin_socket", "metrics", "state_file", "log_level", NULL };
	static const char *const levels[] = { "debug", "info", "warning", "error", NULL };
	static const char *const optional[] = { "admin_socket", "metrics", "state_file", "log_level" };
	struct policy *p = l->p;
	struct pol_agent *a = &p->agent;
	config_setting_t *g, *lst;
	const char **dst[4] = { &a->admin_socket, &a->metrics, &a->state_file, &a->log_level };
	int i, rc;

	a->workers = 0;
	a->max_connections = 512;
	a->max_frame_size = 16380;
	a->idle_timeout_ms = 30000;
	a->log_level = "info";
	snprintf(p->listen_buf[0], sizeof(p->listen_buf[0]), "127.0.0.1:12345");
	a->listen[0] = p->listen_buf[0];
	a->nlisten = 1;

	if (ld_member(l, root, "agent", CONFIG_TYPE_GROUP, false, &g))
		return g ? -1 : 0;
	if (ld_keys(l, g, "agent", keys) ||
	    ld_int(l, g, "workers", false, 0, 64, &a->workers) ||
	    ld_int(l, g, "max_connections", false, 1, 65536, &a->max_connections) ||
	    ld_int(l, g, "max_frame_size", false, 256, 65532, &a->max_frame_size) ||
	    ld_int(l, g, "idle_timeout_ms", false, 100, 86400000, &a->idle_timeout_ms))
		return -1;
	rc = ld_strlist(l, g, "listen", false, POL_MAX_LISTENERS, &lst);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		if (config_setting_length(lst) == 0)
			return ld_fail(l, lst, "'listen' must not be empty");
		a->nlisten = config_setting_length(lst);
		for (i = 0; i < a->nlisten; i++) {
			config_setting_t *e = config_setting_get_elem(lst, i);

			if (ld_copy(l, e, "listen", ld_elem(lst, i), p->listen_buf[i], sizeof(p->listen_buf[i])) ||
			    ld_listen_addr(l, e, p->listen_buf[i]))
				return -1;
			a->listen[i] = p->listen_buf[i];
		}
	}
	for (i = 0; i < 4; i++) {
		rc = ld_str(l, g, optional[i], false, p->agent_buf[i], sizeof(p->agent_buf[i]));
		if (rc < 0)
			return -1;
		if (rc == 0)
			*dst[i] = p->agent_buf[i];
	}
	for (i = 0; levels[i]; i++)
		if (strcmp(levels[i], a->log_level) == 0)
			break;
	if (!levels[i])
		return ld_fail(l, config_setting_get_member(g, "log_level"),
		               "'log_level' must be \"debug\", \"info\", \"warning\" or \"error\"");
	a->log_level = levels[i];
	if (a->metrics && ld_listen_addr(l, config_setting_get_member(g, "metrics"), a->metrics))
		return -1;
	return 0;
}

/* ---- regions and fee schedules ----------------------------------------------------- */

static int ld_regions(struct ld *l, const config_setting_t *root)
{
	struct policy *p = l->p;
	config_setting_t *g;
	int i, j, n, rc;

	memset(p->country_region, POL_REGION_OTHER, sizeof(p->country_region));
	rc = ld_member(l, root, "regions", CONFIG_TYPE_GROUP, false, &g);
	n = rc == 0 ? config_setting_length(g) : 0;
	if (rc < 0)
		return -1;
	if (n > POL_MAX_REGIONS)
		return ld_fail(l, g, "'regions' has %d entries, at most %d", n, POL_MAX_REGIONS);
	for (i = 0; i < n; i++) {
		config_setting_t *r = config_setting_get_elem(g, i);
		const char *name = config_setting_name(r);

		if (strcmp(name, "other") == 0 || strcmp(name, "any") == 0)
			return ld_fail(l, r, "region name '%s' is reserved", name);
		if (!config_setting_is_array(r) && !config_setting_is_list(r))
			return ld_fail(l, r, "region '%s' must be an array of country codes", name);
		if (ld_copy(l, r, "region", name, p->region_names[i], sizeof(p->region_names[i])))
			return -1;
		for (j = 0; j < config_setting_length(r); j++) {
			config_setting_t *e = config_setting_get_elem(r, j);
			const char *cc = config_setting_get_string(e);
			int a, b;

			if (!cc || strlen(cc) != 2 ||
			    (a = pstr_lower(cc[0]) - 'a') < 0 || a > 25 || (b = pstr_lower(cc[1]) - 'a') < 0 || b > 25)
				return ld_fail(l, e, "region '%s': expected ISO 3166-1 alpha-2 country codes", name);
			if (p->country_region[a * 26 + b] != POL_REGION_OTHER)
				return ld_fail(l, e, "country '%s' is in two regions", cc);
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

static int ld_fee_rate(struct ld *l, const config_setting_t *g, struct pol_fee_rate *r)
{
	static const char *const keys[] = { "card_region", "funding", "percent", "interchange", "scheme",
		"markup", "fixed", "all_in", NULL };
	char name[POL_NAME_MAX + 1] = "any";
	double ic = -1, scheme = 0, markup = 0;
	int v;

	r->pct = -1;
	if (ld_keys(l, g, "a fee rate", keys) ||
	    ld_str(l, g, "card_region", false, name, sizeof(name)) < 0)
		return -1;
	if (strcmp(name, "any") == 0)
		r->region = POL_REGION_ANY;
	else if ((v = ld_region_idx(l->p, name)) >= 0)
		r->region = (uint8_t)v;
	else
		return ld_fail(l, g, "undefined region '%s'", name);
	snprintf(name, sizeof(name), "any");
	if (ld_str(l, g, "funding", false, name, sizeof(name)) < 0)
		return -1;
	if ((v = ld_funding(name)) < 0)
		return ld_fail(l, g, "'funding' must be \"any\", \"credit\", \"debit\" or \"prepaid\"");
	r->funding = (uint8_t)v;
	if (ld_num(l, g, "percent", false, 0, 100, &r->pct) ||
	    ld_num(l, g, "interchange", false, 0, 100, &ic) ||
	    ld_num(l, g, "scheme", false, 0, 100, &scheme) ||
	    ld_num(l, g, "markup", false, 0, 100, &markup))
		return -1;
	if ((r->pct >= 0) == (ic >= 0))
		return ld_fail(l, g, "a fee rate needs either 'percent' or IC++ ('interchange', 'scheme', 'markup')");
	if (ic >= 0)
		r->pct = ic + scheme + markup;
	else if (config_setting_get_member(g, "scheme") || config_setting_get_member(g, "markup"))
		return ld_fail(l, g, "'scheme' and 'markup' go with 'interchange', not with 'percent'");
	r->has_fixed = config_setting_get_member(g, "fixed") != NULL;
	return ld_num(l, g, "fixed", false, 0, 1e6, &r->fixed) || ld_bool(l, g, "all_in", &r->all_in) ? -1 : 0;
}

static int ld_fees(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "name", "percent", "fixed", "cross_border", "fx", "rates", NULL };
	struct policy *p = l->p;
	config_setting_t *lst, *rates;
	int i, j;

	if (ld_grouplist(l, root, "fee_schedules", true, POL_MAX_FEES, &lst))
		return -1;
	for (i = 0; i < config_setting_length(lst); i++) {
		config_setting_t *g = config_setting_get_elem(lst, i);
		struct pol_fee *f = &p->fees[i];

		f->line = config_setting_source_line(g);
		if (ld_keys(l, g, "a fee schedule", keys) ||
		    ld_str(l, g, "name", true, f->name, sizeof(f->name)) ||
		    ld_num(l, g, "percent", true, 0, 100, &f->pct) ||
		    ld_num(l, g, "fixed", false, 0, 1e6, &f->fixed) ||
		    ld_num(l, g, "cross_border", false, 0, 100, &f->cross_border_pct) ||
		    ld_num(l, g, "fx", false, 0, 100, &f->fx_pct) ||
		    ld_grouplist(l, g, "rates", false, POL_MAX_FEE_RATES, &rates) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->fees[j].name, f->name) == 0)
				return ld_fail(l, g, "fee schedule '%s' is defined twice", f->name);
		for (j = 0; rates && j < config_setting_length(rates); j++)
			if (ld_fee_rate(l, config_setting_get_elem(rates, j), &f->rates[j]))
				return -1;
		f->nrates = j;
		p->nfees = i + 1;
	}
	return 0;
}

/* ---- backends ----------------------------------------------------------------------- */

static int ld_account(struct ld *l, const config_setting_t *s, const char *id)
{
	struct policy *p = l->p;
	int i;

	for (i = 0; i < p->naccounts; i++)
		if (strcmp(p->accounts[i].id, id) == 0)
			return i;
	if (p->naccounts == POL_MAX_ACCOUNTS)
		return ld_fail(l, s, "more than %d accounts", POL_MAX_ACCOUNTS);
	snprintf(p->accounts[i].id, sizeof(p->accounts[i].id), "%s", id);
	return p->naccounts++;
}

static int ld_auth_rates(struct ld *l, const config_setting_t *g, struct pol_backend *b)
{
	config_setting_t *m;
	double prior = 0.9, v;
	int i, rc;

	if (ld_num(l, g, "auth_rate", false, 0, 1, &prior))
		return -1;
	for (i = 0; i < POL_MAX_REGIONS + 2; i++)
		b->p_auth[i] = (float)prior;
	rc = ld_member(l, g, "auth_rates", CONFIG_TYPE_GROUP, false, &m);
	if (rc)
		return rc < 0 ? -1 : 0;
	for (i = 0; i < config_setting_length(m); i++) {
		const config_setting_t *e = config_setting_get_elem(m, i);
		int r = ld_region_idx(l->p, config_setting_name(e));

		if (r < 0)
			return ld_fail(l, e, "auth_rates: undefined region '%s'", config_setting_name(e));
		if (ld_num(l, m, config_setting_name(e), true, 0, 1, &v))
			return -1;
		b->p_auth[r] = (float)v;
	}
	return 0;
}

static int ld_backends(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "name", "account", "entity", "region", "currencies", "settlement",
		"fee_schedule", "enabled", "connect", "latency_ms", "auth_rate", "auth_rates", NULL };
	struct policy *p = l->p;
	config_setting_t *lst, *cur, *set;
	char ref[POL_NAME_MAX + 1];
	int i, j, v;

	if (ld_grouplist(l, root, "backends", true, POL_MAX_BACKENDS, &lst))
		return -1;
	for (i = 0; i < config_setting_length(lst); i++) {
		config_setting_t *g = config_setting_get_elem(lst, i);
		struct pol_backend *b = &p->backends[i];

		b->line = config_setting_source_line(g);
		b->enabled = true;
		b->latency_ms = 300;
		if (ld_keys(l, g, "a backend", keys) ||
		    ld_str(l, g, "name", true, b->name, sizeof(b->name)) ||
		    ld_check_name(l, g, "backend name", b->name) ||
		    ld_str(l, g, "account", true, b->account, sizeof(b->account)) ||
		    ld_str(l, g, "entity", true, b->entity, sizeof(b->entity)) ||
		    ld_str(l, g, "region", true, ref, sizeof(ref)))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->backends[j].name, b->name) == 0)
				return ld_fail(l, g, "backend '%s' is defined twice", b->name);
		if ((v = ld_region_idx(p, ref)) < 0)
			return ld_fail(l, config_setting_get_member(g, "region"), "undefined region '%s'", ref);
		b->region = (uint8_t)v;
		if ((v = ld_account(l, g, b->account)) < 0)
			return -1;
		b->account_idx = v;
		if (ld_str(l, g, "fee_schedule", true, ref, sizeof(ref)))
			return -1;
		for (j = 0; j < p->nfees; j++)
			if (strcmp(p->fees[j].name, ref) == 0)
				break;
		if (j == p->nfees)
			return ld_fail(l, config_setting_get_member(g, "fee_schedule"), "undefined fee schedule '%s'", ref);
		b->fee = j;
		if (ld_strlist(l, g, "currencies", true, POL_MAX_CURRENCIES, &cur) ||
		    ld_currency_mask(l, cur, &b->currencies) ||
		    ld_strlist(l, g, "settlement", false, POL_MAX_CURRENCIES, &set) < 0 ||
		    ld_currency_mask(l, set, &b->settlement) ||
		    ld_bool(l, g, "enabled", &b->enabled) ||
		    ld_bool(l, g, "connect", &b->connect) ||
		    ld_num(l, g, "latency_ms", false, 0, 600000, &b->latency_ms) ||
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
	if ((v = ld_str(l, root, "default_backend", false, ref, sizeof(ref))) < 0)
		return -1;
	if (v == 0 && (p->default_backend = ld_backend_idx(p, ref)) < 0)
		return ld_fail(l, config_setting_get_member(root, "default_backend"), "undefined backend '%s'", ref);
	return 0;
}

/* Backend names or entity names in array `key` → mask. */
static int ld_backend_mask(struct ld *l, const config_setting_t *a, bool entities, uint64_t *mask)
{
	const struct policy *p = l->p;
	int i, j;

	for (i = 0; a && i < config_setting_length(a); i++) {
		const char *v = ld_elem(a, i);
		uint64_t m = 0;

		for (j = 0; j < p->nbackends; j++)
			if (strcmp(entities ? p->backends[j].entity : p->backends[j].name, v) == 0)
				m |= 1ULL << j;
		if (!m)
			return ld_fail(l, config_setting_get_elem(a, i), "undefined %s '%s'",
			               entities ? "entity" : "backend", v);
		*mask |= m;
	}
	return 0;
}

/* ---- classes and classification ------------------------------------------------------ */

static int ld_classes(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "name", "priority", "offset_ms", "reserve", "shed_order",
		"queue_ms", "explore", NULL };
	struct policy *p = l->p;
	config_setting_t *lst;
	double total = 0;
	int i, j;

	if (ld_grouplist(l, root, "classes", true, POL_MAX_CLASSES, &lst))
		return -1;
	for (i = 0; i < config_setting_length(lst); i++) {
		config_setting_t *g = config_setting_get_elem(lst, i);
		struct pol_class *c = &p->classes[i];

		c->line = config_setting_source_line(g);
		c->shed_order = 1;
		c->explore = -1; /* learning.explore, once it is known */
		if (ld_keys(l, g, "a class", keys) ||
		    ld_str(l, g, "name", true, c->name, sizeof(c->name)) ||
		    ld_check_name(l, g, "class name", c->name) ||
		    ld_int(l, g, "priority", false, -2047, 2047, &c->prio) ||
		    ld_int(l, g, "offset_ms", false, -524287, 524287, &c->offset_ms) ||
		    ld_num(l, g, "reserve", false, 0, 0.9, &c->reserve) ||
		    ld_int(l, g, "shed_order", false, 1, 1000, &c->shed_order) ||
		    ld_int(l, g, "queue_ms", false, 0, 60000, &c->queue_ms) ||
		    ld_num(l, g, "explore", false, 0, 0.5, &c->explore))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->classes[j].name, c->name) == 0)
				return ld_fail(l, g, "class '%s' is defined twice", c->name);
		total += c->reserve;
		if (total > 0.9 + 1e-9)
			return ld_fail(l, g, "class reserves add up to more than 0.9");
		p->nclasses = i + 1;
	}
	/* A class may use a budget only down to what classes served before it reserved. */
	for (i = 0; i < p->nclasses; i++)
		for (j = 0; j < p->nclasses; j++)
			if (p->classes[j].prio < p->classes[i].prio)
				p->classes[i].reserved_above += p->classes[j].reserve;
	return 0;
}

static int ld_method(struct ld *l, const config_setting_t *g, char *buf, size_t size)
{
	int rc = ld_str(l, g, "method", false, buf, size);
	char *c;

	if (rc < 0)
		return -1;
	for (c = buf; *c; c++) {
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
		if (*c < 'A' || *c > 'Z')
			return ld_fail(l, config_setting_get_member(g, "method"), "'method' must be an HTTP method");
	}
	return 0;
}

static int ld_pattern(struct ld *l, const config_setting_t *g, char *buf, size_t size)
{
	const char *why;
	int rc = ld_str(l, g, "path", false, buf, size);

	if (rc < 0)
		return -1;
	if (rc == 0 && (why = cls_pattern_check(buf)))
		return ld_fail(l, config_setting_get_member(g, "path"), "path pattern '%s': %s", buf, why);
	return 0;
}

static int ld_classify(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "default", "trust_hints", "rules", NULL };
	static const char *const rkeys[] = { "method", "path", "hint", "class", NULL };
	struct policy *p = l->p;
	config_setting_t *g, *lst;
	char ref[POL_NAME_MAX + 1];
	int i, rc;

	p->default_class = 0;
	rc = ld_member(l, root, "classify", CONFIG_TYPE_GROUP, false, &g);
	if (rc)
		return rc < 0 ? -1 : 0;
	if (ld_keys(l, g, "classify", keys) ||
	    ld_bool(l, g, "trust_hints", &p->trust_hints) ||
	    (rc = ld_str(l, g, "default", false, ref, sizeof(ref))) < 0)
		return -1;
	if (rc == 0 && (p->default_class = ld_class_idx(p, ref)) < 0)
		return ld_fail(l, config_setting_get_member(g, "default"), "undefined class '%s'", ref);
	if (ld_grouplist(l, g, "rules", false, POL_MAX_RULES, &lst) < 0)
		return -1;
	for (i = 0; lst && i < config_setting_length(lst); i++) {
		config_setting_t *r = config_setting_get_elem(lst, i);
		struct pol_rule *ru = &p->rules[i];

		ru->line = config_setting_source_line(r);
		if (ld_keys(l, r, "a classification rule", rkeys) ||
		    ld_method(l, r, ru->method, sizeof(ru->method)) ||
		    ld_pattern(l, r, ru->path, sizeof(ru->path)) ||
		    ld_str(l, r, "hint", false, ru->hint, sizeof(ru->hint)) < 0 ||
		    ld_str(l, r, "class", true, ref, sizeof(ref)))
			return -1;
		if ((ru->cls = ld_class_idx(p, ref)) < 0)
			return ld_fail(l, config_setting_get_member(r, "class"), "undefined class '%s'", ref);
		p->nrules = i + 1;
	}
	return 0;
}

/* ---- compliance, connect ------------------------------------------------------------ */

static int ld_compliance(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "name", "card_regions", "currencies", "entities", "backends", NULL };
	struct policy *p = l->p;
	config_setting_t *lst, *a, *ents, *bes;
	int i, j;

	if (ld_grouplist(l, root, "compliance", false, POL_MAX_COMPLIANCE, &lst) < 0)
		return -1;
	for (i = 0; lst && i < config_setting_length(lst); i++) {
		config_setting_t *g = config_setting_get_elem(lst, i);
		struct pol_compliance *c = &p->compliance[i];

		c->line = config_setting_source_line(g);
		snprintf(c->name, sizeof(c->name), "rule%d", i + 1);
		if (ld_keys(l, g, "a compliance rule", keys) ||
		    ld_str(l, g, "name", false, c->name, sizeof(c->name)) < 0 ||
		    ld_strlist(l, g, "card_regions", false, POL_MAX_REGIONS + 1, &a) < 0)
			return -1;
		for (j = 0; a && j < config_setting_length(a); j++) {
			int r = ld_region_idx(p, ld_elem(a, j));

			if (r < 0)
				return ld_fail(l, config_setting_get_elem(a, j), "undefined region '%s'", ld_elem(a, j));
			c->regions |= 1U << r;
		}
		if (ld_strlist(l, g, "currencies", false, POL_MAX_CURRENCIES, &a) < 0 ||
		    ld_currency_mask(l, a, &c->currencies) ||
		    ld_strlist(l, g, "entities", false, POL_MAX_BACKENDS, &ents) < 0 ||
		    ld_strlist(l, g, "backends", false, POL_MAX_BACKENDS, &bes) < 0 ||
		    ld_backend_mask(l, ents, true, &c->allowed) ||
		    ld_backend_mask(l, bes, false, &c->allowed))
			return -1;
		if (!ents && !bes)
			return ld_fail(l, g, "a compliance rule needs 'entities' or 'backends'");
		p->ncompliance = i + 1;
	}
	return 0;
}

static int ld_connect(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "account", "backends", NULL };
	struct policy *p = l->p;
	config_setting_t *lst, *a;
	int i, j;

	if (ld_grouplist(l, root, "connect", false, POL_MAX_CONNECT, &lst) < 0)
		return -1;
	for (i = 0; lst && i < config_setting_length(lst); i++) {
		config_setting_t *g = config_setting_get_elem(lst, i);
		struct pol_connect *c = &p->connect[i];

		if (ld_keys(l, g, "a connect entry", keys) ||
		    ld_str(l, g, "account", true, c->account, sizeof(c->account)) ||
		    ld_strlist(l, g, "backends", true, POL_MAX_BACKENDS, &a) ||
		    ld_backend_mask(l, a, false, &c->backends))
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->connect[j].account, c->account) == 0)
				return ld_fail(l, g, "connect account '%s' is listed twice", c->account);
		p->nconnect = i + 1;
	}
	return 0;
}

/* ---- pinning, throttling, scoring ---------------------------------------------------- */

static uint32_t ld_pow2(int v)
{
	uint32_t n = 1;

	while (n < (uint32_t)v)
		n <<= 1;
	return n;
}

static int ld_pinning(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "idem_ttl_s", "idem_slots", "object_ttl_s", "object_slots",
		"account_ttl_s", "account_slots", "object_prefixes", NULL };
	static const char *const defprefixes[] = { "pi_", "ch_", "re_", "seti_", "py_", "in_", "sub_",
		"cus_", "pm_", "src_", "tr_", "po_", "cs_", NULL };
	struct policy *p = l->p;
	config_setting_t *g, *a;
	int it = 86400, ot = 30 * 86400, at = 30 * 86400, is = 65536, os = 65536, as = 4096;
	int i, j, rc;

	rc = ld_member(l, root, "pinning", CONFIG_TYPE_GROUP, false, &g);
	if (rc < 0)
		return -1;
	a = NULL;
	if (rc == 0 &&
	    (ld_keys(l, g, "pinning", keys) ||
	     ld_int(l, g, "idem_ttl_s", false, 60, 400 * 86400, &it) ||
	     ld_int(l, g, "object_ttl_s", false, 60, 400 * 86400, &ot) ||
	     ld_int(l, g, "account_ttl_s", false, 60, 400 * 86400, &at) ||
	     ld_int(l, g, "idem_slots", false, 64, 1 << 24, &is) ||
	     ld_int(l, g, "object_slots", false, 64, 1 << 24, &os) ||
	     ld_int(l, g, "account_slots", false, 64, 1 << 24, &as) ||
	     ld_strlist(l, g, "object_prefixes", false, POL_MAX_PREFIXES, &a) < 0))
		return -1;
	p->pin.idem_ttl_s = (uint32_t)it;
	p->pin.object_ttl_s = (uint32_t)ot;
	p->pin.account_ttl_s = (uint32_t)at;
	p->pin.idem_slots = ld_pow2(is);
	p->pin.object_slots = ld_pow2(os);
	p->pin.account_slots = ld_pow2(as);
	for (i = 0; a ? i < config_setting_length(a) : defprefixes[i] != NULL; i++) {
		const char *v = a ? ld_elem(a, i) : defprefixes[i];
		const config_setting_t *s = a ? config_setting_get_elem(a, i) : g;

		if (ld_copy(l, s, "object_prefixes", v, p->pin.prefixes[i], sizeof(p->pin.prefixes[i])))
			return -1;
		for (j = 0; v[j]; j++)
			if (v[j] == '/' || v[j] == '*')
				return ld_fail(l, s, "object prefix '%s' may not hold '/' or '*'", v);
	}
	p->pin.nprefixes = i;
	return 0;
}

static int ld_budget(struct ld *l, const config_setting_t *g, struct pol_budget *b)
{
	if (ld_num(l, g, "rate", false, 0.01, 1e6, &b->rate) ||
	    ld_num(l, g, "burst", false, 1, 1e6, &b->burst))
		return -1;
	return 0;
}

static int ld_budget_group(struct ld *l, const config_setting_t *g, const char *key, struct pol_budget *b)
{
	static const char *const keys[] = { "rate", "burst", NULL };
	config_setting_t *m;
	int rc = ld_member(l, g, key, CONFIG_TYPE_GROUP, false, &m);

	if (rc)
		return rc < 0 ? -1 : 0;
	return ld_keys(l, m, key, keys) || ld_budget(l, m, b) ? -1 : 0;
}

static int ld_throttle(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "account", "endpoint", "accounts", "endpoints", NULL };
	static const char *const akeys[] = { "account", "rate", "burst", NULL };
	static const char *const ekeys[] = { "name", "method", "path", "rate", "burst", NULL };
	struct policy *p = l->p;
	config_setting_t *g, *lst;
	char id[POL_NAME_MAX + 1];
	int i, j, rc;

	p->thr.account = (struct pol_budget){ 100, 100 };
	p->thr.endpoint = (struct pol_budget){ 25, 25 };
	rc = ld_member(l, root, "throttle", CONFIG_TYPE_GROUP, false, &g);
	if (rc < 0)
		return -1;
	if (rc == 0 &&
	    (ld_keys(l, g, "throttle", keys) ||
	     ld_budget_group(l, g, "account", &p->thr.account) ||
	     ld_budget_group(l, g, "endpoint", &p->thr.endpoint)))
		return -1;
	for (i = 0; i < p->naccounts; i++)
		p->accounts[i].budget = p->thr.account;
	if (rc)
		return 0;
	if (ld_grouplist(l, g, "accounts", false, POL_MAX_ACCOUNTS, &lst) < 0)
		return -1;
	for (i = 0; lst && i < config_setting_length(lst); i++) {
		config_setting_t *e = config_setting_get_elem(lst, i);

		if (ld_keys(l, e, "a throttle account", akeys) || ld_str(l, e, "account", true, id, sizeof(id)))
			return -1;
		for (j = 0; j < p->naccounts; j++)
			if (strcmp(p->accounts[j].id, id) == 0)
				break;
		if (j == p->naccounts)
			return ld_fail(l, e, "undefined account '%s' (no backend uses it)", id);
		if (ld_budget(l, e, &p->accounts[j].budget))
			return -1;
	}
	if (ld_grouplist(l, g, "endpoints", false, POL_MAX_ENDPOINTS, &lst) < 0)
		return -1;
	for (i = 0; lst && i < config_setting_length(lst); i++) {
		config_setting_t *e = config_setting_get_elem(lst, i);
		struct pol_endpoint *ep = &p->thr.endpoints[i];

		ep->line = config_setting_source_line(e);
		ep->budget = p->thr.endpoint;
		if (ld_keys(l, e, "a throttle endpoint", ekeys) ||
		    ld_str(l, e, "name", true, ep->name, sizeof(ep->name)) ||
		    ld_check_name(l, e, "endpoint name", ep->name) ||
		    ld_method(l, e, ep->method, sizeof(ep->method)) ||
		    ld_pattern(l, e, ep->path, sizeof(ep->path)) ||
		    ld_budget(l, e, &ep->budget))
			return -1;
		if (!ep->path[0])
			return ld_fail(l, e, "missing 'path'");
		for (j = 0; j < i; j++)
			if (strcmp(p->thr.endpoints[j].name, ep->name) == 0)
				return ld_fail(l, e, "endpoint '%s' is defined twice", ep->name);
		p->thr.nendpoints = i + 1;
	}
	return 0;
}

static int ld_scoring(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "nominal_amount", "latency_cost", "load_cost", NULL };
	struct policy *p = l->p;
	config_setting_t *g;
	int rc;

	p->score.nominal_amount = 1000;
	p->score.latency_cost = 0.05;
	p->score.load_cost = 20;
	rc = ld_member(l, root, "scoring", CONFIG_TYPE_GROUP, false, &g);
	if (rc)
		return rc < 0 ? -1 : 0;
	if (ld_keys(l, g, "scoring", keys) ||
	    ld_num(l, g, "nominal_amount", false, 0, 1e12, &p->score.nominal_amount) ||
	    ld_num(l, g, "latency_cost", false, 0, 1e6, &p->score.latency_cost) ||
	    ld_num(l, g, "load_cost", false, 0, 1e9, &p->score.load_cost))
		return -1;
	return 0;
}

/* ---- the learning loop ------------------------------------------------------------------ */

/* Optional group `key` of root, its keys checked. Returns 0 with *g set, LD_MISSING (*g
 * NULL: keep the defaults) or -1. */
static int ld_section(struct ld *l, const config_setting_t *root, const char *key,
                      const char *const keys[], config_setting_t **g)
{
	int rc = ld_member(l, root, key, CONFIG_TYPE_GROUP, false, g);

	if (rc)
		return rc < 0 ? -1 : LD_MISSING;
	return ld_keys(l, *g, key, keys) ? -1 : 0;
}

/* A whole-number key into a uint32 (the module configs use fixed widths). */
static int ld_u32(struct ld *l, const config_setting_t *g, const char *key, long long min, long long max,
                  uint32_t *out)
{
	int v = (int)*out;

	if (ld_int(l, g, key, false, min, max, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A time in seconds (a number) into microseconds. */
static int ld_us(struct ld *l, const config_setting_t *g, const char *key, double min, double max,
                 uint64_t *out)
{
	double v = (double)*out / 1e6;

	if (ld_num(l, g, key, false, min, max, &v))
		return -1;
	*out = (uint64_t)(v * 1e6 + 0.5);
	return 0;
}

/* A share 0..1 into permille. */
static int ld_permille(struct ld *l, const config_setting_t *g, const char *key, uint32_t *out)
{
	double v = *out / 1000.0;

	if (ld_num(l, g, key, false, 0, 1, &v))
		return -1;
	*out = (uint32_t)(v * 1000 + 0.5);
	return 0;
}

/* The module's own check, reported at the section's line. */
static int ld_check(struct ld *l, const config_setting_t *g, const char *what, const char *why)
{
	return why ? ld_fail(l, g, "%s: %s", what, why) : 0;
}

static int ld_breaker(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "window_s", "buckets", "min_calls", "failure_rate", "slow_rate",
		"slow_ms", "consecutive", "open_s", "open_max_s", "jitter", "probes", "probe_timeout_s",
		"forget_s", "max_ejected", "degraded_factor", NULL };
	struct policy *p = l->p;
	struct brk_cfg *c = &p->breaker.cfg;
	config_setting_t *g;
	double window;
	int slow = 5000, rc;

	brk_cfg_default(c);
	c->jitter_permille = 200;
	/* 20 s, not Envoy's 30 s: a probe batch costs `probes` requests, while every second
	 * a recovered backend stays open sends its card segments to a worse entity. Over 6
	 * seeds (policy/learning.md): regional-outage authorisation 93.10 % at 30 s, 93.46 %
	 * at 10 s, 93.58 % at 20 s (oracle 93.80 %); 10 s re-admits a slow backend so often
	 * during a latency incident that traffic swings back and forth. */
	c->open_base_us = 20000000;
	p->breaker.max_ejected_permille = 500;
	p->breaker.slow_ms = slow;
	p->breaker.degraded_factor = 0.5;
	if ((rc = ld_section(l, root, "breaker", keys, &g)))
		return rc < 0 ? -1 : 0;
	window = (double)c->bucket_us * c->buckets / 1e6;
	if (ld_u32(l, g, "buckets", 1, BRK_MAX_BUCKETS, &c->buckets) ||
	    ld_num(l, g, "window_s", false, 0.1, 3600, &window) ||
	    ld_u32(l, g, "min_calls", 1, 1000000, &c->min_calls) ||
	    ld_permille(l, g, "failure_rate", &c->failure_permille) ||
	    ld_permille(l, g, "slow_rate", &c->slow_permille) ||
	    ld_int(l, g, "slow_ms", false, 0, 600000, &slow) ||
	    ld_u32(l, g, "consecutive", 0, 1000000, &c->consecutive) ||
	    ld_us(l, g, "open_s", 0.05, 86400, &c->open_base_us) ||
	    ld_us(l, g, "open_max_s", 0.05, 86400, &c->open_max_us) ||
	    ld_permille(l, g, "jitter", &c->jitter_permille) ||
	    ld_u32(l, g, "probes", 1, 1000, &c->probes) ||
	    ld_us(l, g, "probe_timeout_s", 0.05, 3600, &c->probe_timeout_us) ||
	    ld_us(l, g, "forget_s", 0, 86400 * 7, &c->forget_us) ||
	    ld_permille(l, g, "max_ejected", &p->breaker.max_ejected_permille) ||
	    ld_num(l, g, "degraded_factor", false, 0, 1, &p->breaker.degraded_factor))
		return -1;
	c->bucket_us = (uint64_t)(window * 1e6 / c->buckets);
	p->breaker.slow_ms = slow;
	if (c->open_max_us < c->open_base_us)
		return ld_fail(l, g, "breaker: 'open_max_s' must be >= 'open_s'");
	return ld_check(l, g, "breaker", brk_cfg_check(c));
}

static int ld_learning(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "half_life_s", "prior_weight", "min_n", "max_n", "max_segments", "explore",
		"floor_k", "publish_ms", "errors_count", "latency_alpha", "unanswered", NULL };
	static const char *const ukeys[] = { "enabled", "grace_ms", "min_calls", "min_share", NULL };
	struct policy *p = l->p;
	struct srt_cfg *c = &p->learn.cfg;
	config_setting_t *g, *u;
	int i, rc;

	*c = (struct srt_cfg){ .half_life_s = 300, .prior_a = 1, .prior_b = 1, .min_n = 30,
	                       .max_n = 200, .max_segments = 32768 };
	p->learn.prior_weight = 20;
	p->learn.explore = 0.05;
	p->learn.floor_k = 3;
	p->learn.publish_ms = 250;
	p->learn.errors_count = false;
	p->learn.latency_alpha = 0.05;
	p->learn.unans.enabled = true;
	p->learn.unans.grace_ms = 2000;
	p->learn.unans.min_calls = 5;
	p->learn.unans.min_share = 0.5;
	rc = ld_section(l, root, "learning", keys, &g);
	if (rc < 0)
		return -1;
	if (rc == 0 &&
	    (ld_num(l, g, "half_life_s", false, 0, 86400 * 365, &c->half_life_s) ||
	     ld_num(l, g, "prior_weight", false, 0.01, 1e6, &p->learn.prior_weight) ||
	     ld_num(l, g, "min_n", false, 0, 1e9, &c->min_n) ||
	     ld_num(l, g, "max_n", false, 0, 1e9, &c->max_n) ||
	     ld_u32(l, g, "max_segments", 64, 1 << 22, &c->max_segments) ||
	     ld_num(l, g, "explore", false, 0, 0.5, &p->learn.explore) ||
	     ld_num(l, g, "floor_k", false, -1, 100, &p->learn.floor_k) ||
	     ld_u32(l, g, "publish_ms", 10, 60000, &p->learn.publish_ms) ||
	     ld_bool(l, g, "errors_count", &p->learn.errors_count) ||
	     ld_num(l, g, "latency_alpha", false, 0.0001, 1, &p->learn.latency_alpha) ||
	     ld_check(l, g, "learning", srt_cfg_check(c))))
		return -1;
	/* learning.unanswered: grace_ms bounds how soon a hung backend is seen and must
	 * exceed the upstream's normal latency (queueing included) */
	if (rc == 0 && (rc = ld_section(l, g, "unanswered", ukeys, &u)) < 0)
		return -1;
	if (rc == 0 &&
	    (ld_bool(l, u, "enabled", &p->learn.unans.enabled) ||
	     ld_u32(l, u, "grace_ms", 200, 10000, &p->learn.unans.grace_ms) ||
	     ld_u32(l, u, "min_calls", 1, 1000000, &p->learn.unans.min_calls) ||
	     ld_num(l, u, "min_share", false, 0.01, 1, &p->learn.unans.min_share)))
		return -1;
	for (i = 0; i < p->nclasses; i++)
		if (p->classes[i].explore < 0)
			p->classes[i].explore = p->learn.explore;
	return 0;
}

static int ld_anomaly(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "enabled", "lambda", "base_lambda", "alarm_lambda", "limit_k",
		"exit_k", "warmup", "enter_samples", "exit_samples", "min_requests", "err_min_sd",
		"err_min_delta", "lat_min_sd_ms", "lat_min_delta_ms", "factor", NULL };
	struct policy *p = l->p;
	struct anom_cfg *c = &p->anomaly.cfg;
	config_setting_t *g;
	int rc;

	anom_cfg_default(c);
	p->anomaly.enabled = true;
	if ((rc = ld_section(l, root, "anomaly", keys, &g)))
		return rc < 0 ? -1 : 0;
	if (ld_bool(l, g, "enabled", &p->anomaly.enabled) ||
	    ld_num(l, g, "lambda", false, 0, 1, &c->lambda) ||
	    ld_num(l, g, "base_lambda", false, 0, 1, &c->base_lambda) ||
	    ld_num(l, g, "alarm_lambda", false, 0, 1, &c->alarm_lambda) ||
	    ld_num(l, g, "limit_k", false, 0, 100, &c->limit_k) ||
	    ld_num(l, g, "exit_k", false, 0, 100, &c->exit_k) ||
	    ld_u32(l, g, "warmup", 0, 1000000, &c->warmup) ||
	    ld_u32(l, g, "enter_samples", 1, 1000, &c->enter_samples) ||
	    ld_u32(l, g, "exit_samples", 1, 1000, &c->exit_samples) ||
	    ld_u32(l, g, "min_requests", 1, 1000000, &c->min_requests) ||
	    ld_num(l, g, "err_min_sd", false, 0, 1, &c->err_min_sd) ||
	    ld_num(l, g, "err_min_delta", false, 0, 1, &c->err_min_delta) ||
	    ld_num(l, g, "lat_min_sd_ms", false, 0, 600000, &c->lat_min_sd_ms) ||
	    ld_num(l, g, "lat_min_delta_ms", false, 0, 600000, &c->lat_min_delta_ms) ||
	    ld_num(l, g, "factor", false, 0, 1, &c->factor))
		return -1;
	return ld_check(l, g, "anomaly", anom_cfg_check(c));
}

static int ld_forecast(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "enabled", "alpha", "beta", "hw_alpha", "hw_beta", "hw_gamma",
		"season", "horizon_s", "headroom", "exit_ratio", "min_shed_ms", "retry_after_s", NULL };
	struct policy *p = l->p;
	struct fc_cfg *c = &p->forecast.cfg;
	config_setting_t *g;
	int rc;

	fc_cfg_default(c);
	p->forecast.enabled = true;
	p->forecast.horizon_s = 3;
	p->forecast.headroom = 0.9;
	p->forecast.exit_ratio = 0.8;
	p->forecast.min_shed_ms = 3000;
	p->forecast.retry_after_s = 1;
	if ((rc = ld_section(l, root, "forecast", keys, &g)))
		return rc < 0 ? -1 : 0;
	if (ld_bool(l, g, "enabled", &p->forecast.enabled) ||
	    ld_num(l, g, "alpha", false, 0, 1, &c->alpha) ||
	    ld_num(l, g, "beta", false, 0, 1, &c->beta) ||
	    ld_num(l, g, "hw_alpha", false, 0, 1, &c->hw_alpha) ||
	    ld_num(l, g, "hw_beta", false, 0, 1, &c->hw_beta) ||
	    ld_num(l, g, "hw_gamma", false, 0, 1, &c->hw_gamma) ||
	    ld_u32(l, g, "season", 2, FC_SEASON_MAX, &c->season) ||
	    ld_u32(l, g, "horizon_s", 1, 600, &p->forecast.horizon_s) ||
	    ld_num(l, g, "headroom", false, 0.05, 2, &p->forecast.headroom) ||
	    ld_num(l, g, "exit_ratio", false, 0, 1, &p->forecast.exit_ratio) ||
	    ld_u32(l, g, "min_shed_ms", 0, 600000, &p->forecast.min_shed_ms) ||
	    ld_int(l, g, "retry_after_s", false, 1, 3600, &p->forecast.retry_after_s))
		return -1;
	return ld_check(l, g, "forecast", fc_cfg_check(c));
}

static int ld_adaptive(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "enabled", "decrease", "increase_per_s", "floor", "cooldown_ms",
		"plateau", "probe", "forget_s", NULL };
	struct policy *p = l->p;
	config_setting_t *g;
	double forget = 300;
	int cool = 2000, rc;

	p->adaptive.enabled = true;
	p->adaptive.md = 0.7;
	p->adaptive.ai_share = 0.01;
	p->adaptive.floor_share = 0.05;
	p->adaptive.cooldown_us = 2000000;
	p->adaptive.plateau = 0.95;
	p->adaptive.probe = 0.3;
	p->adaptive.forget_us = 300000000;
	if ((rc = ld_section(l, root, "adaptive", keys, &g)))
		return rc < 0 ? -1 : 0;
	if (ld_bool(l, g, "enabled", &p->adaptive.enabled) ||
	    ld_num(l, g, "decrease", false, 0.01, 0.99, &p->adaptive.md) ||
	    ld_num(l, g, "increase_per_s", false, 0, 10, &p->adaptive.ai_share) ||
	    ld_num(l, g, "floor", false, 0.001, 1, &p->adaptive.floor_share) ||
	    ld_int(l, g, "cooldown_ms", false, 0, 600000, &cool) ||
	    ld_num(l, g, "plateau", false, 0.01, 1, &p->adaptive.plateau) ||
	    ld_num(l, g, "probe", false, 0.01, 1, &p->adaptive.probe) ||
	    ld_num(l, g, "forget_s", false, 1, 86400, &forget))
		return -1;
	p->adaptive.cooldown_us = (uint64_t)cool * 1000;
	p->adaptive.forget_us = (uint64_t)(forget * 1e6);
	return 0;
}

static int ld_decline_kind(const char *v)
{
	if (strcmp(v, "customer") == 0)
		return OC_DECLINE_CUSTOMER;
	if (strcmp(v, "soft") == 0)
		return OC_DECLINE_SOFT;
	if (strcmp(v, "psp_error") == 0)
		return OC_PSP_ERROR;
	return -1;
}

/* outcomes = { defaults = true; unknown_decline = "soft"; customer = [...]; soft = [...];
 * psp_error = [...]; }: decline and error codes mapped to kinds. */
static int ld_outcomes(struct ld *l, const config_setting_t *root)
{
	static const char *const keys[] = { "defaults", "unknown_decline", "customer", "soft", "psp_error", NULL };
	static const char *const kinds[] = { "customer", "soft", "psp_error" };
	struct policy *p = l->p;
	config_setting_t *g, *a;
	char v[32];
	bool defaults = true;
	int i, j, k, rc;

	oc_table_init(&p->oc, p->oc_rules, POL_MAX_DECLINES);
	if ((rc = ld_section(l, root, "outcomes", keys, &g)))
		return rc < 0 ? -1 : 0;
	if (ld_bool(l, g, "defaults", &defaults))
		return -1;
	if (!defaults)
		oc_table_clear(&p->oc);
	if ((rc = ld_str(l, g, "unknown_decline", false, v, sizeof(v))) < 0)
		return -1;
	if (rc == 0 && ((k = ld_decline_kind(v)) < 0 || oc_table_set_unknown(&p->oc, (enum oc_kind)k)))
		return ld_fail(l, config_setting_get_member(g, "unknown_decline"),
		               "'unknown_decline' must be \"customer\", \"soft\" or \"psp_error\"");
	for (i = 0; i < 3; i++) {
		if (ld_strlist(l, g, kinds[i], false, POL_MAX_DECLINES, &a) < 0)
			return -1;
		for (j = 0; a && j < config_setting_length(a); j++) {
			const char *code = ld_elem(a, j);

			if (oc_table_set(&p->oc, code, strlen(code), (enum oc_kind)ld_decline_kind(kinds[i])))
				return ld_fail(l, config_setting_get_elem(a, j),
				               "outcomes: code '%s' is empty, longer than %d bytes, or the table is full (%d)",
				               code, OC_CODE_MAX, POL_MAX_DECLINES);
		}
	}
	return 0;
}

/* ---- entry points ------------------------------------------------------------------ */

static struct policy *ld_build(config_t *cfg, const char *name, char *err, size_t errlen)
{
	static const char *const keys[] = { "agent", "regions", "fee_schedules", "backends",
		"default_backend", "classes", "classify", "compliance", "connect", "pinning", "throttle",
		"scoring", "breaker", "learning", "anomaly", "forecast", "adaptive", "outcomes", NULL };
	struct ld l = { .file = name, .err = err, .errlen = errlen };
	const config_setting_t *root = config_root_setting(cfg);

	l.p = calloc(1, sizeof(*l.p));
	if (!l.p) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	snprintf(l.p->file, sizeof(l.p->file), "%s", name);
	if (ld_keys(&l, root, "the policy", keys) ||
	    ld_agent(&l, root) ||
	    ld_regions(&l, root) ||
	    ld_fees(&l, root) ||
	    ld_backends(&l, root) ||
	    ld_classes(&l, root) ||
	    ld_classify(&l, root) ||
	    ld_compliance(&l, root) ||
	    ld_connect(&l, root) ||
	    ld_pinning(&l, root) ||
	    ld_throttle(&l, root) ||
	    ld_scoring(&l, root) ||
	    ld_breaker(&l, root) ||
	    ld_learning(&l, root) ||
	    ld_anomaly(&l, root) ||
	    ld_forecast(&l, root) ||
	    ld_adaptive(&l, root) ||
	    ld_outcomes(&l, root))
		goto fail;
	return l.p;
fail:
	free(l.p);
	return NULL;
}

static void ld_parse_error(const config_t *cfg, const char *name, char *err, size_t errlen)
{
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
		snprintf(err, errlen, "%s:0: cannot read the file", name);
	else
		snprintf(err, errlen, "%s:%d: %s", config_error_file(cfg) ? config_error_file(cfg) : name,
		         config_error_line(cfg), config_error_text(cfg) ? config_error_text(cfg) : "parse error");
}

struct policy *pol_load(const char *path, char *err, size_t errlen)
{
	struct policy *p = NULL;
	char dir[4096];
	const char *slash = strrchr(path, '/');
	config_t cfg;

	/* @include paths are relative to the including file's directory. */
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
	else
		snprintf(dir, sizeof(dir), ".");
	config_init(&cfg);
	config_set_include_dir(&cfg, dir);
	if (!config_read_file(&cfg, path))
		ld_parse_error(&cfg, path, err, errlen);
	else
		p = ld_build(&cfg, path, err, errlen);
	config_destroy(&cfg);
	return p;
}

struct policy *pol_load_string(const char *text, const char *name, char *err, size_t errlen)
{
	struct policy *p = NULL;
	config_t cfg;

	/* A string has no directory to resolve @include against, and a fuzzer must not be
	 * able to make the loader open files. */
	if (strstr(text, "@include")) {
		snprintf(err, errlen, "%s:0: @include is only allowed in files", name);
		return NULL;
	}
	config_init(&cfg);
	if (!config_read_string(&cfg, text))
		ld_parse_error(&cfg, name, err, errlen);
	else
		p = ld_build(&cfg, name, err, errlen);
	config_destroy(&cfg);
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
