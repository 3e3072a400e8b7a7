/* pstr.h: small inline helpers on borrowed strings (struct pay_str) and hashing, shared
 * by the policy modules. No allocation, no locale, no libc calls beyond memcmp. */
#ifndef PSTR_H
#define PSTR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pay-t.h"

static inline bool pstr_present(struct pay_str s)
{
	return s.ptr != NULL;
}

static inline char pstr_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* s equals the NUL-terminated z, ASCII case-insensitively. */
static inline bool pstr_eq_ci(struct pay_str s, const char *z)
{
	uint32_t i;

	if (!s.ptr)
		return false;
	for (i = 0; i < s.len; i++)
		if (!z[i] || pstr_lower(s.ptr[i]) != pstr_lower(z[i]))
			return false;
	return z[i] == 0;
}

/* s equals z exactly. */
static inline bool pstr_eq(struct pay_str s, const char *z)
{
	size_t n = strlen(z);

	return s.ptr && s.len == n && memcmp(s.ptr, z, n) == 0;
}

/* An ISO 4217 code packed as three lower-case letters in 24 bits; 0 if malformed. */
static inline uint32_t pstr_currency(const char *p, uint32_t len)
{
	uint32_t v = 0, i;

	if (!p || len != 3)
		return 0;
	for (i = 0; i < 3; i++) {
		char c = pstr_lower(p[i]);

		if (c < 'a' || c > 'z')
			return 0;
		v = (v << 8) | (uint8_t)c;
	}
	return v;
}

/* 64-bit hash of bytes: FNV-1a, then the murmur3 finaliser so every output bit depends
 * on every input bit (the affinity tables take bucket and fingerprint from the same
 * word). `seed` separates key spaces (idempotency keys, object ids, accounts). */
static inline uint64_t pstr_hash(const char *p, uint32_t len, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	uint32_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#endif /* PSTR_H */
