/* test-snap.c: snapshots (spoa/snap.c over policy/state.c): a round trip restores every
 * pin and learned record; the same requests get the same decisions after it; entries of
 * vanished backends are dropped or kept on their account; a fingerprint mismatch keeps
 * pins and drops learned state; truncated, corrupt, foreign and future-version files are
 * refused whole (cold start). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine-t.h"
#include "policy.h"
#include "pol-test.h"
#include "snap.h"
#include "state.h"
#include "test.h"

#define SEC 1000000ULL
#define T0 (1000 * SEC)
#define WALL0 (1700000000ULL * SEC)

static char dir[64], err[512];

/* A temporary folder holding regions.conf and policy variants of conf/payspoa.conf:
 * each (from, to) pair replaces the first occurrence of `from`; `tail` is appended. */
static void setup(void)
{
	char cmd[256];

	snprintf(dir, sizeof(dir), "/tmp/payspoa-snap.XXXXXX");
	ASSERT(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd), "cp conf/regions.conf %s/", dir);
	ASSERT_EQ(system(cmd), 0);
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ASSERT(f != NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ASSERT(buf != NULL);
	ASSERT_EQ(fread(buf, 1, (size_t)n, f), n);
	buf[n] = 0;
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ASSERT(f != NULL);
	ASSERT_EQ(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static struct pol_engine *engine_variant(const char *name, const char *from, const char *to, const char *tail)
{
	size_t len;
	char *text = slurp("conf/payspoa.conf", &len), *out = malloc(len + 4096), *at, path[128];
	struct pol_engine *e;

	ASSERT(out != NULL);
	if (from && (at = strstr(text, from))) {
		size_t pre = (size_t)(at - text);

		memcpy(out, text, pre);
		strcpy(out + pre, to);
		strcat(out, at + strlen(from));
	} else {
		strcpy(out, text);
	}
	strcat(out, tail ? tail : "");
	snprintf(path, sizeof(path), "%s/%s.conf", dir, name);
	spit(path, out, strlen(out));
	free(text);
	free(out);
	e = pol_engine_new(pol_test_load(path), 1, err, sizeof(err));
	ASSERT(e != NULL);
	return e;
}

#define NO_EXPLORE "learning = { explore = 0.0; };\n"

static struct pay_request charge(const char *cur, const char *cc, const char *idem)
{
	struct pay_request rq = { 0 };

	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	rq.currency = (struct pay_str){ cur, (uint32_t)strlen(cur) };
	rq.card_country = (struct pay_str){ cc, (uint32_t)strlen(cc) };
	rq.card_brand = S("visa");
	rq.card_funding = S("credit");
	rq.amount = 5000;
	rq.has_amount = true;
	if (idem)
		rq.idem = (struct pay_str){ idem, (uint32_t)strlen(idem) };
	return rq;
}

/* Traffic that teaches every module something: keyed payments in three currencies,
 * answered with successes, declines and PSP errors; object pins from the answers. */
static void teach(struct pol_engine *e, int n, uint64_t t)
{
	static const char *cur[] = { "usd", "eur", "gbp" }, *cc[] = { "US", "FR", "GB" };
	char key[32], obj[32];
	int i;

	for (i = 0; i < n; i++) {
		struct pay_request rq;
		struct pay_verdict v;
		struct pay_outcome o;
		uint64_t now = t + (uint64_t)i * 20000;

		snprintf(key, sizeof(key), "k%08d", i);
		rq = charge(cur[i % 3], cc[i % 3], key);
		pol_decide(e, 0, &rq, now, &v);
		o = pol_test_answer(&v, i % 7 == 0 ? 502 : i % 5 == 0 ? 402 : 200, 150 + i % 50);
		if (i % 5 == 0)
			o.decline = S("insufficient_funds");
		snprintf(obj, sizeof(obj), "pi_%06d", i);
		o.object = (struct pay_str){ obj, (uint32_t)strlen(obj) };
		pol_observe(e, 0, &o, now + 1000);
		pol_quiesce(e, 0);
		if (i % 50 == 0)
			pol_tick(e, now + 2000);
	}
	pol_tick(e, t + (uint64_t)n * 20000);
}

/* ---- comparing two captures -------------------------------------------------------------- */

struct pinset {
	size_t n, cap;
	struct { uint8_t kind; char backend[64]; uint64_t key; uint32_t age; } *p;
};

static int pin_collect(void *arg, const struct pol_pin_rec *r)
{
	struct pinset *s = arg;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->p = realloc(s->p, s->cap * sizeof(*s->p));
		ASSERT(s->p != NULL);
	}
	memset(&s->p[s->n], 0, sizeof(s->p[s->n]));
	s->p[s->n].kind = r->kind;
	snprintf(s->p[s->n].backend, sizeof(s->p[s->n].backend), "%s", r->backend);
	s->p[s->n].key = r->key;
	s->p[s->n].age = r->age_s;
	s->n++;
	return 0;
}

static int pin_cmp(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;

	return memcmp(x, y, 8 + 64 + 8); /* kind (padded), backend, key */
}

static void pins_of(struct pol_state *st, struct pinset *s)
{
	memset(s, 0, sizeof(*s));
	pol_state_foreach_pin(st, pin_collect, s);
	qsort(s->p, s->n, sizeof(*s->p), pin_cmp);
}

static int srt_cmp(const void *a, const void *b)
{
	const struct srt_entry *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* Two captures hold the same pins (ages apart by age_delta), records and posteriors. */
static void assert_same_state(struct pol_state *a, struct pol_state *b, uint32_t age_delta)
{
	struct pinset pa, pb;
	struct srt_entry *sa, *sb;
	size_t i, n;

	pins_of(a, &pa);
	pins_of(b, &pb);
	ASSERT(pa.n > 0);
	ASSERT_EQ(pa.n, pb.n);
	for (i = 0; i < pa.n; i++) {
		ASSERT_EQ(pa.p[i].key, pb.p[i].key);
		ASSERT_EQ(pa.p[i].kind, pb.p[i].kind);
		ASSERT_STREQ(pa.p[i].backend, pb.p[i].backend);
		ASSERT_EQ(pa.p[i].age + age_delta, pb.p[i].age);
	}
	free(pa.p);
	free(pb.p);
	ASSERT_EQ(pol_state_nrecs(a), pol_state_nrecs(b));
	for (i = 0; i < pol_state_nrecs(a); i++) {
		const struct pol_rec *x = pol_state_rec(a, i), *y = pol_state_rec(b, i);

		ASSERT_EQ(x->kind, y->kind);
		ASSERT_STREQ(x->name, y->name);
		ASSERT_STREQ(x->name2, y->name2);
		ASSERT_EQ(x->len, y->len);
		if (memcmp(x->val, y->val, x->len)) {
			for (size_t k = 0; k < x->len; k++)
				if (((const uint8_t *)x->val)[k] != ((const uint8_t *)y->val)[k])
					fprintf(stderr, "  byte %zu: %02x vs %02x\n", k, ((const uint8_t *)x->val)[k], ((const uint8_t *)y->val)[k]);
			TEST_FAIL_("record %zu (%d %s %s) differs after the round trip", i, x->kind, x->name, x->name2);
		}
	}
	n = pol_state_nsrt(a);
	ASSERT(n > 0);
	ASSERT_EQ(n, pol_state_nsrt(b));
	sa = malloc(n * sizeof(*sa));
	sb = malloc(n * sizeof(*sb));
	for (i = 0; i < n; i++) {
		sa[i] = *pol_state_srt(a, i);
		sb[i] = *pol_state_srt(b, i);
	}
	qsort(sa, n, sizeof(*sa), srt_cmp);
	qsort(sb, n, sizeof(*sb), srt_cmp);
	ASSERT_MEMEQ(sa, sb, n * sizeof(*sa));
	free(sa);
	free(sb);
}

static void save(struct pol_engine *e, uint64_t now, const char *name, char *path, size_t pathlen)
{
	struct pol_state *st = pol_state_capture(e, now);
	struct snap_result r;

	ASSERT(st != NULL);
	snprintf(path, pathlen, "%s/%s", dir, name);
	if (snap_write(st, WALL0, path, &r, err, sizeof(err)))
		TEST_FAIL_("snap_write: %s", err);
	ASSERT(r.pins > 0);
	pol_state_free(st);
}

/* Two engines of one policy: a taught 600 payments from T0 and saved at `at` to path, b
 * fresh (setup() done). */
static void taught_pair(struct pol_engine **a, struct pol_engine **b, uint64_t at, char *path, size_t pathlen)
{
	setup();
	*a = engine_variant("a", NULL, NULL, NULL);
	*b = engine_variant("b", NULL, NULL, NULL);
	teach(*a, 600, T0);
	save(*a, at, "state", path, pathlen);
}

/* ---- cases --------------------------------------------------------------------------------- */

TEST(round_trip_restores_everything)
{
	struct pol_engine *a, *b;
	struct pol_state *sa, *sb;
	struct snap_result r;
	char path[128];

	setup();
	a = engine_variant("a", NULL, NULL, NULL);
	b = engine_variant("b", NULL, NULL, NULL);
	teach(a, 3000, T0);
	pol_tick(a, T0 + 100 * SEC);
	save(a, T0 + 100 * SEC, "state", path, sizeof(path));
	/* restart: the same instant on the same clock, no time passed */
	ASSERT_EQ(snap_load(b, path, T0 + 100 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(r.learned);
	ASSERT_EQ(r.im.pins_dropped, 0);
	ASSERT_EQ(r.im.recs_dropped, 0);
	ASSERT_EQ(r.im.srt_dropped, 0);
	pol_tick(a, T0 + 100 * SEC); /* b's import ended with one tick */
	sa = pol_state_capture(a, T0 + 100 * SEC);
	sb = pol_state_capture(b, T0 + 100 * SEC);
	assert_same_state(sa, sb, 0);
	pol_state_free(sa);
	pol_state_free(sb);
	pol_engine_free(a);
	pol_engine_free(b);
	teardown();
}

TEST(restart_later_on_another_clock_keeps_ages)
{
	struct pol_engine *a, *b;
	struct pol_state *sa, *sb;
	struct snap_result r;
	char path[128];

	taught_pair(&a, &b, T0 + 20 * SEC, path, sizeof(path));
	/* the new process's clock is 5000 s behind, and 30 s passed */
	ASSERT_EQ(snap_load(b, path, T0 - 5000 * SEC, WALL0 + 30 * SEC, &r, err, sizeof(err)), 0);
	ASSERT(r.learned);
	ASSERT(r.im.pins > 0);
	ASSERT_EQ(r.im.pins_dropped, 0);
	sa = pol_state_capture(a, T0 + 20 * SEC);
	sb = pol_state_capture(b, T0 - 5000 * SEC);
	{
		struct pinset pa, pb;

		pins_of(sa, &pa);
		pins_of(sb, &pb);
		ASSERT_EQ(pa.n, pb.n);
		/* a pin's age is kept to its table's period (TTL / PIN_PERIODS: the generation
		 * it is restored into), never younger than it was plus the downtime */
		uint32_t period = b->pins.t[0].period_s;

		for (size_t i = 0; i < pa.n; i++) {
			ASSERT_EQ(pa.p[i].key, pb.p[i].key);
			ASSERT_EQ(pb.p[i].age, (pa.p[i].age + 30) / period * period);
		}
		free(pa.p);
		free(pb.p);
	}
	pol_state_free(sa);
	pol_state_free(sb);
	pol_engine_free(a);
	pol_engine_free(b);
	teardown();
}

/* ISSUE-NOTES §8: record decision inputs, replay them into the engine before and after a
 * snapshot round trip (exploration off): identical decisions. */
TEST(same_decisions_after_a_restart)
{
	static const char *cur[] = { "usd", "eur", "gbp", "usd" }, *cc[] = { "US", "DE", "GB", "GB" };
	struct pol_engine *a, *b;
	struct snap_result r;
	char path[128], key[32];
	int i, pinned = 0;

	setup();
	a = engine_variant("a", NULL, NULL, NO_EXPLORE);
	b = engine_variant("b", NULL, NULL, NO_EXPLORE);
	teach(a, 3000, T0);
	save(a, T0 + 100 * SEC, "state", path, sizeof(path));
	ASSERT_EQ(snap_load(b, path, T0 + 100 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(r.learned);
	pol_tick(a, T0 + 100 * SEC);
	/* retries of known keys (every 7th), new keys, each at the same time in both */
	for (i = 0; i < 2000; i++) {
		struct pay_request rq;
		struct pay_verdict va, vb;
		uint64_t now = T0 + 100 * SEC + (uint64_t)i * 3000;

		snprintf(key, sizeof(key), i % 7 ? "new%06d" : "k%08d", i % 7 ? i : i * 3 / 7);
		rq = charge(cur[i % 4], cc[i % 4], key);
		pol_decide(a, 0, &rq, now, &va);
		pol_decide(b, 0, &rq, now, &vb);
		if (strcmp(va.backend, vb.backend) || va.verdict != vb.verdict || strcmp(va.reason, vb.reason) ||
		    strcmp(va.class_name, vb.class_name) || va.prio != vb.prio)
			TEST_FAIL_("request %d: %s %d \"%s\" before, %s %d \"%s\" after", i, va.backend, va.verdict,
			           va.reason, vb.backend, vb.verdict, vb.reason);
		pinned += strstr(va.reason, "pin:idem") != NULL;
		pol_quiesce(a, 0);
		pol_quiesce(b, 0);
		if (i % 50 == 0) {
			pol_tick(a, now);
			pol_tick(b, now);
		}
	}
	ASSERT(pinned > 100);
	pol_engine_free(a);
	pol_engine_free(b);
	teardown();
}

/* A backend renamed on the same account keeps its pins there; one whose account is gone
 * keeps them refused (pin:gone) and loses its learned records; the others load. */
TEST(vanished_backends_dropped_or_kept_on_their_account)
{
	struct pol_engine *a, *b, *c;
	struct snap_result r;
	struct pol_stats st;
	char path[128];

	setup();
	a = engine_variant("a", NULL, NULL, NULL);
	teach(a, 900, T0);
	save(a, T0 + 20 * SEC, "state", path, sizeof(path));
	/* stripe_eu renamed: same account */
	b = engine_variant("b", "\"stripe_eu\"", "\"stripe_eu2\"", NULL);
	ASSERT_EQ(snap_load(b, path, T0 + 20 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(r.im.pins_remapped > 0);
	ASSERT_EQ(r.im.pins_dropped, 0);
	ASSERT(r.im.recs_dropped >= 1); /* stripe_eu's breaker and charts */
	/* stripe_eu's account renamed as well: its pins are kept on the vanished account
	 * (their requests refused: pin:gone), never moved */
	c = engine_variant("c", "account = \"acct_eu_payspoa\"", "account = \"acct_gone\"", NULL);
	ASSERT_EQ(snap_load(c, path, T0 + 20 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(r.im.pins_gone > 0);
	ASSERT(r.im.pins > r.im.pins_gone);
	ASSERT_EQ(r.im.pins_dropped, 0);
	ASSERT_EQ(r.im.pins_remapped, 0);
	pol_engine_stats(c, T0 + 20 * SEC, &st);
	ASSERT_EQ(st.pin_live[0] + st.pin_live[1] + st.pin_live[2], r.im.pins);
	pol_engine_free(a);
	pol_engine_free(b);
	pol_engine_free(c);
	teardown();
}

TEST(fingerprint_mismatch_keeps_pins_drops_learned_state)
{
	struct pol_engine *a, *b;
	struct snap_result r;
	char path[128];

	setup();
	a = engine_variant("a", NULL, NULL, NULL);
	teach(a, 900, T0);
	save(a, T0 + 20 * SEC, "state", path, sizeof(path));
	b = engine_variant("b", NULL, NULL, "breaker = { window_s = 30; };\n");
	ASSERT(pol_state_engine_fingerprint(a) != pol_state_engine_fingerprint(b));
	ASSERT_EQ(snap_load(b, path, T0 + 20 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(!r.learned);
	ASSERT(r.im.pins > 0);
	ASSERT_EQ(r.im.pins_dropped, 0);
	ASSERT_EQ(r.im.recs, 0);
	ASSERT_EQ(r.im.srt, 0);
	ASSERT(r.im.recs_dropped > 0);
	ASSERT(r.im.srt_dropped > 0);
	pol_engine_free(a);
	pol_engine_free(b);
	teardown();
}

/* Refused whole: -1 with the reason, and not one pin imported. */
static void assert_refused(const char *path, const char *why)
{
	struct pol_engine *e = engine_variant("x", NULL, NULL, NULL);
	struct snap_result r;
	struct pol_stats st;

	ASSERT_EQ(snap_load(e, path, T0, WALL0, &r, err, sizeof(err)), -1);
	if (!strstr(err, why))
		TEST_FAIL_("refused for \"%s\", expected \"%s\"", err, why);
	pol_engine_stats(e, T0, &st);
	ASSERT_EQ(st.pin_live[0] + st.pin_live[1] + st.pin_live[2], 0);
	pol_engine_free(e);
}

TEST(bad_files_are_refused_whole)
{
	struct pol_engine *a;
	struct snap_result r;
	char path[128], bad[160];
	size_t len, cut;
	uint8_t *buf;

	setup();
	a = engine_variant("a", NULL, NULL, NULL);
	teach(a, 900, T0);
	save(a, T0 + 20 * SEC, "state", path, sizeof(path));
	buf = (uint8_t *)slurp(path, &len);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	/* missing: a cold start, not an error */
	ASSERT_EQ(snap_load(a, bad, T0, WALL0, &r, err, sizeof(err)), 1);
	/* truncated anywhere */
	for (cut = 0; cut < len; cut += len / 37 + 1) {
		spit(bad, buf, cut);
		assert_refused(bad, cut ? "truncated" : "truncated");
	}
	spit(bad, buf, len - 1);
	assert_refused(bad, "truncated");
	/* a flipped bit in the pins: the checksum */
	buf[len / 2] ^= 0x10;
	spit(bad, buf, len);
	assert_refused(bad, "corrupt");
	buf[len / 2] ^= 0x10;
	/* foreign */
	spit(bad, "{\"hello\": 1}\n", 13);
	assert_refused(bad, "foreign");
	spit(bad, "\x93\x01\x02\x03", 4);
	assert_refused(bad, "foreign");
	/* a future version: the header is [magic (14 bytes), version (fixint), ...] */
	ASSERT_EQ(buf[0], 0x95);
	ASSERT_EQ(buf[15], 1);
	buf[15] = 2;
	spit(bad, buf, len);
	assert_refused(bad, "version 2");
	buf[15] = 1;
	/* garbage after the end */
	{
		uint8_t *more = malloc(len + 1);

		memcpy(more, buf, len);
		more[len] = 0xc0;
		spit(bad, more, len + 1);
		assert_refused(bad, "after the end");
		free(more);
	}
	/* the untouched file still loads */
	spit(bad, buf, len);
	{
		struct pol_engine *e = engine_variant("y", NULL, NULL, NULL);

		ASSERT_EQ(snap_load(e, bad, T0 + 20 * SEC, WALL0, &r, err, sizeof(err)), 0);
		ASSERT(r.im.pins > 0);
		pol_engine_free(e);
	}
	free(buf);
	pol_engine_free(a);
	teardown();
}

/* A snapshot written on its own thread while two workers decide (writing pins) and the
 * control thread reloads twice: the captured view stays readable (held) until the
 * capture is freed, then is reclaimed; ThreadSanitizer (make tsan) sees no race. */
struct racer {
	struct pol_engine *e;
	unsigned worker;
	_Atomic int *stop;
};

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	char key[32];
	unsigned n = 0;

	while (!atomic_load(rc->stop)) {
		struct pay_request rq;
		struct pay_verdict v;

		snprintf(key, sizeof(key), "w%u-%u", rc->worker, n++);
		rq = charge(n % 2 ? "usd" : "eur", n % 2 ? "US" : "FR", key);
		pol_decide(rc->e, rc->worker, &rq, T0 + n, &v);
		pol_quiesce(rc->e, rc->worker);
	}
	pol_worker_idle(rc->e, rc->worker);
	return NULL;
}

struct writer {
	struct pol_state *st;
	const char *path;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct snap_result r;
	char e2[256];

	w->rc = snap_write(w->st, WALL0, w->path, &r, e2, sizeof(e2));
	return NULL;
}

TEST(write_while_deciding_and_reloading)
{
	struct pol_engine *e;
	_Atomic int stop = 0;
	struct racer rc[2];
	struct writer w;
	pthread_t th[2], wt;
	char path[128], conf[128];
	int i, k;

	setup();
	e = engine_variant("a", NULL, NULL, NULL);
	pol_engine_free(e);
	snprintf(conf, sizeof(conf), "%s/a.conf", dir);
	e = pol_engine_new(pol_test_load(conf), 2, err, sizeof(err));
	ASSERT(e != NULL);
	snprintf(path, sizeof(path), "%s/state", dir);
	for (i = 0; i < 2; i++) {
		rc[i] = (struct racer){ e, (unsigned)i, &stop };
		pthread_create(&th[i], NULL, racer_main, &rc[i]);
	}
	for (k = 0; k < 3; k++) {
		w.st = pol_state_capture(e, T0);
		w.path = path;
		ASSERT(w.st != NULL);
		pthread_create(&wt, NULL, writer_main, &w);
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(pol_engine_swap(e, pol_test_load(conf), err, sizeof(err)), 0);
			pol_tick(e, T0);
		}
		pthread_join(wt, NULL);
		ASSERT_EQ(w.rc, 0);
		pol_state_free(w.st);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pol_tick(e, T0);
	ASSERT(e->retired == NULL); /* every held view was freed once released */
	pol_engine_free(e);
	teardown();
}

/* A snapshot loaded by a process whose clock is near its start (the simulator's warm
 * start at t = 0, a daemon on a fresh monotonic clock): the breaker windows' buckets move
 * to the new clock whole; none lost, none counted twice (the window's sums still match
 * its buckets), whatever the bucket count (the default 10 is no power of two). */
TEST(restore_near_clock_zero_keeps_breaker_windows)
{
	struct pol_engine *a, *b;
	struct snap_result r;
	char path[128];

	taught_pair(&a, &b, T0 + 12 * SEC, path, sizeof(path));
	ASSERT_EQ(snap_load(b, path, 2 * SEC, WALL0, &r, err, sizeof(err)), 0);
	ASSERT(r.learned);
	if (pol_engine_verify(b, 2 * SEC, true, err, sizeof(err)))
		TEST_FAIL_("after the load: %s", err);
	pol_tick(b, 3 * SEC);
	if (pol_engine_verify(b, 3 * SEC, true, err, sizeof(err)))
		TEST_FAIL_("after a tick: %s", err);
	pol_engine_free(a);
	pol_engine_free(b);
	teardown();
}

int main(void)
{
	RUN(round_trip_restores_everything);
	RUN(restart_later_on_another_clock_keeps_ages);
	RUN(same_decisions_after_a_restart);
	RUN(vanished_backends_dropped_or_kept_on_their_account);
	RUN(fingerprint_mismatch_keeps_pins_drops_learned_state);
	RUN(bad_files_are_refused_whole);
	RUN_THREADED(write_while_deciding_and_reloading);
	RUN(restore_near_clock_zero_keeps_breaker_windows);
	return test_summary();
}
