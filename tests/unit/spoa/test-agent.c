/* test-agent.c: unit tests of spoa/agent.c, SPOE messages ↔ the engine: pay-request
 * arguments → pol_decide → txn.pay.* set-var actions in the ACK; NULL, absent and wrongly
 * typed arguments; unknown messages; one decision per NOTIFY; pay-response → pol_observe;
 * an ACK never empty; optional variables dropped whole when the frame is small. A real
 * engine (conf/payspoa.conf) decides; a twin engine, asked directly, says what the agent
 * should have answered. */
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "policy.h"
#include "spop-client.h"
#include "spop.h"
#include "test.h"

#define SEC 1000000ull
#define WIN 16384           /* the ACK window of a 16380-byte frame, and then some */

static struct agent ag;
static struct pol_engine *twin; /* same policy, decides what the agent is asked */

/* The NOTIFY payload being built, and the last ACK. */
static uint8_t msg[8192];
static struct spop_wbuf mw;
static uint8_t out[WIN + 64];
static size_t out_len;
static bool overflowed;     /* the last answer did not fit its window at all */
static struct sc_ack ack;

static struct pol_engine *engine(void)
{
	char err[512];
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));
	struct pol_engine *e;

	if (!p)
		TEST_FAIL_("%s", err);
	if (!(e = pol_engine_new(p, 1, err, sizeof(err))))
		TEST_FAIL_("%s", err);
	return e;
}

/* Fresh engines and counters; a case may start over several times. */
static void setup(void)
{
	pol_engine_free(ag.engine);
	pol_engine_free(twin);
	memset(&ag, 0, sizeof(ag));
	ag.engine = engine();
	ag.now_us = 1000 * SEC;
	twin = engine();
	mw = spop_wbuf_init(msg, sizeof(msg));
}

/* ---- building NOTIFY payloads ------------------------------------------------------------ */

static void message(const char *name, unsigned nargs)
{
	spop_put_str(&mw, name, strlen(name));
	spop_put_u8(&mw, (uint8_t)nargs);
}

static void arg_int(const char *key, int64_t v)
{
	spop_put_str(&mw, key, strlen(key));
	spop_put_data_int(&mw, v);
}

static void arg_data(const char *key, const struct spop_data *d)
{
	spop_put_str(&mw, key, strlen(key));
	spop_put_data(&mw, d);
}

/* A pay-request with these string arguments (NULL values travel as NULL). */
static void pay_request(unsigned nargs, const char *const *kv)
{
	message("pay-request", nargs);
	for (unsigned i = 0; i < nargs; i++)
		sc_put_arg_str(&mw, kv[2 * i], kv[2 * i + 1]);
}

/* A EUR card payment from Germany, as HAProxy sends it (every argument of DESIGN.md §3). */
static void pay_request_eur(void)
{
	static const char *const kv[] = {
		"id", "req-1", "method", "POST", "path", "/v1/payment_intents", "account", NULL,
		"idem", NULL, "amount", "2000", "currency", "eur", "card_country", "DE",
		"card_brand", "visa", "card_funding", "credit", "class", NULL,
	};

	pay_request(11, kv);
}

/* ---- asking the agent --------------------------------------------------------------------- */

/* agent_notify on the payload built so far, into a window of win bytes (guarded: a byte
 * written past it fails the case). Returns its result and starts a new payload. On
 * success decodes the ACK into `ack` and checks that every action is a txn set-var,
 * unless the window could not hold even one variable (`overflowed`, small windows only). */
static int answer(size_t win)
{
	struct spop_wbuf w;
	int r;

	ASSERT(!mw.overflow);
	ASSERT_LE(win, WIN);
	memset(out + win, 0xa5, 64);
	w = spop_wbuf_init(out, win);
	r = agent_notify(&ag, msg, mw.p, &w);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ(out[win + i], 0xa5);
	mw = spop_wbuf_init(msg, sizeof(msg));
	out_len = (size_t)(w.p - out);
	overflowed = w.overflow;
	if (r < 0)
		return r;
	if (overflowed) {
		ASSERT_LE(win, 64);
		return r;
	}
	ASSERT(sc_ack_decode(out, out_len, &ack) >= 1);
	for (unsigned i = 0; i < ack.n; i++) {
		ASSERT_EQ(ack.v[i].action, SPOP_ACT_SET_VAR);
		ASSERT_EQ(ack.v[i].scope, SPOP_SCOPE_TXN);
	}
	return r;
}

static int64_t ack_int(const char *name)
{
	const struct sc_var *v = sc_ack_var(&ack, name);

	if (!v || (v->val.type != SPOP_DATA_INT64 && v->val.type != SPOP_DATA_INT32))
		TEST_FAIL_("no integer variable %s in the ACK", name);
	return v->val.v.i;
}

/* Does the reason variable hold `tok` as a whole space-separated token? */
static bool reason_has(const char *tok)
{
	const char *r = sc_ack_str(&ack, "reason");
	size_t n = strlen(tok);

	for (const char *s = r; s && (s = strstr(s, tok)); s++)
		if ((s == r || s[-1] == ' ') && (s[n] == ' ' || s[n] == 0))
			return true;
	return false;
}

/* The ACK is exactly { ack = 1 }: nothing was decided. */
static void assert_plain_ack(void)
{
	ASSERT_EQ(ack.n, 1);
	ASSERT_STREQ(ack.v[0].name, "ack");
	ASSERT_EQ(ack_int("ack"), 1);
}

#define S(lit) ((struct pay_str){ (lit), sizeof(lit) - 1 })

/* The ACK says what the twin engine decides for rq at the agent's time, variable by
 * variable, in the documented order (spoa/README.md: most important first). */
static void assert_ack_is(const struct pay_request *rq)
{
	static const char *const verdicts[] = { "allow", "queue", "reject" };
	struct pay_verdict v;
	unsigned i = 0;

	pol_decide(twin, 0, rq, ag.now_us, &v);
	ASSERT(ack.n >= 7);
	ASSERT_STREQ(ack.v[i].name, "verdict");
	ASSERT_STREQ(ack.v[i++].sval, verdicts[v.verdict]);
	ASSERT_STREQ(ack.v[i].name, "backend");
	ASSERT_STREQ(ack.v[i++].sval, v.backend);
	ASSERT_STREQ(ack.v[i].name, "prio");
	ASSERT_EQ(ack.v[i++].val.v.i, v.prio);
	ASSERT_STREQ(ack.v[i].name, "offset");
	ASSERT_EQ(ack.v[i++].val.v.i, v.offset_ms);
	if (v.verdict == PAY_REJECT) {
		ASSERT_STREQ(ack.v[i].name, "retry_after");
		ASSERT_EQ(ack.v[i++].val.v.i, v.retry_after_s);
	}
	ASSERT_STREQ(ack.v[i].name, "decision");
	ASSERT_EQ(ack.v[i].val.v.s.len, v.decision_len);
	ASSERT_MEMEQ(ack.v[i++].sval, v.decision, v.decision_len);
	ASSERT_STREQ(ack.v[i].name, "class");
	ASSERT_STREQ(ack.v[i++].sval, v.class_name);
	ASSERT_STREQ(ack.v[i].name, "reason");
	ASSERT_EQ(ack.v[i].val.v.s.len, v.reason_len);
	ASSERT_MEMEQ(ack.v[i++].sval, v.reason, v.reason_len);
	ASSERT_EQ(ack.n, i);
}

static struct pay_request eur_request(void)
{
	struct pay_request rq = { 0 };

	rq.id = S("req-1");
	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	rq.amount = 2000;
	rq.has_amount = true;
	rq.currency = S("eur");
	rq.card_country = S("DE");
	rq.card_brand = S("visa");
	rq.card_funding = S("credit");
	return rq;
}

/* ---- pay-request ---------------------------------------------------------------------------- */

TEST(pay_request_becomes_set_vars)
{
	struct pay_request rq = eur_request();

	setup();
	pay_request_eur();
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&rq);
	/* and what that is on the default policy: EUR goes to the EEA entity only, whose
	 * usual account is cheaper than its standby */
	ASSERT_STREQ(sc_ack_str(&ack, "verdict"), "allow");
	ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_eu");
	ASSERT_STREQ(sc_ack_str(&ack, "class"), "checkout");
	ASSERT_EQ(ack_int("prio"), -100);
	ASSERT(reason_has("cost"));
	ASSERT(sc_ack_var(&ack, "retry_after") == NULL);
	ASSERT_EQ(ag.counts.requests, 1);
	ASSERT_EQ(ag.counts.allow, 1);
	ASSERT_EQ(ag.counts.bad_args, 0);
}

/* Each argument reaches the engine: the decision changes with it as the policy says. */
TEST(arguments_drive_the_decision)
{
	static const struct {
		const char *kv[8];
		const char *backend, *cls, *tok;
	} cases[] = {
		{ { "currency", "usd", "card_country", "US" }, "stripe_us", NULL, "cost" },
		{ { "currency", "gbp", "card_country", "GB" }, "stripe_eu", NULL, "cost" },
		{ { "currency", "gbp", "card_country", "US" }, "stripe_us", NULL, "cost" },
		{ { "currency", "eur", "method", "GET", "path", "/v1/charges" }, "stripe_eu", "read", NULL },
		{ { "currency", "eur", "method", "POST", "path", "/v1/refunds" }, "stripe_eu", "refund", NULL },
		{ { "currency", "eur", "method", "POST", "path", "/v1/payment_intents/pi_1/capture" }, NULL, "capture", NULL },
		{ { "currency", "eur", "class", "background" }, "stripe_eu", "background", NULL },
	};

	setup();
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned n = 0;

		while (n < 4 && cases[i].kv[2 * n])
			n++;
		pay_request(n, cases[i].kv);
		ASSERT_EQ(answer(WIN), 0);
		if ((cases[i].backend && strcmp(sc_ack_str(&ack, "backend"), cases[i].backend)) ||
		    (cases[i].cls && strcmp(sc_ack_str(&ack, "class"), cases[i].cls)) ||
		    (cases[i].tok && !reason_has(cases[i].tok)))
			TEST_FAIL_("case %u: %s, class %s, reason \"%s\"", i, sc_ack_str(&ack, "backend"),
			           sc_ack_str(&ack, "class"), sc_ack_str(&ack, "reason"));
		ag.now_us += SEC;
	}
	ASSERT_EQ(ag.counts.requests, sizeof(cases) / sizeof(cases[0]));
}

/* The idempotency hash reaches the pin store: a retry with the same key is pinned. */
TEST(idem_argument_pins_the_retry)
{
	static const char *const kv[] = {
		"currency", "gbp", "card_country", "GB",
		"idem", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	};

	setup();
	pay_request(3, kv);
	ASSERT_EQ(answer(WIN), 0);
	ASSERT(!reason_has("pin:idem"));
	ag.now_us += SEC;
	pay_request(3, kv);
	ASSERT_EQ(answer(WIN), 0);
	ASSERT(reason_has("pin:idem"));
}

/* Every argument NULL (absent samples), or none sent at all: still a full decision, the
 * same as for an empty request, and NULL is not a bad argument. */
TEST(null_and_absent_arguments)
{
	static const char *const nulls[] = {
		"id", NULL, "method", NULL, "path", NULL, "account", NULL, "idem", NULL,
		"amount", NULL, "currency", NULL, "card_country", NULL, "card_brand", NULL,
		"card_funding", NULL, "class", NULL, "payment_intent", NULL, "charge", NULL,
		"customer", NULL,
	};
	struct pay_request empty = { 0 };

	setup();
	pay_request(14, nulls);
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&empty);
	ag.now_us += SEC;
	pay_request(0, NULL);
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&empty);
	ASSERT_EQ(ag.counts.requests, 2);
	ASSERT_EQ(ag.counts.bad_args, 0);
}

/* Integers come as any integer type or a decimal string (req.body_param); anything else
 * is counted as bad and the argument is treated as absent. The amount shows: a GBP
 * payment with a US card goes to stripe_eu when it is small (100) and to stripe_us at the
 * nominal amount assumed when none is given (1000). */
TEST(argument_types)
{
	struct spop_data d;
	struct pay_request rq;
	static const struct { uint8_t type; const char *s; int64_t i; } good_amounts[] = {
		{ SPOP_DATA_STR, "100", 0 }, { SPOP_DATA_STR, "+100", 0 }, { SPOP_DATA_STR, "0100", 0 },
		{ SPOP_DATA_INT32, NULL, 100 }, { SPOP_DATA_INT64, NULL, 100 },
		{ SPOP_DATA_UINT32, NULL, 100 }, { SPOP_DATA_UINT64, NULL, 100 },
	};
	static const char *const bad_amounts[] = {
		"", "-", "12a", "0x10", "1 00", "1234567890123456789", /* 19 digits */
	};

	setup();
	for (unsigned i = 0; i < sizeof(good_amounts) / sizeof(good_amounts[0]) + 1; i++) {
		message("pay-request", 5);
		sc_put_arg_str(&mw, "method", "POST");
		sc_put_arg_str(&mw, "path", "/v1/payment_intents");
		sc_put_arg_str(&mw, "currency", "gbp");
		sc_put_arg_str(&mw, "card_country", "US");
		memset(&d, 0, sizeof(d));
		if (i == sizeof(good_amounts) / sizeof(good_amounts[0])) {
			d.type = SPOP_DATA_STR;   /* a large amount, for contrast */
			d.v.s = (struct spop_str){ "100000", 6 };
		} else {
			d.type = good_amounts[i].type;
			if (d.type == SPOP_DATA_STR)
				d.v.s = (struct spop_str){ good_amounts[i].s, strlen(good_amounts[i].s) };
			else if (d.type == SPOP_DATA_INT32 || d.type == SPOP_DATA_INT64)
				d.v.i = good_amounts[i].i;
			else
				d.v.u = (uint64_t)good_amounts[i].i;
		}
		arg_data("amount", &d);
		ASSERT_EQ(answer(WIN), 0);
		ASSERT_EQ(ag.counts.bad_args, 0);
		if (strcmp(sc_ack_str(&ack, "backend"),
		           i < sizeof(good_amounts) / sizeof(good_amounts[0]) ? "stripe_eu" : "stripe_us"))
			TEST_FAIL_("amount %u: %s", i, sc_ack_str(&ack, "backend"));
		ag.now_us += SEC;
	}
	for (unsigned i = 0; i < sizeof(bad_amounts) / sizeof(bad_amounts[0]); i++) {
		static const char *const gbp_us[] = { "currency", "gbp", "card_country", "US", "amount", NULL };
		const char *kv[6];

		memcpy(kv, gbp_us, sizeof(kv));
		kv[5] = bad_amounts[i];
		pay_request(3, kv);
		ASSERT_EQ(answer(WIN), 0);
		ASSERT_EQ(ag.counts.bad_args, i + 1);
		ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_us");
		ag.now_us += SEC;
	}

	/* Strings of the wrong type are absent: this request decides like one without
	 * currency, card_country and amount. */
	setup();
	message("pay-request", 5);
	sc_put_arg_str(&mw, "method", "POST");
	sc_put_arg_str(&mw, "path", "/v1/payment_intents");
	arg_int("currency", 978);
	memset(&d, 0, sizeof(d));
	d.type = SPOP_DATA_BOOL;
	d.v.b = true;
	arg_data("card_country", &d);
	d.type = SPOP_DATA_BOOL;
	arg_data("amount", &d);
	ASSERT_EQ(answer(WIN), 0);
	ASSERT_EQ(ag.counts.bad_args, 3);
	rq = (struct pay_request){ 0 };
	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	assert_ack_is(&rq);

	/* BIN is as good as STR for strings. */
	setup();
	message("pay-request", 4);
	sc_put_arg_str(&mw, "method", "POST");
	sc_put_arg_str(&mw, "path", "/v1/payment_intents");
	d.type = SPOP_DATA_BIN;
	d.v.s = (struct spop_str){ "usd", 3 };
	arg_data("currency", &d);
	d.v.s = (struct spop_str){ "US", 2 };
	arg_data("card_country", &d);
	ASSERT_EQ(answer(WIN), 0);
	ASSERT_EQ(ag.counts.bad_args, 0);
	ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_us");
}

/* Unknown message names are skipped (with their arguments) and counted; unknown
 * argument names inside pay-request are ignored. */
TEST(unknown_messages_and_arguments)
{
	struct pay_request rq = eur_request();

	setup();
	message("pay-later", 2);
	sc_put_arg_str(&mw, "id", "x");
	arg_int("n", 7);
	ASSERT_EQ(answer(WIN), 0);
	assert_plain_ack();
	ASSERT_EQ(ag.counts.unknown, 1);
	ASSERT_EQ(ag.counts.requests, 0);

	message("pay-later", 1);
	sc_put_arg_str(&mw, "currency", "usd");
	pay_request_eur();
	message("x", 0);
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&rq);
	ASSERT_EQ(ag.counts.unknown, 3);
	ASSERT_EQ(ag.counts.requests, 1);

	ag.now_us += SEC;
	message("pay-request", 6);
	sc_put_arg_str(&mw, "x-future", "usd");
	sc_put_arg_str(&mw, "method", "POST");
	sc_put_arg_str(&mw, "path", "/v1/payment_intents");
	arg_int("currencyy", 1);
	sc_put_arg_str(&mw, "currency", "eur");
	sc_put_arg_str(&mw, "card_country", "DE");
	ASSERT_EQ(answer(WIN), 0);
	ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_eu");
	ASSERT_EQ(ag.counts.bad_args, 0);
}

/* One decision per NOTIFY: a second pay-request is skipped, counted, sets nothing and
 * takes no budget. */
TEST(second_pay_request_in_one_notify_is_skipped)
{
	static const char *const us[] = { "currency", "usd", "card_country", "US" };
	struct pay_request rq = eur_request();
	struct pol_stats st;

	setup();
	pay_request_eur();
	pay_request(2, us);
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&rq);   /* each variable once, from the first */
	ASSERT_EQ(ag.counts.requests, 1);
	ASSERT_EQ(ag.counts.duplicates, 1);
	pol_engine_stats(ag.engine, ag.now_us, &st);
	ASSERT_EQ(st.decisions, 1);
}

/* A malformed payload is refused whole (the connection then disconnects, status 4). */
TEST(malformed_payload_is_refused)
{
	static const uint8_t cut_name[] = { 11, 'p', 'a', 'y' };
	static const uint8_t no_nargs[] = { 11, 'p', 'a', 'y', '-', 'r', 'e', 'q', 'u', 'e', 's', 't' };
	static const uint8_t cut_arg[] = { 11, 'p', 'a', 'y', '-', 'r', 'e', 'q', 'u', 'e', 's', 't', 2,
	                                   2, 'i', 'd', SPOP_DATA_NULL };
	static const uint8_t cut_unknown[] = { 1, 'x', 1, 1, 'k', SPOP_DATA_STR, 9, 'a' };
	static const struct { const uint8_t *p; size_t n; } bad[] = {
		{ cut_name, sizeof(cut_name) }, { no_nargs, sizeof(no_nargs) },
		{ cut_arg, sizeof(cut_arg) }, { cut_unknown, sizeof(cut_unknown) },
	};

	setup();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(msg, bad[i].p, bad[i].n);
		mw.p = msg + bad[i].n;
		if (answer(WIN) != -1)
			TEST_FAIL_("payload %u accepted", i);
	}
}

/* ---- pay-response --------------------------------------------------------------------------- */

/* The outcome reaches pol_observe: counted, its decision id recognised, and what it
 * teaches used: the object it created is pinned to the backend HAProxy really used. */
TEST(pay_response_is_observed)
{
	static const char *const gbp[] = { "currency", "gbp", "card_country", "GB" };
	char decision[PAY_DECISION_MAX + 1];
	struct pol_stats st;

	setup();
	pay_request(2, gbp);
	ASSERT_EQ(answer(WIN), 0);
	ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_eu");
	snprintf(decision, sizeof(decision), "%s", sc_ack_str(&ack, "decision"));

	/* HAProxy fell back to stripe_us (be_name), which created pi_3Mtw */
	ag.now_us += SEC / 5;
	message("pay-response", 8);
	sc_put_arg_str(&mw, "id", "req-1");
	sc_put_arg_str(&mw, "decision", decision);
	sc_put_arg_str(&mw, "backend", "stripe_us");
	arg_int("status", 200);
	sc_put_arg_str(&mw, "latency_ms", "120");
	sc_put_arg_str(&mw, "should_retry", NULL);
	sc_put_arg_str(&mw, "object", "pi_3MtwBwLkdIwHu7ix28a3tqPa");
	sc_put_arg_str(&mw, "err_type", NULL);
	ASSERT_EQ(answer(WIN), 0);
	assert_plain_ack();
	ASSERT_EQ(ag.counts.responses, 1);
	ASSERT_EQ(ag.counts.requests, 1);
	pol_engine_stats(ag.engine, ag.now_us, &st);
	ASSERT_EQ(st.observed, 1);
	ASSERT_EQ(st.observe_bad, 0);
	ASSERT_EQ(st.learned_objects, 1);

	/* its capture goes where the object is, though cost says stripe_eu */
	ag.now_us += SEC;
	message("pay-request", 4);
	sc_put_arg_str(&mw, "method", "POST");
	sc_put_arg_str(&mw, "path", "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/capture");
	sc_put_arg_str(&mw, "currency", "gbp");
	sc_put_arg_str(&mw, "card_country", "GB");
	ASSERT_EQ(answer(WIN), 0);
	ASSERT_STREQ(sc_ack_str(&ack, "backend"), "stripe_us");
	ASSERT(reason_has("pin:object"));

	/* a decision id that is not ours is counted as bad */
	message("pay-response", 3);
	sc_put_arg_str(&mw, "decision", "not-a-decision");
	sc_put_arg_str(&mw, "backend", "stripe_us");
	sc_put_arg_str(&mw, "status", "503");
	ASSERT_EQ(answer(WIN), 0);
	assert_plain_ack();
	pol_engine_stats(ag.engine, ag.now_us, &st);
	ASSERT_EQ(st.observed, 2);
	ASSERT_EQ(st.observe_bad, 1);
	ASSERT_EQ(ag.counts.responses, 2);
}

/* A NOTIFY may carry a pay-response and a pay-request: both are handled, and the ACK
 * holds the request's verdict. */
TEST(pay_response_and_pay_request_together)
{
	struct pay_request rq = eur_request();
	struct pol_stats st;

	setup();
	message("pay-response", 2);
	sc_put_arg_str(&mw, "backend", "stripe_eu");
	arg_int("status", 402);
	pay_request_eur();
	ASSERT_EQ(answer(WIN), 0);
	assert_ack_is(&rq);
	ASSERT_EQ(ag.counts.responses, 1);
	ASSERT_EQ(ag.counts.requests, 1);
	pol_engine_stats(ag.engine, ag.now_us, &st);
	ASSERT_EQ(st.observed, 1);
}

/* ---- the ACK ---------------------------------------------------------------------------------- */

/* Never an empty ACK (early 3.1 stalled on those): a NOTIFY without a pay-request, even
 * an empty one, sets txn.pay.ack = 1. */
TEST(ack_is_never_empty)
{
	setup();
	ASSERT_EQ(answer(WIN), 0);   /* no message at all */
	assert_plain_ack();
	message("pay-response", 0);
	ASSERT_EQ(answer(WIN), 0);
	assert_plain_ack();
}

/* A reject carries its Retry-After; allow and queue do not. The payment_intents endpoint
 * budget (25/s) runs out within a burst at one instant. */
TEST(reject_carries_retry_after)
{
	unsigned rejects = 0;

	setup();
	for (unsigned i = 0; i < 200; i++) {
		struct pay_request rq = eur_request();

		pay_request_eur();
		ASSERT_EQ(answer(WIN), 0);
		assert_ack_is(&rq);
		if (strcmp(sc_ack_str(&ack, "verdict"), "reject") == 0) {
			ASSERT(ack_int("retry_after") > 0);
			rejects++;
		} else {
			ASSERT(sc_ack_var(&ack, "retry_after") == NULL);
		}
	}
	ASSERT(rejects > 0);
	ASSERT_EQ(ag.counts.reject, rejects);
	ASSERT_EQ(ag.counts.allow + ag.counts.queue + ag.counts.reject, 200);
}

/* The frame is small: variables go most important first; an optional one that does not
 * fit is dropped whole (never cut) and a later, smaller one may still fit; verdict and
 * backend go together or not at all; nothing is written past the window; and a verdict
 * that cannot be sent still leaves a non-empty ACK. The expected ACK for each window is
 * worked out greedily from the sizes of the full ACK's variables. */
TEST(small_window_drops_optional_variables_whole)
{
	struct sc_ack full;
	size_t size[16], full_len;
	unsigned truncated = 0, shapes = 0, last_n = 0;
	const uint8_t *p, *end;

	setup();
	pay_request_eur();
	ASSERT_EQ(answer(WIN), 0);
	full = ack;
	full_len = out_len;
	ASSERT_EQ(full.n, 7);
	end = out;
	for (unsigned i = 0; i < full.n; i++) {
		uint8_t act, scope;
		struct spop_str name;
		struct spop_data val;

		p = end;
		ASSERT_EQ(spop_action_get(&end, out + full_len, &act, &scope, &name, &val), 0);
		size[i] = (size_t)(end - p);
	}

	for (size_t win = 0; win <= full_len + 8; win++) {
		const char *expect[16];
		unsigned ne = 0;
		size_t room = win;
		int r;

		if (size[0] + size[1] <= room) {
			expect[ne++] = full.v[0].name;
			expect[ne++] = full.v[1].name;
			room -= size[0] + size[1];
			for (unsigned i = 2; i < full.n; i++)
				if (size[i] <= room) {
					expect[ne++] = full.v[i].name;
					room -= size[i];
				}
		}
		ag.now_us += SEC; /* the budget refills: the same verdict every time */
		pay_request_eur();
		r = answer(win);
		ASSERT_EQ(r, 0);
		if (overflowed) {
			/* not even `ack` fits: the connection answers TOO_BIG (spoa/conn.c) */
			ASSERT(win < 9); /* set-var: action, nargs, scope, "ack", an int of 1 */
			ASSERT_EQ(ne, 0);
			ASSERT_EQ(ag.counts.truncated, ++truncated);
			continue;
		}
		ASSERT_LE(out_len, win);
		if (ne == 0) {
			assert_plain_ack();
			ASSERT_EQ(ag.counts.truncated, ++truncated);
			continue;
		}
		if (ack.n != ne)
			TEST_FAIL_("window %zu: %u variables, expected %u", win, ack.n, ne);
		for (unsigned i = 0, k = 0; i < ack.n; i++, k++) {
			ASSERT_STREQ(ack.v[i].name, expect[i]);
			while (strcmp(full.v[k].name, expect[i]))
				k++;
			ASSERT_EQ(ack.v[i].val.type, full.v[k].val.type);
			if (strcmp(ack.v[i].name, "decision") == 0)
				ASSERT_EQ(ack.v[i].val.v.s.len, full.v[k].val.v.s.len);
			else if (ack.v[i].val.type == SPOP_DATA_STR)
				ASSERT_STREQ(ack.v[i].sval, full.v[k].sval);
			else
				ASSERT_EQ(ack.v[i].val.v.i, full.v[k].val.v.i);
		}
		if (ack.n != last_n)
			shapes++;
		last_n = ack.n;
	}
	ASSERT(truncated > 0);
	ASSERT_EQ(last_n, full.n);
	ASSERT_GE(shapes, 4);
}

int main(void)
{
	RUN(pay_request_becomes_set_vars);
	RUN(arguments_drive_the_decision);
	RUN(idem_argument_pins_the_retry);
	RUN(null_and_absent_arguments);
	RUN(argument_types);
	RUN(unknown_messages_and_arguments);
	RUN(second_pay_request_in_one_notify_is_skipped);
	RUN(malformed_payload_is_refused);
	RUN(pay_response_is_observed);
	RUN(pay_response_and_pay_request_together);
	RUN(ack_is_never_empty);
	RUN(reject_carries_retry_after);
	RUN(small_window_drops_optional_variables_whole);
	return test_summary();
}
