/* logline.c: the parser of HAProxy's outcome log line (see logline.h).
 * Pure and allocation-free: cursor + end pointer, strings decoded in place. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "logline.h"

/* Where a decoded string value goes: the key's name and its field. */
struct logline_key {
	const char *name;
	uint8_t len;       /* strlen(name) */
	uint8_t num;       /* an int64_t field, else a struct pay_str */
	uint16_t off;      /* of the field in struct pay_outcome */
};

#define LK_STR(n, f) { n, sizeof(n) - 1, 0, offsetof(struct pay_outcome, f) }
#define LK_NUM(n, f) { n, sizeof(n) - 1, 1, offsetof(struct pay_outcome, f) }
/* In the order spoa/hapcfg.c's log-format prints them: the order hint (ll_key) expects
 * each key to be the one after the previous. */
static const struct logline_key logline_keys[] = {
	LK_STR("decision", decision), LK_STR("backend", backend), LK_NUM("status", status),
	LK_NUM("latency_ms", latency_ms), LK_STR("term", term), LK_STR("should_retry", should_retry),
	LK_STR("rl_reason", rl_reason), LK_STR("err_type", err_type), LK_STR("err_code", err_code),
	LK_STR("decline", decline), LK_STR("object", object), LK_STR("idem", idem),
	LK_STR("account", account), LK_STR("id", id),
};
#define LL_NKEYS (sizeof(logline_keys) / sizeof(logline_keys[0]))

/* Byte classes inside a JSON string: the scan skips LC_PLAIN bytes in a tight loop and
 * stops only on the three others. */
enum { LC_PLAIN = 0, LC_QUOTE, LC_ESC, LC_CTRL };
#define LC_CTRL8(b) [b] = LC_CTRL, [b + 1] = LC_CTRL, [b + 2] = LC_CTRL, [b + 3] = LC_CTRL, \
	[b + 4] = LC_CTRL, [b + 5] = LC_CTRL, [b + 6] = LC_CTRL, [b + 7] = LC_CTRL
static const uint8_t ll_class[256] = {
	LC_CTRL8(0x00), LC_CTRL8(0x08), LC_CTRL8(0x10), LC_CTRL8(0x18),
	['"'] = LC_QUOTE, ['\\'] = LC_ESC,
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
 * 3). Advances *p past the closing quote on success only. One pass: runs of plain bytes
 * are skipped by class (ll_class) and moved only once an escape has shifted them. */
static int ll_string(char **p, char *end, struct pay_str *out)
{
	char *r = *p + 1, *w, *start = r;
	char c;

	/* the common case: no escape, nothing to move */
	while (r < end && ll_class[(unsigned char)*r] == LC_PLAIN)
		r++;
	w = r;
	for (;;) {
		if (r >= end)
			return LOGLINE_TRUNCATED;
		switch (ll_class[(unsigned char)(c = *r++)]) {
		case LC_PLAIN:
			*w++ = c;
			continue;
		case LC_QUOTE:
			goto closed;
		case LC_CTRL:
			return LOGLINE_MALFORMED;
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
closed:
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

static bool ll_key_is(const struct logline_key *lk, struct pay_str k)
{
	return lk->len == k.len && memcmp(lk->name, k.ptr, k.len) == 0;
}

/* The key named k, or NULL. *hint: the index expected next; HAProxy prints the keys in
 * the same order every time, so the first comparison almost always hits, and a miss
 * (another order, an unknown key) costs the plain search. */
static const struct logline_key *ll_key(struct pay_str k, size_t *hint)
{
	size_t i;

	if (*hint < LL_NKEYS && ll_key_is(&logline_keys[*hint], k))
		return &logline_keys[(*hint)++];
	for (i = 0; i < LL_NKEYS; i++)
		if (ll_key_is(&logline_keys[i], k)) {
			*hint = i + 1;
			return &logline_keys[i];
		}
	return NULL;
}

int logline_parse(char *p, size_t len, struct pay_outcome *o)
{
	char *end = p + len;
	size_t hint = 0;
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
		if ((key = ll_key(k, &hint)) != NULL) {
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
