/* pol-test.c: helpers the policy unit tests share (contracts in pol-test.h). */
#include <string.h>

#include "pol-test.h"
#include "test.h"

bool has_token(const struct pay_verdict *v, const char *tok)
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

struct pay_request pol_test_usd_charge(void)
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

struct pay_outcome pol_test_answer(const struct pay_verdict *v, int status, int latency_ms)
{
	struct pay_outcome o = { 0 };

	o.decision = (struct pay_str){ v->decision, v->decision_len };
	o.backend = (struct pay_str){ v->backend, (uint32_t)strlen(v->backend) };
	o.status = status;
	o.latency_ms = latency_ms;
	return o;
}

struct pol_engine *pol_test_engine(const char *text, unsigned workers)
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

struct policy *pol_test_load(const char *file)
{
	char err[512];
	struct policy *p = pol_load(file, err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	return p;
}

void pol_test_ticks(struct pol_engine *e, uint64_t from, uint64_t to)
{
	uint64_t t;

	for (t = from + 50000; t <= to; t += 50000)
		pol_tick(e, t);
}

const char *pol_test_breaker(struct pol_engine *e, unsigned i, uint64_t now)
{
	struct pol_learn_info li;

	ASSERT_EQ(pol_engine_learn_info(e, i, now, &li), 0);
	return li.breaker;
}
