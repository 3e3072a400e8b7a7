/* test-pin.c: policy/pin.c: affinity tables: TTL, eviction of the oldest entry of a
 * full bucket (and its counter), and the merge that maps backends across a reload. */
#include <stdatomic.h>
#include <stdint.h>

#include "pin.h"
#include "test.h"

TEST(pin_ttl_and_eviction)
{
	struct pin_table t;
	uint64_t k;
	int i;

	ASSERT_EQ(pin_init(&t, 64, 100), 0); /* 16 buckets of 4 */
	pin_put(&t, 42, 3, 1000);
	ASSERT_EQ(pin_get(&t, 42, 1000), 3);
	ASSERT_EQ(pin_get(&t, 42, 1099), 3);
	ASSERT_EQ(pin_get(&t, 42, 1100), -1);  /* expired */
	ASSERT_EQ(pin_get(&t, 43, 1000), -1);
	pin_put(&t, 42, 5, 1000);
	ASSERT_EQ(pin_get(&t, 42, 1000), 5);    /* replaced, not duplicated */

	/* Five keys in one bucket (same low bits): the oldest goes, and is counted. */
	for (i = 0; i < 5; i++) {
		k = ((uint64_t)(i + 1) << 32) | 7;
		pin_put(&t, k, (unsigned)i, 2000 + (uint32_t)i);
	}
	ASSERT_EQ(pin_get(&t, (1ULL << 32) | 7, 2005), -1); /* the oldest */
	for (i = 1; i < 5; i++)
		ASSERT_EQ(pin_get(&t, ((uint64_t)(i + 1) << 32) | 7, 2005), i);
	ASSERT_EQ(atomic_load(&t.evicted), 1);
	ASSERT_EQ(pin_live(&t, 2005), 4);
	/* Expired entries are reused without counting an eviction. */
	pin_put(&t, (9ULL << 32) | 7, 9, 5000);
	ASSERT_EQ(atomic_load(&t.evicted), 1);
	pin_destroy(&t);
}

TEST(pin_merge_maps_backends)
{
	struct pin_table a, b;
	int map[128];
	int i;

	for (i = 0; i < 128; i++)
		map[i] = -1;
	map[0] = 1;
	ASSERT_EQ(pin_init(&a, 64, 100), 0);
	ASSERT_EQ(pin_init(&b, 256, 100), 0); /* resized on reload */
	pin_put(&a, 1001, 0, 10);
	pin_put(&a, 1002, 1, 10);             /* backend 1 is gone */
	pin_put(&b, 1003, 0, 10);
	pin_merge(&b, &a, map, 20);
	ASSERT_EQ(pin_get(&b, 1001, 20), 1);
	ASSERT_EQ(pin_get(&b, 1002, 20), -1);
	ASSERT_EQ(pin_get(&b, 1003, 20), 0);
	ASSERT_EQ(pin_get(&b, 1001, 110), -1); /* expiry kept, not refreshed */
	pin_destroy(&a);
	pin_destroy(&b);
}

int main(void)
{
	RUN(pin_ttl_and_eviction);
	RUN(pin_merge_maps_backends);
	return test_summary();
}
