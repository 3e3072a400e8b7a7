/* logline.c: the parser of HAProxy's outcome log line (see logline.h).
 * Pure and allocation-free: cursor + end pointer, strings decoded in place. */
#include <string.h>

#include "logline.h"

/* Where a decoded string value goes: the key's name and its field. */
struct logline_key {
	const char *name;
	size_t off;        /* of a struct pay_str, or of an int64_t when num */
	int num;
};

#define LK_STR(n, f) { n, offsetof(struct pay_outcome, f), 0 }
#define LK_NUM(n, f) { n, offsetof(struct pay_outcome, f), 1 }
static const struct logline_key logline_keys[] = {
	LK_STR("decision", decision), LK_STR("backend", backend), LK_NUM("status", status),
	LK_NUM("latency_ms", latency_ms), LK_STR("term", term), LK_STR("should_retry", should_retry),
	LK_STR("rl_reason", rl_reason), LK_STR("err_type", err_type), LK_STR("err_code", err_code),
	LK_STR("decline", decline), LK_STR("object", object), LK_STR("idem", idem),
	LK_STR("account", account), LK_STR("id", id),
};

static void ll_blanks(char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
		(*p)++;
}

static int ll_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string at *p (on its opening quote), decoded in place: *out points at the
 * decoded bytes, which never outgrow the encoded ones (\uXXXX, 6 bytes, becomes at most
 * 3). Advances *p past the closing quote on success only. */
static int ll_string(char **p, char *end, struct pay_str *out)
{
	char *r = *p + 1, *w = r, *start = r;

	for (;;) {
		char c;

		if (r >= end)
			return LOGLINE_TRUNCATED;
		c = *r++;
		if (c == '"')
			break;
		if ((unsigned char)c < 0x20)
			return LOGLINE_MALFORMED;
		if (c != '\\') {
			*w++ = c;
			continue;
		}
		if (r >= end)
			return LOGLINE_TRUNCATED;
		switch (c = *r++) {
		case '"': case '\\': case '/': *w++ = c; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned cp = 0;
			int k, x;

			if (end - r < 4)
				return LOGLINE_TRUNCATED;
			for (k = 0; k < 4; k++) {
				if ((x = ll_hex(r[k])) < 0)
					return LOGLINE_MALFORMED;
				cp = cp << 4 | (unsigned)x;
			}
			r += 4;
			if (cp < 0x80) {
				*w++ = (char)cp;
			} else if (cp < 0x800) {
				*w++ = (char)(0xc0 | cp >> 6);
				*w++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*w++ = (char)(0xe0 | cp >> 12);
				*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
				*w++ = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default:
			return LOGLINE_MALFORMED;
		}
	}
	out->ptr = start;
	out->len = (uint32_t)(w - start);
	*p = r;
	return 1;
}

/* A decimal integer (optional '-', 1..18 digits: never overflows int64) in [s, s + n).
 * Returns 1 with *v set, 0 when it is not one. */
static int ll_int(const char *s, size_t n, int64_t *v)
{
	const char *e = s + n;
	int neg = 0;
	int64_t x = 0;

	if (s < e && *s == '-') {
		neg = 1;
		s++;
	}
	if (s == e || e - s > 18)
		return 0;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		x = x * 10 + (*s - '0');
	}
	*v = neg ? -x : x;
	return 1;
}

/* A bare integer value at *p: its bytes as a string (so both forms share ll_int). */
static int ll_bare(char **p, char *end, struct pay_str *out)
{
	char *s = *p;

	while (*p < end && ((**p >= '0' && **p <= '9') || **p == '-'))
		(*p)++;
	if (*p == s)
		return *p == end ? LOGLINE_TRUNCATED : LOGLINE_MALFORMED;
	out->ptr = s;
	out->len = (uint32_t)(*p - s);
	return 1;
}

static const struct logline_key *ll_key(struct pay_str k)
{
	size_t i;

	for (i = 0; i < sizeof(logline_keys) / sizeof(logline_keys[0]); i++)
		if (strlen(logline_keys[i].name) == k.len && memcmp(logline_keys[i].name, k.ptr, k.len) == 0)
			return &logline_keys[i];
	return NULL;
}

int logline_parse(char *p, size_t len, struct pay_outcome *o)
{
	char *end = p + len;
	int rc;

	memset(o, 0, sizeof(*o));
	o->latency_ms = -1;
	o->channel = PAY_CH_LOG;
	ll_blanks(&p, end);
	if (p == end)
		return LOGLINE_TRUNCATED;
	if (*p++ != '{')
		return LOGLINE_MALFORMED;
	ll_blanks(&p, end);
	if (p < end && *p == '}') {
		p++;
		goto done;
	}
	for (;;) {
		struct pay_str k, val;
		const struct logline_key *key;

		ll_blanks(&p, end);
		if (p == end)
			return LOGLINE_TRUNCATED;
		if (*p != '"')
			return LOGLINE_MALFORMED;
		if ((rc = ll_string(&p, end, &k)) < 0)
			return rc;
		ll_blanks(&p, end);
		if (p == end)
			return LOGLINE_TRUNCATED;
		if (*p++ != ':')
			return LOGLINE_MALFORMED;
		ll_blanks(&p, end);
		if (p == end)
			return LOGLINE_TRUNCATED;
		rc = *p == '"' ? ll_string(&p, end, &val) : ll_bare(&p, end, &val);
		if (rc < 0)
			return rc;
		if ((key = ll_key(k)) != NULL) {
			bool absent = val.len == 1 && val.ptr[0] == '-';

			if (key->num) {
				int64_t *dst = (int64_t *)(void *)((char *)o + key->off);

				if (absent)
					*dst = key->off == offsetof(struct pay_outcome, latency_ms) ? -1 : 0;
				else if (!ll_int(val.ptr, val.len, dst))
					return LOGLINE_MALFORMED;
			} else {
				*(struct pay_str *)(void *)((char *)o + key->off) = absent ? (struct pay_str){ NULL, 0 } : val;
			}
		}
		ll_blanks(&p, end);
		if (p == end)
			return LOGLINE_TRUNCATED;
		if (*p == '}') {
			p++;
			break;
		}
		if (*p++ != ',')
			return LOGLINE_MALFORMED;
	}
done:
	ll_blanks(&p, end);
	return p == end ? 1 : LOGLINE_MALFORMED;
}
