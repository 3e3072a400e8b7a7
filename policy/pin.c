/* pin.c: lock-free affinity tables: open addressing in buckets of PIN_WAYS slots, each
 * slot a 64-bit key plus a 64-bit seqlocked value word. Readers never block or write;
 * writers take a slot's lock bit with one CAS and hold it for two stores. No allocation
 * after pin_init, no clock: time comes in as seconds. */
#include <stdlib.h>
#include <string.h>

#include "bug.h"
#include "pin.h"

#define PIN_LOCK      (1ULL << 63)
#define PIN_BE_SHIFT  56
#define PIN_VER_SHIFT 32
#define PIN_VER_MASK  0xffffffULL
#define PIN_TRIES     8

static inline uint32_t pin_exp(uint64_t m)     { return (uint32_t)m; }
static inline unsigned pin_be(uint64_t m)      { return (unsigned)(m >> PIN_BE_SHIFT) & 0x7f; }
static inline uint64_t pin_fixkey(uint64_t k)  { return k ? k : 1; }

int pin_init(struct pin_table *t, uint32_t slots, uint32_t ttl_s)
{
	size_t bytes = (size_t)slots * sizeof(struct pin_slot);

	memset(t, 0, sizeof(*t));
	if (slots < PIN_WAYS || (slots & (slots - 1)))
		return -1;
	t->slots = aligned_alloc(64, bytes);
	if (!t->slots)
		return -1;
	memset(t->slots, 0, bytes);
	t->bmask = slots / PIN_WAYS - 1;
	t->ttl_s = ttl_s;
	return 0;
}

void pin_destroy(struct pin_table *t)
{
	free(t->slots);
	t->slots = NULL;
}

/* A consistent (key, meta) pair of slot s, or false when a writer kept it busy. */
static bool pin_read(const struct pin_slot *s, uint64_t *key, uint64_t *meta)
{
	int i;

	for (i = 0; i < PIN_TRIES; i++) {
		uint64_t m1 = atomic_load_explicit(&s->meta, memory_order_acquire), m2;

		if (m1 & PIN_LOCK)
			continue;
		*key = atomic_load_explicit(&s->key, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		m2 = atomic_load_explicit(&s->meta, memory_order_relaxed);
		if (m1 == m2) {
			*meta = m1;
			return true;
		}
	}
	return false;
}

int pin_get(const struct pin_table *t, uint64_t key, uint32_t now_s)
{
	const struct pin_slot *b;
	uint64_t k, m;
	int i;

	key = pin_fixkey(key);
	b = &t->slots[(size_t)(key & t->bmask) * PIN_WAYS];
	for (i = 0; i < PIN_WAYS; i++)
		if (pin_read(&b[i], &k, &m) && k == key && pin_exp(m) > now_s)
			return (int)pin_be(m);
	return -1;
}

/* Writes (key, backend, exp) into its bucket. only_new: leave a live entry for key
 * alone. Gives up after a few lost races (a pin is an optimisation of correctness here,
 * never a lock). */
static void pin_write(struct pin_table *t, uint64_t key, unsigned backend, uint32_t exp,
                      uint32_t now_s, bool only_new)
{
	struct pin_slot *b;
	int attempt, i;

	BUG_ON(backend > 0x7f || exp == 0);
	key = pin_fixkey(key);
	b = &t->slots[(size_t)(key & t->bmask) * PIN_WAYS];
	for (attempt = 0; attempt < PIN_TRIES; attempt++) {
		int same = -1, free_i = -1, old_i = -1;
		uint64_t k, m, metas[PIN_WAYS], nm;
		uint32_t oldest = UINT32_MAX;

		for (i = 0; i < PIN_WAYS; i++) {
			if (!pin_read(&b[i], &k, &m)) {
				metas[i] = PIN_LOCK;
				continue;
			}
			metas[i] = m;
			if (pin_exp(m) <= now_s) {
				if (free_i < 0)
					free_i = i;
			} else if (k == key) {
				same = i;
				break;
			} else if (pin_exp(m) < oldest) {
				oldest = pin_exp(m);
				old_i = i;
			}
		}
		if (same >= 0 && only_new)
			return;
		i = same >= 0 ? same : free_i >= 0 ? free_i : old_i;
		if (i < 0)
			continue; /* every slot busy: try again */
		m = metas[i];
		if (!atomic_compare_exchange_strong(&b[i].meta, &m, m | PIN_LOCK))
			continue;
		atomic_thread_fence(memory_order_release);
		atomic_store_explicit(&b[i].key, key, memory_order_relaxed);
		nm = ((uint64_t)(backend & 0x7f) << PIN_BE_SHIFT) |
		     ((((m >> PIN_VER_SHIFT) + 1) & PIN_VER_MASK) << PIN_VER_SHIFT) | exp;
		atomic_store_explicit(&b[i].meta, nm, memory_order_release);
		atomic_fetch_add_explicit(&t->stored, 1, memory_order_relaxed);
		if (same < 0 && free_i < 0)
			atomic_fetch_add_explicit(&t->evicted, 1, memory_order_relaxed);
		return;
	}
}

void pin_put(struct pin_table *t, uint64_t key, unsigned backend, uint32_t now_s)
{
	uint64_t exp = (uint64_t)now_s + t->ttl_s;

	pin_write(t, key, backend, exp > UINT32_MAX ? UINT32_MAX : (uint32_t)exp, now_s, false);
}

void pin_put_until(struct pin_table *t, uint64_t key, unsigned backend, uint32_t exp_s, uint32_t now_s)
{
	if (exp_s > now_s)
		pin_write(t, key, backend, exp_s, now_s, true);
}

int pin_foreach(const struct pin_table *t, uint32_t now_s, pin_visit_fn cb, void *arg)
{
	size_t i, n = (size_t)(t->bmask + 1) * PIN_WAYS;
	uint64_t k, m;
	int rc;

	for (i = 0; i < n; i++)
		if (pin_read(&t->slots[i], &k, &m) && pin_exp(m) > now_s && (rc = cb(arg, k, pin_be(m), pin_exp(m))))
			return rc;
	return 0;
}

void pin_merge(struct pin_table *dst, const struct pin_table *src, const int *map, uint32_t now_s)
{
	size_t i, n = (size_t)(src->bmask + 1) * PIN_WAYS;
	uint64_t k, m;

	for (i = 0; i < n; i++) {
		if (!pin_read(&src->slots[i], &k, &m) || pin_exp(m) <= now_s || map[pin_be(m)] < 0)
			continue;
		pin_write(dst, k, (unsigned)map[pin_be(m)], pin_exp(m), now_s, true);
	}
}

uint64_t pin_live(const struct pin_table *t, uint32_t now_s)
{
	size_t i, n = (size_t)(t->bmask + 1) * PIN_WAYS;
	uint64_t k, m, live = 0;

	for (i = 0; i < n; i++)
		if (pin_read(&t->slots[i], &k, &m) && pin_exp(m) > now_s)
			live++;
	return live;
}

int pin_verify(const struct pin_table *t, unsigned nbackends, uint32_t now_s, char *err, size_t errlen)
{
	size_t nb = (size_t)t->bmask + 1, bk;
	int i, j;

	if (!t->slots || (nb & (nb - 1)))
		return pol_verify_fail(err, errlen, "pin: no slots, or %zu buckets (not a power of two)", nb);
	if (atomic_load(&t->evicted) > atomic_load(&t->stored))
		return pol_verify_fail(err, errlen, "pin: %llu evicted > %llu stored",
		                       (unsigned long long)atomic_load(&t->evicted),
		                       (unsigned long long)atomic_load(&t->stored));
	for (bk = 0; bk < nb; bk++) {
		const struct pin_slot *b = &t->slots[bk * PIN_WAYS];

		for (i = 0; i < PIN_WAYS; i++) {
			uint64_t k = atomic_load_explicit(&b[i].key, memory_order_relaxed);
			uint64_t m = atomic_load_explicit(&b[i].meta, memory_order_relaxed);

			if (m & PIN_LOCK)
				return pol_verify_fail(err, errlen, "pin: slot %zu left locked", bk * PIN_WAYS + i);
			if (pin_exp(m) == 0)
				continue; /* never written */
			if (k == 0 || (k & t->bmask) != bk)
				return pol_verify_fail(err, errlen, "pin: slot %zu: key %#llx out of its bucket %zu",
				                       bk * PIN_WAYS + i, (unsigned long long)k, bk);
			if (pin_be(m) >= nbackends)
				return pol_verify_fail(err, errlen, "pin: slot %zu: backend %u of %u",
				                       bk * PIN_WAYS + i, pin_be(m), nbackends);
			for (j = 0; j < i && pin_exp(m) > now_s; j++) {
				uint64_t m2 = atomic_load_explicit(&b[j].meta, memory_order_relaxed);

				if (pin_exp(m2) > now_s && atomic_load_explicit(&b[j].key, memory_order_relaxed) == k)
					return pol_verify_fail(err, errlen, "pin: bucket %zu: key %#llx live twice",
					                       bk, (unsigned long long)k);
			}
		}
	}
	return 0;
}
