/* cfg.c: the project's only libconfig user: parses files and strings, and reads typed,
 * range-checked members with "file:line: message" errors (contracts in cfg.h).
 * Allocates only inside libconfig, at load; no logging, no globals. */
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

/* A cfg_node is a libconfig setting, and a cfg_file wraps a config_t: the casts below
 * are the only place the two names meet. */
struct cfg_file {
	config_t cf;
};

static const config_setting_t *cs(const struct cfg_node *n)
{
	return (const config_setting_t *)(const void *)n;
}

static const struct cfg_node *cn(const config_setting_t *s)
{
	return (const struct cfg_node *)(const void *)s;
}

static void cfg_parse_error(const config_t *cf, const char *name, char *err, size_t errlen)
{
	if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
		snprintf(err, errlen, "%s:0: cannot read the file", name);
	else
		snprintf(err, errlen, "%s:%d: %s", config_error_file(cf) ? config_error_file(cf) : name,
		         config_error_line(cf), config_error_text(cf) ? config_error_text(cf) : "parse error");
}

struct cfg_file *cfg_read_file(const char *path, const char *incdir, char *err, size_t errlen)
{
	struct cfg_file *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "%s:0: out of memory", path);
		return NULL;
	}
	config_init(&f->cf);
	config_set_include_dir(&f->cf, incdir);
	if (!config_read_file(&f->cf, path)) {
		cfg_parse_error(&f->cf, path, err, errlen);
		cfg_close(f);
		return NULL;
	}
	return f;
}

struct cfg_file *cfg_read_string(const char *text, const char *name, char *err, size_t errlen)
{
	struct cfg_file *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "%s:0: out of memory", name);
		return NULL;
	}
	config_init(&f->cf);
	if (!config_read_string(&f->cf, text)) {
		cfg_parse_error(&f->cf, name, err, errlen);
		cfg_close(f);
		return NULL;
	}
	return f;
}

void cfg_close(struct cfg_file *f)
{
	if (!f)
		return;
	config_destroy(&f->cf);
	free(f);
}

const struct cfg_node *cfg_root(const struct cfg_file *f)
{
	return cn(config_root_setting(&f->cf));
}

int cfg_fail(struct cfg_ctx *c, const struct cfg_node *n, const char *fmt, ...)
{
	const char *file = n ? config_setting_source_file(cs(n)) : NULL;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%u: %s", file ? file : c->file, n ? config_setting_source_line(cs(n)) : 0, msg);
	return -1;
}

/* ---- plain accessors --------------------------------------------------------------- */

const struct cfg_node *cfg_get(const struct cfg_node *g, const char *key)
{
	return g && config_setting_is_group(cs(g)) ? cn(config_setting_get_member(cs(g), key)) : NULL;
}

const struct cfg_node *cfg_at(const struct cfg_node *agg, int i)
{
	return agg && i >= 0 ? cn(config_setting_get_elem(cs(agg), (unsigned)i)) : NULL;
}

int cfg_count(const struct cfg_node *agg)
{
	return agg ? config_setting_length(cs(agg)) : 0;
}

const char *cfg_name(const struct cfg_node *n)
{
	return n ? config_setting_name(cs(n)) : NULL;
}

unsigned cfg_line(const struct cfg_node *n)
{
	return n ? config_setting_source_line(cs(n)) : 0;
}

enum cfg_type cfg_type(const struct cfg_node *n)
{
	switch (n ? config_setting_type(cs(n)) : CONFIG_TYPE_NONE) {
	case CONFIG_TYPE_GROUP:  return CFG_GROUP;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:  return CFG_INT;
	case CONFIG_TYPE_FLOAT:  return CFG_FLOAT;
	case CONFIG_TYPE_STRING: return CFG_STRING;
	case CONFIG_TYPE_BOOL:   return CFG_BOOL;
	case CONFIG_TYPE_ARRAY:  return CFG_ARRAY;
	case CONFIG_TYPE_LIST:   return CFG_LIST;
	}
	return CFG_NONE;
}

bool cfg_is_group(const struct cfg_node *n)
{
	return cfg_type(n) == CFG_GROUP;
}

bool cfg_is_seq(const struct cfg_node *n)
{
	return cfg_type(n) == CFG_ARRAY || cfg_type(n) == CFG_LIST;
}

const char *cfg_string(const struct cfg_node *n)
{
	return cfg_type(n) == CFG_STRING ? config_setting_get_string(cs(n)) : NULL;
}

const char *cfg_elem_str(const struct cfg_node *agg, int i)
{
	return cfg_string(cfg_at(agg, i));
}

/* An integer setting's value, whatever its width. */
static long long cfg_intval(const struct cfg_node *n)
{
	if (config_setting_type(cs(n)) == CONFIG_TYPE_INT)
		return config_setting_get_int(cs(n));
	return config_setting_get_int64(cs(n));
}

static double cfg_numval(const struct cfg_node *n)
{
	return cfg_type(n) == CFG_INT ? (double)cfg_intval(n) : config_setting_get_float(cs(n));
}

/* ---- checked members ---------------------------------------------------------------- */

static const char *cfg_type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_GROUP:  return "a group";
	case CFG_INT:    return "an integer";
	case CFG_FLOAT:  return "a number";
	case CFG_STRING: return "a string";
	case CFG_BOOL:   return "a boolean";
	case CFG_ARRAY:  return "an array";
	case CFG_LIST:   return "a list";
	case CFG_NONE:   break;
	}
	return "something";
}

int cfg_keys(struct cfg_ctx *c, const struct cfg_node *g, const char *what, const char *const keys[])
{
	int i, n, k;

	if (c->words == CFG_WORDS_POLICY && !cfg_is_group(g))
		return cfg_fail(c, g, "%s must be a group { ... }", what);
	n = cfg_is_group(g) ? cfg_count(g) : 0;
	for (i = 0; i < n; i++) {
		const struct cfg_node *m = cfg_at(g, i);

		for (k = 0; keys[k]; k++)
			if (strcmp(keys[k], cfg_name(m)) == 0)
				break;
		if (keys[k])
			continue;
		if (c->words == CFG_WORDS_SCENARIO)
			return cfg_fail(c, m, "unknown key '%s'", cfg_name(m));
		return cfg_fail(c, m, "unknown key '%s' in %s", cfg_name(m), what);
	}
	return 0;
}

static int cfg_missing(struct cfg_ctx *c, const struct cfg_node *g, const char *key)
{
	return c->words == CFG_WORDS_SCENARIO ? cfg_fail(c, g, "'%s' is missing", key) :
	       cfg_fail(c, g, "missing '%s'", key);
}

static int cfg_wrong_type(struct cfg_ctx *c, const struct cfg_node *m, const char *key, enum cfg_type want)
{
	if (c->words == CFG_WORDS_POLICY)
		return cfg_fail(c, m, "'%s' must be %s, not %s", key, cfg_type_name(want), cfg_type_name(cfg_type(m)));
	switch (want) {
	case CFG_BOOL:   return cfg_fail(c, m, "'%s' must be true or false", key);
	case CFG_LIST:   return cfg_fail(c, m, "'%s' must be a list", key);
	case CFG_FLOAT:  return cfg_fail(c, m, "'%s' must be a number", key);
	default:         return cfg_fail(c, m, "'%s' must be %s", key, cfg_type_name(want));
	}
}

int cfg_member(struct cfg_ctx *c, const struct cfg_node *g, const char *key, enum cfg_type type,
               bool required, const struct cfg_node **out)
{
	const struct cfg_node *m = cfg_get(g, key);
	enum cfg_type t = cfg_type(m);

	*out = m;
	if (!m)
		return required ? cfg_missing(c, g, key) : CFG_MISSING;
	if (t == type || (type == CFG_FLOAT && t == CFG_INT) || (type == CFG_LIST && t == CFG_ARRAY))
		return 0;
	return cfg_wrong_type(c, m, key, type);
}

int cfg_int(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            long long min, long long max, long long *out)
{
	const struct cfg_node *m;
	long long v;
	int rc = cfg_member(c, g, key, CFG_INT, required, &m);

	if (rc)
		return rc < 0 ? -1 : 0; /* absent: the caller's default stands */
	v = cfg_intval(m);
	if (v < min || v > max)
		return cfg_fail(c, m, "'%s' = %lld is out of range %lld..%lld", key, v, min, max);
	*out = v;
	return 0;
}

int cfg_num(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            double min, double max, double *out)
{
	const struct cfg_node *m;
	double v;
	int rc = cfg_member(c, g, key, CFG_FLOAT, required, &m);

	if (rc)
		return rc < 0 ? -1 : 0; /* absent: the caller's default stands */
	v = cfg_numval(m);
	if (!(v >= min && v <= max)) /* also rejects NaN */
		return c->words == CFG_WORDS_SCENARIO ? cfg_fail(c, m, "'%s' must be within %g..%g", key, min, max) :
		       cfg_fail(c, m, "'%s' = %g is out of range %g..%g", key, v, min, max);
	*out = v;
	return 0;
}

int cfg_bool(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool *out)
{
	const struct cfg_node *m;
	int rc = cfg_member(c, g, key, CFG_BOOL, false, &m);

	if (rc)
		return rc < 0 ? -1 : 0; /* absent: the caller's default stands */
	*out = config_setting_get_bool(cs(m)) != 0;
	return 0;
}

static int cfg_put(struct cfg_ctx *c, const struct cfg_node *n, const char *key, const char *v, unsigned flags,
                   char *buf, size_t size)
{
	size_t len = strlen(v);

	if (len == 0 && !(flags & CFG_EMPTY_OK))
		return cfg_fail(c, n, "'%s' must not be empty", key);
	if (len >= size)
		return c->words == CFG_WORDS_SCENARIO ? cfg_fail(c, n, "'%s' is longer than %zu bytes", key, size - 1) :
		       cfg_fail(c, n, "'%s' is too long (%zu bytes, at most %zu)", key, len, size - 1);
	if ((flags & CFG_STAR_ANY) && strcmp(v, "*") == 0)
		len = 0;
	memcpy(buf, v, len);
	buf[len] = 0;
	return 0;
}

int cfg_copy(struct cfg_ctx *c, const struct cfg_node *n, const char *key, const char *v, char *buf, size_t size)
{
	return cfg_put(c, n, key, v, 0, buf, size);
}

int cfg_str(struct cfg_ctx *c, const struct cfg_node *g, const char *key, unsigned flags, char *buf, size_t size)
{
	const struct cfg_node *m;
	int rc = cfg_member(c, g, key, CFG_STRING, flags & CFG_REQUIRED, &m);

	if (rc)
		return rc;
	return cfg_put(c, m, key, config_setting_get_string(cs(m)), flags, buf, size);
}

/* List or array member whose elements are all of `elem` type. */
static int cfg_aggregate(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required, int max,
                         enum cfg_type elem, const struct cfg_node **out)
{
	int rc = cfg_member(c, g, key, CFG_LIST, required, out);
	int i, n;

	if (rc)
		return rc;
	n = cfg_count(*out);
	if (n == 0 && required)
		return cfg_fail(c, *out, "'%s' must not be empty", key);
	if (n > max)
		return cfg_fail(c, *out, "'%s' has %d entries, at most %d", key, n, max);
	for (i = 0; i < n; i++) {
		const struct cfg_node *e = cfg_at(*out, i);

		if (cfg_type(e) != elem)
			return cfg_fail(c, e, elem == CFG_STRING ? "'%s' must hold strings only" :
			                "'%s' must be a list of groups ( { ... }, ... )", key);
	}
	return 0;
}

int cfg_strlist(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required, int max,
                const struct cfg_node **out)
{
	return cfg_aggregate(c, g, key, required, max, CFG_STRING, out);
}

int cfg_grouplist(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required, int max,
                  const struct cfg_node **out)
{
	return cfg_aggregate(c, g, key, required, max, CFG_GROUP, out);
}

int cfg_seq(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            const struct cfg_node **out)
{
	return cfg_member(c, g, key, CFG_LIST, required, out);
}

int cfg_elem_num(struct cfg_ctx *c, const struct cfg_node *agg, int i, double *out)
{
	const struct cfg_node *e = cfg_at(agg, i);

	if (cfg_type(e) != CFG_INT && cfg_type(e) != CFG_FLOAT)
		return cfg_fail(c, e ? e : agg, "'%s' must hold numbers", cfg_name(agg));
	*out = cfg_numval(e);
	if (*out < 0)
		return cfg_fail(c, e, "'%s' must hold numbers >= 0", cfg_name(agg));
	return 0;
}
