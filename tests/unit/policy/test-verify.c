/* test-verify.c: the invariant checks (policy/bug.h). Each structure with invariants
 * goes through a table-driven sequence, then its *_verify() must pass; the same
 * structure with one field corrupted as memory corruption would leave it must fail,
 * with a message naming what is wrong. BUG_ON aborts exactly in POL_CHECKS builds. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aimd.h"
#include "anomaly.h"
#include "breaker.h"
#include "bug.h"
#include "engine-t.h"
#include "forecast.h"
#include "pin.h"
#include "pol-test.h"
#include "policy.h"
#include "srate.h"
#include "test.h"
#include "thr.h"

#define SEC 1000000ULL

static char err[512];

#define ASSERT_VALID(call) do { if ((call) < 0) TEST_FAIL_("%s: %s", #call, err); } while (0)
#define ASSERT_BROKEN(call, word) do { err[0] = 0; ASSERT_EQ((call), -1); \
	if (!strstr(err, (word))) TEST_FAIL_("%s: \"%s\" does not say \"%s\"", #call, err, (word)); } while (0)

/* The pin tables' own checks: test-pin.c (pin_verify_catches). */

static struct srt_entry srt_mem[2048 + 8];

/* Posteriors: (time, backend, successes, failures) into a table small enough to evict. */
TEST(srt_verify_after_adds_and_evictions)
{
	struct srt_cfg c = { .half_life_s = 60, .prior_a = 1, .prior_b = 1, .min_n = 5, .max_segments = 40 };
	struct srt_table t;
	unsigned i;

	ASSERT_EQ(srt_init(&t, &c, srt_mem, sizeof(srt_mem)), 0);
	for (i = 0; i < 200; i++) {
		struct srt_seg s = { i % 23, srt_code("usd", 3), i % 7, i % 3, 1 };

		srt_add(&t, &s, i % 5, 1, i * SEC);
	}
	ASSERT_GE(t.evictions, 1);
	ASSERT_VALID(srt_verify(&t, err, sizeof(err)));
	/* a count gone negative */
	for (i = 0; !t.e[i].key; i++)
		;
	t.e[i].s = -1;
	ASSERT_BROKEN(srt_verify(&t, err, sizeof(err)), "counts");
	t.e[i].s = 1;
	ASSERT_VALID(srt_verify(&t, err, sizeof(err)));
	/* a hole in a probe chain: a key whose home slot was wiped */
	for (i = 0; i < t.cap; i++)
		if (t.e[i].key && ((uint32_t)t.e[i].key & (t.cap - 1)) != i)
			break;
	ASSERT(i < t.cap);
	t.e[(uint32_t)t.e[i].key & (t.cap - 1)].key = 0;
	ASSERT_BROKEN(srt_verify(&t, err, sizeof(err)), "unreachable");
}

/* Breaker: (time, event) through closed, open, half-open and closed again. */
TEST(brk_verify_through_a_trip)
{
	static const struct { uint64_t t_ms; enum brk_event ev; } rows[] = {
		{ 0, BRK_EV_SUCCESS }, { 100, BRK_EV_SLOW }, { 200, BRK_EV_FAILURE }, { 300, BRK_EV_FAILURE },
		{ 400, BRK_EV_FAILURE }, { 500, BRK_EV_FAILURE }, { 600, BRK_EV_FAILURE }, /* 5 in a row: open */
		{ 40000, BRK_EV_SUCCESS }, { 40100, BRK_EV_SUCCESS }, { 40200, BRK_EV_SUCCESS },
		{ 45000, BRK_EV_SUCCESS }, { 52000, BRK_EV_SLOW },
	};
	struct brk_cfg c;
	struct brk b;
	size_t i;

	brk_cfg_default(&c);
	brk_init(&b, &c, 7, 0);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		brk_allow(&b, &c, rows[i].t_ms * 1000);
		brk_record(&b, &c, rows[i].ev, true, rows[i].t_ms * 1000);
		ASSERT_VALID(brk_verify(&b, err, sizeof(err)));
	}
	ASSERT_GE(b.trips, 1);
	ASSERT_GE(b.calls, 1);
	/* one bucket's count lost (a torn write): the window's sums no longer add up */
	b.bucket[b.epoch % c.buckets].calls++;
	ASSERT_BROKEN(brk_verify(&b, err, sizeof(err)), "sums");
	b.bucket[b.epoch % c.buckets].calls--;
	b.state = 9;
	ASSERT_BROKEN(brk_verify(&b, err, sizeof(err)), "state");
}

/* Forecaster: a few minutes of counts, then a NaN in its season. */
TEST(fc_verify_after_observations)
{
	struct fc_cfg c;
	struct fc f;
	unsigned s;

	fc_cfg_default(&c);
	c.season = 4;
	fc_init(&f, &c, 0);
	for (s = 0; s < 600; s++)
		fc_observe(&f, &c, 10 + s % 7, s * SEC);
	ASSERT_VALID(fc_verify(&f, err, sizeof(err)));
	f.season[2] = 0.0 / 0.0;
	ASSERT_BROKEN(fc_verify(&f, err, sizeof(err)), "season");
	f.season[2] = 1;
	f.magic = 0;
	ASSERT_BROKEN(fc_verify(&f, err, sizeof(err)), "magic");
}

/* Adaptive budget: (time, outcome) cuts and recoveries. */
TEST(aimd_verify_after_cuts)
{
	static const struct { uint64_t t_s; enum oc_kind k; } rows[] = {
		{ 1, OC_RATE_LIMITED }, { 1, OC_RATE_LIMITED }, { 2, OC_LOCK_CONFLICT }, { 5, OC_RATE_LIMITED },
		{ 60, OC_SUCCESS }, { 400, OC_RATE_LIMITED },
	};
	struct aimd_cfg c;
	struct aimd a;
	size_t i;

	aimd_cfg_default(&c, 100);
	aimd_init(&a, &c, 0);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		aimd_on_outcome(&a, &c, rows[i].k, rows[i].t_s * SEC);
		ASSERT_VALID(aimd_verify(&a, &c, err, sizeof(err)));
	}
	ASSERT_GE(a.cuts, 2);
	a.limit = -a.limit;
	ASSERT_BROKEN(aimd_verify(&a, &c, err, sizeof(err)), "limit");
}

/* Anomaly detector: warm-up, an error spike (degraded), recovery. */
TEST(anom_verify_through_an_alarm)
{
	struct anom_cfg c;
	struct anom a;
	unsigned i;

	anom_cfg_default(&c);
	anom_init(&a, 0);
	for (i = 0; i < 80; i++) {
		uint64_t errors = i >= 40 && i < 50 ? 60 : 1 + i % 3;

		anom_tick(&a, &c, 100, errors, 100.0 * 200, i * SEC);
		ASSERT_VALID(anom_verify(&a, err, sizeof(err)));
		if (i == 49)
			ASSERT_EQ(a.state, ANOM_DEGRADED);
	}
	a.alarms = 0;
	a.state = ANOM_DEGRADED; /* degraded with no chart in alarm */
	ASSERT_BROKEN(anom_verify(&a, err, sizeof(err)), "alarms");
}

static struct pol_engine *engine(const char *file, unsigned workers)
{
	struct policy *p = pol_load(file, err, sizeof(err));
	struct pol_engine *e;

	if (!p)
		TEST_FAIL_("%s", err);
	e = pol_engine_new(p, workers, err, sizeof(err));
	if (!e)
		TEST_FAIL_("%s", err);
	return e;
}

/* The whole engine: decisions, outcomes and ticks, then every structure is checked;
 * then corruptions of a ring, a budget cell and a breaker are each caught. */
TEST(engine_verify_after_traffic)
{
	struct pol_engine *e = engine("conf/payspoa.conf", 2);
	struct pay_request rq = pol_test_usd_charge();
	struct pol_view *v;
	struct pay_verdict verdict;
	uint64_t t = 10 * SEC, tat;
	unsigned i;

	for (i = 0; i < 3000; i++, t += 2000) {
		static char idem[16];

		snprintf(idem, sizeof(idem), "k%u", i % 500);
		rq.idem = (struct pay_str){ idem, (uint32_t)strlen(idem) };
		pol_decide(e, i & 1, &rq, t, &verdict);
		if (i % 3) {
			struct pay_outcome o = pol_test_answer(&verdict, i % 10 ? 200 : 503, 120);

			pol_observe(e, i & 1, &o, t + 1000);
		}
		if (i % 100 == 0)
			pol_tick(e, t + 1500);
	}
	pol_tick(e, t);
	ASSERT_VALID(pol_engine_verify(e, t, true, err, sizeof(err)));
	ASSERT_VALID(pol_engine_verify(e, POL_NOW_UNKNOWN, true, err, sizeof(err)));
	v = atomic_load(&e->view);

	/* a ring's head run past its tail by more than the ring holds */
	atomic_store(&e->rings[1].head, atomic_load(&e->rings[1].tail) + POL_RING_SIZE + 1);
	ASSERT_BROKEN(pol_engine_verify(e, t, false, err, sizeof(err)), "ring");
	atomic_store(&e->rings[1].head, atomic_load(&e->rings[1].tail));

	/* a budget booked an hour ahead */
	tat = atomic_load(&v->thr.cells[0].tat);
	atomic_store(&v->thr.cells[0].tat, t * 1000 + 3600 * SEC * 1000);
	ASSERT_BROKEN(pol_engine_verify(e, t, false, err, sizeof(err)), "budgets");
	ASSERT_VALID(pol_engine_verify(e, POL_NOW_UNKNOWN, false, err, sizeof(err))); /* no bound then */
	atomic_store(&v->thr.cells[0].tat, tat);

	/* a pin naming a backend id the engine never gave */
	{
		struct pin_list *l = atomic_load(&e->pins.t[POL_PIN_IDEM].list);
		size_t n = (size_t)l->g[0]->nlines * PIN_LINE;
		uint64_t was;

		for (i = 0; i < n; i++)
			if (atomic_load(&l->g[0]->slot[i]) && atomic_load(&l->g[0]->slot[i]) != PIN_SEALED)
				break;
		ASSERT(i < n);
		was = atomic_load(&l->g[0]->slot[i]);
		atomic_store(&l->g[0]->slot[i], was | 0x7e);
		ASSERT_BROKEN(pol_engine_verify(e, t, true, err, sizeof(err)), "backend id");
		ASSERT_VALID(pol_engine_verify(e, t, false, err, sizeof(err))); /* pins not asked for */
		atomic_store(&l->g[0]->slot[i], was);
		ASSERT_VALID(pol_engine_verify(e, t, true, err, sizeof(err)));
	}
	pol_engine_free(e);
}

/* A reload carries state into a new view; everything still holds after it. */
TEST(engine_verify_after_reload)
{
	struct pol_engine *e = engine("conf/payspoa.conf", 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict verdict;
	struct policy *p;
	unsigned i;

	for (i = 0; i < 200; i++)
		pol_decide(e, 0, &rq, SEC + i * 1000, &verdict);
	pol_tick(e, 2 * SEC);
	p = pol_load("conf/payspoa.conf", err, sizeof(err));
	ASSERT(p);
	ASSERT_EQ(pol_engine_swap(e, p, err, sizeof(err)), 0);
	pol_tick(e, 3 * SEC);
	ASSERT_VALID(pol_engine_verify(e, 3 * SEC, true, err, sizeof(err)));
	pol_engine_free(e);
}

/* BUG_ON aborts with file:line in POL_CHECKS builds, and costs nothing elsewhere: its
 * condition is not even evaluated. */
TEST(bug_on_aborts_only_with_checks)
{
	int st = 0, evaluated = 0;
	pid_t pid = fork();

	if (pid == 0) {
		fclose(stderr); /* the BUG line is expected: keep the test output clean */
		BUG_ON(++evaluated > 0);
		_exit(evaluated); /* 0: not evaluated */
	}
	ASSERT(pid > 0 && waitpid(pid, &st, 0) == pid);
	if (POL_CHECKS_ON)
		ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	else
		ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	RUN(srt_verify_after_adds_and_evictions);
	RUN(brk_verify_through_a_trip);
	RUN(fc_verify_after_observations);
	RUN(aimd_verify_after_cuts);
	RUN(anom_verify_through_an_alarm);
	RUN(engine_verify_after_traffic);
	RUN(engine_verify_after_reload);
	RUN(bug_on_aborts_only_with_checks);
	return test_summary();
}
