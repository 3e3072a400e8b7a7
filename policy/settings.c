/* settings.c: the policy's settings, declared once per section (name, type, range,
 * default, doc), the reader that applies a table to a struct, and the markdown reference
 * printed by `payspoa --settings` and kept in conf/README.md. Pure: no I/O; allocates
 * only to build the reference. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "breaker.h"
#include "forecast.h"
#include "outcome.h"
#include "policy-t.h"
#include "settings.h"

#define P(field) offsetof(struct policy, field)

/* ---- the reader ----------------------------------------------------------------------- */

static uint32_t ps_pow2(long long v)
{
	uint32_t n = 1;

	while (n < (uint64_t)v)
		n <<= 1;
	return n;
}

/* Stores v (in the file's unit) into the field. */
static void ps_store(const struct pol_setting *s, void *base, double v)
{
	char *f = (char *)base + s->off;

	switch (s->kind) {
	case PS_INT:    *(int *)(void *)f = (int)v; break;
	case PS_U32:    *(uint32_t *)(void *)f = (uint32_t)v; break;
	case PS_I64:    *(int64_t *)(void *)f = (int64_t)v; break;
	case PS_POW2:   *(uint32_t *)(void *)f = ps_pow2((long long)v); break;
	case PS_NUM:    *(double *)(void *)f = v; break;
	case PS_BOOL:   *(bool *)(void *)f = v != 0; break;
	case PS_SEC_US: *(uint64_t *)(void *)f = (uint64_t)(v * 1e6 + 0.5); break;
	case PS_MS_US:  *(uint64_t *)(void *)f = (uint64_t)v * 1000; break;
	case PS_SHARE:  *(uint32_t *)(void *)f = (uint32_t)(v * 1000 + 0.5); break;
	case PS_STR:
	case PS_GROUP:
	case PS_CUSTOM: break;
	}
}

/* The field's value in the file's unit (the reference's default column). */
static double ps_load(const struct pol_setting *s, const void *base)
{
	const char *f = (const char *)base + s->off;

	switch (s->kind) {
	case PS_INT:    return *(const int *)(const void *)f;
	case PS_U32:
	case PS_POW2:   return *(const uint32_t *)(const void *)f;
	case PS_I64:    return (double)*(const int64_t *)(const void *)f;
	case PS_NUM:    return *(const double *)(const void *)f;
	case PS_BOOL:   return *(const bool *)(const void *)f;
	case PS_SEC_US: return (double)*(const uint64_t *)(const void *)f / 1e6;
	case PS_MS_US:  return (double)*(const uint64_t *)(const void *)f / 1000;
	case PS_SHARE:  return *(const uint32_t *)(const void *)f / 1000.0;
	case PS_STR:
	case PS_GROUP:
	case PS_CUSTOM: break;
	}
	return 0;
}

static bool ps_integer(enum pol_set_kind k)
{
	return k == PS_INT || k == PS_U32 || k == PS_I64 || k == PS_POW2 || k == PS_MS_US;
}

void pol_section_defaults(const struct pol_section *sec, void *base)
{
	int i;

	if (sec->init)
		sec->init(base);
	for (i = 0; i < sec->nsettings; i++) {
		const struct pol_setting *s = &sec->settings[i];

		if (s->kind == PS_GROUP)
			pol_section_defaults(s->sub, (char *)base + s->off);
		else if (s->kind == PS_STR)
			((char *)base + s->off)[0] = 0;
		else if (!isnan(s->def))
			ps_store(s, base, s->def);
	}
}

static int ps_read(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	long long iv;
	double v;
	bool b;
	int rc;

	switch (s->kind) {
	case PS_GROUP:
		return pol_section_read(c, g, s->sub, (char *)base + s->off);
	case PS_CUSTOM:
		return s->parse ? s->parse(c, g, s, base) : 0;
	case PS_STR:
		rc = cfg_str(c, g, s->name, s->required ? CFG_REQUIRED : 0, (char *)base + s->off, (size_t)s->max);
		return rc < 0 ? -1 : 0;
	case PS_BOOL:
		b = !isnan(s->def) ? s->def != 0 : ps_load(s, base) != 0;
		if ((rc = cfg_bool(c, g, s->name, &b)) == 0)
			ps_store(s, base, b);
		return rc;
	default:
		break;
	}
	if (!s->required && !cfg_get(g, s->name))
		return 0; /* absent: the default stands */
	if (ps_integer(s->kind)) {
		rc = cfg_int(c, g, s->name, s->required, (long long)s->min, (long long)s->max, &iv);
		v = (double)iv;
	} else {
		rc = cfg_num(c, g, s->name, s->required, s->min, s->max, &v);
	}
	if (rc == 0)
		ps_store(s, base, v);
	return rc < 0 ? -1 : 0;
}

/* The names of a section's keys, for cfg_keys. */
static int ps_check_keys(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_section *sec)
{
	const char *keys[64];
	int i;

	for (i = 0; i < sec->nsettings && i < 63; i++)
		keys[i] = sec->settings[i].name;
	keys[i] = NULL;
	return cfg_keys(c, g, sec->what, keys);
}

int pol_section_read(struct cfg_ctx *c, const struct cfg_node *parent, const struct pol_section *sec, void *base)
{
	const struct cfg_node *g = parent;
	int i;

	if (!sec->element && parent && cfg_member(c, parent, sec->key, CFG_GROUP, false, &g) < 0)
		return -1;
	pol_section_defaults(sec, base);
	if (g && ps_check_keys(c, g, sec))
		return -1;
	for (i = 0; i < sec->nsettings; i++)
		if (ps_read(c, g, &sec->settings[i], base))
			return -1;
	return 0;
}

/* ---- custom settings ----------------------------------------------------------------- */

/* "host:port", "[v6]:port" or "unix:/path". */
static int ps_listen_addr(struct cfg_ctx *c, const struct cfg_node *n, const char *v)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(v, "unix:", 5) == 0)
		return (v[5] == '/' && strlen(v + 5) < 108) ? 0 :
		       cfg_fail(c, n, "listen '%s': a unix socket needs an absolute path under 108 bytes", v);
	if (v[0] == '[') {
		colon = strchr(v, ']');
		if (!colon || colon == v + 1 || colon[1] != ':')
			return cfg_fail(c, n, "listen '%s': expected \"[v6]:port\"", v);
		colon++;
	} else {
		colon = strrchr(v, ':');
		if (!colon || colon == v || memchr(v, ':', (size_t)(colon - v)))
			return cfg_fail(c, n, "listen '%s': expected \"host:port\", \"[v6]:port\" or \"unix:/path\"", v);
	}
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535)
		return cfg_fail(c, n, "listen '%s': port must be 1..65535", v);
	return 0;
}

static int ps_listen(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct policy *p = base;
	struct pol_agent *a = &p->agent;
	const struct cfg_node *lst;
	int i, rc;

	snprintf(p->listen_buf[0], sizeof(p->listen_buf[0]), "%s", POL_LISTEN_BUILTIN);
	a->listen[0] = p->listen_buf[0];
	a->nlisten = 1;
	if ((rc = cfg_strlist(c, g, s->name, false, POL_MAX_LISTENERS, &lst)))
		return rc < 0 ? -1 : 0;
	if (cfg_count(lst) == 0)
		return cfg_fail(c, lst, "'listen' must not be empty");
	a->nlisten = cfg_count(lst);
	for (i = 0; i < a->nlisten; i++) {
		const struct cfg_node *e = cfg_at(lst, i);

		if (cfg_copy(c, e, "listen", cfg_string(e), p->listen_buf[i], sizeof(p->listen_buf[i])) ||
		    ps_listen_addr(c, e, p->listen_buf[i]))
			return -1;
		a->listen[i] = p->listen_buf[i];
	}
	return 0;
}

static void ps_show_listen(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	const struct pol_agent *a = &((const struct policy *)base)->agent;
	size_t n = 0;
	int i;

	n += (size_t)snprintf(buf, size, "`[");
	for (i = 0; i < a->nlisten && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", i ? ", " : "", a->listen[i]);
	if (n < size)
		snprintf(buf + n, size - n, "]`");
}

/* An optional string of the agent: aux = its storage in agent_buf. */
static int ps_agent_str(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct policy *p = base;
	const char **dst = (const char **)(void *)((char *)base + s->off);
	int rc = cfg_str(c, g, s->name, 0, p->agent_buf[s->aux], sizeof(p->agent_buf[s->aux]));

	if (rc)
		return rc < 0 ? -1 : 0;
	*dst = p->agent_buf[s->aux];
	if (strcmp(s->name, "metrics") == 0)
		return ps_listen_addr(c, cfg_get(g, s->name), *dst);
	/* a unix socket path: absolute (HAProxy and payspoa may not share a directory) and
	 * within sun_path's 108 bytes */
	if (strcmp(s->name, "outcome_socket") == 0 && ((*dst)[0] != '/' || strlen(*dst) > 107))
		return cfg_fail(c, cfg_get(g, s->name), "outcome_socket: an absolute path of at most 107 bytes");
	return 0;
}

static void ps_show_agent_str(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	const char *v = *(const char *const *)(const void *)((const char *)base + s->off);

	snprintf(buf, size, v ? "`\"%s\"`" : "none", v);
}

/* Settings that take one word of a fixed list (aux indexes ps_choices); the first word
 * is the default. The field is a const char * pointing at the list's own word. */
static const char *const ps_choices[][12] = {
	{ "info", "debug", "warning", "error", NULL },
	{ "none", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", NULL },
};

static int ps_agent_choice(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	const char *const *w = ps_choices[s->aux];
	const char **dst = (const char **)(void *)((char *)base + s->off);
	char v[32], list[160];
	size_t n = 0;
	int i, rc;

	*dst = w[0];
	if ((rc = cfg_str(c, g, s->name, 0, v, sizeof(v))))
		return rc < 0 ? -1 : 0;
	for (i = 0; w[i]; i++) {
		if (strcmp(w[i], v) == 0) {
			*dst = w[i];
			return 0;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "", w[i]);
	}
	return cfg_fail(c, cfg_get(g, s->name), "'%s' must be one of %s", s->name, list);
}

static void ps_show_agent_choice(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	snprintf(buf, size, "`\"%s\"`", ps_choices[s->aux][0]);
}

static int ps_prefixes(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	static const char *const defprefixes[] = { "pi_", "ch_", "re_", "seti_", "py_", "in_", "sub_",
		"cus_", "pm_", "src_", "tr_", "po_", "cs_", NULL };
	struct policy *p = base;
	const struct cfg_node *a = NULL;
	int i, j;

	if (cfg_strlist(c, g, s->name, false, POL_MAX_PREFIXES, &a) < 0)
		return -1;
	for (i = 0; a ? i < cfg_count(a) : defprefixes[i] != NULL; i++) {
		const char *v = a ? cfg_elem_str(a, i) : defprefixes[i];
		const struct cfg_node *n = a ? cfg_at(a, i) : g;

		if (cfg_copy(c, n, s->name, v, p->pin.prefixes[i], sizeof(p->pin.prefixes[i])))
			return -1;
		for (j = 0; v[j]; j++)
			if (v[j] == '/' || v[j] == '*')
				return cfg_fail(c, n, "object prefix '%s' may not hold '/' or '*'", v);
	}
	p->pin.nprefixes = i;
	return 0;
}

static void ps_show_prefixes(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	const struct policy *p = base;
	size_t n = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < p->pin.nprefixes && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "`", p->pin.prefixes[i]);
	if (n && n < size)
		snprintf(buf + n, size - n, "`");
}

/* breaker.window_s: the window is stored as bucket width × buckets, so it is read after
 * `buckets`; absent, it is the module's default window (not width × the file's buckets). */
static int ps_window(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct brk_cfg *b = &((struct policy *)base)->breaker.cfg, d;
	double w;

	brk_cfg_default(&d);
	w = (double)d.bucket_us * d.buckets / 1e6;
	if (cfg_num(c, g, s->name, false, s->min, s->max, &w) < 0)
		return -1;
	b->bucket_us = (uint64_t)(w * 1e6 / b->buckets);
	return 0;
}

static void ps_show_window(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	const struct brk_cfg *b = &((const struct policy *)base)->breaker.cfg;

	snprintf(buf, size, "%g", (double)b->bucket_us * b->buckets / 1e6);
}

static const char *const ps_kinds[] = { "customer", "soft", "psp_error" };
static const enum oc_kind ps_kind_vals[] = { OC_DECLINE_CUSTOMER, OC_DECLINE_SOFT, OC_PSP_ERROR };

static int ps_oc_defaults(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	bool defaults = s->def != 0;

	if (cfg_bool(c, g, s->name, &defaults) < 0)
		return -1;
	if (!defaults)
		oc_table_clear(&((struct policy *)base)->oc);
	return 0;
}

static void ps_show_bool_def(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s->def != 0 ? "true" : "false");
}

static int ps_unknown_decline(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	char v[32];
	int k, rc = cfg_str(c, g, s->name, 0, v, sizeof(v));

	if (rc)
		return rc < 0 ? -1 : 0;
	for (k = 0; k < 3 && strcmp(ps_kinds[k], v); k++)
		;
	if (k == 3 || oc_table_set_unknown(&((struct policy *)base)->oc, ps_kind_vals[k]))
		return cfg_fail(c, cfg_get(g, s->name), "'unknown_decline' must be \"customer\", \"soft\" or \"psp_error\"");
	return 0;
}

static void ps_show_unknown_decline(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	int k;

	for (k = 0; k < 3 && ps_kind_vals[k] != ((const struct policy *)base)->oc.unknown_kind; k++)
		;
	snprintf(buf, size, "`\"%s\"`", k < 3 ? ps_kinds[k] : "?");
}

/* outcomes.customer/soft/psp_error: aux = index in ps_kinds. */
static int ps_oc_codes(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct policy *p = base;
	const struct cfg_node *a;
	int j;

	if (cfg_strlist(c, g, s->name, false, POL_MAX_DECLINES, &a) < 0)
		return -1;
	for (j = 0; j < cfg_count(a); j++) {
		const char *code = cfg_elem_str(a, j);

		if (oc_table_set(&p->oc, code, strlen(code), ps_kind_vals[s->aux]))
			return cfg_fail(c, cfg_at(a, j),
			                "outcomes: code '%s' is empty, longer than %d bytes, or the table is full (%d)",
			                code, OC_CODE_MAX, POL_MAX_DECLINES);
	}
	return 0;
}

static void ps_show_none(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	snprintf(buf, size, "none");
}

/* An http:// or https:// URL of at most POL_URL_MAX bytes, without spaces or control
 * characters (libcurl would take them as they are). */
static int ps_url_check(struct cfg_ctx *c, const struct cfg_node *n, const char *what, const char *v)
{
	size_t i;

	if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
		return cfg_fail(c, n, "%s '%s': expected an http:// or https:// URL", what, v);
	for (i = 0; v[i]; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
			return cfg_fail(c, n, "%s: a URL may not hold spaces or control characters", what);
	return 0;
}

/* backends[].probe_url: base is the backend, s->off its field. */
static int ps_probe_url(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	char *dst = (char *)base + s->off;
	int rc;

	dst[0] = 0;
	if ((rc = cfg_str(c, g, s->name, 0, dst, POL_URL_MAX + 1)))
		return rc < 0 ? -1 : 0;
	return ps_url_check(c, cfg_get(g, s->name), s->name, dst);
}

/* webhooks.urls */
static int ps_hook_urls(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct policy *p = base;
	const struct cfg_node *a;
	int i, rc;

	p->hook.nurls = 0;
	if ((rc = cfg_strlist(c, g, s->name, false, POL_MAX_WEBHOOKS, &a)))
		return rc < 0 ? -1 : 0;
	for (i = 0; i < cfg_count(a); i++) {
		if (cfg_copy(c, cfg_at(a, i), s->name, cfg_elem_str(a, i), p->hook.urls[i], sizeof(p->hook.urls[i])) ||
		    ps_url_check(c, cfg_at(a, i), "webhooks.urls", p->hook.urls[i]))
			return -1;
	}
	p->hook.nurls = i;
	return 0;
}

/* ---- the tables ------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define INT(n, f, lo, hi, d, doc)   { n, PS_INT, P(f), lo, hi, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define U32(n, f, lo, hi, d, doc)   { n, PS_U32, P(f), lo, hi, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define NUM(n, f, lo, hi, d, doc)   { n, PS_NUM, P(f), lo, hi, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define BOOL(n, f, d, doc)          { n, PS_BOOL, P(f), 0, 1, d, doc, "", NULL, false, NULL, NULL, NULL, 0 }
#define SHARE(n, f, d, doc)         { n, PS_SHARE, P(f), 0, 1, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define SEC(n, f, lo, hi, d, doc)   { n, PS_SEC_US, P(f), lo, hi, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define CUSTOM(n, f, type, range, doc, parse, show, aux) \
	{ n, PS_CUSTOM, f, 0, 0, DEF_INIT, doc, range, type, false, NULL, parse, show, aux }
/* Keys with their own section of code in load.c (lists of groups, references). */
#define BYCODE(n, type, doc)        CUSTOM(n, 0, type, "", doc, NULL, ps_show_none, 0)

static const struct pol_setting ps_agent[] = {
	CUSTOM("listen", 0, "array of strings", "1..8 of `\"host:port\"`, `\"[v6]:port\"`, `\"unix:/path\"`",
	       "where HAProxy connects (its `PAY_AGENT_ADDR`); conf/payspoa.conf names the unix socket haproxy/haproxy.cfg expects (haproxy/README.md)", ps_listen, ps_show_listen, 0),
	INT("workers", agent.workers, 0, 64, 0, "0 = one per 4 online CPUs, at least one (HAProxy shares the machine; spoa/README.md, Workers)"),
	INT("max_connections", agent.max_connections, 1, 65536, 512, "whole process"),
	INT("max_frame_size", agent.max_frame_size, 256, 65532, 16380, "bytes; payspoa answers min(this, HAProxy's)"),
	INT("idle_timeout_ms", agent.idle_timeout_ms, 100, 86400000, 30000,
	    "a connection with nothing in flight closes after this"),
	INT("hello_timeout_ms", agent.hello_timeout_ms, 100, 60000, 2000,
	    "a connection that has not completed its HELLO after this is closed (HAProxy's takes milliseconds)"),
	INT("frame_timeout_ms", agent.frame_timeout_ms, 100, 600000, 5000,
	    "a connection whose frame stays unfinished (or unanswered for want of the peer reading) this long is closed"),
	CUSTOM("admin_socket", P(agent.admin_socket), "string", "", "path of the admin socket",
	       ps_agent_str, ps_show_agent_str, 0),
	CUSTOM("metrics", P(agent.metrics), "string", "`\"host:port\"`", "address of `GET /metrics`",
	       ps_agent_str, ps_show_agent_str, 1),
	CUSTOM("state_file", P(agent.state_file), "string", "", "msgpack snapshot of the learned state",
	       ps_agent_str, ps_show_agent_str, 2),
	NUM("state_interval_s", agent.state_interval_s, 0, 86400, 60,
	    "seconds between snapshots to state_file (also on SIGTERM and SIGUSR1); 0 = only then"),
	CUSTOM("outcome_socket", P(agent.outcome_socket), "string", "an absolute path",
	       "unix datagram socket (mode 0660) where HAProxy logs one outcome line per request "
	       "(`PAY_OUTCOMES=log`, haproxy/README.md); none = outcomes by `pay-response` only",
	       ps_agent_str, ps_show_agent_str, 4),
	CUSTOM("log_level", P(agent.log_level), "string", "`debug`, `info`, `warning`, `error`", "lowest level logged",
	       ps_agent_choice, ps_show_agent_choice, 0),
	CUSTOM("log_syslog", P(agent.log_syslog), "string", "`none`, `daemon`, `user`, `local0`..`local7`",
	       "syslog facility the JSON lines go to instead of stderr; none = stderr",
	       ps_agent_choice, ps_show_agent_choice, 1),
	CUSTOM("user", P(agent.user), "string", "a user name",
	       "after binding, drop root for this user (setgroups, setgid, setuid); payspoa refuses to run "
	       "when it cannot; none = keep the starting user", ps_agent_str, ps_show_agent_str, 5),
	CUSTOM("group", P(agent.group), "string", "a group name", "the group to drop to (default: `user`'s own)",
	       ps_agent_str, ps_show_agent_str, 6),
	CUSTOM("id_key_file", P(agent.id_key_file), "string", "a path",
	       "file whose bytes (16 at least) key the HMAC-SHA256 that stands for any identifier a log names; "
	       "neither this nor `id_key_env`: a random key per process (a warning says so)",
	       ps_agent_str, ps_show_agent_str, 7),
	CUSTOM("id_key_env", P(agent.id_key_env), "string", "a variable name",
	       "environment variable holding that key, when `id_key_file` is not set",
	       ps_agent_str, ps_show_agent_str, 8),
};

static void ps_agent_init(void *base)
{
	struct pol_agent *a = &((struct policy *)base)->agent;

	a->admin_socket = a->metrics = a->state_file = a->outcome_socket = NULL;
	a->user = a->group = NULL;
	a->id_key_file = a->id_key_env = NULL;
}

const struct pol_section pol_sec_agent = { "agent", "agent", "agent", ps_agent, N(ps_agent), ps_agent_init, false };

static const struct pol_setting ps_pinning[] = {
	U32("idem_ttl_s", pin.idem_ttl_s, 60, 400 * 86400, 86400, "idempotency key pins (Stripe keeps keys ≥ 24 h)"),
	U32("idem_slots", pin.idem_slots, 0, 536870912, 0,
	    "pins the table keeps for their TTL; 0: what the budgets need (the sum of the account budgets × `idem_ttl_s`, "
	    "every admitted request may carry a key); lower, `payspoa -c` prints the shorter guarantee (conf/README.md)"),
	U32("object_ttl_s", pin.object_ttl_s, 60, 400 * 86400, 30 * 86400, "object id → account pins, learned from responses"),
	U32("object_slots", pin.object_slots, 64, 536870912, 65536, "pins kept for their TTL, as `idem_slots`"),
	U32("account_ttl_s", pin.account_ttl_s, 60, 400 * 86400, 30 * 86400, "connected account → platform pins"),
	U32("account_slots", pin.account_slots, 64, 536870912, 4096, "pins kept for their TTL, as `idem_slots`"),
	CUSTOM("object_prefixes", 0, "array of strings", "≤ 32, without `/` or `*`",
	       "which `/v1/<objects>/<id>` ids are pinned", ps_prefixes, ps_show_prefixes, 0),
};

const struct pol_section pol_sec_pinning = { "pinning", "pinning", "pinning", ps_pinning, N(ps_pinning), NULL, false };

/* A budget group: its defaults depend on where it sits, so its parent's init sets them. */
static const struct pol_setting ps_budget[] = {
	{ "rate", PS_NUM, offsetof(struct pol_budget, rate), 0.01, 1e6, DEF_INIT, "requests per second",
	  NULL, NULL, false, NULL, NULL, NULL, 0 },
	{ "burst", PS_NUM, offsetof(struct pol_budget, burst), 1, 1e6, DEF_INIT, "tolerance, requests",
	  NULL, NULL, false, NULL, NULL, NULL, 0 },
};

static const struct pol_section ps_sec_account_budget = { "throttle.account", "account", "account",
	ps_budget, N(ps_budget), NULL, false };
static const struct pol_section ps_sec_endpoint_budget = { "throttle.endpoint", "endpoint", "endpoint",
	ps_budget, N(ps_budget), NULL, false };

static const struct pol_setting ps_throttle[] = {
	{ "account", PS_GROUP, P(thr.account), 0, 0, DEF_INIT, "default budget of every account (Stripe live mode)",
	  NULL, NULL, false, &ps_sec_account_budget, NULL, NULL, 0 },
	{ "endpoint", PS_GROUP, P(thr.endpoint), 0, 0, DEF_INIT, "default budget of each listed endpoint",
	  NULL, NULL, false, &ps_sec_endpoint_budget, NULL, NULL, 0 },
	BYCODE("accounts", "list of groups", "`{ account; rate; burst; }`: per-account budgets (some backend's account)"),
	BYCODE("endpoints", "list of groups",
	       "`{ name; method; path; rate; burst; }`: endpoints with their own budget per account, first match wins"),
};

static void ps_throttle_init(void *base)
{
	struct policy *p = base;

	p->thr.account = (struct pol_budget){ 100, 100 };
	p->thr.endpoint = (struct pol_budget){ 25, 25 };
}

const struct pol_section pol_sec_throttle = { "throttle", "throttle", "throttle", ps_throttle, N(ps_throttle),
	ps_throttle_init, false };

static const struct pol_setting ps_scoring[] = {
	NUM("nominal_amount", score.nominal_amount, 0, 1e12, 1000, "minor units assumed when the request has no amount"),
	NUM("latency_cost", score.latency_cost, 0, 1e6, 0.05, "minor units per ms of expected latency"),
	NUM("load_cost", score.load_cost, 0, 1e9, 20, "minor units at a fully used account budget"),
};

const struct pol_section pol_sec_scoring = { "scoring", "scoring", "scoring", ps_scoring, N(ps_scoring), NULL, false };

static const struct pol_setting ps_breaker[] = {
	U32("buckets", breaker.cfg.buckets, 1, BRK_MAX_BUCKETS, DEF_INIT, "buckets the window is made of"),
	{ "window_s", PS_CUSTOM, 0, 0.1, 3600, DEF_INIT, "sliding window of the rates", NULL, "number", false,
	  NULL, ps_window, ps_show_window, 0 },
	U32("min_calls", breaker.cfg.min_calls, 1, 1000000, DEF_INIT, "rates are judged over at least this many calls"),
	SHARE("failure_rate", breaker.cfg.failure_permille, DEF_INIT,
	      "open at this share of PSP errors (5xx, timeouts); 0 = off"),
	SHARE("slow_rate", breaker.cfg.slow_permille, DEF_INIT, "open at this share of slow calls; 0 = off"),
	{ "slow_ms", PS_I64, P(breaker.slow_ms), 0, 600000, 5000, "a call slower than this is slow; 0 = never",
	  NULL, NULL, false, NULL, NULL, NULL, 0 },
	U32("consecutive", breaker.cfg.consecutive, 0, 1000000, DEF_INIT,
	    "open after this many PSP errors in a row; 0 = off"),
	SEC("open_s", breaker.cfg.open_base_us, 0.05, 86400, DEF_INIT,
	    "first open time; doubles with each probe batch failed in a row (Envoy uses 30 s; see below)"),
	{ "open_max_s", PS_SEC_US, P(breaker.cfg.open_max_us), 0.05, 86400, DEF_INIT,
	  "cap on the open time, jitter included", "0.05..86400, ≥ `open_s`", NULL, false, NULL, NULL, NULL, 0 },
	/* the module's default is 0 (deterministic unit tests); a fleet of backends tripped
	 * by one incident should not all probe at the same instant */
	SHARE("jitter", breaker.cfg.jitter_permille, 0.2, "open time lengthened by up to this share (seeded per backend)"),
	U32("probes", breaker.cfg.probes, 1, 1000, DEF_INIT,
	    "half-open: probe requests admitted per batch, judged by `failure_rate` and `slow_rate` over all of it"),
	SEC("probe_timeout_s", breaker.cfg.probe_timeout_us, 0.05, 3600, DEF_INIT,
	    "a batch without a verdict this long: a new batch"),
	SEC("forget_s", breaker.cfg.forget_us, 0, 86400 * 7, DEF_INIT, "closed this long: the trip count starts over"),
	SEC("reorder_s", breaker.cfg.reorder_us, 0, 3600, DEF_INIT,
	    "a PSP error answered this long after a call sent after it came back well counts in `failure_rate`, "
	    "not in `consecutive` (a timeout comes back after calls sent later); 0 = off"),
	SHARE("max_ejected", breaker.max_ejected_permille, 0.5,
	      "at most max(1, n × this) backends open at once; a breaker refused by the cap is *degraded* (scored down), and one gone dark (90 % of its window failing) takes the place of an open one that opened on 20 points fewer failures"),
	NUM("degraded_factor", breaker.degraded_factor, 0, 1, 0.5, "score factor of such a degraded backend"),
	NUM("scope_factor", breaker.scope_factor, 0, 1, 0.5,
	    "failures (timeouts, fast 5xx) confined to segments whose answered share (`learning.answer_*`, relative to "
	    "the backend's) is at or below this, while another segment answered `answer_min_timeouts` calls without a "
	    "failure, do not trip the breaker (the segments move alone); such a backend counts toward `max_ejected`, "
	    "and open, it probes at once with the other segments' requests; 0 = off (and the error chart's penalty "
	    "is not held for a segment's errors either)"),
};

static void ps_breaker_init(void *base)
{
	brk_cfg_default(&((struct policy *)base)->breaker.cfg);
}

const struct pol_section pol_sec_breaker = { "breaker", "breaker", "breaker", ps_breaker, N(ps_breaker),
	ps_breaker_init, false };

static const struct pol_setting ps_unanswered[] = {
	{ "enabled", PS_BOOL, offsetof(struct policy, learn.unans.enabled) - offsetof(struct policy, learn.unans),
	  0, 1, 1, "decisions that `pay-response` never answers count as PSP errors (below)", "", NULL, false,
	  NULL, NULL, NULL, 0 },
	{ "grace_ms", PS_U32, offsetof(struct policy, learn.unans.grace_ms) - offsetof(struct policy, learn.unans),
	  200, 10000, 2000, "a decision still unanswered this long after it was made is missing (below)", NULL, NULL,
	  false, NULL, NULL, NULL, 0 },
	{ "min_calls", PS_U32, offsetof(struct policy, learn.unans.min_calls) - offsetof(struct policy, learn.unans),
	  1, 1000000, 5, "missing answers teach only once a run of ticks with at least `min_share` missing holds "
	  "this many decisions", NULL, NULL, false, NULL, NULL, NULL, 0 },
	{ "min_share", PS_NUM, offsetof(struct policy, learn.unans.min_share) - offsetof(struct policy, learn.unans),
	  0.01, 1, 0.5, "… the share of a 100 ms tick's decisions that must be missing to start or extend such a run",
	  NULL, NULL, false, NULL, NULL, NULL, 0 },
	{ "grace_latency", PS_NUM, offsetof(struct policy, learn.unans.grace_latency) - offsetof(struct policy, learn.unans),
	  0, 100, 4, "a backend's decisions are judged missing only after max(`grace_ms`, this × its learned latency), "
	  "so a slow backend's answers are not missing; 0 = `grace_ms` for every backend", NULL, NULL, false, NULL, NULL,
	  NULL, 0 },
	{ "max_grace_ms", PS_U32, offsetof(struct policy, learn.unans.max_grace_ms) - offsetof(struct policy, learn.unans),
	  200, 60000, 8000, "… capped at this (a hung backend is judged within it whatever its latency was)", NULL, NULL,
	  false, NULL, NULL, NULL, 0 },
};

static const struct pol_section ps_sec_unanswered = { "learning.unanswered", "unanswered", "unanswered",
	ps_unanswered, N(ps_unanswered), NULL, false };

static const struct pol_setting ps_learning[] = {
	NUM("half_life_s", learn.cfg.half_life_s, 0, 86400 * 365, 300,
	    "counts halve after this long; 0 = never (why 300 s: `policy/learning.md`)"),
	NUM("prior_weight", learn.prior_weight, 0.01, 1e6, 20,
	    "the backend's `auth_rate`/`auth_rates` is a Beta prior worth this many outcomes"),
	NUM("min_n", learn.cfg.min_n, 0, 1e9, 30, "a segment level is used once its discounted count reaches this"),
	{ "max_n", PS_NUM, P(learn.cfg.max_n), 0, 1e9, 200,
	  "evidence cap: at this discounted count each new outcome displaces as much old weight, so a busy segment's "
	  "window is its last ~`max_n` outcomes and a quiet one's the half-life; 0 = time only",
	  "0, or ≥ 2 and ≥ `min_n`", NULL, false, NULL, NULL, NULL, 0 },
	U32("max_segments", learn.cfg.max_segments, 64, 1 << 22, 32768,
	    "keys kept (5 per segment: backend × currency × country × brand × funding, backing off to coarser keys); "
	    "32 bytes each, ×3 (master + 2 published copies)"),
	NUM("thin_weight", learn.cfg.thin_n, 0, 1e9, 0,
	    "a segment with some outcomes but fewer than `min_n` reads them on top of the coarser level's mean worth "
	    "this many outcomes, instead of the coarser level alone; 0 = the plain back-off (off by default: "
	    "`policy/learning.md`, thin segments)"),
	NUM("explore", learn.explore, 0, 0.5, 0.05, "default `explore` of the classes"),
	NUM("explore_untested", learn.explore_untested, 0, 0.5, 0,
	    "a class that explores at all explores up to this share of its decisions toward a backend whose own "
	    "evidence has not yet reached `min_n` (its `auth_rate` untested), drawing that backend's P(auth) only; "
	    "0 = off (off by default: `policy/learning.md`, untested priors)"),
	NUM("floor_k", learn.floor_k, -1, 100, 3,
	    "in an exploring decision, a backend below best − k·σ is drawn as if at that floor, so a recovered one is "
	    "re-tested; < 0 = off"),
	U32("publish_ms", learn.publish_ms, 10, 60000, 250, "how often workers get a fresh copy of the posteriors"),
	BOOL("errors_count", learn.errors_count, 0,
	     "PSP errors count as failed authorisations too (off: they are the breaker's and the anomaly detector's "
	     "signal, and an outage would linger in P(auth) for hours)"),
	NUM("answer_half_life_s", learn.answer_half_life_s, 0, 3600, 5,
	    "a segment's calls on a backend that failed (a PSP error: a timeout, HAProxy's 504, or a fast 500/503) "
	    "are counted per segment with this half-life, and its P(auth) there is multiplied by its "
	    "share answered relative to the backend's (failures on every segment alike are the breaker's and the "
	    "anomaly chart's): a hang, outage or brownout of some card kinds only moves them alone; 0 = off "
	    "(`policy/learning.md`, issue 11, a segment's outage, a segment's brownout)"),
	NUM("answer_prior", learn.answer_prior, 0.1, 1000, 2,
	    "… the answered calls each segment's share starts from (a few timeouts of a quiet segment cost little, "
	    "and the share comes back as its count decays)"),
	NUM("answer_max_n", learn.answer_max_n, 1, 1e6, 20,
	    "… at this discounted count each new call displaces as much old weight: a few answers of a repaired "
	    "backend (its segment re-tested by exploration) outweigh the timeouts before them"),
	NUM("answer_min_timeouts", learn.answer_min_timeouts, 0, 1e6, 8,
	    "… a segment's share counts once it holds this many (discounted) failures: a wide latency tail's odd "
	    "timeout does not move a segment back and forth; it then counts until its failures decay away"),
	NUM("customer_declines", learn.customer_weight, 0, 1, 0,
	    "weight of a customer-fault decline (`insufficient_funds`, ...) as a failed authorisation in the "
	    "posteriors; 0 = they teach nothing, as the issuer declines them on every account, but for a rise of them on "
	    "one backend that its peers do not share (why: `policy/learning.md`)"),
	NUM("latency_alpha", learn.latency_alpha, 0.0001, 1, 0.05, "weight of one answer in a backend's learned latency"),
	{ "unanswered", PS_GROUP, P(learn.unans), 0, 0, DEF_INIT, "decisions never answered by `pay-response`",
	  NULL, NULL, false, &ps_sec_unanswered, NULL, NULL, 0 },
};

static void ps_learning_init(void *base)
{
	/* prior_a/prior_b are unused by the engine (each backend's own prior is) */
	((struct policy *)base)->learn.cfg = (struct srt_cfg){ .prior_a = 1, .prior_b = 1 };
}

const struct pol_section pol_sec_learning = { "learning", "learning", "learning", ps_learning, N(ps_learning),
	ps_learning_init, false };

static const struct pol_setting ps_anomaly[] = {
	BOOL("enabled", anomaly.enabled, 1, "false: no chart, no penalty"),
	NUM("lambda", anomaly.cfg.lambda, 0, 1, DEF_INIT, "EWMA weight of the newest sample (> 0)"),
	NUM("base_lambda", anomaly.cfg.base_lambda, 0, 1, DEF_INIT, "how fast the normal level is learned (> 0)"),
	NUM("alarm_lambda", anomaly.cfg.alarm_lambda, 0, 1, DEF_INIT,
	    "the same while in alarm: a lasting shift becomes the new normal; 0 = never"),
	NUM("limit_k", anomaly.cfg.limit_k, 0, 100, DEF_INIT, "alarm above the normal + k σ"),
	NUM("exit_k", anomaly.cfg.exit_k, 0, 100, DEF_INIT, "leave the alarm under the normal + k σ"),
	U32("warmup", anomaly.cfg.warmup, 0, 1000000, DEF_INIT, "samples that only teach the normal"),
	U32("enter_samples", anomaly.cfg.enter_samples, 1, 1000, DEF_INIT, "samples in a row above the limit to alarm"),
	U32("exit_samples", anomaly.cfg.exit_samples, 1, 1000, DEF_INIT, "samples in a row under the exit line to leave"),
	U32("min_requests", anomaly.cfg.min_requests, 1, 1000000, DEF_INIT, "requests pooled into one sample"),
	NUM("err_min_sd", anomaly.cfg.err_min_sd, 0, 1, DEF_INIT, "floor on the error rate's σ"),
	NUM("err_min_delta", anomaly.cfg.err_min_delta, 0, 1, DEF_INIT, "smallest error-rate rise that may alarm"),
	NUM("lat_min_sd_ms", anomaly.cfg.lat_min_sd_ms, 0, 600000, DEF_INIT, "floor on the latency's σ"),
	NUM("lat_min_delta_ms", anomaly.cfg.lat_min_delta_ms, 0, 600000, DEF_INIT,
	    "smallest latency rise that may alarm"),
	NUM("lat_min_rise", anomaly.cfg.lat_min_rise, 0, 100, DEF_INIT,
	    "and at least this share of the learned mean latency"),
	NUM("lat_clip", anomaly.cfg.lat_clip, 0, 1000, DEF_INIT,
	    "one answer counts at most this multiple of the learned mean latency; 0 = no clipping"),
	NUM("factor", anomaly.cfg.factor, 0, 1, DEF_INIT, "score factor per chart in alarm"),
	BOOL("err_priced", anomaly.cfg.err_priced, DEF_INIT,
	     "an error alarm scales the score by the share of calls that answer, relative to the normal share; "
	     "false: by `factor`"),
	NUM("lat_confirm", anomaly.cfg.lat_confirm, 0, 1000, DEF_INIT,
	    "a latency alarm scales the score only while the learned latency is at least this multiple of the "
	    "chart's normal mean; 0 = always"),
};

static void ps_anomaly_init(void *base)
{
	anom_cfg_default(&((struct policy *)base)->anomaly.cfg);
}

const struct pol_section pol_sec_anomaly = { "anomaly", "anomaly", "anomaly", ps_anomaly, N(ps_anomaly),
	ps_anomaly_init, false };

static const struct pol_setting ps_forecast[] = {
	BOOL("enabled", forecast.enabled, 1, "false: forecasts are kept (admin) but never shed"),
	NUM("alpha", forecast.cfg.alpha, 0, 1, DEF_INIT, "Holt per second: level"),
	NUM("beta", forecast.cfg.beta, 0, 1, DEF_INIT, "Holt per second: trend"),
	NUM("hw_alpha", forecast.cfg.hw_alpha, 0, 1, DEF_INIT, "Holt-Winters per minute: level"),
	NUM("hw_beta", forecast.cfg.hw_beta, 0, 1, DEF_INIT, "Holt-Winters per minute: trend"),
	NUM("hw_gamma", forecast.cfg.hw_gamma, 0, 1, DEF_INIT, "Holt-Winters per minute: season"),
	U32("season", forecast.cfg.season, 2, FC_SEASON_MAX, DEF_INIT, "minutes in a season (a day)"),
	U32("horizon_s", forecast.horizon_s, 1, 600, 3, "how far ahead Holt looks"),
	NUM("headroom", forecast.headroom, 0.05, 2, 0.9, "shed the demand above this share of the account's budget"),
	NUM("exit_ratio", forecast.exit_ratio, 0, 1, 0.8, "stop shedding at once under `exit_ratio × headroom × budget`"),
	U32("min_shed_ms", forecast.min_shed_ms, 0, 600000, 3000,
	    "time constant with which a shed share falls (it rises at once)"),
	INT("retry_after_s", forecast.retry_after_s, 1, 3600, 1, "Retry-After of a shed request"),
};

static void ps_forecast_init(void *base)
{
	fc_cfg_default(&((struct policy *)base)->forecast.cfg);
}

const struct pol_section pol_sec_forecast = { "forecast", "forecast", "forecast", ps_forecast, N(ps_forecast),
	ps_forecast_init, false };

static const struct pol_setting ps_adaptive[] = {
	BOOL("enabled", adaptive.enabled, 1, "false: budgets stay as configured"),
	NUM("decrease", adaptive.md, 0.01, 0.99, 0.7,
	    "multiplicative cut on a 429 that carries `Stripe-Rate-Limited-Reason`, once per cool-down"),
	NUM("increase_per_s", adaptive.ai_share, 0, 10, 0.01, "recovery per second, share of the configured rate"),
	NUM("floor", adaptive.floor_share, 0.001, 1, 0.05, "never below this share of the configured rate"),
	{ "cooldown_ms", PS_MS_US, P(adaptive.cooldown_us), 0, 600000, 2000, "at most one cut per this long",
	  NULL, NULL, false, NULL, NULL, NULL, 0 },
	NUM("plateau", adaptive.plateau, 0.01, 1, 0.95, "full-speed recovery up to this share of the level last cut"),
	NUM("probe", adaptive.probe, 0.01, 1, 0.3, "then `probe × increase_per_s` up to that level, held there `probe_after_s`"),
	SEC("forget_s", adaptive.forget_us, 1, 86400, 300,
	    "this long after the last cut the level is forgotten (recovery goes on to the configured rate)"),
	SEC("probe_after_s", adaptive.hold_us, 1, 86400, 20,
	    "held at the level last cut this long without a 429: climb above it at `increase_per_s` (a lifted "
	    "limit); a 429 there goes back to the plateau and doubles the wait, up to `forget_s`"),
};

const struct pol_section pol_sec_adaptive = { "adaptive", "adaptive", "adaptive", ps_adaptive, N(ps_adaptive),
	NULL, false };

static const struct pol_setting ps_outcomes[] = {
	{ "defaults", PS_CUSTOM, 0, 0, 1, 1, "start from the built-in decline table", "", "bool", false, NULL,
	  ps_oc_defaults, ps_show_bool_def, 0 },
	CUSTOM("unknown_decline", 0, "string", "`soft`, `customer`, `psp_error`",
	       "kind of a card error whose code is in no list", ps_unknown_decline, ps_show_unknown_decline, 0),
	CUSTOM("customer", 0, "array of strings", "", "codes that are the customer's fault (no health signal; auth rate at `learning.customer_declines`)",
	       ps_oc_codes, ps_show_none, 0),
	CUSTOM("soft", 0, "array of strings", "", "codes that count against the backend's auth rate",
	       ps_oc_codes, ps_show_none, 1),
	CUSTOM("psp_error", 0, "array of strings", "", "codes that count as PSP errors", ps_oc_codes, ps_show_none, 2),
};

static void ps_outcomes_init(void *base)
{
	struct policy *p = base;

	oc_table_init(&p->oc, p->oc_rules, POL_MAX_DECLINES);
}

const struct pol_section pol_sec_outcomes = { "outcomes", "outcomes", "outcomes", ps_outcomes, N(ps_outcomes),
	ps_outcomes_init, false };


/* ---- list elements: the scalar keys; names, references and lists are load.c's ----------- */

#define E_STR(type, n, f, req, doc) \
	{ n, PS_STR, offsetof(type, f), 0, sizeof(((type *)0)->f), DEF_INIT, doc, NULL, NULL, req, NULL, NULL, NULL, 0 }
#define E(type, k, n, f, lo, hi, d, doc) \
	{ n, k, offsetof(type, f), lo, hi, d, doc, NULL, NULL, false, NULL, NULL, NULL, 0 }
#define BYCODE_REQ(n, type, doc) { n, PS_CUSTOM, 0, 0, 0, DEF_INIT, doc, "", type, true, NULL, NULL, ps_show_none, 0 }

static const struct pol_setting ps_fee[] = {
	E_STR(struct pol_fee, "name", name, true, "referenced by backends"),
	{ "percent", PS_NUM, offsetof(struct pol_fee, pct), 0, 100, DEF_INIT, "base percent", NULL, NULL, true,
	  NULL, NULL, NULL, 0 },
	E(struct pol_fee, PS_NUM, "fixed", fixed, 0, 1e6, 0, "base fixed fee, minor units"),
	E(struct pol_fee, PS_NUM, "cross_border", cross_border_pct, 0, 100, 0,
	  "percent added when the card's region differs from the backend's region"),
	E(struct pol_fee, PS_NUM, "fx", fx_pct, 0, 100, 0,
	  "percent added when the currency is not among the backend's `settlement` currencies"),
	BYCODE("rates", "list of groups",
	       "rows by card region and funding; the first match replaces the base percent (and fixed, if given)"),
};

const struct pol_section pol_sec_fee = { "fee_schedules", NULL, "a fee schedule", ps_fee, N(ps_fee), NULL, true };

/* auth_rate: the prior of every card region, before `auth_rates` overrides some. */
static int ps_auth_rate(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s, void *base)
{
	struct pol_backend *b = base;
	double prior = s->def;
	int i;

	if (cfg_num(c, g, s->name, false, s->min, s->max, &prior))
		return -1;
	for (i = 0; i < POL_MAX_REGIONS + 2; i++)
		b->p_auth[i] = (float)prior;
	return 0;
}

static void ps_show_def(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	snprintf(buf, size, "%g", s->def);
}

static const struct pol_setting ps_backend[] = {
	E_STR(struct pol_backend, "name", name, true, "the HAProxy backend name (letters, digits, `_-.`), unique"),
	E_STR(struct pol_backend, "account", account, true,
	      "Stripe account id; backends sharing one share its budget and its pins"),
	E_STR(struct pol_backend, "entity", entity, true, "legal entity, used by compliance rules"),
	BYCODE_REQ("region", "string", "region of the entity (for cross-border fees)"),
	BYCODE_REQ("currencies", "array of strings", "presentment currencies served (ISO 4217)"),
	CUSTOM("settlement", 0, "array of strings", "", "currencies settled without conversion (default: `currencies`)",
	       NULL, ps_show_none, 0),
	BYCODE_REQ("fee_schedule", "string", "a `fee_schedules` name"),
	E(struct pol_backend, PS_BOOL, "enabled", enabled, 0, 1, 1,
	  "a disabled backend is used only by pinned requests or in panic"),
	E(struct pol_backend, PS_BOOL, "connect", connect, 0, 1, 0, "a Connect platform: may serve unknown `Stripe-Account`s"),
	E(struct pol_backend, PS_NUM, "latency_ms", latency_ms, 0, 600000, 300, "prior latency"),
	{ "auth_rate", PS_CUSTOM, 0, 0, 1, 0.9, "prior P(authorised)", "0..1", "number", false, NULL, ps_auth_rate,
	  ps_show_def, 0 },
	BYCODE("auth_rates", "group", "`region = P` overrides of `auth_rate` by card region"),
	{ "probe_url", PS_CUSTOM, offsetof(struct pol_backend, probe_url), 0, 0, DEF_INIT,
	  "active probe: GET this URL every `probe_interval_s` (spoa/README.md, Probes); a failure feeds the "
	  "breaker and the anomaly chart like a PSP error", "`http://` or `https://`, ≤ 255 bytes", "string", false,
	  NULL, ps_probe_url, ps_show_none, 0 },
	E(struct pol_backend, PS_NUM, "probe_interval_s", probe_interval_s, 0.05, 3600, 5, "seconds between probes"),
	E(struct pol_backend, PS_NUM, "probe_timeout_s", probe_timeout_s, 0.05, 600, 2,
	  "a probe without a complete answer this long has failed"),
	E(struct pol_backend, PS_INT, "probe_status", probe_status, 100, 599, 200, "the status a healthy backend answers"),
	{ "probe_ca_file", PS_STR, offsetof(struct pol_backend, probe_ca_file), 0,
	  sizeof(((struct pol_backend *)0)->probe_ca_file), DEF_INIT,
	  "PEM file of the CAs an `https://` probe trusts (default: the system's store); peer and host are always verified",
	  NULL, NULL, false, NULL, NULL, ps_show_none, 0 },
};

const struct pol_section pol_sec_backend = { "backends", NULL, "a backend", ps_backend, N(ps_backend), NULL, true };

static void ps_show_explore(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	snprintf(buf, size, "`learning.explore`");
}

static const struct pol_setting ps_class[] = {
	E_STR(struct pol_class, "name", name, true, "unique; sent to HAProxy as `txn.pay.class`"),
	E(struct pol_class, PS_INT, "priority", prio, -2047, 2047, 0, "HAProxy priority class, lower is served first"),
	E(struct pol_class, PS_INT, "offset_ms", offset_ms, -524287, 524287, 0, "base priority offset"),
	E(struct pol_class, PS_NUM, "reserve", reserve, 0, 0.9, 0,
	  "share of every budget reserved for this class; the sum over classes ≤ 0.9"),
	E(struct pol_class, PS_INT, "shed_order", shed_order, 1, 1000, 1, "1 is shed first"),
	E(struct pol_class, PS_INT, "queue_ms", queue_ms, 0, 60000, 0,
	  "how far over budget a request may be and still be let through (verdict `queue`) instead of refused; "
	  "see below before raising it"),
	/* -1 until the learning section is read: then learning.explore */
	{ "explore", PS_NUM, offsetof(struct pol_class, explore), 0, 0.5, -1,
	  "share of this class's decisions that may explore (Thompson draws); 0 = never", NULL, NULL, false, NULL,
	  NULL, ps_show_explore, 0 },
};

const struct pol_section pol_sec_class = { "classes", NULL, "a class", ps_class, N(ps_class), NULL, true };

static const struct pol_setting ps_webhooks[] = {
	CUSTOM("urls", 0, "array of strings", "≤ 4 `http://` or `https://` URLs",
	       "where each event is POSTed (spoa/README.md, Webhooks); none = no webhooks", ps_hook_urls, ps_show_none, 0),
	{ "secret_file", PS_STR, P(hook.secret_file), 0, sizeof(((struct policy *)0)->hook.secret_file), DEF_INIT,
	  "file holding the signing secret (read at start and reload; one trailing newline dropped)",
	  NULL, NULL, false, NULL, NULL, ps_show_none, 0 },
	{ "secret_env", PS_STR, P(hook.secret_env), 0, sizeof(((struct policy *)0)->hook.secret_env), DEF_INIT,
	  "... or the environment variable holding it; `urls` needs one of the two", NULL, NULL, false, NULL, NULL,
	  ps_show_none, 0 },
	U32("queue", hook.queue, 1, 65536, 256, "deliveries waiting or in flight; an event past it is dropped (counted)"),
	U32("retries", hook.retries, 0, 100, 8, "attempts after the first, for a timeout, a transport error or a non-2xx answer"),
	NUM("backoff_s", hook.backoff_s, 0.01, 3600, 1, "wait before the first retry; doubles with each, times a jitter of 0.5..1"),
	NUM("backoff_max_s", hook.backoff_max_s, 0.01, 86400, 300, "cap on the wait between attempts"),
	NUM("timeout_s", hook.timeout_s, 0.05, 600, 10, "one attempt's time limit"),
};

const struct pol_section pol_sec_webhooks = { "webhooks", "webhooks", "webhooks", ps_webhooks, N(ps_webhooks),
	NULL, false };

/* A string of the fleet: "none" when empty. */
static void ps_show_fleet_str(const void *base, const struct pol_setting *s, char *buf, size_t size)
{
	const char *v = (const char *)base + s->off;

	snprintf(buf, size, v[0] ? "`\"%s\"`" : "none", v);
}

#define FSTR(n, f, doc) \
	{ n, PS_STR, P(fleet.f), 0, sizeof(((struct policy *)0)->fleet.f), DEF_INIT, doc, NULL, NULL, false, NULL, NULL, \
	  ps_show_fleet_str, 0 }
static const struct pol_setting ps_fleet[] = {
	FSTR("redis", redis, "Redis of the fleet, `\"host:port\"` or `\"unix:/path\"`; none = one node, nothing shared"),
	FSTR("node", node, "this node's name in the fleet, unique in it; none = host name and process id"),
	FSTR("prefix", prefix, "of every Redis key and channel of the fleet (fleets may share a Redis); none = `payspoa`"),
	INT("timeout_ms", fleet.timeout_ms, 5, 60000, 250,
	    "a Redis command unanswered this long drops the connection (then reconnects with backoff)"),
	INT("heartbeat_ms", fleet.heartbeat_ms, 10, 60000, 1000, "between heartbeats (this node's key, the nodes seen)"),
	INT("node_ttl_ms", fleet.node_ttl_ms, 20, 600000, 3000, "a node without a heartbeat this long leaves the fleet"),
	INT("reconnect_max_ms", fleet.reconnect_max_ms, 50, 600000, 2000, "reconnect backoff: 50 ms doubling up to this"),
	U32("journal_slots", fleet.journal_slots, 64, 16777216, 65536,
	    "pins each worker may make between two drains of its journal (every 50 ms tick and at each Redis reply)"),
	BOOL("claim", fleet.claim, 1,
	     "with `redis`: a decision that makes a new idempotency pin claims the key in Redis before its ACK is sent "
	     "(spoa/README.md, Fleet); false = the ACK leaves at once and the pin replicates afterwards"),
	INT("claim_timeout_ms", fleet.claim_timeout_ms, 1, 1000, 40,
	    "an ACK held for its claim is sent as decided after this; must be below the SPOE agent's `timeout processing`"),
	INT("lease_ms", fleet.lease_ms, 0, 1000, 5,
	    "between leases of budget tokens from the fleet's global buckets; 0 = each node spends its budgets alone"),
	INT("lease_ahead_ms", fleet.lease_ahead_ms, 1, 10000, 20,
	    "a lease asks for the demand of this long ahead; tokens held above that expire, given back to the fleet's bucket"),
	INT("expected_nodes", fleet.expected_nodes, 0, 10000, 0,
	    "nodes assumed before the first heartbeat (the fallback share is budget / nodes); 0 = one"),
	INT("learn_ms", fleet.learn_ms, 0, 60000, 1000,
	    "between publications of the outcome counts this node learned (merged by every node); breaker openings are "
	    "published at once; 0 = each node learns alone"),
};
#undef FSTR

const struct pol_section pol_sec_fleet = { "fleet", "fleet", "fleet", ps_fleet, N(ps_fleet), NULL, false };

const struct pol_section *const pol_sections[] = { &pol_sec_fee, &pol_sec_backend, &pol_sec_class, &pol_sec_agent, &pol_sec_pinning, &pol_sec_throttle,
	&pol_sec_scoring, &pol_sec_breaker, &pol_sec_learning, &pol_sec_anomaly, &pol_sec_forecast,
	&pol_sec_adaptive, &pol_sec_outcomes, &pol_sec_webhooks, &pol_sec_fleet };
const int pol_nsections = N(pol_sections);

/* ---- the reference ---------------------------------------------------------------------- */

struct ps_out {
	char *buf;
	size_t size, len;
};

__attribute__((format(printf, 2, 3)))
static void ps_put(struct ps_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL, o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void ps_fmt_num(double v, char *buf, size_t size)
{
	if (v == (double)(long long)v && v > -1e9 && v < 1e9)
		snprintf(buf, size, "%lld", (long long)v);
	else
		snprintf(buf, size, "%g", v);
}

static const char *ps_type_name(const struct pol_setting *s)
{
	if (s->kind == PS_CUSTOM)
		return s->type;
	if (s->kind == PS_BOOL)
		return "bool";
	if (s->kind == PS_STR)
		return "string";
	return ps_integer(s->kind) ? "int" : "number";
}

static void ps_rows(struct ps_out *o, const struct pol_section *sec, const void *base, const char *prefix)
{
	int i;

	for (i = 0; i < sec->nsettings; i++) {
		const struct pol_setting *s = &sec->settings[i];
		char def[256], lo[32], hi[32], range[96];

		if (s->kind == PS_GROUP) {
			char sub[64];

			snprintf(sub, sizeof(sub), "%s%s.", prefix, s->name);
			ps_rows(o, s->sub, (const char *)base + s->off, sub);
			continue;
		}
		if (s->required)
			snprintf(def, sizeof(def), "required");
		else if (s->show)
			s->show(base, s, def, sizeof(def));
		else if (s->kind == PS_BOOL)
			snprintf(def, sizeof(def), "%s", ps_load(s, base) != 0 ? "true" : "false");
		else
			ps_fmt_num(ps_load(s, base), def, sizeof(def));
		ps_fmt_num(s->min, lo, sizeof(lo));
		ps_fmt_num(s->max, hi, sizeof(hi));
		snprintf(range, sizeof(range), "%s..%s", lo, hi);
		if (s->kind == PS_STR)
			snprintf(range, sizeof(range), "≤ %d bytes", (int)s->max - 1);
		else if (s->kind == PS_BOOL)
			range[0] = 0;
		ps_put(o, "| `%s%s` | %s | %s | %s | %s |\n", prefix, s->name, ps_type_name(s), def,
		       s->range ? s->range : range, s->doc);
	}
}

static size_t ps_reference(const struct pol_section *const *secs, int n, bool headings, char *buf, size_t size)
{
	struct ps_out o = { buf, size, 0 };
	struct cfg_ctx c = { "defaults", NULL, 0, CFG_WORDS_POLICY };
	char err[256];
	struct policy *p = calloc(1, sizeof(*p));
	int i;

	c.err = err;
	c.errlen = sizeof(err);
	if (size)
		buf[0] = 0;
	if (!p)
		return 0;
	for (i = 0; i < n; i++) {
		/* The defaults, as the loader gives them for a file without the section (or an
		 * element without the key). */
		memset(p, 0, sizeof(*p));
		pol_section_read(&c, NULL, secs[i], p);
		if (headings)
			ps_put(&o, "## `%s`\n\n", secs[i]->name);
		ps_put(&o, "<!-- settings:%s -->\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n",
		       secs[i]->name);
		ps_rows(&o, secs[i], p, "");
		ps_put(&o, "<!-- /settings -->\n%s", headings ? "\n" : "");
	}
	free(p);
	return o.len;
}

size_t pol_settings_reference(char *buf, size_t size)
{
	return ps_reference(pol_sections, pol_nsections, true, buf, size);
}

size_t pol_section_reference(const struct pol_section *sec, char *buf, size_t size)
{
	return ps_reference(&sec, 1, false, buf, size);
}
