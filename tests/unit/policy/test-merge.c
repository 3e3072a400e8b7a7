/* test-merge.c: outcome deltas between nodes (policy/merge.c): deltas add up across
 * publications and nodes, nothing is counted twice (a replayed or older publication is
 * refused, the local delta starts again after each publication), a node's own echo is
 * ignored, and the texts round-trip; malformed texts are refused whole. */
#include <string.h>

#include "merge.h"
#include "test.h"

static struct mrg_key key(const char *be, uint32_t cur, uint32_t cty, uint32_t brand, uint32_t fund)
{
	struct mrg_key k;

	memset(&k, 0, sizeof(k));
	snprintf(k.backend, sizeof(k.backend), "%s", be);
	k.cur = cur;
	k.cty = cty;
	k.brand = brand;
	k.fund = fund;
	return k;
}

/* What a receiving node does with a text: parse, accept, add every record into its
 * merged table. Returns the verdict (or -1 malformed). */
static int receive(struct mrg_peers *peers, const char *self, const char *text, struct mrg_delta *tmp,
                   struct mrg_delta *merged)
{
	struct mrg_msg m;
	enum mrg_verdict v;

	if (mrg_parse(text, strlen(text), &m, tmp) < 0)
		return -1;
	v = mrg_accept(peers, self, m.node, m.seq);
	if (v != MRG_APPLY)
		return (int)v;
	for (uint32_t i = 0; i < tmp->cap; i++)
		if (tmp->cell[i].used)
			ASSERT_EQ(mrg_add(merged, &tmp->cell[i].k, tmp->cell[i].s, tmp->cell[i].f), 0);
	return (int)v;
}

static struct mrg_cell mem_a[64], mem_b[64], mem_t[64], mem_m[64];

TEST(merge_deltas_add_up_no_double_count)
{
	struct mrg_delta a, t, mb;
	struct mrg_peers pb = { .n = 0 };
	struct mrg_key k1 = key("stripe_us", 0x1234, 0xab, 7, 0), k2 = key("stripe_eu", 0x99, 0, 0, 3);
	const struct mrg_cell *c;
	char text[4096];
	uint64_t seq = 1000;

	ASSERT_EQ(mrg_init(&a, mem_a, 64), 0);
	ASSERT_EQ(mrg_init(&t, mem_t, 64), 0);
	ASSERT_EQ(mrg_init(&mb, mem_m, 64), 0);
	/* node A learns 3 + 2 on k1, 1 failure on k2: one cell per key */
	ASSERT_EQ(mrg_add(&a, &k1, 3, 0), 0);
	ASSERT_EQ(mrg_add(&a, &k1, 0, 2), 0);
	ASSERT_EQ(mrg_add(&a, &k2, 0, 1), 0);
	ASSERT_EQ(a.n, 2);
	ASSERT(mrg_encode(&a, "A", ++seq, text, sizeof(text)) > 0);
	mrg_reset(&a);  /* published: the next text carries only what comes after */
	ASSERT_EQ(receive(&pb, "B", text, &t, &mb), MRG_APPLY);
	/* the same text again (Redis delivered it twice, or a replay): refused */
	ASSERT_EQ(receive(&pb, "B", text, &t, &mb), MRG_SEEN);
	c = mrg_find(&mb, &k1);
	ASSERT(c && c->s == 3 && c->f == 2);
	c = mrg_find(&mb, &k2);
	ASSERT(c && c->s == 0 && c->f == 1);
	/* a second publication adds only the new outcomes */
	ASSERT_EQ(mrg_add(&a, &k1, 4, 1), 0);
	ASSERT(mrg_encode(&a, "A", ++seq, text, sizeof(text)) > 0);
	mrg_reset(&a);
	ASSERT_EQ(receive(&pb, "B", text, &t, &mb), MRG_APPLY);
	c = mrg_find(&mb, &k1);
	ASSERT(c && c->s == 7 && c->f == 3);
	c = mrg_find(&mb, &k2);
	ASSERT(c && c->s == 0 && c->f == 1);
	/* an older publication of A arriving late is refused too */
	ASSERT(mrg_encode(&a, "A", seq - 1, text, sizeof(text)) > 0);
	ASSERT_EQ(receive(&pb, "B", text, &t, &mb), MRG_SEEN);
}

TEST(merge_own_echo_ignored_three_nodes)
{
	struct mrg_delta a, b, t, m[3];
	static struct mrg_cell mm[3][64];
	struct mrg_peers p[3] = { { .n = 0 }, { .n = 0 }, { .n = 0 } };
	const char *name[3] = { "A", "B", "C" };
	struct mrg_key k = key("stripe_us", 1, 2, 3, 4);
	char ta[2048], tb[2048];
	const struct mrg_cell *c;

	ASSERT_EQ(mrg_init(&a, mem_a, 64), 0);
	ASSERT_EQ(mrg_init(&b, mem_b, 64), 0);
	ASSERT_EQ(mrg_init(&t, mem_t, 64), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(mrg_init(&m[i], mm[i], 64), 0);
	/* a segment thin on each node: 2 outcomes on A, 3 on B */
	ASSERT_EQ(mrg_add(&a, &k, 1, 1), 0);
	ASSERT_EQ(mrg_add(&b, &k, 3, 0), 0);
	ASSERT(mrg_encode(&a, "A", 5, ta, sizeof(ta)) > 0);
	ASSERT(mrg_encode(&b, "B", 9, tb, sizeof(tb)) > 0);
	/* the channel delivers both texts to every subscriber, senders included */
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(receive(&p[i], name[i], ta, &t, &m[i]), i == 0 ? MRG_OWN : MRG_APPLY);
		ASSERT_EQ(receive(&p[i], name[i], tb, &t, &m[i]), i == 1 ? MRG_OWN : MRG_APPLY);
	}
	/* each node's remote counts are the others' outcomes, never its own */
	c = mrg_find(&m[0], &k);
	ASSERT(c && c->s == 3 && c->f == 0);
	c = mrg_find(&m[1], &k);
	ASSERT(c && c->s == 1 && c->f == 1);
	c = mrg_find(&m[2], &k);  /* C saw none itself: it has the whole fleet's 5 */
	ASSERT(c && c->s == 4 && c->f == 1);
}

TEST(merge_text_round_trip_and_breaker)
{
	struct mrg_delta a, t;
	struct mrg_msg msg;
	char text[256], again[256];
	struct mrg_key k = key("acct-x_1", 0xffffffffu, 0, 0x10, 0);
	int n;

	ASSERT_EQ(mrg_init(&a, mem_a, 64), 0);
	ASSERT_EQ(mrg_init(&t, mem_t, 64), 0);
	ASSERT_EQ(mrg_add(&a, &k, 4000000000u, 0), 0);
	n = mrg_encode(&a, "node-1", 18446744073709551615ull, text, sizeof(text));
	ASSERT_STREQ(text, "L node-1 18446744073709551615 1;acct-x_1 ffffffff 0 10 0 4000000000 0");
	ASSERT_EQ(mrg_parse(text, (size_t)n, &msg, &t), 0);
	ASSERT_EQ(msg.kind, MRG_LEARN);
	ASSERT_STREQ(msg.node, "node-1");
	ASSERT_EQ(mrg_encode(&t, msg.node, msg.seq, again, sizeof(again)), n);
	ASSERT_STREQ(again, text);
	/* too small a buffer: refused, not cut */
	ASSERT_EQ(mrg_encode(&a, "node-1", 1, text, 20), -1);
	/* breaker */
	n = mrg_encode_breaker("n2", 7, "stripe_eu", text, sizeof(text));
	ASSERT_STREQ(text, "B n2 7 stripe_eu");
	ASSERT_EQ(mrg_parse(text, (size_t)n, &msg, NULL), 0);
	ASSERT(msg.kind == MRG_BREAKER && msg.seq == 7 && !strcmp(msg.backend, "stripe_eu") && !strcmp(msg.node, "n2"));
	ASSERT_EQ(mrg_encode_breaker("n 2", 7, "stripe_eu", text, sizeof(text)), -1);
}

TEST(merge_malformed_refused)
{
	struct mrg_delta t;
	struct mrg_msg msg;
	static const char *const bad[] = {
		"", "L", "L A", "L A 1", "L A 1 ", "X A 1 0", "L A 01 0", "L A -1 0", "L A 1 1",
		"L A 1 1;be 1 2 3 4 5", "L A 1 1;be 1 2 3 4 5 6 7", "L A 1 1;be 1 2 3 4 5 6;", "L A 1 0;be 1 2 3 4 5 6",
		"L A 1 1;be 1 2 3 4 5 4294967296", "L A 1 1;be 100000000 2 3 4 5 6", "L A 1 1;be G 2 3 4 5 6",
		"L A 18446744073709551616 0", "B A 1", "B A 1 ", "B A 1 be extra", "L A 1 2;be 1 2 3 4 5 6",
		"L A\t1 0", "B A 1 be;x",
	};

	ASSERT_EQ(mrg_init(&t, mem_t, 64), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mrg_parse(bad[i], strlen(bad[i]), &msg, &t) != -1)
			TEST_FAIL_("accepted: \"%s\"", bad[i]);
	ASSERT_EQ(mrg_parse("L A 1 0", 7, &msg, &t), 0);
	ASSERT_EQ(t.n, 0);
	/* one key twice in a text adds up */
	ASSERT_EQ(mrg_parse("L A 1 2;be 1 2 3 4 5 6;be 1 2 3 4 1 1", 37, &msg, &t), 0);
	ASSERT_EQ(t.n, 1);
	{
		struct mrg_key k = key("be", 1, 2, 3, 4);
		const struct mrg_cell *c = mrg_find(&t, &k);

		ASSERT(c && c->s == 6 && c->f == 7);
	}
}

TEST(merge_full_table_counts_drops)
{
	struct mrg_delta d;
	struct mrg_cell small[8];
	struct mrg_key k;
	int kept = 0;

	ASSERT_EQ(mrg_init(&d, small, 8), 0);
	ASSERT_EQ(mrg_init(&d, small, 6), -1);
	for (uint32_t i = 0; i < 10; i++) {
		k = key("b", i + 1, 0, 0, 0);
		kept += mrg_add(&d, &k, 1, 1) == 0;
	}
	ASSERT_EQ(kept, 6);  /* 3/4 of 8 */
	ASSERT_EQ(d.n, 6);
	ASSERT_EQ(d.dropped, 8);
	k = key("b", 1, 0, 0, 0);
	ASSERT_EQ(mrg_add(&d, &k, 1, 0), 0);  /* a kept key still adds */
	ASSERT_EQ(mrg_find(&d, &k)->s, 2);
}

TEST(merge_peers)
{
	struct mrg_peers p = { .n = 0 };
	char name[16];

	ASSERT_EQ(mrg_accept(&p, "me", "me", 5), MRG_OWN);
	ASSERT_EQ(mrg_accept(&p, "me", "x", 5), MRG_APPLY);
	ASSERT_EQ(mrg_accept(&p, "me", "x", 5), MRG_SEEN);
	ASSERT_EQ(mrg_accept(&p, "me", "x", 6), MRG_APPLY);
	for (int i = 1; i < MRG_PEERS; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ASSERT_EQ(mrg_accept(&p, "me", name, 1), MRG_APPLY);
	}
	ASSERT_EQ(mrg_accept(&p, "me", "one-too-many", 1), MRG_NO_ROOM);
}

int main(void)
{
	RUN(merge_deltas_add_up_no_double_count);
	RUN(merge_own_echo_ignored_three_nodes);
	RUN(merge_text_round_trip_and_breaker);
	RUN(merge_malformed_refused);
	RUN(merge_full_table_counts_drops);
	RUN(merge_peers);
	return test_summary();
}
