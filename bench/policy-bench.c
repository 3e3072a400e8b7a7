/* policy-bench: decisions per second of pol_decide alone, on one thread, with 8
 * backends, 6 classes, compliance rules, endpoint budgets and full scoring; and the
 * number of heap calls made during the timed loops (must be 0).
 *   ./bench/policy-bench [decisions-per-run (default 2000000)] [runs (default 5)]
 * Prints the best run (the machine is shared: the minimum time is the honest figure)
 * and the median.
 *   ./bench/policy-bench [decisions-per-run] [runs] keyed [pins (default 34560000)]
 * The cost of a first attempt's idempotency pin in a full-size table: the table sized
 * for `pins` (34,560,000: the default policy's 400 keys/s for 24 h), filled to its
 * steady state (every generation of the TTL full) by first attempts at the rate it is
 * sized for, then rounds that alternate: every decision with a new key, the same
 * decisions without a key, and again with the keys of the round before (retries, the
 * pins found). Prints ns per decision of each, median [range] over the rounds, and what
 * a first attempt adds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "alloc-count.h"
#include "bench-runs.h"

static const char bench_policy[] =
	"regions = { us = [ \"US\" ]; eea = [ \"DE\", \"FR\", \"NL\", \"ES\", \"IT\" ]; uk = [ \"GB\" ]; };\n"
	"fee_schedules = (\n"
	" { name = \"us\"; percent = 2.9; fixed = 30; cross_border = 1.5; fx = 1.0; },\n"
	" { name = \"eu\"; percent = 1.5; fixed = 25; cross_border = 1.75; fx = 2.0;\n"
	"   rates = ( { card_region = \"uk\"; percent = 2.5; all_in = true; },\n"
	"             { card_region = \"eea\"; funding = \"debit\"; interchange = 0.2; scheme = 0.1; markup = 0.5; fixed = 10; } ); }\n"
	");\n"
	"backends = (\n"
	" { name = \"us1\"; account = \"acct_us1\"; entity = \"inc\"; region = \"us\"; currencies = [ \"usd\", \"eur\", \"gbp\", \"cad\" ]; settlement = [ \"usd\" ]; fee_schedule = \"us\"; },\n"
	" { name = \"us2\"; account = \"acct_us2\"; entity = \"inc\"; region = \"us\"; currencies = [ \"usd\", \"eur\", \"gbp\" ]; settlement = [ \"usd\" ]; fee_schedule = \"us\"; latency_ms = 320; },\n"
	" { name = \"us3\"; account = \"acct_us3\"; entity = \"inc\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"us\"; auth_rate = 0.91; },\n"
	" { name = \"us4\"; account = \"acct_us1\"; entity = \"inc\"; region = \"us\"; currencies = [ \"usd\", \"cad\" ]; fee_schedule = \"us\"; latency_ms = 200; },\n"
	" { name = \"eu1\"; account = \"acct_eu1\"; entity = \"bv\"; region = \"eea\"; currencies = [ \"eur\", \"gbp\", \"usd\" ]; settlement = [ \"eur\" ]; fee_schedule = \"eu\"; },\n"
	" { name = \"eu2\"; account = \"acct_eu2\"; entity = \"bv\"; region = \"eea\"; currencies = [ \"eur\", \"gbp\" ]; settlement = [ \"eur\", \"gbp\" ]; fee_schedule = \"eu\"; auth_rate = 0.93; },\n"
	" { name = \"eu3\"; account = \"acct_eu3\"; entity = \"bv\"; region = \"eea\"; currencies = [ \"eur\" ]; fee_schedule = \"eu\"; latency_ms = 150; },\n"
	" { name = \"uk1\"; account = \"acct_uk1\"; entity = \"ltd\"; region = \"uk\"; currencies = [ \"gbp\", \"eur\", \"usd\" ]; settlement = [ \"gbp\" ]; fee_schedule = \"eu\"; }\n"
	");\n"
	"classes = (\n"
	" { name = \"checkout\"; priority = -100; reserve = 0.2; shed_order = 6; queue_ms = 2000; },\n"
	" { name = \"capture\"; priority = -50; reserve = 0.1; shed_order = 5; queue_ms = 2000; },\n"
	" { name = \"refund\"; priority = 0; offset_ms = 100; reserve = 0.05; shed_order = 4; queue_ms = 5000; },\n"
	" { name = \"standard\"; priority = 0; offset_ms = 200; shed_order = 3; queue_ms = 1000; },\n"
	" { name = \"read\"; priority = 100; offset_ms = 500; shed_order = 2; queue_ms = 500; },\n"
	" { name = \"background\"; priority = 200; offset_ms = 1000; shed_order = 1; }\n"
	");\n"
	"classify = { default = \"standard\"; trust_hints = true; rules = (\n"
	" { hint = \"background\"; class = \"background\"; },\n"
	" { method = \"POST\"; path = \"/v1/payment_intents\"; class = \"checkout\"; },\n"
	" { method = \"POST\"; path = \"/v1/payment_intents/*/confirm\"; class = \"checkout\"; },\n"
	" { method = \"POST\"; path = \"/v1/charges\"; class = \"checkout\"; },\n"
	" { method = \"POST\"; path = \"/v1/payment_intents/*/capture\"; class = \"capture\"; },\n"
	" { method = \"POST\"; path = \"/v1/refunds\"; class = \"refund\"; },\n"
	" { method = \"POST\"; path = \"/v1/subscriptions**\"; class = \"background\"; },\n"
	" { method = \"GET\"; class = \"read\"; } ); };\n"
	"compliance = ( { name = \"eea\"; card_regions = [ \"eea\" ]; entities = [ \"bv\", \"ltd\", \"inc\" ]; } );\n"
	/* Budgets far above the offered load, so the loop measures the allow path. */
	/* the idempotency table: main's 65,536 or the keyed mode's full size */
	"pinning = { idem_slots = %lu; };\n"
	"throttle = { account = { rate = 1000000.0; burst = 1000000.0; }; endpoint = { rate = 1000000.0; burst = 1000000.0; };\n"
	" endpoints = ( { name = \"pi\"; path = \"/v1/payment_intents**\"; }, { name = \"refunds\"; path = \"/v1/refunds**\"; } ); };\n";

#define NRQ 4096

static struct pay_request rqs[NRQ];
static char idem[NRQ][65];

/* The keyed mode's keys: 64 characters, the last 16 the key's number in hex. */
static void key_of(char *k, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 63; i >= 48; i--, n >>= 4)
		k[i] = hex[n & 15];
}

enum { KR_FRESH, KR_NONE, KR_RETRY, KR_KINDS };

static unsigned long verdicts[3]; /* every keyed-mode decision's, by verdict */

/* One keyed-mode round of n decisions of kind `kind` from key number *next (fresh) or
 * first (retry), the clock at *now_us stepping step_us per new key (2 µs per other
 * decision: 500,000/s, inside the budgets, so that every round decides `allow` and the
 * keys come at the rate the table is sized for); the engine ticks every 4,096 decisions
 * outside the timed stretches (pin rotations are the control thread's). Returns the
 * time spent deciding, in seconds; adds heap calls to *allocs. */
static double keyed_round(struct pol_engine *e, long n, int kind, uint64_t first, uint64_t *next,
                          double *now_us, double step_us, unsigned long *allocs)
{
	static char key[NRQ][64];
	struct pay_verdict v;
	double spent = 0;
	long i = 0;

	for (int k = 0; k < NRQ; k++)
		memset(key[k], 'a', sizeof(key[k]));
	while (i < n) {
		long end = i + 4096 < n ? i + 4096 : n;
		double t0;

		alloc_calls = 0;
		alloc_counting = 1;
		t0 = bench_now_s();
		for (; i < end; i++) {
			struct pay_request rq = rqs[i & (NRQ - 1)];

			if (kind != KR_NONE) {
				char *k = key[i & (NRQ - 1)];

				key_of(k, kind == KR_FRESH ? (*next)++ : first + (uint64_t)i);
				rq.idem = (struct pay_str){ k, 64 };
			} else {
				rq.idem = (struct pay_str){ NULL, 0 };
			}
			pol_decide(e, 0, &rq, (uint64_t)(*now_us += kind == KR_FRESH ? step_us : 2.0), &v);
			verdicts[v.verdict]++;
		}
		spent += bench_now_s() - t0;
		alloc_counting = 0;
		*allocs += alloc_calls;
		pol_quiesce(e, 0);
		pol_tick(e, (uint64_t)*now_us);
	}
	return spent;
}

/* The keyed mode (see the top of the file). Returns main's exit status. */
static int keyed_main(long n, int runs, unsigned long pins)
{
	static char text[sizeof(bench_policy) + 32];
	char err[512];
	struct policy *p;
	struct pol_engine *e;
	struct pol_stats st;
	double t[KR_KINDS][BENCH_MAX_RUNS], now_us = 1e9, step_us = 86400e6 / (double)pins;
	static const char *const names[KR_KINDS] = { "new key (first attempt)", "no key", "known key (retry)" };
	unsigned long allocs = 0;
	uint64_t next = 1, fill = pins + pins / 4; /* every generation of the TTL, and the current one */

	snprintf(text, sizeof(text), bench_policy, pins);
	p = pol_load_string(text, "bench-policy", err, sizeof(err));
	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "policy-bench: %s\n", err);
		return 1;
	}
	/* first attempts at the rate the table is sized for (400/s: a key every 2.5 ms of
	 * the engine's clock), so that its generations rotate and expire as in production */
	keyed_round(e, (long)fill, KR_FRESH, 0, &next, &now_us, step_us, &allocs);
	allocs = 0;
	for (int r = 0; r < runs; r++) {
		uint64_t first = next;

		t[KR_FRESH][r] = keyed_round(e, n, KR_FRESH, 0, &next, &now_us, step_us, &allocs) / n;
		t[KR_NONE][r] = keyed_round(e, n, KR_NONE, 0, &next, &now_us, step_us, &allocs) / n;
		t[KR_RETRY][r] = keyed_round(e, n, KR_RETRY, first, &next, &now_us, step_us, &allocs) / n;
	}
	pol_engine_stats(e, (uint64_t)now_us, &st);
	printf("policy-bench keyed: idempotency table sized for %lu pins, %llu live after %llu first attempts "
	       "(%llu generations started); %ld decisions x %d rounds per kind\n", pins,
	       (unsigned long long)st.pin_live[0], (unsigned long long)(next - 1),
	       (unsigned long long)st.pin_rotations[0], n, runs);
	for (int k = 0; k < KR_KINDS; k++) {
		bench_sort(t[k], runs);
		printf("  %-24s %.1f ns per decision [%.1f-%.1f]\n", names[k], bench_median(t[k], runs) * 1e9,
		       t[k][0] * 1e9, t[k][runs - 1] * 1e9);
	}
	printf("  a first attempt's pin adds %.1f ns (%.2fx the decision without a key); a retry's %.1f ns\n",
	       (bench_median(t[KR_FRESH], runs) - bench_median(t[KR_NONE], runs)) * 1e9,
	       bench_median(t[KR_FRESH], runs) / bench_median(t[KR_NONE], runs),
	       (bench_median(t[KR_RETRY], runs) - bench_median(t[KR_NONE], runs)) * 1e9);
	printf("  verdicts: allow %lu, queue %lu, reject %lu\n", verdicts[0], verdicts[1], verdicts[2]);
	if (ALLOC_COUNT_WORKS)
		printf("  heap calls in the timed loops: %lu\n", allocs);
	pol_engine_free(e);
	return allocs ? 1 : 0;
}

static void make_requests(void)
{
	static const char *const curs[] = { "usd", "eur", "gbp", "cad", "usd", "eur" };
	static const char *const ccs[] = { "US", "DE", "GB", "FR", "CA", "NL", "JP" };
	static const char *const paths[] = { "/v1/payment_intents", "/v1/payment_intents/pi_123/confirm",
		"/v1/payment_intents/pi_456/capture", "/v1/refunds", "/v1/charges", "/v1/customers/cus_1" };
	static const char *const methods[] = { "POST", "POST", "POST", "POST", "GET", "POST" };
	unsigned i;

	for (i = 0; i < NRQ; i++) {
		struct pay_request *r = &rqs[i];
		unsigned k = i % 6;

		r->method = (struct pay_str){ methods[k], (uint32_t)strlen(methods[k]) };
		r->path = (struct pay_str){ paths[k], (uint32_t)strlen(paths[k]) };
		r->currency = (struct pay_str){ curs[i % 6], 3 };
		r->card_country = (struct pay_str){ ccs[i % 7], 2 };
		r->card_funding = (struct pay_str){ (i & 1) ? "credit" : "debit", (i & 1) ? 6 : 5 };
		r->amount = 500 + (int64_t)(i * 37 % 20000);
		r->has_amount = k < 3;
		if (i % 2 == 0) { /* half carry an idempotency key; 2048 distinct, so retries hit */
			snprintf(idem[i], sizeof(idem[i]), "%064x", i * 2654435761u);
			r->idem = (struct pay_str){ idem[i], 64 };
		}
		if (i % 13 == 0)
			r->class_hint = (struct pay_str){ "background", 10 };
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	int runs = bench_runs_arg(argc, argv, 2, 5), r;
	char err[512];
	static char text[sizeof(bench_policy) + 32];
	struct policy *p;
	struct pol_engine *e;
	struct pay_verdict v;
	double t[BENCH_MAX_RUNS], sim_us = 1e9;
	unsigned long allocs = 0;
	long i;

	if (n < 1)
		n = 2000000;
	make_requests();
	if (argc > 3 && strcmp(argv[3], "keyed") == 0)
		return keyed_main(n, runs, argc > 4 && atol(argv[4]) > 0 ? (unsigned long)atol(argv[4]) : 34560000UL);
	/* the table of the historical figures: at budgets that never throttle (7 M req/s)
	 * the default would be sized for 536 M pins */
	snprintf(text, sizeof(text), bench_policy, 65536UL);
	p = pol_load_string(text, "bench-policy", err, sizeof(err));
	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "policy-bench: %s\n", err);
		return 1;
	}
	for (i = 0; i < NRQ * 4; i++) /* warm up: pins, caches */
		pol_decide(e, 0, &rqs[i % NRQ], (uint64_t)(sim_us += 0.5), &v);
	for (r = 0; r < runs; r++) {
		double t0;

		alloc_calls = 0;
		alloc_counting = 1;
		t0 = bench_now_s();
		for (i = 0; i < n; i++) {
			pol_decide(e, 0, &rqs[i & (NRQ - 1)], (uint64_t)(sim_us += 0.5), &v);
			verdicts[v.verdict]++;
		}
		t[r] = bench_now_s() - t0;
		alloc_counting = 0;
		allocs += alloc_calls;
		pol_quiesce(e, 0);
	}
	/* The counter itself must see a heap call, or "0" would prove nothing. */
	if (ALLOC_COUNT_WORKS && alloc_count_probe() != 2) {
		fprintf(stderr, "policy-bench: the allocation counter does not work\n");
		return 1;
	}
	bench_sort(t, runs);
	printf("policy-bench: 8 backends, 6 classes, full scoring, 1 thread, %ld decisions x %d runs\n", n, runs);
	printf("  best:   %.0f decisions/s (%.1f ns each)\n", n / t[0], t[0] / n * 1e9);
	printf("  median: %.0f decisions/s (%.1f ns each)\n", n / bench_median(t, runs), bench_median(t, runs) / n * 1e9);
	printf("  verdicts: allow %lu, queue %lu, reject %lu\n", verdicts[0], verdicts[1], verdicts[2]);
	if (ALLOC_COUNT_WORKS)
		printf("  heap calls in the timed loops: %lu\n", allocs);
	else
		printf("  heap calls: not counted under a sanitizer\n");
	pol_engine_free(e);
	return allocs ? 1 : 0;
}
