/* policy-bench: decisions per second of pol_decide alone, on one thread, with 8
 * backends, 6 classes, compliance rules, endpoint budgets and full scoring; and the
 * number of heap calls made during the timed loops (must be 0).
 *   ./bench/policy-bench [decisions-per-run (default 2000000)] [runs (default 5)]
 * Prints the best run (the machine is shared: the minimum time is the honest figure)
 * and the median. */
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
	/* budgets that never throttle; at those (7 M req/s) the default idempotency table
	 * would be sized for 536 M pins: keep the table of the historical figures */
	"pinning = { idem_slots = 65536; };\n"
	"throttle = { account = { rate = 1000000.0; burst = 1000000.0; }; endpoint = { rate = 1000000.0; burst = 1000000.0; };\n"
	" endpoints = ( { name = \"pi\"; path = \"/v1/payment_intents**\"; }, { name = \"refunds\"; path = \"/v1/refunds**\"; } ); };\n";

#define NRQ 4096

static struct pay_request rqs[NRQ];
static char idem[NRQ][65];

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
	struct policy *p = pol_load_string(bench_policy, "bench-policy", err, sizeof(err));
	struct pol_engine *e;
	struct pay_verdict v;
	double t[BENCH_MAX_RUNS], sim_us = 1e9;
	unsigned long allocs = 0, verdicts[3] = { 0 };
	long i;

	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "policy-bench: %s\n", err);
		return 1;
	}
	if (n < 1)
		n = 2000000;
	make_requests();
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
