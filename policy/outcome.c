/* outcome.c: classify a `pay-response` outcome before breakers, budgets or posteriors
 * learn from it. Must not read clocks, do I/O, allocate, or keep state of its own. */
#include <string.h>

#include "outcome.h"

/* Built-in decline table (Stripe's decline codes, 2025). Customer-fault declines say
 * nothing about the backend; soft declines count against the auth rate, since another
 * account, entity or acquirer may well have had them approved. */
static const struct {
	const char *code;
	enum oc_kind kind;
} oc_defaults[] = {
	{ "insufficient_funds",                OC_DECLINE_CUSTOMER },
	{ "incorrect_cvc",                     OC_DECLINE_CUSTOMER },
	{ "invalid_cvc",                       OC_DECLINE_CUSTOMER },
	{ "expired_card",                      OC_DECLINE_CUSTOMER },
	{ "card_velocity_exceeded",            OC_DECLINE_CUSTOMER },
	{ "incorrect_number",                  OC_DECLINE_CUSTOMER },
	{ "invalid_number",                    OC_DECLINE_CUSTOMER },
	{ "incorrect_zip",                     OC_DECLINE_CUSTOMER },
	{ "incorrect_pin",                     OC_DECLINE_CUSTOMER },
	{ "invalid_pin",                       OC_DECLINE_CUSTOMER },
	{ "invalid_expiry_month",              OC_DECLINE_CUSTOMER },
	{ "invalid_expiry_year",               OC_DECLINE_CUSTOMER },
	{ "invalid_account",                   OC_DECLINE_CUSTOMER },
	{ "invalid_amount",                    OC_DECLINE_CUSTOMER },
	{ "lost_card",                         OC_DECLINE_CUSTOMER },
	{ "stolen_card",                       OC_DECLINE_CUSTOMER },
	{ "pickup_card",                       OC_DECLINE_CUSTOMER },
	{ "fraudulent",                        OC_DECLINE_CUSTOMER },
	{ "merchant_blacklist",                OC_DECLINE_CUSTOMER },
	{ "withdrawal_count_limit_exceeded",   OC_DECLINE_CUSTOMER },
	{ "pin_try_exceeded",                  OC_DECLINE_CUSTOMER },
	{ "authentication_required",           OC_DECLINE_CUSTOMER },
	{ "approve_with_id",                   OC_DECLINE_CUSTOMER },
	{ "offline_pin_required",              OC_DECLINE_CUSTOMER },
	{ "online_or_offline_pin_required",    OC_DECLINE_CUSTOMER },
	{ "new_account_information_available", OC_DECLINE_CUSTOMER },
	{ "testmode_decline",                  OC_DECLINE_CUSTOMER },
	{ "generic_decline",                   OC_DECLINE_SOFT },
	{ "do_not_honor",                      OC_DECLINE_SOFT },
	{ "do_not_try_again",                  OC_DECLINE_SOFT },
	{ "try_again_later",                   OC_DECLINE_SOFT },
	{ "call_issuer",                       OC_DECLINE_SOFT },
	{ "no_action_taken",                   OC_DECLINE_SOFT },
	{ "not_permitted",                     OC_DECLINE_SOFT },
	{ "restricted_card",                   OC_DECLINE_SOFT },
	{ "revocation_of_authorization",       OC_DECLINE_SOFT },
	{ "revocation_of_all_authorizations",  OC_DECLINE_SOFT },
	{ "security_violation",                OC_DECLINE_SOFT },
	{ "service_not_allowed",               OC_DECLINE_SOFT },
	{ "stop_payment_order",                OC_DECLINE_SOFT },
	{ "transaction_not_allowed",           OC_DECLINE_SOFT },
	{ "card_not_supported",                OC_DECLINE_SOFT },
	{ "currency_not_supported",            OC_DECLINE_SOFT },
	{ "duplicate_transaction",             OC_DECLINE_SOFT },
	{ "reenter_transaction",               OC_DECLINE_SOFT },
	{ "issuer_not_available",              OC_DECLINE_SOFT },
	{ "processing_error",                  OC_DECLINE_SOFT },
};

#define OC_NDEFAULTS (sizeof(oc_defaults) / sizeof(oc_defaults[0]))

static const char *const oc_kind_names[OC_KIND_COUNT] = {
	[OC_SUCCESS]          = "success",
	[OC_DECLINE_CUSTOMER] = "decline_customer",
	[OC_DECLINE_SOFT]     = "decline_soft",
	[OC_PSP_ERROR]        = "psp_error",
	[OC_RATE_LIMITED]     = "rate_limited",
	[OC_LOCK_CONFLICT]    = "lock_conflict",
	[OC_CLIENT_ERROR]     = "client_error",
};

static int oc_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive equality of a stored (lower-case) code with p[0..len-1]. */
static int oc_code_eq(const struct oc_rule *r, const char *p, size_t len)
{
	size_t i;

	if (r->len != len)
		return 0;
	for (i = 0; i < len; i++)
		if (r->code[i] != oc_lower((unsigned char)p[i]))
			return 0;
	return 1;
}

static int oc_rule_kind_ok(enum oc_kind kind)
{
	return kind == OC_DECLINE_CUSTOMER || kind == OC_DECLINE_SOFT || kind == OC_PSP_ERROR;
}

size_t oc_default_count(void)
{
	return OC_NDEFAULTS;
}

void oc_table_clear(struct oc_table *t)
{
	t->n = 0;
}

int oc_table_init(struct oc_table *t, struct oc_rule *rules, size_t cap)
{
	size_t i;

	t->rules = rules;
	t->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	t->n = 0;
	t->unknown_kind = OC_DECLINE_SOFT;
	if (cap < OC_NDEFAULTS)
		return -1;
	for (i = 0; i < OC_NDEFAULTS; i++)
		oc_table_set(t, oc_defaults[i].code, strlen(oc_defaults[i].code), oc_defaults[i].kind);
	return 0;
}

int oc_table_find(const struct oc_table *t, const char *code, size_t len)
{
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (oc_code_eq(&t->rules[i], code, len))
			return t->rules[i].kind;
	return -1;
}

int oc_table_set(struct oc_table *t, const char *code, size_t len, enum oc_kind kind)
{
	struct oc_rule *r = NULL;
	uint32_t i;

	if (!oc_rule_kind_ok(kind) || !code || len == 0 || len > OC_CODE_MAX)
		return -1;
	for (i = 0; i < t->n && !r; i++)
		if (oc_code_eq(&t->rules[i], code, len))
			r = &t->rules[i];
	if (!r) {
		if (t->n >= t->cap)
			return -1;
		r = &t->rules[t->n++];
		r->len = (uint8_t)len;
		for (i = 0; i < len; i++)
			r->code[i] = (char)oc_lower((unsigned char)code[i]);
		r->code[len] = '\0';
	}
	r->kind = (uint8_t)kind;
	return 0;
}

int oc_table_set_unknown(struct oc_table *t, enum oc_kind kind)
{
	if (!oc_rule_kind_ok(kind))
		return -1;
	t->unknown_kind = (uint8_t)kind;
	return 0;
}

/* Case-insensitive equality of a borrowed string with a C literal. */
static int oc_str_is(struct pay_str s, const char *lit)
{
	size_t i, n = strlen(lit);

	if (!s.ptr || s.len != n)
		return 0;
	for (i = 0; i < n; i++)
		if (oc_lower((unsigned char)s.ptr[i]) != lit[i])
			return 0;
	return 1;
}

static enum oc_rl oc_rl_of(struct pay_str r)
{
	static const struct { const char *name; enum oc_rl rl; } map[] = {
		{ "global-rate",          OC_RL_GLOBAL_RATE },
		{ "global-concurrency",   OC_RL_GLOBAL_CONCURRENCY },
		{ "endpoint-rate",        OC_RL_ENDPOINT_RATE },
		{ "endpoint-concurrency", OC_RL_ENDPOINT_CONCURRENCY },
		{ "resource-specific",    OC_RL_RESOURCE },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (oc_str_is(r, map[i].name))
			return map[i].rl;
	return OC_RL_OTHER;
}

/* A card decline: look the decline code up, then the error code (Stripe puts
 * expired_card or incorrect_cvc in `code` with no decline_code). */
static enum oc_kind oc_decline_kind(const struct oc_table *t, const struct pay_outcome *o)
{
	int k = -1;

	if (o->decline.ptr && o->decline.len)
		k = oc_table_find(t, o->decline.ptr, o->decline.len);
	if (k < 0 && o->err_code.ptr && o->err_code.len)
		k = oc_table_find(t, o->err_code.ptr, o->err_code.len);
	return k < 0 ? (enum oc_kind)t->unknown_kind : (enum oc_kind)k;
}

struct oc_class oc_classify(const struct oc_table *t, const struct pay_outcome *o,
                            int64_t slow_ms)
{
	struct oc_class c = { OC_PSP_ERROR, OC_RL_NONE, 0 };
	int64_t st = o->status;

	if (slow_ms > 0 && o->latency_ms > slow_ms)
		c.flags |= OC_F_SLOW;
	if (oc_str_is(o->should_retry, "true"))
		c.flags |= OC_F_RETRY_YES;
	else if (oc_str_is(o->should_retry, "false"))
		c.flags |= OC_F_RETRY_NO;

	if (st <= 0) {
		c.flags |= OC_F_TIMEOUT;
	} else if (st == 504) {
		c.flags |= OC_F_GW_TIMEOUT;
	} else if (st >= 200 && st <= 299) {
		c.kind = OC_SUCCESS;
	} else if (st == 429) {
		/* present but empty counts as absent: HAProxy sends "" for a missing header
		 * with some sample fetches */
		if (o->rl_reason.ptr && o->rl_reason.len) {
			c.kind = OC_RATE_LIMITED;
			c.rl = oc_rl_of(o->rl_reason);
		} else {
			c.kind = OC_LOCK_CONFLICT;
		}
	} else if (st == 402 || (st >= 400 && st <= 499 && oc_str_is(o->err_type, "card_error"))) {
		c.kind = oc_decline_kind(t, o);
	} else if (st >= 400 && st <= 499) {
		c.kind = OC_CLIENT_ERROR;
	}
	/* 5xx and anything else stay OC_PSP_ERROR */
	return c;
}

const char *oc_kind_name(enum oc_kind k)
{
	return ((unsigned)k < OC_KIND_COUNT) ? oc_kind_names[k] : "unknown";
}
