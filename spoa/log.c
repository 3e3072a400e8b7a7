/* log.c: JSON log lines and HMAC identifiers (see log.h). Must not be called from the
 * decision path. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"

static _Atomic int log_min = LOG_LVL_INFO;
static _Atomic int log_facility = -1; /* -1: stderr */
static const char *const level_names[] = { "debug", "info", "warning", "error" };
static const int level_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

void log_set_level(enum log_level lvl)
{
	atomic_store(&log_min, (int)lvl);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_enabled(enum log_level lvl)
{
	return (int)lvl >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

int log_set_syslog(const char *facility)
{
	static const struct { const char *name; int fac; } fac[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	if (!facility || strcmp(facility, "none") == 0) {
		atomic_store(&log_facility, -1);
		return 0;
	}
	for (size_t i = 0; i < sizeof(fac) / sizeof(fac[0]); i++) {
		if (strcmp(facility, fac[i].name) == 0) {
			openlog("payspoa", LOG_PID | LOG_NDELAY, fac[i].fac);
			atomic_store(&log_facility, fac[i].fac);
			return 0;
		}
	}
	return -1;
}

/* ---- the line ----------------------------------------------------------------------------
 * The buffer keeps LOG_TAIL bytes back for the worst ending: the string's closing quote,
 * ,"truncated":"true" and }\n. Every append checks against `lim`, which already
 * excludes them, so the line can always be closed. */
#define LOG_TAIL (sizeof("\",\"truncated\":\"true\"}\n") - 1)

struct log_line {
	char *buf;
	size_t len;
	size_t lim; /* LOG_LINE_MAX - LOG_TAIL */
};

/* Length of the valid UTF-8 sequence at s (n bytes available, RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

static void ll_raw(struct log_line *l, const char *s, size_t n)
{
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* The next character of s (n > 0 bytes left) as JSON string content: its bytes in
 * out[0..*on) and how many input bytes it takes (returned). */
static size_t json_char(const unsigned char *p, size_t n, char esc[8], const char **out, size_t *on)
{
	size_t in = utf8_len(p, n);

	*out = (const char *)p;
	*on = in;
	if (in == 1 && (*p == '"' || *p == '\\')) {
		esc[0] = '\\';
		esc[1] = (char)*p;
		*out = esc;
		*on = 2;
	} else if (in <= 1 && (*p < 0x20 || *p >= 0x7f)) {
		/* a control character, or a byte that is not UTF-8: the byte as U+00XX */
		*on = (size_t)snprintf(esc, 8, "\\u%04x", *p);
		*out = esc;
		in = 1;
	}
	return in;
}

/* Appends s as a JSON string's content, at most `cap` bytes of output (cap >= the mark's
 * length): when the whole does not fit, as many characters as leave room for
 * LOG_CUT_MARK, then the mark. Never splits a character or an escape. */
static void ll_str(struct log_line *l, const char *s, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), total = 0, room = cap - (sizeof(LOG_CUT_MARK) - 1);
	char esc[8];
	const char *out;
	size_t on;

	for (size_t i = 0; i < n && total <= cap;) {
		i += json_char(p + i, n - i, esc, &out, &on);
		total += on;
	}
	if (total <= cap)
		room = cap;
	for (size_t i = 0, w = 0; i < n;) {
		size_t in = json_char(p + i, n - i, esc, &out, &on);

		if (w + on > room) {
			ll_raw(l, LOG_CUT_MARK, sizeof(LOG_CUT_MARK) - 1);
			return;
		}
		ll_raw(l, out, on);
		w += on;
		i += in;
	}
}

/* Appends "key":"value" (with the leading comma); false when not even a cut pair fits. */
static bool ll_pair(struct log_line *l, const char *key, const char *val)
{
	size_t klim, vlim;
	const size_t mark = sizeof(LOG_CUT_MARK) - 1;

	/* ,"  key  ":"  value (the closing quote is in LOG_TAIL) */
	if (l->len + 2 + mark + 3 + mark > l->lim)
		return false;
	ll_raw(l, ",\"", 2);
	klim = l->lim - l->len - 3 - mark;
	ll_str(l, key, klim < LOG_KEY_MAX ? klim : LOG_KEY_MAX);
	ll_raw(l, "\":\"", 3);
	vlim = l->lim - l->len;
	ll_str(l, val ? val : "", vlim < LOG_VALUE_MAX ? vlim : LOG_VALUE_MAX);
	ll_raw(l, "\"", 1);
	return true;
}

size_t log_format(char *buf, enum log_level lvl, const char *ts, const char *event, const char *const *kv,
                  size_t npairs)
{
	struct log_line l = { buf, 0, LOG_LINE_MAX - LOG_TAIL };
	bool cut = false;

	ll_raw(&l, "{\"ts\":\"", 7);
	ll_str(&l, ts, 32);
	ll_raw(&l, "\",\"level\":\"", 11);
	ll_raw(&l, level_names[lvl], strlen(level_names[lvl]));
	ll_raw(&l, "\",\"event\":\"", 11);
	ll_str(&l, event, LOG_KEY_MAX);
	ll_raw(&l, "\"", 1);
	for (size_t i = 0; i < npairs && !cut; i++)
		cut = !ll_pair(&l, kv[2 * i], kv[2 * i + 1]);
	if (cut)
		ll_raw(&l, ",\"truncated\":\"true\"", 19);
	ll_raw(&l, "}\n", 2);
	return l.len;
}

void log_json_kv(enum log_level lvl, const char *event, const char *const *kv, size_t npairs)
{
	char buf[LOG_LINE_MAX], ts[40];
	struct timespec now;
	struct tm tm;
	size_t len, n;
	int fac = atomic_load(&log_facility);

	if (!log_enabled(lvl))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	len = log_format(buf, lvl, ts, event, kv, npairs);
	if (fac >= 0) {
		syslog(level_prio[lvl], "%.*s", (int)len - 1, buf);
		return;
	}
	if (write(STDERR_FILENO, buf, len) < 0) {
		/* nowhere left to report it */
	}
}

void log_json(enum log_level lvl, const char *event, ...)
{
	const char *kv[2 * LOG_MAX_PAIRS];
	size_t n = 0;
	const char *k;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, event);
	while (n < LOG_MAX_PAIRS && (k = va_arg(ap, const char *)) != NULL) {
		kv[2 * n] = k;
		kv[2 * n + 1] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	log_json_kv(lvl, event, kv, n);
}

/* ---- identifiers -------------------------------------------------------------------------
 * The key is written once at boot (log_id_key_load, before any thread that logs starts)
 * and only read afterwards. */
#define LOG_ID_KEY_MIN 16
#define LOG_ID_KEY_MAX 256
static unsigned char id_key[LOG_ID_KEY_MAX];
static size_t id_key_len;

void log_id(const void *id, size_t len, char out[LOG_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0;

	if (!id_key_len) { /* no key loaded (a tool, a test): a random one, never none */
		if (RAND_bytes(id_key, 32) != 1) {
			snprintf(out, LOG_ID_LEN + 1, "h:unavailable");
			return;
		}
		id_key_len = 32;
	}
	if (!HMAC(EVP_sha256(), id_key, (int)id_key_len, id, len, mac, &mlen) || mlen < 16) {
		snprintf(out, LOG_ID_LEN + 1, "h:unavailable");
		return;
	}
	out[0] = 'h';
	out[1] = ':';
	for (unsigned i = 0; i < 16; i++) {
		out[2 + 2 * i] = hex[mac[i] >> 4];
		out[3 + 2 * i] = hex[mac[i] & 15];
	}
	out[LOG_ID_LEN] = 0;
}

/* Reads at most LOG_ID_KEY_MAX bytes of path, without blocking on a FIFO. */
static int key_from_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = read(fd, id_key, sizeof(id_key));
	else if (fd >= 0)
		errno = EINVAL;
	if (n < 0) {
		snprintf(err, errlen, "id_key_file %s: %s", path, errno == EINVAL ? "not a regular file" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	while (n > 0 && (id_key[n - 1] == '\n' || id_key[n - 1] == '\r'))
		n--; /* a key written with echo */
	id_key_len = (size_t)n;
	return 0;
}

int log_id_key_load(const char *key_file, const char *key_env, char *err, size_t errlen)
{
	id_key_len = 0;
	if (key_file) {
		if (key_from_file(key_file, err, errlen) < 0)
			return -1;
	} else if (key_env) {
		const char *v = getenv(key_env);
		size_t n = v ? strlen(v) : 0;

		if (!v) {
			snprintf(err, errlen, "id_key_env: the environment has no %s", key_env);
			return -1;
		}
		if (n > sizeof(id_key))
			n = sizeof(id_key);
		memcpy(id_key, v, n);
		id_key_len = n;
	} else {
		if (RAND_bytes(id_key, 32) != 1) {
			snprintf(err, errlen, "cannot draw a random identifier key");
			return -1;
		}
		id_key_len = 32;
		return 1;
	}
	if (id_key_len < LOG_ID_KEY_MIN) {
		snprintf(err, errlen, "%s: the identifier key is shorter than %d bytes", key_file ? "id_key_file" : "id_key_env",
		         LOG_ID_KEY_MIN);
		id_key_len = 0;
		return -1;
	}
	return 0;
}
