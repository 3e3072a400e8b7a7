/* test-outcome.c: outcome classification, as a table of responses -> expected class. */
#include <string.h>

#include "outcome.h"
#include "pol-test.h"
#include "test.h"

#define NONE   ((struct pay_str){ NULL, 0 })

struct oc_case {
	int line;
	int64_t status, latency_ms;
	struct pay_str rl_reason, err_type, err_code, decline, retry;
	enum oc_kind kind;
	enum oc_rl rl;
	uint32_t flags;
};

static const struct oc_case oc_cases[] = {
	{ __LINE__, 200, 80, NONE, NONE, NONE, NONE, NONE, OC_SUCCESS, OC_RL_NONE, 0 },
	{ __LINE__, 201, 2500, NONE, NONE, NONE, NONE, NONE, OC_SUCCESS, OC_RL_NONE, OC_F_SLOW },
	{ __LINE__, 200, 2000, NONE, NONE, NONE, NONE, NONE, OC_SUCCESS, OC_RL_NONE, 0 }, /* == threshold */
	{ __LINE__, 402, 90, NONE, S("card_error"), S("card_declined"), S("insufficient_funds"), NONE,
	  OC_DECLINE_CUSTOMER, OC_RL_NONE, 0 },
	{ __LINE__, 402, 90, NONE, S("card_error"), S("card_declined"), S("Do_Not_Honor"), NONE,
	  OC_DECLINE_SOFT, OC_RL_NONE, 0 },
	{ __LINE__, 402, 90, NONE, S("card_error"), S("card_declined"), S("generic_decline"), S("false"),
	  OC_DECLINE_SOFT, OC_RL_NONE, OC_F_RETRY_NO },
	/* error code, no decline code */
	{ __LINE__, 402, 90, NONE, S("card_error"), S("expired_card"), NONE, NONE,
	  OC_DECLINE_CUSTOMER, OC_RL_NONE, 0 },
	{ __LINE__, 402, 90, NONE, S("card_error"), S("incorrect_cvc"), S(""), NONE,
	  OC_DECLINE_CUSTOMER, OC_RL_NONE, 0 },
	/* unknown code: the table's unknown kind (soft) */
	{ __LINE__, 402, 90, NONE, S("card_error"), S("card_declined"), S("brand_new_code"), NONE,
	  OC_DECLINE_SOFT, OC_RL_NONE, 0 },
	{ __LINE__, 500, 30, NONE, S("api_error"), NONE, NONE, S("true"), OC_PSP_ERROR, OC_RL_NONE, OC_F_RETRY_YES },
	{ __LINE__, 503, 5, NONE, NONE, NONE, NONE, NONE, OC_PSP_ERROR, OC_RL_NONE, 0 },
	{ __LINE__, 504, 30000, NONE, NONE, NONE, NONE, NONE, OC_PSP_ERROR, OC_RL_NONE, OC_F_SLOW | OC_F_GW_TIMEOUT },
	{ __LINE__, 0, -1, NONE, NONE, NONE, NONE, NONE, OC_PSP_ERROR, OC_RL_NONE, OC_F_TIMEOUT },
	{ __LINE__, 302, 10, NONE, NONE, NONE, NONE, NONE, OC_PSP_ERROR, OC_RL_NONE, 0 },
	{ __LINE__, 429, 10, S("global-rate"), S("invalid_request_error"), S("rate_limit"), NONE, NONE,
	  OC_RATE_LIMITED, OC_RL_GLOBAL_RATE, 0 },
	{ __LINE__, 429, 10, S("endpoint-concurrency"), NONE, NONE, NONE, NONE,
	  OC_RATE_LIMITED, OC_RL_ENDPOINT_CONCURRENCY, 0 },
	{ __LINE__, 429, 10, S("resource-specific"), NONE, NONE, NONE, NONE,
	  OC_RATE_LIMITED, OC_RL_RESOURCE, 0 },
	{ __LINE__, 429, 10, S("something-new"), NONE, NONE, NONE, NONE,
	  OC_RATE_LIMITED, OC_RL_OTHER, 0 },
	{ __LINE__, 429, 10, NONE, S("invalid_request_error"), S("lock_timeout"), NONE, NONE,
	  OC_LOCK_CONFLICT, OC_RL_NONE, 0 },
	{ __LINE__, 429, 10, S(""), NONE, NONE, NONE, NONE, OC_LOCK_CONFLICT, OC_RL_NONE, 0 },
	{ __LINE__, 400, 10, NONE, S("invalid_request_error"), S("parameter_missing"), NONE, NONE,
	  OC_CLIENT_ERROR, OC_RL_NONE, 0 },
	{ __LINE__, 404, 10, NONE, S("invalid_request_error"), S("resource_missing"), NONE, NONE,
	  OC_CLIENT_ERROR, OC_RL_NONE, 0 },
	/* a card_error on a non-402 4xx still goes through the table */
	{ __LINE__, 400, 10, NONE, S("card_error"), S("incorrect_number"), NONE, NONE,
	  OC_DECLINE_CUSTOMER, OC_RL_NONE, 0 },
};

static struct oc_rule oc_mem[128];

static void oc_setup(struct oc_table *t)
{
	ASSERT_EQ(oc_table_init(t, oc_mem, sizeof(oc_mem) / sizeof(oc_mem[0])), 0);
}

TEST(outcome_table)
{
	struct oc_table t;
	size_t i;

	oc_setup(&t);
	for (i = 0; i < sizeof(oc_cases) / sizeof(oc_cases[0]); i++) {
		const struct oc_case *c = &oc_cases[i];
		struct pay_outcome o = { .rl_reason = c->rl_reason, .err_type = c->err_type,
			.err_code = c->err_code, .decline = c->decline, .should_retry = c->retry,
			.status = c->status, .latency_ms = c->latency_ms };
		struct oc_class r = oc_classify(&t, &o, 2000);

		if (r.kind != c->kind || r.rl != c->rl || r.flags != c->flags)
			TEST_FAIL_("case at line %d: got %s/%d/%#x, want %s/%d/%#x", c->line,
			           oc_kind_name(r.kind), (int)r.rl, (unsigned)r.flags,
			           oc_kind_name(c->kind), (int)c->rl, (unsigned)c->flags);
	}
}

TEST(outcome_slow_disabled)
{
	struct oc_table t;
	struct pay_outcome o = { .status = 200, .latency_ms = 99999 };

	oc_setup(&t);
	ASSERT_EQ(oc_classify(&t, &o, 0).flags, 0);
	ASSERT_EQ(oc_classify(&t, &o, 1000).flags, OC_F_SLOW);
}

TEST(outcome_override)
{
	struct oc_table t;
	struct pay_outcome o = { .status = 402, .err_type = S("card_error"),
		.err_code = S("card_declined"), .decline = S("insufficient_funds"), .latency_ms = 1 };

	oc_setup(&t);
	ASSERT_EQ(oc_classify(&t, &o, 0).kind, OC_DECLINE_CUSTOMER);
	/* replace, case-insensitively, without growing the table */
	{
		uint32_t n = t.n;

		ASSERT_EQ(oc_table_set(&t, "INSUFFICIENT_FUNDS", 18, OC_DECLINE_SOFT), 0);
		ASSERT_EQ(t.n, n);
	}
	ASSERT_EQ(oc_classify(&t, &o, 0).kind, OC_DECLINE_SOFT);
	/* a policy may say a code means the PSP is broken */
	ASSERT_EQ(oc_table_set(&t, "insufficient_funds", 18, OC_PSP_ERROR), 0);
	ASSERT_EQ(oc_classify(&t, &o, 0).kind, OC_PSP_ERROR);
	/* only decline kinds may be set */
	ASSERT_EQ(oc_table_set(&t, "x", 1, OC_SUCCESS), -1);
	ASSERT_EQ(oc_table_set(&t, "x", 1, OC_RATE_LIMITED), -1);
	ASSERT_EQ(oc_table_set(&t, "", 0, OC_DECLINE_SOFT), -1);
	ASSERT_EQ(oc_table_set(&t, "012345678901234567890123456789012345678901234567", 48,
	                       OC_DECLINE_SOFT), -1);
	/* unknown codes */
	o.decline = S("weird");
	ASSERT_EQ(oc_classify(&t, &o, 0).kind, OC_DECLINE_SOFT);
	ASSERT_EQ(oc_table_set_unknown(&t, OC_DECLINE_CUSTOMER), 0);
	ASSERT_EQ(oc_classify(&t, &o, 0).kind, OC_DECLINE_CUSTOMER);
	ASSERT_EQ(oc_table_set_unknown(&t, OC_CLIENT_ERROR), -1);
	/* clear drops the defaults */
	oc_table_clear(&t);
	ASSERT_EQ(oc_table_find(&t, "insufficient_funds", 18), -1);
}

TEST(outcome_capacity)
{
	struct oc_rule small[4];
	struct oc_table t;
	size_t n = oc_default_count();
	struct oc_rule *exact = oc_mem;

	ASSERT_EQ(oc_table_init(&t, small, 4), -1);
	ASSERT_EQ(t.n, 0);
	ASSERT_EQ(oc_table_init(&t, exact, n), 0);
	ASSERT_EQ(t.n, n);
	ASSERT_EQ(oc_table_set(&t, "brand_new_code", 14, OC_DECLINE_SOFT), -1); /* full */
	ASSERT_EQ(oc_table_set(&t, "generic_decline", 15, OC_DECLINE_CUSTOMER), 0); /* replace ok */
	ASSERT_EQ(oc_table_find(&t, "Generic_Decline", 15), OC_DECLINE_CUSTOMER);
}

TEST(outcome_names)
{
	ASSERT_STREQ(oc_kind_name(OC_SUCCESS), "success");
	ASSERT_STREQ(oc_kind_name(OC_LOCK_CONFLICT), "lock_conflict");
	ASSERT_STREQ(oc_kind_name(OC_KIND_COUNT), "unknown");
}

int main(void)
{
	RUN(outcome_table);
	RUN(outcome_slow_disabled);
	RUN(outcome_override);
	RUN(outcome_capacity);
	RUN(outcome_names);
	return test_summary();
}
