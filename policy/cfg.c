/* cfg.c: the project's only libconfig user: parses files and strings, and reads typed,
 * range-checked members with "file:line: message" errors (contracts in cfg.h).
 * Allocates only inside libconfig, at load; no logging, no globals. */
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- the pre-scan: what libconfig 1.5 gets wrong, refused before it parses -------------
 * libconfig calls exit(2) on an @include of a directory, blocks forever opening a FIFO,
 * follows include cycles until its depth limit, reads any size, stores 4294967297 as 1
 * (atoi) and cuts a string at an embedded NUL. cfg_scan walks the text with libconfig's
 * lexical rules (comments, strings, numbers, @include at the start of a line) and refuses
 * each of those with file:line; cfg_scan_file opens every file itself, never blocking
 * (O_NONBLOCK, regular files only), within CFG_MAX_FILE_BYTES and CFG_MAX_INCLUDES.
 * libconfig then opens the same paths again: a file swapped for a FIFO in between is the
 * one case left, and it needs write access to the policy's folder. */
#define CFG_MAX_FILE_BYTES (16u << 20) /* a policy is kilobytes; a country list, less */
#define CFG_MAX_INCLUDES   64          /* files per load, the top one included */
#define CFG_MAX_DEPTH      10          /* libconfig's own include depth limit */

struct cfg_scan {
	const char *incdir;   /* NULL: @include refused (text without a folder) */
	char *err;
	size_t errlen;
	unsigned nfiles;
	unsigned depth;
	dev_t dev[CFG_MAX_DEPTH + 1]; /* the files being scanned, outermost first */
	ino_t ino[CFG_MAX_DEPTH + 1];
};

static int cfg_scan_file(struct cfg_scan *sc, const char *path, const char *from, unsigned line);

__attribute__((format(printf, 4, 5)))
static int cfg_scan_fail(struct cfg_scan *sc, const char *name, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(sc->err, sc->errlen, "%s:%u: %.400s", name, line, msg);
	return -1;
}

/* An integer literal at t[0..n) (digits, optional 0x and L suffix) that libconfig would
 * wrap: without L it must fit 32 bits (a hex one may use all 32), with L 64 bits. */
static bool cfg_int_wraps(const char *t, size_t n, bool neg)
{
	bool hex = n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
	bool l64 = n > 0 && (t[n - 1] == 'L');
	unsigned long long v = 0, lim;
	size_t i = hex ? 2 : 0, end = n;

	while (end > i && t[end - 1] == 'L')
		end--;
	lim = l64 ? (hex ? UINT64_MAX : (unsigned long long)INT64_MAX + neg)
	          : (hex ? UINT32_MAX : (unsigned long long)INT32_MAX + neg);
	for (; i < end; i++) {
		unsigned d = t[i] <= '9' ? (unsigned)(t[i] - '0') : (unsigned)((t[i] | 0x20) - 'a' + 10);
		unsigned long long base = hex ? 16 : 10;

		if (d >= base)
			return false; /* not a number libconfig reads: its own error */
		if (v > (lim - d) / base)
			return true;
		v = v * base + d;
	}
	return false;
}

/* Scans one file's text (len bytes, NUL bytes included). 0 or -1 with err. */
static int cfg_scan_text(struct cfg_scan *sc, const char *name, const char *t, size_t len)
{
	unsigned line = 1;
	bool bol = true; /* only blanks so far on this line */
	size_t i = 0;

	while (i < len) {
		char c = t[i];

		if (c == 0)
			return cfg_scan_fail(sc, name, line, "a NUL byte in the file");
		if (c == '\n') {
			line++;
			bol = true;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			i++;
		} else if (c == '#' || (c == '/' && i + 1 < len && t[i + 1] == '/')) {
			while (i < len && t[i] != '\n' && t[i])
				i++;
		} else if (c == '/' && i + 1 < len && t[i + 1] == '*') {
			for (i += 2; i < len && !(t[i] == '*' && i + 1 < len && t[i + 1] == '/'); i++) {
				if (t[i] == 0)
					return cfg_scan_fail(sc, name, line, "a NUL byte in the file");
				line += t[i] == '\n';
			}
			i += 2;
			bol = false;
		} else if (c == '"') {
			for (i++; i < len && t[i] != '"'; i++) {
				if (t[i] == 0)
					return cfg_scan_fail(sc, name, line, "a NUL byte in a string");
				if (t[i] == '\\' && i + 1 < len) {
					i++;
					/* \x00 (any case, any number of 0 digits after x) is a NUL */
					if (t[i] == 'x' && i + 2 < len && t[i + 1] == '0' && t[i + 2] == '0')
						return cfg_scan_fail(sc, name, line, "a NUL (\\x00) inside a string: "
						                     "it would cut the string short");
				}
				line += t[i] == '\n';
			}
			i++;
			bol = false;
		} else if (c == '@' && bol && len - i >= 8 && memcmp(t + i, "@include", 8) == 0) {
			char inc[4096];
			size_t k = 0;

			for (i += 8; i < len && (t[i] == ' ' || t[i] == '\t'); i++)
				;
			if (i >= len || t[i] != '"')
				return cfg_scan_fail(sc, name, line, "@include must be followed by \"file\"");
			for (i++; i < len && t[i] != '"' && t[i] != '\n' && t[i] && k + 1 < sizeof(inc); i++)
				inc[k++] = t[i];
			if (i >= len || t[i] != '"')
				return cfg_scan_fail(sc, name, line, "@include: unterminated or too long file name");
			inc[k] = 0;
			i++;
			if (!sc->incdir)
				return cfg_scan_fail(sc, name, line, "@include is only allowed in files");
			/* libconfig 1.5 joins the include folder and the name, whatever the name */
			{
				char path[8192];

				snprintf(path, sizeof(path), "%s/%s", sc->incdir, inc);
				if (cfg_scan_file(sc, path, name, line) < 0)
					return -1;
			}
			bol = false;
		} else if ((c >= '0' && c <= '9') || ((c == '-' || c == '+') && i + 1 < len && t[i + 1] >= '0' &&
		                                      t[i + 1] <= '9')) {
			bool neg = c == '-';
			size_t s = i + (c == '-' || c == '+'), e = s;

			while (e < len && ((t[e] >= '0' && t[e] <= '9') || (t[e] >= 'a' && t[e] <= 'z') ||
			                   (t[e] >= 'A' && t[e] <= 'Z') || t[e] == '.' || t[e] == '_' ||
			                   ((t[e] == '-' || t[e] == '+') && (t[e - 1] | 0x20) == 'e')))
				e++;
			/* a float (a dot or an exponent, not hex) is libconfig's problem, not ours */
			if (!memchr(t + s, '.', e - s) &&
			    !((e - s < 2 || (t[s + 1] | 0x20) != 'x') && (memchr(t + s, 'e', e - s) || memchr(t + s, 'E', e - s))) &&
			    cfg_int_wraps(t + s, e - s, neg)) {
				char num[40];

				snprintf(num, sizeof(num), "%.*s", (int)(e - i < 32 ? e - i : 32), t + i);
				return cfg_scan_fail(sc, name, line,
				                     "integer %s is out of range (libconfig would wrap it; "
				                     "a 64-bit integer needs the L suffix)", num);
			}
			i = e;
			bol = false;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '*') {
			while (i < len && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') || t[i] == '_' ||
			                   t[i] == '-' || t[i] == '*' || (t[i] >= '0' && t[i] <= '9')))
				i++;
			bol = false;
		} else {
			i++;
			bol = false;
		}
	}
	return 0;
}

/* Opens path without ever blocking, refuses anything but a regular file within the
 * bounds and any file already being scanned (a cycle), then scans its text. `from` and
 * `line` name the @include (NULL for the top file). */
static int cfg_scan_file(struct cfg_scan *sc, const char *path, const char *from, unsigned line)
{
	const char *who = from ? from : path;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = -1, rc = -1;

	if (++sc->nfiles > CFG_MAX_INCLUDES)
		return cfg_scan_fail(sc, who, line, "more than %d files included", CFG_MAX_INCLUDES);
	if (sc->depth > CFG_MAX_DEPTH)
		return cfg_scan_fail(sc, who, line, "@include %s: nested too deep (10 levels at most)", path);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cfg_scan_fail(sc, who, line, "%s%s: %s", from ? "@include " : "cannot read ", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_scan_fail(sc, who, line, "%s%s: not a regular file (a directory, FIFO or device)",
		              from ? "@include " : "", path);
		goto out;
	}
	if ((unsigned long long)st.st_size > CFG_MAX_FILE_BYTES) {
		cfg_scan_fail(sc, who, line, "%s: larger than 16 MiB", path);
		goto out;
	}
	for (unsigned k = 0; k < sc->depth; k++) {
		if (sc->dev[k] == st.st_dev && sc->ino[k] == st.st_ino) {
			cfg_scan_fail(sc, who, line, "@include %s: a cycle (the file includes itself)", path);
			goto out;
		}
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		cfg_scan_fail(sc, who, line, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank meanwhile: scan what is there */
		got += (size_t)n;
	}
	sc->dev[sc->depth] = st.st_dev;
	sc->ino[sc->depth] = st.st_ino;
	sc->depth++;
	rc = cfg_scan_text(sc, path, buf, got);
	sc->depth--;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int cfg_check_text(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	struct cfg_scan sc = { .err = err, .errlen = errlen };

	return cfg_scan_text(&sc, name, text, len);
}

struct cfg_file *cfg_read_file(const char *path, const char *incdir, char *err, size_t errlen)
{
	struct cfg_scan sc = { .incdir = incdir, .err = err, .errlen = errlen };
	struct cfg_file *f;

	if (cfg_scan_file(&sc, path, NULL, 0) < 0)
		return NULL;
	f = calloc(1, sizeof(*f));
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
	struct cfg_file *f;

	if (cfg_check_text(text, strlen(text), name, err, errlen) < 0)
		return NULL;
	f = calloc(1, sizeof(*f));
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
