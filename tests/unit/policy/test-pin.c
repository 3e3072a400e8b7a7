/* test-pin.c: policy/pin.c: generational affinity tables: claims and follows, the seal
 * that makes a claim meet one made through a stale generation list, drops after the TTL
 * (never before), early rotation for load, evictions under the memory cap (counted),
 * corrections in place, and the snapshot iteration / restore round trip. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pin.h"
#include "test.h"

static char err[200];
#define ASSERT_VALID(call) do { if ((call) < 0) TEST_FAIL_("%s: %s", #call, err); } while (0)
#define ASSERT_BROKEN(call, word) do { err[0] = 0; ASSERT_EQ((call), -1); \
	if (!strstr(err, (word))) TEST_FAIL_("%s: \"%s\" does not say \"%s\"", #call, err, (word)); } while (0)

#define K(i) (0x9e3779b97f4a7c15ULL * (uint64_t)(i) + 0x1234567ULL) /* distinct hashes */

static void count_pin(void *arg, uint64_t key, unsigned id, uint32_t age)
{
	(void)key, (void)id, (void)age;
	++*(unsigned *)arg;
}

static unsigned ngens(const struct pin_table *t)
{
	return atomic_load(&t->list)->n;
}

TEST(pin_claim_follow_and_set)
{
	struct pin_table t;

	ASSERT_EQ(pin_init(&t, 1000, 100), 0);
	ASSERT_EQ(pin_get(&t, K(1)), PIN_NONE);
	ASSERT_EQ(pin_claim(&t, K(1), 3), 3);   /* won */
	ASSERT_EQ(pin_claim(&t, K(1), 5), 3);   /* someone came first: follow 3 */
	ASSERT_EQ(pin_get(&t, K(1)), 3);
	ASSERT_EQ(pin_get(&t, K(2)), PIN_NONE);
	ASSERT_EQ(pin_set(&t, K(1), 5), 3);     /* a correction, in place */
	ASSERT_EQ(pin_get(&t, K(1)), 5);
	ASSERT_EQ(pin_set(&t, K(1), 5), 5);
	ASSERT_EQ(pin_set(&t, K(2), 7), PIN_NONE); /* none before: claimed */
	ASSERT_EQ(pin_get(&t, K(2)), 7);
	ASSERT_EQ(pin_claim(&t, K(2), 1), 7);
	ASSERT_EQ(pin_get(&t, K(1) ^ 0x7f), 5); /* the low byte is not part of the key */
	pin_destroy(&t);
}

/* A claim through a list that does not know the newest generation. */
TEST(pin_claims_meet_across_a_rotation)
{
	struct pin_table t;
	struct pin_list *old;

	ASSERT_EQ(pin_init(&t, 1000, 100), 0);
	pin_tick(&t, 1000, 0, 1, 0);
	old = atomic_load(&t.list);
	ASSERT(pin_tick(&t, 1025, 0, 2, 0)); /* period 25 s: a new current generation */
	ASSERT_EQ(ngens(&t), 2);
	/* the stale claimer first: it writes into the old generation, the fresh one finds it */
	ASSERT_EQ(pin_claim_from(&t, old, K(1), 2), 2);
	ASSERT_EQ(pin_claim(&t, K(1), 1), 2);
	/* the fresh claimer first: it seals the old generation's slot and wins in the new
	 * one; the stale claimer finds SEALED, reloads the list and follows */
	ASSERT_EQ(pin_claim(&t, K(2), 1), 1);
	ASSERT_EQ(pin_claim_from(&t, old, K(2), 2), 1);
	ASSERT_EQ(pin_get(&t, K(2)), 1);
	ASSERT_VALID(pin_verify(&t, 3, err, sizeof(err)));
	pin_destroy(&t); /* frees the retired list too */
}

/* Every pin lives at least the TTL and at most TTL + a period; nothing counts evicted. */
TEST(pin_dropped_after_ttl_only)
{
	struct pin_table t;
	uint32_t now;

	ASSERT_EQ(pin_init(&t, 1000, 100), 0);
	pin_tick(&t, 1000, 0, 1, 0);
	ASSERT_EQ(pin_claim(&t, K(1), 1), 1);   /* claimed at 1000 */
	for (now = 1001; now <= 1100; now++)
		pin_tick(&t, now, 1, now, now);
	ASSERT_EQ(pin_get(&t, K(1)), 1);          /* 100 s old: still there */
	ASSERT_EQ(pin_claim(&t, K(2), 2), 2);   /* claimed at 1100 */
	for (; now <= 1125; now++)
		pin_tick(&t, now, 2, now, now);
	ASSERT_EQ(pin_get(&t, K(1)), 1);          /* within TTL + period */
	pin_tick(&t, 1126, 2, 1126, 1126);
	ASSERT_EQ(pin_get(&t, K(1)), PIN_NONE);   /* its generation ended at 1025 */
	ASSERT_EQ(pin_get(&t, K(2)), 2);
	ASSERT_LE(ngens(&t), PIN_PERIODS + 1);
	ASSERT_EQ(atomic_load(&t.evicted), 0);
	pin_destroy(&t);
}

/* A generation that took its share of claims rotates before its period; with
 * PIN_MAX_GENS live, the oldest is dropped early and its pins counted as evicted. */
TEST(pin_early_rotation_and_eviction)
{
	struct pin_table t;
	uint64_t claims = 0, room;
	unsigned i, g;

	ASSERT_EQ(pin_init(&t, 400, 86400), 0);
	room = pin_gen_slots(400) * PIN_LOAD_PCT / 100;
	pin_tick(&t, 10, 0, 1, 0);
	for (g = 0; g < PIN_MAX_GENS; g++) {
		for (i = 0; i < room; i++, claims++)
			ASSERT_EQ(pin_claim(&t, K(claims), g & 1), (int)(g & 1));
		ASSERT(pin_tick(&t, 11 + g, claims, 2 + g, 0));
	}
	ASSERT_EQ(atomic_load(&t.early), PIN_MAX_GENS);
	ASSERT_EQ(ngens(&t), PIN_MAX_GENS);         /* the 6th rotation dropped the first */
	ASSERT_EQ(atomic_load(&t.evicted), room);
	ASSERT_EQ(pin_get(&t, K(0)), PIN_NONE);       /* evicted, one day too early */
	ASSERT_EQ(pin_get(&t, K(room)), 1);           /* the second generation is kept */
	ASSERT_EQ(pin_live(&t, claims), claims - room);
	pin_destroy(&t);
}

/* A key is found in whichever live generation holds it (the search goes newest first),
 * and pin_set rewrites it there in one walk: in an old generation as in the current one,
 * with no second copy written to the current one. A key absent everywhere is claimed in
 * the current one (PIN_NONE: it had none); a set to the id it already has says so. */
TEST(pin_lookup_and_set_across_generations)
{
	struct pin_table t;
	unsigned i, n = 0;

	ASSERT_EQ(pin_init(&t, 1000, 100), 0);
	pin_tick(&t, 1000, 0, 1, 0);
	for (i = 0; i < 50; i++)
		ASSERT_EQ(pin_claim(&t, K(i), 1), 1);        /* generation 1 */
	ASSERT(pin_tick(&t, 1025, 50, 2, 0));
	for (i = 50; i < 100; i++)
		ASSERT_EQ(pin_claim(&t, K(i), 2), 2);        /* generation 2 */
	ASSERT(pin_tick(&t, 1050, 100, 3, 0));
	ASSERT_EQ(ngens(&t), 3);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(pin_get(&t, K(i)), i < 50 ? 1 : 2);
	ASSERT_EQ(pin_set(&t, K(7), 4), 1);               /* oldest generation, in place */
	ASSERT_EQ(pin_set(&t, K(77), 5), 2);              /* middle one */
	ASSERT_EQ(pin_set(&t, K(7), 4), 4);               /* already 4 */
	ASSERT_EQ(pin_set(&t, K(200), 6), PIN_NONE);      /* none: claimed in the current */
	ASSERT_EQ(pin_set(&t, K(200), 6), 6);
	ASSERT_EQ(pin_set(&t, K(200), 3), 6);
	ASSERT_EQ(pin_get(&t, K(7)), 4);
	ASSERT_EQ(pin_get(&t, K(77)), 5);
	ASSERT_EQ(pin_get(&t, K(200)), 3);
	ASSERT_EQ(pin_claim(&t, K(7), 0), 4);             /* a claim follows the rewrite */
	ASSERT_VALID(pin_verify(&t, 8, err, sizeof(err)));
	/* one copy per key: the snapshot iteration sees 101 pins */
	pin_each(&t, 1050, count_pin, &n);
	ASSERT_EQ(n, 101);
	/* the oldest generation dropped: its keys, rewritten or not, go with it */
	for (i = 1051; i <= 1126; i++)
		pin_tick(&t, i, 101, i, i);
	ASSERT_EQ(pin_get(&t, K(7)), PIN_NONE);
	ASSERT_EQ(pin_get(&t, K(77)), 5);
	ASSERT_EQ(pin_get(&t, K(200)), 3);
	pin_destroy(&t);
}

struct each_acc {
	struct pin_table *dst;
	uint32_t now;
	unsigned n;
};

static void each_put(void *arg, uint64_t key, unsigned id, uint32_t age)
{
	struct each_acc *a = arg;

	a->n++;
	if (pin_restore(a->dst, key, id, age, a->now) < 0)
		abort();
}

/* Snapshot interface: every pin with the youngest age it can have, restored with it. */
TEST(pin_each_restore_round_trip)
{
	struct pin_table a, b;
	struct each_acc acc;
	uint32_t now;
	int i;

	ASSERT_EQ(pin_init(&a, 1000, 100), 0);
	ASSERT_EQ(pin_init(&b, 1000, 100), 0);
	pin_tick(&a, 1000, 0, 1, 0);
	for (now = 1000; now < 1080; now++) {
		ASSERT_EQ(pin_claim(&a, K(now), now % 5), (int)(now % 5));
		pin_tick(&a, now, now - 999, now, now);
	}
	/* a restart at 1080: the pins of a come back in b with their ages */
	pin_tick(&b, 1080, 0, 1, 0);
	acc = (struct each_acc){ &b, 1080, 0 };
	pin_each(&a, 1080, each_put, &acc);
	ASSERT_EQ(acc.n, 80);
	ASSERT_EQ(pin_live(&b, 0), 80); /* restored pins count as held */
	for (now = 1000; now < 1080; now++)
		ASSERT_EQ(pin_get(&b, K(now)), (int)(now % 5));
	ASSERT_VALID(pin_verify(&b, 5, err, sizeof(err)));
	/* no pin comes back younger than it was: b drops what a drops, or later */
	for (now = 1081; now < 1300; now++) {
		pin_tick(&a, now, 80, now, now);
		pin_tick(&b, now, 0, now, now);
		for (i = 1000; i < 1080; i++)
			if (pin_get(&a, K(i)) >= 0)
				ASSERT(pin_get(&b, K(i)) >= 0);
	}
	ASSERT_EQ(pin_get(&b, K(1079)), PIN_NONE); /* and it is still dropped */
	pin_destroy(&a);
	pin_destroy(&b);
}

TEST(pin_verify_catches)
{
	struct pin_table t;
	struct pin_list *l;
	size_t i;

	ASSERT_EQ(pin_init(&t, 1000, 100), 0);
	ASSERT_EQ(pin_claim(&t, K(1), 4), 4);
	ASSERT_VALID(pin_verify(&t, 5, err, sizeof(err)));
	ASSERT_BROKEN(pin_verify(&t, 4, err, sizeof(err)), "backend id");
	l = atomic_load(&t.list);
	for (i = 0; atomic_load(&l->g[0]->slot[i]) == 0; i++)
		;
	/* an entry moved far from its home line */
	atomic_store(&l->g[0]->slot[(i + (size_t)20 * PIN_LINE) % ((size_t)l->g[0]->nlines * PIN_LINE)],
	             atomic_load(&l->g[0]->slot[i]));
	ASSERT_BROKEN(pin_verify(&t, 5, err, sizeof(err)), "from its home");
	pin_destroy(&t);
}

int main(void)
{
	RUN(pin_claim_follow_and_set);
	RUN(pin_claims_meet_across_a_rotation);
	RUN(pin_dropped_after_ttl_only);
	RUN(pin_early_rotation_and_eviction);
	RUN(pin_lookup_and_set_across_generations);
	RUN(pin_each_restore_round_trip);
	RUN(pin_verify_catches);
	return test_summary();
}
