/* log.c: JSON log lines (see log.h). Must not be called from the decision path. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int log_min = LOG_LVL_INFO;
static const char *const level_names[] = { "debug", "info", "warning", "error" };

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

/* Appends s JSON-escaped; truncates rather than overflow. Returns the new length. */
static size_t put_esc(char *buf, size_t len, size_t size, const char *s)
{
	for (; *s && len + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			len += (size_t)snprintf(buf + len, size - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

static size_t put_raw(char *buf, size_t len, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (len + n >= size)
		n = size - len - 1;
	memcpy(buf + len, s, n);
	return len + n;
}

void log_json_kv(enum log_level lvl, const char *event, const char *const *kv, size_t npairs)
{
	char buf[2048];
	size_t len = 0, size = sizeof(buf) - 2; /* room for "}\n" */
	struct timespec ts;
	struct tm tm;

	if (!log_enabled(lvl))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len += strftime(buf, size, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
	len += (size_t)snprintf(buf + len, size - len, ".%03ldZ\",\"level\":\"%s\",\"event\":\"",
	                        ts.tv_nsec / 1000000, level_names[lvl]);
	len = put_esc(buf, len, size, event);
	len = put_raw(buf, len, size, "\"");
	for (size_t i = 0; i < npairs; i++) {
		len = put_raw(buf, len, size, ",\"");
		len = put_esc(buf, len, size, kv[2 * i]);
		len = put_raw(buf, len, size, "\":\"");
		len = put_esc(buf, len, size, kv[2 * i + 1] ? kv[2 * i + 1] : "");
		len = put_raw(buf, len, size, "\"");
	}
	buf[len++] = '}';
	buf[len++] = '\n';
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
