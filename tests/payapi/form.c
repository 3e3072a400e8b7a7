/* form.c: the emulated payment API's small parsers: strings, numbers, tokens, and
 * application/x-www-form-urlencoded parameters (bodies and query strings).
 * Pure: no state, no allocation; never reads past the lengths it is given. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "payapi.h"

bool pa_ieq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (!y)
			return false;
		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return false;
	}
	return b[alen] == '\0';
}

bool pa_eq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

/* Parses a whole string as a non-negative decimal integer ≤ max. */
bool pa_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Parses "0", "1", "0.25", ".5" into [0, 1]. */
bool pa_parse_ratio(const char *s, size_t n, double *out)
{
	char tmp[32];
	char *end;
	double v;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (errno || *end || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

/* Only these characters may come back in a JSON string or a header without escaping:
 * ids, payment methods, currencies, decline codes. */
bool pa_token_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

/* ---- form and query parameters (application/x-www-form-urlencoded) ------------------ */

int pa_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX and '+' from s[0..n) into out (at most cap bytes). Returns the decoded
 * length, or -1 if it does not fit. An invalid escape is kept literally. */
static int pa_urldecode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%' && i + 2 < n &&
		           pa_hexval(s[i + 1]) >= 0 && pa_hexval(s[i + 2]) >= 0) {
			ch = (char)(pa_hexval(s[i + 1]) * 16 + pa_hexval(s[i + 2]));
			i += 2;
		}
		if (o >= cap)
			return -1;
		out[o++] = ch;
	}
	return (int)o;
}

/* Finds parameter `key` in a form/query string and decodes its value into out (NUL-
 * terminated, at most cap-1 bytes). Returns the value's length, -1 if absent, -2 if the
 * value does not fit. The first occurrence wins. */
int pa_param(const char *s, size_t n, const char *key, char *out, size_t cap)
{
	char kbuf[128];
	size_t pos = 0;

	while (pos < n) {
		size_t end = pos, eq;
		int klen, vlen;

		while (end < n && s[end] != '&')
			end++;
		eq = pos;
		while (eq < end && s[eq] != '=')
			eq++;
		klen = pa_urldecode(s + pos, eq - pos, kbuf, sizeof(kbuf));
		if (klen >= 0 && pa_eq(kbuf, (size_t)klen, key)) {
			if (eq == end) {
				vlen = 0;
			} else {
				vlen = pa_urldecode(s + eq + 1, end - eq - 1, out, cap ? cap - 1 : 0);
				if (vlen < 0)
					return -2;
			}
			if (cap)
				out[vlen] = '\0';
			return vlen;
		}
		pos = end + 1;
	}
	return -1;
}
