/* pin.c: generational, lock-free affinity tables (pin-t.h). A claim walks the live
 * generations oldest → newest along the key's probe sequence and either finds the key,
 * seals the empty slot it would have used in an old generation, or writes it with one CAS
 * in the current one: two claimers of a key walk the same slots and meet, so exactly one
 * wins. Generations are dropped whole once their youngest pin is older than the TTL: no
 * time per entry. Workers never allocate or lock; pin_tick (control thread) allocates. */
#include <stdlib.h>
#include <string.h>

#include "bug.h"
#include "pin.h"

#define PIN_REACH   16           /* lines probed at most, in any generation */
#define PIN_FP_MASK (~0xffULL)   /* the fingerprint: the hash without its low byte */
#define PIN_UNSET   UINT32_MAX   /* t0_s of the first generation until the first tick */

static inline uint64_t pin_entry(uint64_t key, unsigned id)
{
	return (key & PIN_FP_MASK) | 0x80 | (id & 0x7f);
}

static inline bool pin_is(uint64_t e, uint64_t key)
{
	return e != PIN_SEALED && e != PIN_EMPTY && ((e ^ key) & PIN_FP_MASK) == 0;
}

static inline unsigned pin_id(uint64_t e) { return (unsigned)(e & 0x7f); }

/* The home line of key: a multiply-shift of the fingerprint's top 32 bits, so that any
 * line count works and the key can be rebuilt from its entry (pin_each). */
static inline uint32_t pin_home(const struct pin_gen *g, uint64_t key)
{
	return (uint32_t)(((key >> 32) * (uint64_t)g->nlines) >> 32);
}

uint64_t pin_gen_slots(uint64_t capacity)
{
	uint64_t per = (capacity + PIN_PERIODS - 1) / PIN_PERIODS;
	uint64_t lines = (per * 100 / PIN_LOAD_PCT + PIN_LINE - 1) / PIN_LINE;

	if (lines < PIN_REACH)
		lines = PIN_REACH;
	return lines * PIN_LINE;
}

/* calloc, not aligned_alloc + memset: a large generation comes as untouched zero pages,
 * and costs memory only as it fills (the memory figures of conf/README.md are at full). */
static struct pin_gen *pin_gen_new(uint32_t nlines)
{
	struct pin_gen *g = calloc(1, sizeof(*g));

	if (!g || !(g->mem = calloc((size_t)nlines + 1, PIN_LINE * sizeof(uint64_t)))) {
		free(g);
		return NULL;
	}
	g->slot = (_Atomic uint64_t *)(void *)(((uintptr_t)g->mem + 63) & ~(uintptr_t)63);
	g->nlines = nlines;
	return g;
}

static void pin_gen_free(struct pin_gen *g)
{
	if (g) {
		free(g->mem);
		free(g);
	}
}

void pin_size(struct pin_table *t, uint64_t capacity, uint32_t ttl_s)
{
	t->capacity = capacity;
	t->ttl_s = ttl_s;
	t->period_s = ttl_s / PIN_PERIODS ? ttl_s / PIN_PERIODS : 1;
	t->gen_lines = (uint32_t)(pin_gen_slots(capacity) / PIN_LINE);
}

int pin_init(struct pin_table *t, uint64_t capacity, uint32_t ttl_s)
{
	struct pin_list *l;
	struct pin_gen *g;

	memset(t, 0, sizeof(*t));
	if (capacity == 0 || pin_gen_slots(capacity) / PIN_LINE > UINT32_MAX)
		return -1;
	pin_size(t, capacity, ttl_s);
	if (!(l = calloc(1, sizeof(*l))) || !(g = pin_gen_new(t->gen_lines))) {
		free(l);
		return -1;
	}
	g->t0_s = PIN_UNSET;
	g->seq = ++t->next_seq;
	l->n = 1;
	l->g[0] = g;
	atomic_init(&t->list, l);
	atomic_init(&t->rotations, 1);
	return 0;
}

static void pin_free_retired(struct pin_table *t, uint64_t min_seen)
{
	struct pin_list **pl = &t->rlist, *l;
	struct pin_gen **pg = &t->rgen, *g;

	while ((l = *pl)) {
		if (l->retired_epoch <= min_seen) {
			*pl = l->next_retired;
			free(l);
		} else {
			pl = &l->next_retired;
		}
	}
	while ((g = *pg)) {
		if (g->retired_epoch <= min_seen) {
			*pg = g->next_retired;
			pin_gen_free(g);
		} else {
			pg = &g->next_retired;
		}
	}
}

void pin_destroy(struct pin_table *t)
{
	struct pin_list *l = atomic_load(&t->list);
	unsigned i;

	pin_free_retired(t, UINT64_MAX);
	for (i = 0; l && i < l->n; i++)
		pin_gen_free(l->g[i]);
	free(l);
	atomic_store(&t->list, NULL);
}

/* ---- workers ---------------------------------------------------------------------------- */

enum pin_walk { PW_FOUND, PW_ABSENT, PW_WON, PW_FULL };

/* Walks g along key's probe sequence. mode 0: read only (stops at 0 or SEALED);
 * 1: an old generation (seals the 0 where key would go); 2: the current one (claims that
 * 0 with `want`). *at: the slot holding key (PW_FOUND, PW_WON). */
static enum pin_walk pin_walk(struct pin_gen *g, uint64_t key, int mode, uint64_t want, _Atomic uint64_t **at)
{
	uint32_t line = pin_home(g, key), n;
	unsigned i;

	for (n = 0; n < PIN_REACH && n < g->nlines; n++, line = line + 1 == g->nlines ? 0 : line + 1) {
		_Atomic uint64_t *s = &g->slot[(size_t)line * PIN_LINE];

		for (i = 0; i < PIN_LINE; i++) {
			uint64_t e = atomic_load_explicit(&s[i], memory_order_acquire);

			if (e == PIN_EMPTY && mode) {
				uint64_t put = mode == 2 ? want : PIN_SEALED;

				if (atomic_compare_exchange_strong_explicit(&s[i], &e, put, memory_order_acq_rel,
				                                            memory_order_acquire)) {
					*at = &s[i];
					return mode == 2 ? PW_WON : PW_ABSENT;
				}
				/* e: what beat us to the slot */
			}
			if (e == PIN_EMPTY || e == PIN_SEALED)
				return PW_ABSENT;
			if (pin_is(e, key)) {
				*at = &s[i];
				return PW_FOUND;
			}
		}
	}
	return mode == 2 ? PW_FULL : PW_ABSENT;
}

/* Where key is, or NULL: read only. A key lives in one generation only (a claim writes
 * it in the current one only when no older one has it), so the order of the search does
 * not change the answer; newest first, because the pins looked up most are young (a
 * client retries within seconds), and the current generation is the one in cache. */
static _Atomic uint64_t *pin_find(const struct pin_table *t, uint64_t key)
{
	const struct pin_list *l = atomic_load_explicit(&t->list, memory_order_acquire);
	_Atomic uint64_t *at = NULL;
	unsigned i;

	for (i = l->n; i-- > 0;)
		if (pin_walk(l->g[i], key, 0, 0, &at) == PW_FOUND)
			return at;
	return NULL;
}

int pin_get(const struct pin_table *t, uint64_t key)
{
	_Atomic uint64_t *at = pin_find(t, key);

	return at ? (int)pin_id(atomic_load_explicit(at, memory_order_acquire)) : PIN_NONE;
}

void pin_prefetch(const struct pin_table *t, uint64_t key)
{
	const struct pin_list *l = atomic_load_explicit(&t->list, memory_order_acquire);

	for (unsigned i = 0; i < l->n; i++)
		__builtin_prefetch(&l->g[i]->slot[(size_t)pin_home(l->g[i], key) * PIN_LINE], 1);
}

/* The claim. A claimer holding a stale list (the control thread started a generation
 * since) treats the old current generation as current: whoever walks it as old seals the
 * slot first, so the stale claimer's CAS fails, it finds SEALED, runs out of generations
 * and reloads the list to go on from the next one: both meet in the newer generation. */
static int pin_claim_at(struct pin_table *t, const struct pin_list *l, uint64_t key, unsigned id,
                        _Atomic uint64_t **at, bool *won)
{
	uint64_t want = pin_entry(key, id), done = 0; /* seq of the last generation walked */
	unsigned i;

	BUG_ON(id >= PIN_MAX_IDS);
	*won = false;
	for (;;) {
		for (i = 0; i < l->n; i++) {
			struct pin_gen *g = l->g[i];

			if (done && g->seq <= done)
				continue; /* walked before the reload */
			switch (pin_walk(g, key, i == l->n - 1 ? 2 : 1, want, at)) {
			case PW_FOUND: return (int)pin_id(atomic_load_explicit(*at, memory_order_acquire));
			case PW_WON:   *won = true; return (int)id;
			case PW_FULL:  return PIN_FULL;
			case PW_ABSENT: break;
			}
			done = g->seq;
		}
		/* sealed in what we took for the current generation: a newer one exists */
		l = atomic_load_explicit(&t->list, memory_order_acquire);
		if (l->g[l->n - 1]->seq <= done)
			return PIN_FULL; /* cannot happen: only an older generation is sealed */
	}
}

int pin_claim_from(struct pin_table *t, const struct pin_list *l, uint64_t key, unsigned id)
{
	_Atomic uint64_t *at;
	bool won;

	return pin_claim_at(t, l, key, id, &at, &won);
}

int pin_claim(struct pin_table *t, uint64_t key, unsigned id)
{
	return pin_claim_from(t, atomic_load_explicit(&t->list, memory_order_acquire), key, id);
}

/* One walk: the claim either writes key (won: it had no pin) or stops on the slot that
 * holds it, in whatever generation, and the id is rewritten there. */
int pin_set(struct pin_table *t, uint64_t key, unsigned id)
{
	_Atomic uint64_t *at;
	uint64_t e;
	bool won;
	int r = pin_claim_at(t, atomic_load_explicit(&t->list, memory_order_acquire), key, id, &at, &won);

	if (r == PIN_FULL)
		return PIN_FULL;
	if (won)
		return PIN_NONE;
	/* rewrite the id bits in place; the slot holds key for good */
	e = atomic_load_explicit(at, memory_order_acquire);
	while (pin_id(e) != id &&
	       !atomic_compare_exchange_weak_explicit(at, &e, pin_entry(key, id), memory_order_acq_rel,
	                                              memory_order_acquire))
		;
	return (int)pin_id(e);
}

/* ---- control thread ----------------------------------------------------------------------- */

static uint64_t pin_gen_count(const struct pin_gen *g)
{
	size_t i, n = (size_t)g->nlines * PIN_LINE;
	uint64_t live = 0;

	for (i = 0; i < n; i++) {
		uint64_t e = atomic_load_explicit(&g->slot[i], memory_order_relaxed);

		live += e != PIN_EMPTY && e != PIN_SEALED;
	}
	return live;
}

static void pin_retire_gen(struct pin_table *t, struct pin_gen *g, uint64_t epoch)
{
	g->retired_epoch = epoch;
	g->next_retired = t->rgen;
	t->rgen = g;
}

bool pin_tick(struct pin_table *t, uint32_t now_s, uint64_t claims, uint64_t epoch, uint64_t min_seen)
{
	struct pin_list *l = atomic_load(&t->list), *nl;
	struct pin_gen *cur = l->g[l->n - 1], *g = NULL;
	uint64_t room = (uint64_t)cur->nlines * PIN_LINE * PIN_LOAD_PCT / 100;
	unsigned drop = 0, i;
	bool rotate, full;

	pin_free_retired(t, min_seen);
	claims += atomic_load(&t->restored);
	t->claims = claims;
	if (cur->t0_s == PIN_UNSET)
		cur->t0_s = now_s; /* its claims0 stays 0: it took every claim so far */
	while (drop < l->n - 1 && (uint64_t)l->g[drop]->end_s + t->ttl_s < now_s)
		drop++;
	full = claims - cur->claims0 >= room;
	rotate = now_s - cur->t0_s >= t->period_s || full;
	if (rotate && l->n - drop == PIN_MAX_GENS)
		drop++; /* the memory cap: the oldest goes before its time */
	if (rotate && !(g = pin_gen_new(t->gen_lines)))
		rotate = false;
	if (!drop && !rotate)
		return false;
	if (!(nl = calloc(1, sizeof(*nl)))) {
		pin_gen_free(g);
		return false;
	}
	for (i = drop; i < l->n; i++)
		nl->g[nl->n++] = l->g[i];
	if (rotate) {
		/* a claimer may still use cur for a moment: its t0 stays the period's */
		g->t0_s = now_s;
		g->claims0 = claims;
		g->seq = ++t->next_seq;
		nl->g[nl->n++] = g;
		cur->end_s = now_s;
		cur->claims1 = claims;
		atomic_fetch_add(&t->rotations, 1);
		if (full)
			atomic_fetch_add(&t->early, 1);
	}
	atomic_store(&t->list, nl);
	for (i = 0; i < drop; i++) {
		struct pin_gen *o = l->g[i];

		/* dropped young: its pins had not lived their TTL (the table is smaller than
		 * the traffic); counted once here, after the list no longer offers them */
		if ((uint64_t)o->end_s + t->ttl_s >= now_s || o->end_s == 0)
			atomic_fetch_add(&t->evicted, pin_gen_count(o));
		pin_retire_gen(t, o, epoch);
	}
	l->retired_epoch = epoch;
	l->next_retired = t->rlist;
	t->rlist = l;
	return true;
}

uint64_t pin_live(const struct pin_table *t, uint64_t claims)
{
	const struct pin_list *l = atomic_load(&t->list);
	uint64_t from = l->g[0]->t0_s == PIN_UNSET ? 0 : l->g[0]->claims0;

	claims += atomic_load(&t->restored);
	return claims > from ? claims - from : 0;
}

void pin_each(const struct pin_table *t, uint32_t now_s,
              void (*fn)(void *arg, uint64_t key, unsigned id, uint32_t age_s), void *arg)
{
	const struct pin_list *l = atomic_load(&t->list);
	unsigned i;

	for (i = 0; i < l->n; i++) {
		const struct pin_gen *g = l->g[i];
		size_t j, n = (size_t)g->nlines * PIN_LINE;
		uint32_t age = g->end_s && now_s > g->end_s ? now_s - g->end_s : 0;

		for (j = 0; j < n; j++) {
			uint64_t e = atomic_load_explicit(&g->slot[j], memory_order_acquire);

			if (e != PIN_EMPTY && e != PIN_SEALED)
				fn(arg, e & PIN_FP_MASK, pin_id(e), age);
		}
	}
}

/* Restored pins of age a go to an old generation ending at now - k × period, k = a /
 * period: dropped at that end + TTL, no earlier than the pin's own TTL, at most a period
 * later. Those generations are made here, before workers run (freed directly). */
int pin_restore(struct pin_table *t, uint64_t key, unsigned id, uint32_t age_s, uint32_t now_s)
{
	struct pin_list *l = atomic_load(&t->list), *nl;
	struct pin_gen *g = NULL;
	uint32_t k, end;
	unsigned i;
	_Atomic uint64_t *at;

	if (age_s >= t->ttl_s || id >= PIN_MAX_IDS)
		return 0;
	if (pin_find(t, key))
		return 0;
	k = age_s / t->period_s;
	end = now_s > k * t->period_s ? now_s - k * t->period_s : 1;
	if (k == 0) {
		if (pin_claim(t, key, id) == PIN_FULL)
			return -1;
		atomic_fetch_add(&t->restored, 1);
		return 0;
	}
	for (i = 0; i + 1 < l->n; i++)
		if (l->g[i]->end_s == end) {
			g = l->g[i];
			break;
		}
	if (!g) {
		if (l->n == PIN_MAX_GENS || !(g = pin_gen_new(t->gen_lines)) || !(nl = calloc(1, sizeof(*nl)))) {
			pin_gen_free(g);
			return -1;
		}
		g->t0_s = end > t->period_s ? end - t->period_s : 0;
		g->end_s = end;
		g->seq = 0; /* older than every live one: walked first */
		for (i = 0; i < l->n && l->g[i]->end_s && l->g[i]->end_s < end; i++)
			nl->g[nl->n++] = l->g[i];
		nl->g[nl->n++] = g;
		for (; i < l->n; i++)
			nl->g[nl->n++] = l->g[i];
		atomic_store(&t->list, nl);
		free(l);
	}
	if (pin_walk(g, key, 2, pin_entry(key, id), &at) == PW_FULL)
		return -1;
	/* a claim made before the current generation started: not part of its share */
	atomic_fetch_add(&t->restored, 1);
	l = atomic_load(&t->list);
	l->g[l->n - 1]->claims0++;
	return 0;
}

int pin_verify(const struct pin_table *t, unsigned nids, char *err, size_t errlen)
{
	const struct pin_list *l = atomic_load(&t->list);
	unsigned i;

	if (!l || l->n == 0 || l->n > PIN_MAX_GENS)
		return pol_verify_fail(err, errlen, "pin: %u generations", l ? l->n : 0);
	for (i = 0; i < l->n; i++) {
		const struct pin_gen *g = l->g[i];
		size_t j, n = (size_t)g->nlines * PIN_LINE;

		if (i && g->seq && g->seq <= l->g[i - 1]->seq)
			return pol_verify_fail(err, errlen, "pin: generation %u out of order", i);
		if ((i == l->n - 1) != (g->end_s == 0))
			return pol_verify_fail(err, errlen, "pin: generation %u of %u %s", i, l->n,
			                       g->end_s ? "ended but current" : "not current but open");
		for (j = 0; j < n; j++) {
			uint64_t e = atomic_load_explicit(&g->slot[j], memory_order_relaxed);
			uint32_t d;

			if (e == PIN_EMPTY || e == PIN_SEALED)
				continue;
			if (!(e & 0x80) || pin_id(e) >= nids)
				return pol_verify_fail(err, errlen, "pin: slot %zu: backend id %u of %u", j, pin_id(e), nids);
			d = (uint32_t)(j / PIN_LINE) - pin_home(g, e);
			if ((uint32_t)(j / PIN_LINE) < pin_home(g, e))
				d += g->nlines;
			if (d >= PIN_REACH)
				return pol_verify_fail(err, errlen, "pin: slot %zu: %u lines from its home", j, d);
		}
	}
	return 0;
}
