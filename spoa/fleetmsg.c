/* fleetmsg.c: the fleet's texts in Redis, parsed and written (fleetmsg.h). Must stay
 * free of I/O and allocation: a libFuzzer target (tests/fuzz/fuzz-fleetmsg.c) runs it on
 * arbitrary bytes, which is what another node or anyone with access to Redis may send. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fleetmsg.h"
#include "policy.h"

/* One field: the bytes up to the next space (or the end), 1..max - 1 of them, none a
 * control character; copied with its NUL into out (when out). Advances *p past the field
 * and its space. Returns its length, or -1. */
static int fm_field(const char **p, const char *end, char *out, size_t max, int last)
{
	const char *s = *p, *c;

	for (c = s; c < end && *c != ' '; c++)
		if ((unsigned char)*c < 0x21 || *c == 0x7f)
			return -1;
	if (c == s || (size_t)(c - s) >= max || (last ? c != end : c == end))
		return -1;
	if (out) {
		memcpy(out, s, (size_t)(c - s));
		out[c - s] = 0;
	}
	*p = last ? c : c + 1;
	return (int)(c - s);
}

/* Exactly 16 lower-case hex digits. */
static int fm_hex16(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	int i;

	for (i = 0; i < 16; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	*v = x;
	return 0;
}

static int fm_table(char c, unsigned *table)
{
	if (c < '0' || c >= '0' + POL_PIN_TABLES)
		return -1;
	*table = (unsigned)(c - '0');
	return 0;
}

int fleet_value_parse(const char *v, size_t len, char *backend, char *account)
{
	const char *p = v, *end = v + len;

	return fm_field(&p, end, backend, FLEET_NAME_MAX, 0) < 0 || fm_field(&p, end, account, FLEET_NAME_MAX, 1) < 0
	       ? -1 : 0;
}

int fleet_key_parse(const char *prefix, const char *k, size_t len, unsigned *table, uint64_t *key)
{
	size_t pl = strlen(prefix);

	if (len != pl + 5 + 2 + 16 || memcmp(k, prefix, pl) != 0 || memcmp(k + pl, ":pin:", 5) != 0 ||
	    fm_table(k[pl + 5], table) < 0 || k[pl + 6] != ':')
		return -1;
	return fm_hex16(k + pl + 7, key);
}

int fleet_msg_parse(const char *m, size_t len, struct fleet_msg *out)
{
	const char *p = m, *end = m + len, *s;
	char num[21];
	int n;

	if (fm_field(&p, end, out->node, sizeof(out->node), 0) < 0)
		return -1;
	s = p;
	if (fm_field(&p, end, NULL, 2, 0) != 1 || fm_table(*s, &out->table) < 0)
		return -1;
	s = p;
	if (fm_field(&p, end, NULL, 17, 0) != 16 || fm_hex16(s, &out->key) < 0)
		return -1;
	if (fm_field(&p, end, out->backend, sizeof(out->backend), 0) < 0 ||
	    fm_field(&p, end, out->account, sizeof(out->account), 0) < 0)
		return -1;
	/* at most 19 digits (no overflow), no leading zero (one spelling per number) */
	if ((n = fm_field(&p, end, num, sizeof(num) - 1, 1)) < 0 || (num[0] == '0' && n > 1))
		return -1;
	out->wall_us = 0;
	for (s = num; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		out->wall_us = out->wall_us * 10 + (uint64_t)(*s - '0');
	}
	return 0;
}

int fleet_key_format(char *buf, size_t size, const char *prefix, unsigned table, uint64_t key)
{
	return snprintf(buf, size, "%s:pin:%u:%016" PRIx64, prefix, table, key);
}

int fleet_value_format(char *buf, size_t size, const char *backend, const char *account)
{
	return snprintf(buf, size, "%s %s", backend, account);
}

int fleet_msg_format(char *buf, size_t size, const struct fleet_msg *m)
{
	return snprintf(buf, size, "%s %u %016" PRIx64 " %s %s %" PRIu64, m->node, m->table, m->key, m->backend,
	                m->account, m->wall_us);
}
