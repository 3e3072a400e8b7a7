/* json.c: the emulated payment API's JSON: a writer into a fixed buffer that remembers
 * overflow, and Stripe-shaped error bodies. Never allocates. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "payapi.h"

void jw_raw(struct pa_jw *w, const char *s, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void jw_cstr(struct pa_jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

void jw_fmt(struct pa_jw *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len) {
		w->full = true;
		return;
	}
	w->len += (size_t)n;
}

/* A quoted JSON string, escaped. */
void jw_qstr(struct pa_jw *w, const char *s, size_t n)
{
	size_t i;

	jw_raw(w, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };
			jw_raw(w, e, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			jw_fmt(w, "\\u%04x", ch);
		} else {
			jw_raw(w, (const char *)&ch, 1);
		}
	}
	jw_raw(w, "\"", 1);
}

/* ---- Stripe-shaped bodies ------------------------------------------------------------ */

void pa_json_tail(struct pa_jw *w)
{
	jw_cstr(w, ",\"payapi_instance\":");
	jw_qstr(w, pa.name, strlen(pa.name));
	jw_cstr(w, "}");
}

/* Starts a Stripe-shaped error, leaving the "error" object open for extra fields;
 * pa_error_end closes it. decline and param may be NULL. */
void pa_error(struct pa_resp *rs, unsigned status, const char *type, const char *code,
              const char *decline, const char *param, const char *message)
{
	struct pa_jw *w = &rs->body;

	rs->status = status;
	w->len = 0;
	w->full = false;
	jw_cstr(w, "{\"error\":{\"type\":\"");
	jw_cstr(w, type);
	jw_cstr(w, "\"");
	if (code)
		jw_fmt(w, ",\"code\":\"%s\"", code);
	if (decline)
		jw_fmt(w, ",\"decline_code\":\"%s\"", decline);
	if (param)
		jw_fmt(w, ",\"param\":\"%s\"", param);
	jw_cstr(w, ",\"message\":");
	jw_qstr(w, message, strlen(message));
}

void pa_error_end(struct pa_resp *rs)
{
	jw_cstr(&rs->body, "}");
	pa_json_tail(&rs->body);
}

void pa_simple_error(struct pa_resp *rs, unsigned status, const char *type,
                     const char *code, const char *param, const char *message)
{
	pa_error(rs, status, type, code, NULL, param, message);
	pa_error_end(rs);
}

void pa_missing(struct pa_resp *rs, const char *param)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Missing required param: %s.", param);
	pa_simple_error(rs, 400, "invalid_request_error", "parameter_missing", param, msg);
}

void pa_invalid(struct pa_resp *rs, const char *param)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Invalid value for param: %s.", param);
	pa_simple_error(rs, 400, "invalid_request_error", "parameter_invalid", param, msg);
}

void pa_unrecognized(struct pa_resp *rs)
{
	pa_simple_error(rs, 404, "invalid_request_error", NULL, NULL, "Unrecognized request URL.");
}
