/* outcome-bench: the log outcome channel's work per line on the reader thread, alone:
 * logline_parse + pol_observe on lines shaped as HAProxy prints them (spoa/hapcfg.c's
 * log-format, keys in its order), each for a decision the engine really made, batched
 * as the reader does (pol_observe_batch and pol_quiesce every 64 lines). Prints lines/s, instructions per line
 * (the CPU's counter through perf_event_open when the machine offers it; else TSC cycles
 * per line, and it says which) and the heap calls made in the timed loops (must be 0).
 *   ./bench/outcome-bench [lines-per-round (default 65536)] [rounds (default 7)]
 * Absolute figures: compare two builds by running each in turn (bench/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "alloc-count.h"
#include "bench-runs.h"
#include "logline.h"
#include "policy.h"

/* Two accounts, budgets that never throttle: every request is decided and allowed. */
static const char ob_policy[] =
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n"
	"backends = (\n"
	" { name = \"stripe_us\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n"
	" { name = \"stripe_us2\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"b\"; }\n"
	");\n"
	"classes = ( { name = \"std\"; } );\n"
	"pinning = { idem_slots = 1048576; object_slots = 1048576; };\n"
	"throttle = { account = { rate = 1000000.0; burst = 1000000.0; }; endpoint = { rate = 1000000.0; burst = 1000000.0; }; };\n";

#define OB_BATCH 64   /* the reader's recvmmsg batch (spoa/outlog.c) */
#define OB_TICK  4096 /* lines between two engine ticks */

struct ob_line {
	uint16_t len;
	char text[LOGLINE_MAX];
};

/* The counter: instructions in user space when perf_event_open gives them, else -1. */
static int ob_counter_open(void)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_HARDWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_HW_INSTRUCTIONS;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t ob_count(int fd)
{
	uint64_t v = 0;

	if (fd >= 0)
		return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? v : 0;
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return (uint64_t)(bench_now_s() * 1e9);
#endif
}

/* Decides n requests at now_us and renders the line HAProxy would log for each: 7 in 8
 * succeed (200, a new object id), 1 in 8 is a decline (402 with Stripe's error fields);
 * half carry an idempotency key (HAProxy logs its hash in hex). */
static int ob_make_lines(struct pol_engine *e, struct ob_line *lines, unsigned n, uint64_t now_us, unsigned seq)
{
	struct pay_request rq = { 0 };
	struct pay_verdict v;
	char idem[65], obj[24];
	unsigned i;

	rq.method = (struct pay_str){ "POST", 4 };
	rq.path = (struct pay_str){ "/v1/payment_intents", 19 };
	rq.currency = (struct pay_str){ "usd", 3 };
	rq.card_country = (struct pay_str){ "US", 2 };
	rq.card_brand = (struct pay_str){ "visa", 4 };
	rq.card_funding = (struct pay_str){ "credit", 6 };
	rq.has_amount = true;
	for (i = 0; i < n; i++) {
		unsigned k = seq * n + i;
		bool declined = k % 8 == 7;
		int len;

		snprintf(idem, sizeof(idem), "%016x%016x%016x%016x", k * 2654435761u, k, ~k, k ^ 0x5bd1e995u);
		rq.amount = 500 + (int64_t)(k * 37 % 20000);
		rq.idem = k % 2 ? (struct pay_str){ idem, 64 } : (struct pay_str){ NULL, 0 };
		pol_decide(e, 0, &rq, now_us, &v);
		if (v.verdict != PAY_ALLOW || !v.decision_len)
			return -1;
		if (declined)
			strcpy(obj, "-");
		else
			snprintf(obj, sizeof(obj), "pi_3NpK%08x", k);
		len = snprintf(lines[i].text, sizeof(lines[i].text),
		               "{\"decision\":\"%.*s\",\"backend\":\"%s\",\"status\":\"%d\",\"latency_ms\":\"%u\","
		               "\"term\":\"--\",\"should_retry\":\"%s\",\"rl_reason\":\"-\",\"err_type\":\"%s\","
		               "\"err_code\":\"%s\",\"decline\":\"%s\",\"object\":\"%s\",\"idem\":\"%s\","
		               "\"account\":\"-\"}",
		               (int)v.decision_len, v.decision, v.backend, declined ? 402 : 200, 180 + k % 300,
		               declined ? "false" : "-", declined ? "card_error" : "-",
		               declined ? "card_declined" : "-", declined ? "insufficient_funds" : "-",
		               obj, k % 2 ? idem : "-");
		if (len <= 0 || len >= (int)sizeof(lines[i].text))
			return -1;
		lines[i].len = (uint16_t)len;
	}
	pol_quiesce(e, 0);
	return 0;
}

int main(int argc, char **argv)
{
	long nl = argc > 1 ? atol(argv[1]) : 65536;
	int runs = bench_runs_arg(argc, argv, 2, 7), r, fd = ob_counter_open();
	unsigned n = nl >= OB_BATCH && nl <= 1 << 20 ? (unsigned)nl : 65536;
	static char buf[OB_BATCH][LOGLINE_MAX];     /* the reader's batch of datagrams */
	static struct pay_outcome batch[OB_BATCH]; /* and of parsed lines */
	unsigned nbatch = 0;
	char err[512];
	struct policy *p = pol_load_string(ob_policy, "outcome-bench", err, sizeof(err));
	struct pol_engine *e;
	struct ob_line *lines = calloc(n, sizeof(*lines));
	double t[BENCH_MAX_RUNS], per[BENCH_MAX_RUNS];
	unsigned long allocs = 0, bad = 0;
	uint64_t now_us = 1000000000;

	if (!p || !lines || !(e = pol_engine_new(p, 2, err, sizeof(err)))) {
		fprintf(stderr, "outcome-bench: %s\n", p && lines ? err : err[0] ? err : "no memory");
		return 1;
	}
	for (r = -1; r < runs; r++) { /* round -1 warms up: pins, caches, page faults */
		double t0 = 0, dt;
		uint64_t c0 = 0, dc;
		unsigned i;

		if (ob_make_lines(e, lines, n, now_us, (unsigned)(r + 1)) < 0) {
			fprintf(stderr, "outcome-bench: a request was not allowed or a line did not fit\n");
			return 1;
		}
		now_us += 50000;
		pol_tick(e, now_us);
		/* timed in chunks: the control thread's tick (every 50 ms in the daemon, here
		 * every OB_TICK lines) runs between them, outside the figures */
		dt = 0;
		dc = 0;
		alloc_calls = 0;
		for (i = 0; i < n; i++) {
			if (i % OB_TICK == 0) {
				alloc_counting = 1;
				t0 = bench_now_s();
				c0 = ob_count(fd);
			}
			/* the reader's buffers: the parser decodes in place, and a batch is
			 * observed at once (pol_observe_batch), as spoa/outlog.c does */
			memcpy(buf[i % OB_BATCH], lines[i].text, lines[i].len);
			if (logline_parse(buf[i % OB_BATCH], lines[i].len, &batch[nbatch]) == 1)
				nbatch++;
			else
				bad++;
			if (i % OB_BATCH == OB_BATCH - 1 || i % OB_TICK == OB_TICK - 1 || i == n - 1) {
				pol_observe_batch(e, 1, batch, nbatch, now_us);
				nbatch = 0;
				pol_quiesce(e, 1);
			}
			if (i % OB_TICK == OB_TICK - 1 || i == n - 1) {
				dc += ob_count(fd) - c0;
				dt += bench_now_s() - t0;
				alloc_counting = 0;
				pol_tick(e, now_us += 50000);
			}
		}
		if (r >= 0) {
			per[r] = (double)dc / n;
			t[r] = dt;
		}
		alloc_counting = 0;
		if (r >= 0)
			allocs += alloc_calls;
	}
	if (ALLOC_COUNT_WORKS && alloc_count_probe() != 2) {
		fprintf(stderr, "outcome-bench: the allocation counter does not work\n");
		return 1;
	}
	bench_sort(t, runs);
	bench_sort(per, runs);
	printf("outcome-bench: logline_parse + pol_observe, %u lines x %d rounds (HAProxy's key order, "
	       "1 in 8 declined, half with a key)\n", n, runs);
	printf("  lines/s: median %.0f (range %.0f-%.0f)\n", n / bench_median(t, runs), n / t[runs - 1], n / t[0]);
	printf("  %s per line: median %.0f (range %.0f-%.0f)\n",
	       fd >= 0 ? "instructions" : "TSC cycles (no instruction counter here)",
	       bench_median(per, runs), per[0], per[runs - 1]);
	printf("  lines refused by the parser: %lu\n", bad);
	if (ALLOC_COUNT_WORKS)
		printf("  heap calls in the timed loops: %lu\n", allocs);
	else
		printf("  heap calls: not counted under a sanitizer\n");
	pol_engine_free(e);
	free(lines);
	if (fd >= 0)
		close(fd);
	return allocs || bad ? 1 : 0;
}
