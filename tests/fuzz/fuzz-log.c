/* fuzz-log.c: the JSON log line writer (spoa/log.c, log_format) on arbitrary keys and
 * values. Invariants: the line is at most LOG_LINE_MAX bytes, ends with "}\n", is valid
 * UTF-8 and one JSON object whose members are all strings (checked by the strict reader
 * below). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A JSON string at *p (after its opening quote), strict: escapes of RFC 8259, no raw
 * control character, valid UTF-8 (no overlong, no surrogate). Returns false if bad. */
static bool json_string(const unsigned char **p, const unsigned char *end)
{
	const unsigned char *s = *p;

	while (s < end && *s != '"') {
		unsigned char c = *s;

		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++s >= end)
				return false;
			if (*s == 'u') {
				if (end - s < 5)
					return false;
				for (int k = 1; k <= 4; k++)
					if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f') ||
					      (s[k] >= 'A' && s[k] <= 'F')))
						return false;
				s += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *s) || !*s)
				return false;
			s++;
			continue;
		}
		if (c < 0x80) {
			s++;
			continue;
		}
		{
			size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
			unsigned cp;

			if (!n || c > 0xf4 || (size_t)(end - s) < n)
				return false;
			cp = c & (0x3f >> (n - 1));
			for (size_t k = 1; k < n; k++) {
				if ((s[k] & 0xc0) != 0x80)
					return false;
				cp = cp << 6 | (s[k] & 0x3f);
			}
			if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			    (cp >= 0xd800 && cp <= 0xdfff))
				return false;
			s += n;
		}
	}
	if (s >= end)
		return false;
	*p = s + 1;
	return true;
}

/* {"k":"v",...}\n, nothing else. */
static bool json_line(const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n;

	if (n < 3 || p[0] != '{' || end[-1] != '\n' || end[-2] != '}')
		return false;
	end -= 2;
	p++;
	for (bool first = true; p < end; first = false) {
		if (!first && *p++ != ',')
			return false;
		if (p >= end || *p++ != '"' || !json_string(&p, end))
			return false;
		if (p >= end || *p++ != ':')
			return false;
		if (p >= end || *p++ != '"' || !json_string(&p, end))
			return false;
	}
	return p == end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[LOG_LINE_MAX + 1];
	const char *kv[2 * 8];
	char *copy;
	size_t npairs = 0, len, i = 0;

	if (size > 64 * 1024)
		return 0;
	copy = malloc(size + 1);
	FUZZ_ASSERT(copy);
	memcpy(copy, data, size);
	copy[size] = 0;
	/* the input split at NUL bytes: event, then key, value, key, value... */
	while (i <= size && npairs < 8) {
		const char *k = copy + i;

		i += strlen(k) + 1;
		if (i > size)
			break;
		kv[2 * npairs] = k;
		kv[2 * npairs + 1] = copy + i;
		i += strlen(copy + i) + 1;
		npairs++;
	}
	len = log_format(buf, LOG_LVL_INFO, "2026-01-01T00:00:00.000Z", copy, kv, npairs);
	FUZZ_ASSERT(len <= LOG_LINE_MAX);
	FUZZ_ASSERT(json_line((const unsigned char *)buf, len));
	free(copy);
	return 0;
}
