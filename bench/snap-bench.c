/* snap-bench: snapshot figures for the report and the README: size and write time of a
 * snapshot of N idempotency pins (default 1 M) with the default policy (conf/payspoa.conf,
 * its idempotency table enlarged to hold them), the load time at start, and the longest
 * pause of the decision path while a snapshot is written: a thread decides in a loop and
 * records the longest gap between two decisions, first with no write (the machine's own
 * noise), then during writes. Prints figures, asserts nothing about time.
 *   ./bench/snap-bench [pins (default 1000000)] [dir (default /tmp)] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "policy.h"
#include "snap.h"
#include "pin-t.h"
#include "state.h"

static struct pol_engine *load_engine(const char *dir, unsigned slots)
{
	char path[512], cmd[2048], err[512];
	struct policy *p;
	struct pol_engine *e;

	snprintf(path, sizeof(path), "%s/snap-bench.conf", dir);
	/* the default policy with a table of `slots` pins and budgets no decision of the bench
	 * exceeds (a refused decision claims no pin) */
	snprintf(cmd, sizeof(cmd), "cp conf/regions.conf '%s'/ && sed -e 's/^pinning = {/pinning = {\\n\\tidem_slots = %u;/' "
	         "-e 's/rate = [0-9.]*; burst = [0-9.]*;/rate = 1000000.0; burst = 1000000.0;/' "
	         "conf/payspoa.conf > '%s' && grep -q 'idem_slots = %u;' '%s'", dir, slots, path, slots, path);
	if (system(cmd) != 0 || !(p = pol_load(path, err, sizeof(err))) || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "snap-bench: cannot build the engine (%s)\n", err);
		exit(1);
	}
	return e;
}

struct decider {
	struct pol_engine *e;
	_Atomic int phase;        /* 0 run, 1 stop */
	_Atomic uint64_t max_gap_ns, decisions;
	_Atomic int reset;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Decides in a loop (new keys: every decision writes a pin) and keeps the longest gap. */
static void *decide_loop(void *arg)
{
	struct decider *D = arg;
	struct pay_request rq = { 0 };
	struct pay_verdict v;
	char key[32];
	uint64_t last = now_ns(), n = 0, max = 0;

	rq.method = (struct pay_str){ "POST", 4 };
	rq.path = (struct pay_str){ "/v1/payment_intents", 19 };
	rq.currency = (struct pay_str){ "gbp", 3 };
	rq.card_country = (struct pay_str){ "GB", 2 };
	rq.amount = 1000;
	rq.has_amount = true;
	while (!atomic_load_explicit(&D->phase, memory_order_relaxed)) {
		uint64_t t;
		int len = snprintf(key, sizeof(key), "bench-%llu", (unsigned long long)n);

		rq.idem = (struct pay_str){ key, (uint32_t)len };
		pol_decide(D->e, 0, &rq, clock_mono_us(), &v);
		pol_quiesce(D->e, 0);
		t = now_ns();
		if (atomic_exchange_explicit(&D->reset, 0, memory_order_relaxed))
			max = 0;
		else if (t - last > max)
			atomic_store_explicit(&D->max_gap_ns, max = t - last, memory_order_relaxed);
		last = t;
		atomic_store_explicit(&D->decisions, ++n, memory_order_relaxed);
	}
	return NULL;
}

static double ms_since(uint64_t t0)
{
	return (double)(clock_mono_us() - t0) / 1000;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 1000000, slots = 1, i, k;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	char path[512], err[512];
	struct pol_engine *a, *b;
	struct pol_state_import im;
	struct pol_state *st;
	struct snap_result r;
	struct decider D = { 0 };
	pthread_t th;
	uint64_t t0, now, quiet = 0, busy = 0;
	double cap_ms, write_ms, total_ms = 0;

	/* the pins are seeded young, into the current generation, which holds a quarter of
	 * the table's promise (PIN_PERIODS): room for n there */
	while (slots < 2 * PIN_PERIODS * n)
		slots <<= 1;
	snprintf(path, sizeof(path), "%s/snap-bench.state", dir);
	a = load_engine(dir, slots);
	now = clock_mono_us();
	pol_state_import_begin(&im, a, now, now, 0, true);
	for (i = 0; i < n; i++) {
		struct pol_pin_rec rec = { POL_PIN_IDEM, i % 2 ? "stripe_eu" : "stripe_us",
		                           i % 2 ? "acct_eu_payspoa" : "acct_us_payspoa",
		                           0x9e3779b97f4a7c15ULL * (i + 1), i % 3600 };

		pol_state_restore_pin(&im, &rec);
	}
	pol_state_import_end(&im);
	printf("snap-bench: %llu pins in an idempotency table promising %u (default policy otherwise)\n",
	       (unsigned long long)im.pins, slots);

	t0 = clock_mono_us();
	st = pol_state_capture(a, clock_mono_us());
	cap_ms = ms_since(t0);
	t0 = clock_mono_us();
	if (!st || snap_write(st, clock_wall_us(), path, &r, err, sizeof(err))) {
		fprintf(stderr, "snap-bench: %s\n", err);
		return 1;
	}
	write_ms = ms_since(t0);
	pol_state_free(st);
	printf("  capture (control thread)     %8.2f ms\n", cap_ms);
	printf("  encode + write + fsync       %8.1f ms  (snapshot thread)\n", write_ms);
	printf("  file                         %8.1f MB  (%llu pins, %llu records, %llu posteriors; %.1f bytes/pin)\n",
	       (double)r.bytes / 1e6, (unsigned long long)r.pins, (unsigned long long)r.recs,
	       (unsigned long long)r.srt, (double)r.bytes / (double)(r.pins ? r.pins : 1));

	b = load_engine(dir, slots);
	t0 = clock_mono_us();
	if (snap_load(b, path, clock_mono_us(), clock_wall_us(), &r, err, sizeof(err))) {
		fprintf(stderr, "snap-bench: load: %s\n", err);
		return 1;
	}
	printf("  load at start (read+check+import) %6.1f ms  (%llu pins)\n", ms_since(t0), (unsigned long long)r.im.pins);
	pol_engine_free(b);

	/* the decision path's longest gap: quiet windows, then windows with a write */
	D.e = a;
	pthread_create(&th, NULL, decide_loop, &D);
	for (k = 0; k < 3; k++) {
		uint64_t g;

		atomic_store(&D.reset, 1);
		t0 = clock_mono_us();
		while (clock_mono_us() - t0 < (uint64_t)(write_ms * 1000) + 50000)
			;
		g = atomic_load(&D.max_gap_ns);
		quiet = g > quiet ? g : quiet;
		atomic_store(&D.reset, 1);
		t0 = clock_mono_us();
		st = pol_state_capture(a, clock_mono_us());
		if (!st || snap_write(st, clock_wall_us(), path, &r, err, sizeof(err))) {
			fprintf(stderr, "snap-bench: %s\n", err);
			return 1;
		}
		pol_state_free(st);
		total_ms += ms_since(t0);
		g = atomic_load(&D.max_gap_ns);
		busy = g > busy ? g : busy;
	}
	atomic_store(&D.phase, 1);
	pthread_join(th, NULL);
	printf("  decision path, longest gap between two decisions (3 windows each):\n");
	printf("    no write                   %8.1f us\n", (double)quiet / 1000);
	printf("    during a write             %8.1f us  (writes of %.1f ms on average, %llu decisions made in all)\n",
	       (double)busy / 1000, total_ms / 3, (unsigned long long)atomic_load(&D.decisions));
	pol_engine_free(a);
	remove(path);
	return 0;
}
