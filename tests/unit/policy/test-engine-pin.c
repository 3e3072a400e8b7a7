/* test-engine-pin.c: the engine's pins (policy/engine.c over policy/pin.c): one winner
 * when many workers decide the same key at the same instant (run under ThreadSanitizer by
 * `make tsan`), the backend id registry across reloads (renamed or vanished backends:
 * same-account remap, pin:gone refusal, ids used up), the late-decision correction from
 * pay-response's `idem`, and the sizing and guarantee text of `payspoa -c`. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "engine-t.h"
#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

static char err[512];

#define ASSERT_VALID_ENGINE(e) do { if (pol_engine_verify((e), POL_NOW_UNKNOWN, true, err, sizeof(err)) < 0) \
	TEST_FAIL_("%s", err); } while (0)

/* acct_a takes one request per 2 s: of simultaneous decisions, one gets pa, the others
 * spill to pb, unless they follow the first claim of their key. */
#define RACE_POLICY POL_TEST_TWO_USD_ACCOUNTS \
	"default_backend = \"pa\";\n" \
	"classes = ( { name = \"std\"; } );\n" \
	"throttle = { accounts = ( { account = \"acct_a\"; rate = 0.5; burst = 1.0; } ); };\n"

#define RACE_THREADS 6
#define RACE_ROUNDS  300

struct race {
	struct pol_engine *e;
	pthread_barrier_t go, done;
	const char *got[RACE_THREADS];
	char key[RACE_ROUNDS][20];
};

struct race_arg {
	struct race *r;
	unsigned worker;
};

static void *race_main(void *arg)
{
	struct race_arg *a = arg;
	struct race *r = a->r;
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	int round;

	for (round = 0; round < RACE_ROUNDS; round++) {
		rq.idem = (struct pay_str){ r->key[round], (uint32_t)strlen(r->key[round]) };
		pthread_barrier_wait(&r->go);
		pol_decide(r->e, a->worker, &rq, (uint64_t)(round + 1) * 2 * SEC, &v);
		r->got[a->worker] = v.backend;
		pol_quiesce(r->e, a->worker);
		pthread_barrier_wait(&r->done);
		pthread_barrier_wait(&r->go); /* the main thread has checked the round */
	}
	return NULL;
}

TEST(race_same_key_one_account)
{
	static struct race r;
	struct race_arg args[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	struct pol_stats st;
	unsigned i, split = 0;
	int round;

	r.e = pol_test_engine(RACE_POLICY, RACE_THREADS);
	for (round = 0; round < RACE_ROUNDS; round++)
		snprintf(r.key[round], sizeof(r.key[round]), "race-%d", round);
	pthread_barrier_init(&r.go, NULL, RACE_THREADS + 1);
	pthread_barrier_init(&r.done, NULL, RACE_THREADS + 1);
	for (i = 0; i < RACE_THREADS; i++) {
		args[i] = (struct race_arg){ &r, i };
		ASSERT_EQ(pthread_create(&th[i], NULL, race_main, &args[i]), 0);
	}
	for (round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(&r.go);
		pthread_barrier_wait(&r.done);
		for (i = 1; i < RACE_THREADS; i++)
			if (strcmp(r.got[i], r.got[0]))
				split++;
		pthread_barrier_wait(&r.go);
	}
	for (i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(split, 0);
	pol_engine_stats(r.e, (RACE_ROUNDS + 1) * 2 * SEC, &st);
	/* How often a decision found no pin yet lost the claim (it had chosen before the
	 * winner wrote): printed, not asserted, since two cores may serialise every round. */
	printf("  %llu of %d decisions followed a simultaneous claim\n", (unsigned long long)st.pin_followed,
	       RACE_ROUNDS * RACE_THREADS);
	ASSERT_EQ(st.pin_claims[0], (uint64_t)RACE_ROUNDS * RACE_THREADS - st.pinned); /* the rest found the pin */
	pthread_barrier_destroy(&r.go);
	pthread_barrier_destroy(&r.done);
	pol_engine_free(r.e);
}

/* A follow within one thread: the pin appears between lookup and claim. */
TEST(claim_follows_the_winner)
{
	struct pol_engine *e = pol_test_engine(RACE_POLICY, 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;

	rq.idem = S("k1");
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	ASSERT(!has_token(&v, "pin:idem"));
	pol_decide(e, 0, &rq, 10 * SEC, &v); /* acct_a's budget is spent: the pin holds */
	ASSERT_STREQ(v.backend, "pa");
	ASSERT(has_token(&v, "pin:idem"));
	rq.idem = S("k2");
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");         /* spilled, and pinned there */
	pol_decide(e, 0, &rq, 20 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "pin:idem"));
	pol_engine_free(e);
}

static struct pol_engine *swap_text(struct pol_engine *e, const char *text, int want)
{
	struct policy *p = pol_load_string(text, "swap", err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	if (pol_engine_swap(e, p, err, sizeof(err)) != want)
		TEST_FAIL_("swap returned %d: %s", -want - 1, err);
	return e;
}

#define ONE(name, acct) \
	"fee_schedules = ( { name = \"a\"; percent = 2.9; } );\n" \
	"backends = ( { name = \"" name "\"; account = \"" acct "\"; entity = \"x\"; region = \"other\";" \
	" currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\n" \
	"classes = ( { name = \"std\"; } );\n"

/* A backend renamed keeps its pins on its account; one whose account left refuses them. */
TEST(reload_remaps_or_refuses)
{
	struct pol_engine *e = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	struct pol_stats st;

	rq.idem = S("on-a");
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	/* pa renamed pa2, same account: followed */
	swap_text(e, POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 0);
	swap_text(e, ONE("pa2", "acct_a"), 0);
	pol_decide(e, 0, &rq, 11 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa2");
	ASSERT(has_token(&v, "pin:idem"));
	/* acct_a gone: refused, never moved to acct_c */
	swap_text(e, ONE("pc", "acct_c"), 0);
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	ASSERT(has_token(&v, "pin:gone"));
	rq.idem = S("new-key");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_EQ(v.verdict, PAY_ALLOW);
	ASSERT_STREQ(v.backend, "pc");
	/* the name pa now on acct_c: another backend, still refused */
	swap_text(e, ONE("pa", "acct_c"), 0);
	rq.idem = S("on-a");
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	ASSERT(has_token(&v, "pin:gone"));
	/* acct_a back under its old name: the pin is served again */
	swap_text(e, POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 0);
	rq.idem = S("on-a");
	pol_decide(e, 0, &rq, 13 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	ASSERT(has_token(&v, "pin:idem"));
	pol_engine_stats(e, 13 * SEC, &st);
	ASSERT_EQ(st.pin_gone, 2);
	ASSERT_VALID_ENGINE(e);
	pol_engine_free(e);
}

/* Backend names are interned for the life of the process: the 128th is refused, with the
 * old policy kept. */
TEST(reload_refused_when_ids_run_out)
{
	struct pol_engine *e = pol_test_engine(ONE("b0", "acct_0"), 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	char text[1024], name[24], acct[24];
	int i;

	for (i = 1; i < PIN_MAX_IDS; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		snprintf(acct, sizeof(acct), "acct_%d", i);
		snprintf(text, sizeof(text),
		         "fee_schedules = ( { name = \"a\"; percent = 2.9; } );\n"
		         "backends = ( { name = \"%s\"; account = \"%s\"; entity = \"x\"; region = \"other\";"
		         " currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\nclasses = ( { name = \"std\"; } );\n",
		         name, acct);
		swap_text(e, text, 0);
	}
	swap_text(e, ONE("one_too_many", "acct_x"), -1);
	ASSERT(strstr(err, "restart payspoa") != NULL);
	swap_text(e, ONE("b3", "acct_3"), 0); /* names seen before still load */
	pol_decide(e, 0, &rq, SEC, &v);
	ASSERT_STREQ(v.backend, "b3");
	pol_engine_free(e);
}

/* pay-response names the backend HAProxy really used: the key's pin follows it, whether
 * payspoa decided otherwise (late) or not at all (down). */
TEST(late_decision_corrects_the_pin)
{
	struct pol_engine *e = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 1);
	struct pay_request rq = pol_test_usd_charge();
	struct pay_outcome o = { 0 };
	struct pay_verdict v;
	struct pol_stats st;

	rq.idem = S("late");
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	o.backend = S("pb"); /* HAProxy did not wait: default route */
	o.idem = S("late");
	o.status = 200;
	pol_observe(e, 0, &o, 11 * SEC);
	pol_decide(e, 0, &rq, 12 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "pin:idem"));
	/* a key payspoa never saw */
	o.idem = S("unseen");
	pol_observe(e, 0, &o, 13 * SEC);
	rq.idem = S("unseen");
	pol_decide(e, 0, &rq, 14 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "pin:idem"));
	/* the same account: nothing to correct; no idem: nothing either */
	o.backend = S("pb");
	pol_observe(e, 0, &o, 15 * SEC);
	o.idem = (struct pay_str){ 0 };
	o.backend = S("pa");
	pol_observe(e, 0, &o, 15 * SEC);
	pol_decide(e, 0, &rq, 16 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	/* the key's identity includes Stripe-Account */
	o.idem = S("unseen");
	o.account = S("acct_conn");
	pol_observe(e, 0, &o, 17 * SEC);
	pol_decide(e, 0, &rq, 18 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	pol_engine_stats(e, 18 * SEC, &st);
	ASSERT_EQ(st.pin_corrected, 1);
	pol_engine_free(e);
}

/* The default size is what the budgets need; a smaller one says what it keeps instead. */
TEST(sizing_and_guarantee)
{
	struct policy *p = pol_test_load("conf/payspoa.conf");
	char text[1024];

	ASSERT_EQ(pol_pin_need(p), 400ULL * 86400);   /* four accounts at 100/s for 24 h */
	ASSERT_EQ(pol_pin_guarantee(p, text, sizeof(text)), 0);
	ASSERT(strstr(text, "idempotency pins are kept 24 h up to 400 new keys/s") != NULL);
	pol_free(p);
	p = pol_load_string(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n"
	                    "pinning = { idem_slots = 15000000; };\n"
	                    "throttle = { account = { rate = 200.0; burst = 200.0; }; };\n", "t", err, sizeof(err));
	ASSERT(p != NULL);
	ASSERT_EQ(pol_pin_guarantee(p, text, sizeof(text)), 1);
	ASSERT(strstr(text, "idempotency pins are kept 24 h up to 174 req/s of keyed requests; "
	                    "at the budgets' 400 req/s, for 10.4 h") != NULL);
	pol_free(p);
}

struct saved {
	unsigned n, table[8];
	uint64_t key[8];
	char backend[8][64], account[8][64];
	uint32_t age[8];
};

static void save_pin(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                     uint32_t age_s)
{
	struct saved *s = arg;

	if (s->n < 8) {
		s->table[s->n] = table;
		s->key[s->n] = key;
		snprintf(s->backend[s->n], sizeof(s->backend[0]), "%s", backend);
		snprintf(s->account[s->n], sizeof(s->account[0]), "%s", account);
		s->age[s->n++] = age_s;
	}
}

/* The snapshot interface: every pin by backend name and account, restored into another
 * engine (another process) whose policy renamed one backend and lost the other's account. */
TEST(pins_each_and_restore)
{
	struct pol_engine *e = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 1), *f;
	struct pay_request rq = pol_test_usd_charge();
	struct pay_outcome o = { 0 };
	struct pay_verdict v;
	struct saved s = { 0 };
	unsigned i;

	rq.idem = S("k-a");
	pol_decide(e, 0, &rq, 10 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	o.idem = S("k-b");
	o.backend = S("pb");
	pol_observe(e, 0, &o, 10 * SEC); /* claimed for pb */
	pol_engine_pins_each(e, 20 * SEC, save_pin, &s);
	ASSERT_EQ(s.n, 2);
	for (i = 0; i < s.n; i++) {
		ASSERT_EQ(s.table[i], 0);
		ASSERT_EQ(s.age[i], 0); /* the current generation */
	}
	pol_engine_free(e);

	f = pol_test_engine("fee_schedules = ( { name = \"a\"; percent = 2.9; } );\n"
	                    "backends = ( { name = \"pa_new\"; account = \"acct_a\"; entity = \"x\"; region = \"other\";"
	                    " currencies = [ \"usd\" ]; fee_schedule = \"a\"; },"
	                    " { name = \"pc\"; account = \"acct_c\"; entity = \"x\"; region = \"other\";"
	                    " currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\n"
	                    "classes = ( { name = \"std\"; } );\n", 1);
	for (i = 0; i < s.n; i++)
		ASSERT_EQ(pol_engine_pin_restore(f, s.table[i], s.key[i], s.backend[i], s.account[i], s.age[i], 100 * SEC),
		          !strcmp(s.account[i], "acct_a") ? POL_PIN_REMAPPED : POL_PIN_GONE);
	ASSERT_EQ(pol_engine_pin_restore(f, 0, 12345, "pa", "acct_a", 86400, 100 * SEC), POL_PIN_EXPIRED);
	/* a backend of the same name on another account is another backend */
	ASSERT_EQ(pol_engine_pin_restore(f, 0, 777, "pc", "acct_z", 0, 100 * SEC), POL_PIN_GONE);
	ASSERT_EQ(pol_engine_pin_restore(f, 0, 778, "pc", "acct_c", 0, 100 * SEC), POL_PIN_KEPT);
	pol_decide(f, 0, &rq, 100 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa_new");     /* same account */
	ASSERT(has_token(&v, "pin:idem"));
	rq.idem = S("k-b");
	pol_decide(f, 0, &rq, 100 * SEC, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);      /* acct_b is gone */
	ASSERT(has_token(&v, "pin:gone"));
	ASSERT_VALID_ENGINE(f);
	pol_engine_free(f);
}

struct pin_set {
	unsigned n;
	char text[64][96]; /* "table key backend" */
};

static void collect_pin(void *arg, unsigned table, uint64_t key, const char *backend, const char *account,
                        uint32_t age_s)
{
	struct pin_set *s = arg;

	(void)account;
	(void)age_s;
	if (s->n < 64)
		snprintf(s->text[s->n++], sizeof(s->text[0]), "%u %016llx %s", table, (unsigned long long)key, backend);
}

static int cmp_text(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* pol_observe_batch (the log reader's path) learns exactly what as many pol_observe calls
 * do: the same pins (idempotency corrections, objects created), the same counters, over
 * more outcomes than one prefetch chunk. */
TEST(observe_batch_learns_as_one_by_one)
{
	struct pol_engine *one = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 1);
	struct pol_engine *batch = pol_test_engine(POL_TEST_TWO_USD_ACCOUNTS "classes = ( { name = \"std\"; } );\n", 1);
	static char idem[20][16], object[20][24];
	struct pay_outcome o[20];
	struct pin_set s1 = { 0 }, s2 = { 0 };
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	struct pol_stats st1, st2;
	unsigned i;

	memset(o, 0, sizeof(o));
	for (i = 0; i < 20; i++) {
		snprintf(idem[i], sizeof(idem[i]), "key-%u", i);
		snprintf(object[i], sizeof(object[i]), "pi_batch%u", i);
		o[i].backend = i % 3 ? S("pb") : S("pa");
		o[i].status = i % 7 == 6 ? 402 : 200; /* a decline creates nothing to pin */
		o[i].latency_ms = 40;
		if (i % 5 != 4)
			o[i].idem = (struct pay_str){ idem[i], (uint32_t)strlen(idem[i]) };
		if (i % 4 != 3)
			o[i].object = (struct pay_str){ object[i], (uint32_t)strlen(object[i]) };
		if (i == 9)
			o[i].account = S("acct_conn"); /* part of the key's identity */
	}
	pol_decide(one, 0, &rq, 9 * SEC, &v); /* as in the daemon: decisions came first */
	pol_decide(batch, 0, &rq, 9 * SEC, &v);
	for (i = 0; i < 20; i++)
		pol_observe(one, 0, &o[i], 10 * SEC);
	pol_observe_batch(batch, 0, o, 20, 10 * SEC);
	pol_quiesce(one, 0);
	pol_quiesce(batch, 0);
	pol_engine_pins_each(one, 11 * SEC, collect_pin, &s1);
	pol_engine_pins_each(batch, 11 * SEC, collect_pin, &s2);
	ASSERT_EQ(s1.n, 16 + 13); /* 16 keys, 15 objects less the 2 on declines */
	ASSERT_EQ(s2.n, s1.n);
	qsort(s1.text, s1.n, sizeof(s1.text[0]), cmp_text);
	qsort(s2.text, s2.n, sizeof(s2.text[0]), cmp_text);
	for (i = 0; i < s1.n; i++)
		ASSERT_STREQ(s2.text[i], s1.text[i]);
	pol_engine_stats(one, 11 * SEC, &st1);
	pol_engine_stats(batch, 11 * SEC, &st2);
	ASSERT_EQ(st2.observed, st1.observed);
	ASSERT_EQ(st2.observed, 20);
	ASSERT_EQ(st2.learned_objects, st1.learned_objects);
	ASSERT_EQ(st2.pin_corrected, st1.pin_corrected);
	pol_engine_free(one);
	pol_engine_free(batch);
}

int main(void)
{
	RUN_THREADED(race_same_key_one_account);
	RUN(claim_follows_the_winner);
	RUN(reload_remaps_or_refuses);
	RUN(reload_refused_when_ids_run_out);
	RUN(late_decision_corrects_the_pin);
	RUN(sizing_and_guarantee);
	RUN(pins_each_and_restore);
	RUN(observe_batch_learns_as_one_by_one);
	return test_summary();
}

