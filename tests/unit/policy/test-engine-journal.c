/* test-engine-journal.c: the pure side of a fleet (policy/engine.c): the pin journal that
 * workers fill and the control thread drains (claims once, corrections forced, a full ring
 * counted, nothing when off), and pol_engine_pin_apply, which puts another node's pin in
 * force while workers decide (claimed, kept, moved to the fleet's account, gone); and the
 * rings under ThreadSanitizer (`make tsan`): workers deciding while the control thread
 * drains and applies. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "pol-test.h"
#include "test.h"

#define SEC 1000000ULL

#define POLICY POL_TEST_TWO_USD_ACCOUNTS \
	"default_backend = \"pa\";\n" \
	"classes = ( { name = \"std\"; } );\n"

struct notes {
	unsigned n;
	unsigned table[128];
	uint64_t key[128];
	char backend[128][64], account[128][64];
	bool force[128];
	uint64_t at[128];
};

static void on_note(void *arg, unsigned table, uint64_t key, const char *backend, const char *account, bool force,
                    uint64_t at_us)
{
	struct notes *n = arg;

	if (n->n >= 128)
		return;
	n->table[n->n] = table;
	n->key[n->n] = key;
	snprintf(n->backend[n->n], sizeof(n->backend[0]), "%s", backend);
	snprintf(n->account[n->n], sizeof(n->account[0]), "%s", account);
	n->force[n->n] = force;
	n->at[n->n] = at_us;
	n->n++;
}

static void decide_key(struct pol_engine *e, const char *key, uint64_t now, struct pay_verdict *v)
{
	struct pay_request rq = pol_test_usd_charge();

	rq.idem = (struct pay_str){ key, (uint32_t)strlen(key) };
	pol_decide(e, 0, &rq, now, v);
	pol_quiesce(e, 0);
}

TEST(off_by_default)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct notes n = { 0 };
	struct pay_verdict v;

	decide_key(e, "k1", 1 * SEC, &v);
	ASSERT_EQ(pol_engine_journal_drain(e, 100, on_note, &n), 0);
	ASSERT_EQ(n.n, 0);
	pol_engine_free(e);
}

TEST(claims_are_journaled_once)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct notes n = { 0 };
	struct pay_verdict v;

	ASSERT_EQ(pol_engine_journal(e, 100), 0);
	decide_key(e, "k1", 1 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	decide_key(e, "k1", 2 * SEC, &v); /* the retry follows the pin: no new note */
	ASSERT(has_token(&v, "pin:idem"));
	ASSERT_EQ(pol_engine_journal_drain(e, 100, on_note, &n), 1);
	ASSERT_EQ(n.table[0], POL_PIN_IDEM);
	ASSERT_STREQ(n.backend[0], "pa");
	ASSERT_STREQ(n.account[0], "acct_a");
	ASSERT(!n.force[0]);
	ASSERT_EQ(n.at[0], 1 * SEC);
	ASSERT_EQ(pol_engine_journal_drain(e, 100, on_note, &n), 0); /* taken */
	ASSERT_EQ(pol_engine_pin_ttl(e, POL_PIN_IDEM), 86400);
	pol_engine_free(e);
}

TEST(correction_is_forced)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct notes n = { 0 };
	struct pay_verdict v;
	struct pay_outcome o;

	ASSERT_EQ(pol_engine_journal(e, 100), 0);
	decide_key(e, "late", 1 * SEC, &v);
	ASSERT_EQ(pol_engine_journal_drain(e, 100, on_note, &n), 1);
	/* HAProxy used pb (its own fallback) for the key: the pin is rewritten, forced */
	o = pol_test_answer(&v, 200, 100);
	o.backend = S("pb");
	o.idem = S("late");
	pol_observe(e, 0, &o, 2 * SEC);
	pol_quiesce(e, 0);
	ASSERT_EQ(pol_engine_journal_drain(e, 100, on_note, &n), 1);
	ASSERT_STREQ(n.backend[1], "pb");
	ASSERT_STREQ(n.account[1], "acct_b");
	ASSERT(n.force[1]);
	ASSERT_EQ(n.key[1], n.key[0]);
	pol_engine_free(e);
}

TEST(full_journal_is_counted)
{
	struct pol_engine *e = pol_test_engine(POLICY, 1);
	struct notes n = { 0 };
	struct pay_verdict v;
	struct pol_stats st;
	char key[32];
	int i;

	ASSERT_EQ(pol_engine_journal(e, 50), 0); /* rounded up to 64 */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		decide_key(e, key, 1 * SEC, &v);
	}
	pol_engine_stats(e, 1 * SEC, &st);
	ASSERT_EQ(st.journal_full, 36);
	ASSERT_EQ(pol_engine_journal_drain(e, 1000, on_note, &n), 64);
	ASSERT_EQ(pol_engine_journal_drain(e, 1000, on_note, &n), 0);
	decide_key(e, "after", 1 * SEC, &v); /* room again */
	ASSERT_EQ(pol_engine_journal_drain(e, 1000, on_note, &n), 1);
	pol_engine_free(e);
}

/* A pin made on node A is put in force on node B: B's retry of that key follows it. */
TEST(apply_other_nodes_pins)
{
	struct pol_engine *a = pol_test_engine(POLICY, 1), *b = pol_test_engine(POLICY, 1);
	struct notes n = { 0 };
	struct pay_verdict v;

	ASSERT_EQ(pol_engine_journal(a, 100), 0);
	ASSERT_EQ(pol_engine_journal(b, 100), 0);
	decide_key(a, "shared", 1 * SEC, &v);
	ASSERT_EQ(pol_engine_journal_drain(a, 100, on_note, &n), 1);
	/* as if A had pinned it on pb (acct_b): B, which would choose pa, follows acct_b */
	ASSERT_EQ(pol_engine_pin_apply(b, n.table[0], n.key[0], "pb", "acct_b"), POL_PIN_KEPT);
	ASSERT_EQ(pol_engine_journal_drain(b, 100, on_note, &n), 0); /* applied pins are not journaled */
	decide_key(b, "shared", 2 * SEC, &v);
	ASSERT_STREQ(v.backend, "pb");
	ASSERT(has_token(&v, "pin:idem"));
	/* the same account again: nothing moves */
	ASSERT_EQ(pol_engine_pin_apply(b, n.table[0], n.key[0], "pb", "acct_b"), POL_PIN_KEPT);
	/* the fleet holds it on acct_a: B's pin moves there */
	ASSERT_EQ(pol_engine_pin_apply(b, n.table[0], n.key[0], "pa", "acct_a"), POL_PIN_MOVED);
	decide_key(b, "shared", 3 * SEC, &v);
	ASSERT_STREQ(v.backend, "pa");
	/* a backend B does not have, on an account it has: remapped */
	ASSERT_EQ(pol_engine_pin_apply(b, POL_PIN_IDEM, 12345, "pa_elsewhere", "acct_a"), POL_PIN_REMAPPED);
	/* an account B does not know: kept, and its requests refused (pin:gone) */
	decide_key(a, "foreign", 4 * SEC, &v);
	ASSERT_EQ(pol_engine_journal_drain(a, 100, on_note, &n), 1);
	ASSERT_EQ(pol_engine_pin_apply(b, n.table[1], n.key[1], "pz", "acct_z"), POL_PIN_GONE);
	decide_key(b, "foreign", 5 * SEC, &v);
	ASSERT_EQ(v.verdict, PAY_REJECT);
	ASSERT(has_token(&v, "pin:gone"));
	ASSERT_EQ(pol_engine_pin_apply(b, POL_PIN_TABLES, 1, "pa", "acct_a"), -1);
	pol_engine_free(a);
	pol_engine_free(b);
}

/* ---- workers and the control thread at once ------------------------------------------ */

#define FLOOD_POLICY POLICY "throttle = { account = { rate = 1000000.0; burst = 1000000.0; }; };\n"
#define FLOOD_WORKERS 2
#define FLOOD_KEYS    20000

struct flood {
	struct pol_engine *e;
	atomic_int running;
	unsigned long long claims;
};

struct flood_arg {
	struct flood *f;
	unsigned worker;
};

static void *flood_main(void *arg)
{
	struct flood_arg *a = arg;
	struct pay_request rq = pol_test_usd_charge();
	struct pay_verdict v;
	char key[32];
	int i;

	for (i = 0; i < FLOOD_KEYS; i++) {
		snprintf(key, sizeof(key), "w%u-%d", a->worker, i);
		rq.idem = (struct pay_str){ key, (uint32_t)strlen(key) };
		pol_decide(a->f->e, a->worker, &rq, SEC + (uint64_t)i * 10, &v);
		pol_quiesce(a->f->e, a->worker);
	}
	pol_worker_idle(a->f->e, a->worker);
	atomic_fetch_sub(&a->f->running, 1);
	return NULL;
}

static void count_note(void *arg, unsigned table, uint64_t key, const char *backend, const char *account, bool force,
                       uint64_t at_us)
{
	(*(unsigned long long *)arg)++;
}

TEST(drain_while_workers_decide)
{
	struct flood f = { pol_test_engine(FLOOD_POLICY, FLOOD_WORKERS), FLOOD_WORKERS, 0 };
	struct flood_arg args[FLOOD_WORKERS];
	pthread_t th[FLOOD_WORKERS];
	unsigned long long notes = 0;
	struct pol_stats st;
	uint64_t k = 0;
	unsigned i;

	ASSERT_EQ(pol_engine_journal(f.e, 1024), 0);
	for (i = 0; i < FLOOD_WORKERS; i++) {
		args[i] = (struct flood_arg){ &f, i };
		ASSERT_EQ(pthread_create(&th[i], NULL, flood_main, &args[i]), 0);
	}
	/* the control thread: drains, and applies other nodes' pins (their own keys) */
	while (atomic_load(&f.running) > 0) {
		pol_engine_journal_drain(f.e, 256, count_note, &notes);
		pol_engine_pin_apply(f.e, POL_PIN_IDEM, 0x9e3779b97f4a7c15ULL * ++k, "pb", "acct_b");
	}
	for (i = 0; i < FLOOD_WORKERS; i++)
		pthread_join(th[i], NULL);
	while (pol_engine_journal_drain(f.e, 256, count_note, &notes) > 0)
		;
	pol_engine_stats(f.e, 2 * SEC, &st);
	/* every claim is a note taken or a note counted as dropped, never both, never lost */
	ASSERT_EQ(st.pin_claims[POL_PIN_IDEM], FLOOD_WORKERS * FLOOD_KEYS);
	ASSERT_EQ(notes + st.journal_full, FLOOD_WORKERS * FLOOD_KEYS);
	ASSERT_GE(notes, 1024);
	pol_engine_free(f.e);
}

int main(void)
{
	RUN(off_by_default);
	RUN(claims_are_journaled_once);
	RUN(correction_is_forced);
	RUN(full_journal_is_counted);
	RUN(apply_other_nodes_pins);
	RUN_THREADED(drain_while_workers_decide);
	return test_summary();
}
