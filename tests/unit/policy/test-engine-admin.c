/* test-engine-admin.c: what the admin socket and /metrics read from the engine
 * (policy/engine.c): `drain` takes new traffic off a backend but keeps its pinned
 * retries, `disable`/`enable` and drain carried over a reload, decisions counted by
 * backend x class x verdict and by reason token (the counts match the verdicts), the
 * sampled decisions (every nth, newest first, the chosen backend's score flagged), and
 * the posteriors by segment after outcomes. */
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

#define POLICY POL_TEST_TWO_USD_ACCOUNTS \
	"default_backend = \"pa\";\n" \
	"classes = ( { name = \"std\"; } );\n"

static void key(char out[65], unsigned n)
{
	snprintf(out, 65, "%064x", n);
}

static const char *decide(struct pol_engine *e, const char *idem, uint64_t now, struct pay_verdict *v)
{
	struct pay_request rq = pol_test_usd_charge();

	rq.idem = idem ? (struct pay_str){ idem, 64 } : (struct pay_str){ NULL, 0 };
	pol_decide(e, 0, &rq, now, v);
	pol_quiesce(e, 0);
	return v->backend;
}

TEST(drain_keeps_pinned_retries)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_backend_info b;
	struct pay_verdict v;
	char k[65];

	key(k, 1);
	ASSERT_STREQ(decide(e, k, SEC, &v), "pa");
	ASSERT_EQ(pol_engine_set_drained(e, "pa"), 0);
	ASSERT_EQ(pol_engine_set_drained(e, "nosuch"), -1);
	ASSERT_EQ(pol_engine_backend_info(e, 0, SEC, &b), 0);
	ASSERT(b.admin_drained && !b.admin_disabled);
	for (unsigned i = 2; i < 20; i++) {
		char k2[65];

		key(k2, i);
		ASSERT_STREQ(decide(e, k2, SEC + i, &v), "pb");
	}
	ASSERT_STREQ(decide(e, k, 2 * SEC, &v), "pa"); /* the retry finds its first attempt */
	ASSERT(has_token(&v, "pin:idem"));
	/* disable ends the drain, enable ends both */
	ASSERT_EQ(pol_engine_set_enabled(e, "pa", false), 0);
	ASSERT_EQ(pol_engine_backend_info(e, 0, SEC, &b), 0);
	ASSERT(b.admin_disabled && !b.admin_drained);
	ASSERT_EQ(pol_engine_set_drained(e, "pa"), 0);
	ASSERT_EQ(pol_engine_set_enabled(e, "pa", true), 0);
	ASSERT_EQ(pol_engine_backend_info(e, 0, SEC, &b), 0);
	ASSERT(!b.admin_disabled && !b.admin_drained);
	ASSERT_STREQ(decide(e, NULL, 3 * SEC, &v), "pa");
	pol_engine_free(e);
}

TEST(drain_carried_over_reload)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_backend_info b;
	struct pay_verdict v;
	char err[256];
	struct policy *p = pol_load_string(POLICY, "test", err, sizeof(err));

	ASSERT(p);
	ASSERT_EQ(pol_engine_set_drained(e, "pa"), 0);
	ASSERT_EQ(pol_engine_swap(e, p, err, sizeof(err)), 0);
	ASSERT_EQ(pol_engine_backend_info(e, 0, SEC, &b), 0);
	ASSERT(b.admin_drained);
	ASSERT_STREQ(decide(e, NULL, SEC, &v), "pb");
	pol_engine_free(e);
}

TEST(routes_and_reasons_count_the_verdicts)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_route_info r;
	struct pol_stats st;
	struct pay_verdict v;
	uint64_t by_be[2] = { 0, 0 }, sum = 0, cost = 0, spill = 0, cost_tok = 0, spill_tok = 0;
	char k[65];

	for (unsigned i = 0; i < 300; i++) {
		key(k, i);
		decide(e, k, SEC + i * 1000, &v); /* 300 in 0.3 s: budgets queue some */
		cost += has_token(&v, "cost");
		spill += has_token(&v, "spill");
	}
	for (unsigned i = 0; pol_engine_route_info(e, i, &r) == 0; i++) {
		ASSERT_STREQ(r.class_name, "std");
		ASSERT_EQ(r.verdict, i % 3);
		by_be[i / 3] += r.count;
		sum += r.count;
	}
	pol_engine_stats(e, 2 * SEC, &st);
	ASSERT_EQ(sum, 300);
	ASSERT_EQ(st.decisions, 300);
	for (size_t i = 0; i < pol_stats_ndesc; i++) {
		const struct pol_stats_desc *d = &pol_stats_desc[i];
		const char *w = d->values;

		if (strcmp(d->name, "reasons"))
			continue;
		for (unsigned t = 0; t < d->n; t++) {
			size_t l;
			const uint64_t *val = (const uint64_t *)((const char *)&st + d->off);

			w += strspn(w, " ");
			l = strcspn(w, " ");
			if (l == 4 && !memcmp(w, "cost", 4))
				cost_tok = val[t];
			if (l == 5 && !memcmp(w, "spill", 5))
				spill_tok = val[t];
			w += l;
		}
	}
	ASSERT_EQ(cost_tok, cost);
	ASSERT_EQ(spill_tok, spill);
	ASSERT_EQ(by_be[0] + by_be[1], 300);
	ASSERT_GE(by_be[0], 1);
	pol_engine_free(e);
}

TEST(sampled_decisions)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_sample s[POL_SAMPLE_RING];
	struct pay_verdict v;
	size_t n;

	ASSERT_EQ(pol_engine_samples(e, s, POL_SAMPLE_RING), 0);
	decide(e, NULL, SEC, &v); /* sampling off: nothing written */
	ASSERT_EQ(pol_engine_samples(e, s, POL_SAMPLE_RING), 0);
	pol_engine_set_sampling(e, 4);
	ASSERT_EQ(pol_engine_sampling(e), 4);
	for (unsigned i = 0; i < 200; i++)
		decide(e, NULL, 2 * SEC + i * 100000, &v);
	n = pol_engine_samples(e, s, POL_SAMPLE_RING);
	ASSERT_EQ(n, POL_SAMPLE_RING); /* 50 sampled, the ring keeps the newest 32 */
	for (size_t i = 0; i < n; i++) {
		unsigned chosen = 0;

		ASSERT_EQ(s[i].seq, 200 + 1 - 4 * i); /* every 4th: 201 (the first was unsampled), 197, ... */
		ASSERT_STREQ(pol_engine_sample_class(e, &s[i]), "std");
		ASSERT_EQ(s[i].ncand, 2);
		for (unsigned k = 0; k < s[i].ncand; k++) {
			ASSERT(s[i].cand[k].flags & POL_SAMPLE_F_CAND);
			ASSERT(s[i].cand[k].score > 0);
			if (s[i].cand[k].flags & POL_SAMPLE_F_CHOSEN) {
				chosen++;
				ASSERT_EQ(s[i].cand[k].backend, s[i].backend);
			}
		}
		ASSERT_EQ(chosen, 1);
		ASSERT(strstr(s[i].reason, "cost"));
	}
	pol_engine_free(e);
}

TEST(posteriors_by_segment)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct pol_seg_info seg[8];
	struct pay_verdict v;
	struct pay_outcome o;
	int n;

	for (unsigned i = 0; i < 40; i++) {
		uint64_t now = SEC + i * 200000;

		decide(e, NULL, now, &v);
		o = pol_test_answer(&v, i % 4 ? 200 : 402, 300);
		pol_observe(e, 0, &o, now + 1000);
		pol_quiesce(e, 0);
		pol_test_ticks(e, now, now + 200000);
	}
	n = pol_engine_learn_segs(e, 0, 10 * SEC, seg, 8);
	ASSERT_EQ(n, 2); /* the whole traffic, then usd */
	ASSERT_STREQ(seg[0].currency, "");
	ASSERT_STREQ(seg[1].currency, "usd");
	ASSERT_GE(seg[0].n, 1);
	ASSERT(seg[0].mean > 0 && seg[0].mean < 1 && seg[0].sd > 0);
	ASSERT_EQ(pol_engine_learn_segs(e, 0, 10 * SEC, seg, 1), 1);
	ASSERT_EQ(pol_engine_learn_segs(e, 2, 10 * SEC, seg, 8), -1);
	pol_engine_free(e);
}

int main(void)
{
	RUN(drain_keeps_pinned_retries);
	RUN(drain_carried_over_reload);
	RUN(routes_and_reasons_count_the_verdicts);
	RUN(sampled_decisions);
	RUN(posteriors_by_segment);
	return test_summary();
}
