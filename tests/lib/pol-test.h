/* pol-test.h: helpers the engine's unit tests share. Header-only (static inline). */
#ifndef POL_TEST_H
#define POL_TEST_H

#include <stdbool.h>
#include <string.h>

#include "pay-t.h"
#include "policy.h"
#include "test.h"

/* A pay_str from a string literal. */
#define S(lit) ((struct pay_str){ (lit), sizeof(lit) - 1 })

/* Two accounts that both present USD; "pa" is cheaper (2.9 % vs 3.5 %, same fixed part),
 * so it is the first choice of every USD payment until something is learned. */
#define POL_TEST_TWO_USD_ACCOUNTS \
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n" \
	"backends = (\n" \
	" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n" \
	" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"b\"; }\n" \
	");\n"

/* Does the verdict's reason hold `tok` as a whole space-separated token? */
static inline bool has_token(const struct pay_verdict *v, const char *tok)
{
	size_t n = strlen(tok);
	const char *s = v->reason;

	while ((s = strstr(s, tok))) {
		if ((s == v->reason || s[-1] == ' ') && (s[n] == ' ' || s[n] == 0))
			return true;
		s++;
	}
	return false;
}

/* An engine for `workers` threads from policy text ("test" in errors); a policy the
 * loader refuses fails the case with its file:line message. */
/* A $100.00 USD charge with a US Visa credit card, on the payment_intents endpoint. */
static inline struct pay_request pol_test_usd_charge(void)
{
	struct pay_request rq = { 0 };

	rq.method = S("POST");
	rq.path = S("/v1/payment_intents");
	rq.currency = S("usd");
	rq.card_country = S("US");
	rq.card_brand = S("visa");
	rq.card_funding = S("credit");
	rq.amount = 10000;
	rq.has_amount = true;
	return rq;
}

/* The pay-response HAProxy reports for verdict v: its decision id, the backend it
 * chose (be_name), the status and latency; callers add error fields. */
static inline struct pay_outcome pol_test_answer(const struct pay_verdict *v, int status, int latency_ms)
{
	struct pay_outcome o = { 0 };

	o.decision = (struct pay_str){ v->decision, v->decision_len };
	o.backend = (struct pay_str){ v->backend, (uint32_t)strlen(v->backend) };
	o.status = status;
	o.latency_ms = latency_ms;
	return o;
}

static inline struct pol_engine *pol_test_engine(const char *text, unsigned workers)
{
	char err[512];
	struct policy *p = pol_load_string(text, "test", err, sizeof(err));
	struct pol_engine *e;

	if (!p)
		TEST_FAIL_("%s", err);
	if (!(e = pol_engine_new(p, workers, err, sizeof(err))))
		TEST_FAIL_("%s", err);
	return e;
}

#endif /* POL_TEST_H */
