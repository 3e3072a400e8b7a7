/* test-engine-swap.c: reloads. State carries over for the names that survive (budgets,
 * pins, admin disable); a swap under concurrent decide neither crashes nor races (run
 * under ThreadSanitizer by `make tsan`), and retired views are freed once every worker
 * has passed a quiescent point. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine-t.h"
#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

static char err[512];

static struct pay_request gbp_charge(const char *idem)
{
	struct pay_request rq = { 0 };

	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	rq.currency = S("gbp");
	rq.card_country = S("GB");
	rq.amount = 1000;
	rq.has_amount = true;
	if (idem)
		rq.idem = (struct pay_str){ idem, (uint32_t)strlen(idem) };
	return rq;
}

TEST(carry_over_pins_budgets_disable)
{
	struct pol_engine *e = pol_engine_new(pol_test_load("conf/payspoa.conf"), 1, err, sizeof(err));
	struct pay_request rq = gbp_charge("aaaa");
	struct pay_verdict v;
	struct pay_outcome o = { 0 };
	struct pol_budget_info bi;
	struct pol_backend_info info;
	struct pol_stats st;
	double load_before;

	ASSERT(e != NULL);
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	o.backend = S("stripe_eu");
	o.status = 200;
	o.object = S("pi_carry");
	pol_observe(e, 0, &o, 10 * SEC);
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_us", false), 0);
	ASSERT_EQ(pol_engine_budget_info(e, 1, 10 * SEC, &bi), 0); /* stripe_eu's account */
	ASSERT_STREQ(bi.account, "acct_eu_payspoa");
	load_before = bi.load;
	ASSERT(load_before > 0);

	/* Reload the same file: everything survives. */
	ASSERT_EQ(pol_engine_swap(e, pol_test_load("conf/payspoa.conf"), err, sizeof(err)), 0);
	pol_quiesce(e, 0);
	pol_tick(e, 10 * SEC);
	ASSERT(e->retired == NULL);
	ASSERT_EQ(pol_engine_budget_info(e, 1, 10 * SEC, &bi), 0);
	ASSERT_NEAR(bi.load, load_before, 1e-12);
	ASSERT_EQ(pol_engine_backend_info(e, 0, 10 * SEC, &info), 0);
	ASSERT_STREQ(info.name, "stripe_us");
	ASSERT(info.admin_disabled);
	ASSERT_EQ(pol_engine_set_enabled(e, "stripe_us", true), 0);

	pol_decide(e, 0, &rq, 11 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	ASSERT(strstr(v.reason, "pin:idem") != NULL);
	rq = gbp_charge(NULL);
	rq.path = S("/v1/payment_intents/pi_carry/capture");
	pol_decide(e, 0, &rq, 11 * SEC, &v);
	ASSERT(strstr(v.reason, "pin:object") != NULL);
	pol_engine_stats(e, 11 * SEC, &st);
	ASSERT_EQ(st.reloads, 1);
	ASSERT_EQ(st.pin_live[0], 1);
	ASSERT_EQ(st.pin_live[1], 1);
	pol_engine_free(e);
}

TEST(pin_follows_account_when_backend_renamed)
{
	static const char renamed[] =
		"regions = { us = [ \"US\" ]; eea = [ \"DE\" ]; uk = [ \"GB\" ]; };\n"
		"fee_schedules = ( { name = \"f\"; percent = 1.5; } );\n"
		"backends = ( { name = \"eu_renamed\"; account = \"acct_eu_payspoa\"; entity = \"bv\"; region = \"eea\";\n"
		"  currencies = [ \"gbp\", \"usd\" ]; fee_schedule = \"f\"; },\n"
		" { name = \"us_new\"; account = \"acct_other\"; entity = \"inc\"; region = \"us\";\n"
		"  currencies = [ \"gbp\", \"usd\" ]; fee_schedule = \"f\"; auth_rate = 0.99; } );\n"
		"default_backend = \"us_new\";\n"
		"classes = ( { name = \"std\"; } );\n";
	struct pol_engine *e = pol_engine_new(pol_test_load("conf/payspoa.conf"), 1, err, sizeof(err));
	struct pay_request rq = gbp_charge("bbbb");
	struct pay_verdict v;
	char path[] = "/tmp/pol-swap-XXXXXX";
	FILE *f;
	int fd;

	ASSERT(e != NULL);
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "stripe_eu");
	fd = mkstemp(path);
	ASSERT(fd >= 0 && (f = fdopen(fd, "w")) != NULL);
	fputs(renamed, f);
	fclose(f);
	ASSERT_EQ(pol_engine_swap(e, pol_test_load(path), err, sizeof(err)), 0);
	remove(path);
	pol_decide(e, 0, &rq, 11 * SEC, &v);
	ASSERT_STREQ(v.backend, "eu_renamed"); /* same account, though us_new scores higher */
	ASSERT(strstr(v.reason, "pin:idem") != NULL);
	rq = gbp_charge("cccc");
	pol_decide(e, 0, &rq, 11 * SEC, &v);
	ASSERT_STREQ(v.backend, "us_new");
	pol_engine_free(e);
}

TEST(retired_view_waits_for_quiescence)
{
	struct pol_engine *e = pol_engine_new(pol_test_load("conf/payspoa.conf"), 2, err, sizeof(err));
	struct pay_request rq = gbp_charge(NULL);
	struct pay_verdict v;

	ASSERT(e != NULL);
	pol_decide(e, 0, &rq, SEC, &v); /* worker 0 online, holding the view */
	pol_decide(e, 1, &rq, SEC, &v);
	ASSERT_EQ(pol_engine_swap(e, pol_test_load("conf/payspoa.conf"), err, sizeof(err)), 0);
	pol_tick(e, SEC);
	ASSERT(e->retired != NULL);     /* nobody has passed a quiescent point */
	pol_quiesce(e, 0);
	pol_tick(e, SEC);
	ASSERT(e->retired != NULL);     /* worker 1 still may hold it */
	pol_worker_idle(e, 1);
	pol_tick(e, SEC);
	ASSERT(e->retired == NULL);
	pol_engine_free(e);
}

/* ---- concurrency: workers decide and observe while the control thread reloads ---- */

struct worker_arg {
	struct pol_engine *e;
	unsigned id;
	atomic_int *stop;
	unsigned long n, bad;
	atomic_int ran;           /* set after the first decision: the main thread waits for it */
};

static void *worker_main(void *a_)
{
	struct worker_arg *a = a_;
	char idem[65];
	uint64_t now = 100 * SEC;

	while (!atomic_load(a->stop)) {
		struct pay_request rq;
		struct pay_outcome o;
		struct pay_verdict v;

		snprintf(idem, sizeof(idem), "%064lx", a->n % 257);
		rq = gbp_charge(idem);
		pol_decide(a->e, a->id, &rq, now, &v);
		/* A pin whose account the other policy lacks is refused, not moved (pin:gone:
		 * a reject that carries no decision id, since no answer will follow). */
		if (!has_token(&v, "pin:gone") && (!v.backend || !v.class_name || !v.decision_len))
			a->bad++;
		o = pol_test_answer(&v, 200, 0);
		o.object = S("pi_concurrent");
		pol_observe(a->e, a->id, &o, now);
		atomic_store(&a->ran, 1);
		if (a->n % 64 == 0) {
			pol_quiesce(a->e, a->id);
		}
		if (a->n % 1024 == 0)
			pol_worker_idle(a->e, a->id);
		a->n++;
		now += 100;
	}
	pol_worker_idle(a->e, a->id);
	return NULL;
}

TEST(swap_under_concurrent_decide)
{
	struct pol_engine *e = pol_engine_new(pol_test_load("conf/payspoa.conf"), 2, err, sizeof(err));
	struct worker_arg args[2];
	pthread_t th[2];
	atomic_int stop = 0;
	int i, swaps = 0;
	struct pol_stats st;

	ASSERT(e != NULL);
	for (i = 0; i < 2; i++) {
		args[i] = (struct worker_arg){ e, (unsigned)i, &stop, 0, 0, 0 };
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &args[i]), 0);
	}
	for (i = 0; i < 60; i++) {
		const char *f = (i & 1) ? "conf/examples/low-budget.conf" : "conf/payspoa.conf";

		ASSERT_EQ(pol_engine_swap(e, pol_test_load(f), err, sizeof(err)), 0);
		swaps++;
		pol_engine_set_enabled(e, "stripe_us", i % 3 != 0);
		pol_engine_stats(e, 100 * SEC, &st);
		pol_tick(e, 100 * SEC);
		usleep(2000);
	}
	/* Both workers must have decided at least once: wait for it (a loaded machine may
	 * not have run a thread yet), rather than hope the loop above lasted long enough. */
	for (int w = 0; w < 1000 && !(atomic_load(&args[0].ran) && atomic_load(&args[1].ran)); w++)
		usleep(10000);
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pol_tick(e, 100 * SEC);
	ASSERT(e->retired == NULL);
	ASSERT_EQ(args[0].bad + args[1].bad, 0);
	ASSERT(args[0].n > 0 && args[1].n > 0);
	pol_engine_stats(e, 100 * SEC, &st);
	ASSERT_EQ(st.reloads, (uint64_t)swaps);
	pol_engine_free(e);
}

int main(void)
{
	RUN(carry_over_pins_budgets_disable);
	RUN(pin_follows_account_when_backend_renamed);
	RUN(retired_view_waits_for_quiescence);
	RUN_THREADED(swap_under_concurrent_decide);
	return test_summary();
}
