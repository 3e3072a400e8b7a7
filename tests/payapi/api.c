/* api.c: the emulated payment API's Stripe routes: payment intents, charges, refunds,
 * customers, subscriptions, setup intents, lists, declines, and the idempotency-key
 * rules, on one instance's objects. An object belongs to the instance and Stripe-Account
 * that created it: anywhere else it does not exist (404 resource_missing). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "payapi.h"

static void pa_no_such(struct pa_resp *rs, enum pa_type type, const char *id, size_t n)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "No such %s: '%.*s'", pa_types[type].object,
	         (int)(n > 40 ? 40 : n), pa_token_ok(id, n, 64) ? id : "?");
	pa_simple_error(rs, 404, "invalid_request_error", "resource_missing", "id", msg);
}

static void pa_unexpected_state(struct pa_resp *rs, const struct pa_obj *o)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "This %s's status is %s, which does not allow this action.",
	         pa_types[o->type].object, pa_status_names[o->status]);
	pa_simple_error(rs, 400, "invalid_request_error",
	                o->type == PA_SETI ? "setup_intent_unexpected_state"
	                                   : "payment_intent_unexpected_state", NULL, msg);
}

/* ---- objects as JSON ------------------------------------------------------------------ */

static void jw_id_or_null(struct pa_jw *w, const char *key, const char *id)
{
	if (id[0])
		jw_fmt(w, ",\"%s\":\"%s\"", key, id);
	else
		jw_fmt(w, ",\"%s\":null", key);
}

/* Writes one object without the instance tail (so it can be nested in lists). */
static void pa_obj_json(struct pa_jw *w, const struct pa_obj *o)
{
	jw_fmt(w, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%" PRId64 ",\"livemode\":false",
	       o->id, pa_types[o->type].object, o->created);
	switch (o->type) {
	case PA_PI:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"amount_capturable\":%" PRId64
		       ",\"amount_received\":%" PRId64 ",\"capture_method\":\"%s\",\"currency\":\"%s\"",
		       o->amount, o->status == ST_REQ_CAPTURE ? o->amount : 0, o->amount_received,
		       (o->flags & PA_OBJ_MANUAL) ? "manual" : "automatic", o->currency);
		jw_id_or_null(w, "customer", o->link2);
		jw_id_or_null(w, "latest_charge", o->link);
		jw_id_or_null(w, "payment_method", o->pm);
		jw_cstr(w, ",\"payment_method_types\":[\"card\"]");
		break;
	case PA_CH:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"amount_captured\":%" PRId64
		       ",\"amount_refunded\":%" PRId64 ",\"captured\":%s,\"currency\":\"%s\""
		       ",\"paid\":%s,\"refunded\":%s",
		       o->amount, o->amount_received, o->amount_refunded,
		       o->amount_received > 0 ? "true" : "false", o->currency,
		       o->status == ST_SUCCEEDED ? "true" : "false",
		       o->amount_refunded >= o->amount ? "true" : "false");
		jw_id_or_null(w, "payment_intent", o->link);
		jw_id_or_null(w, "payment_method", o->pm);
		break;
	case PA_RE:
		jw_fmt(w, ",\"amount\":%" PRId64 ",\"currency\":\"%s\"", o->amount, o->currency);
		jw_id_or_null(w, "charge", o->link2);
		jw_id_or_null(w, "payment_intent", o->link);
		break;
	case PA_SUB:
		jw_id_or_null(w, "customer", o->link);
		break;
	case PA_SETI:
		jw_id_or_null(w, "payment_method", o->pm);
		break;
	default:
		break;
	}
	if (o->status == ST_DELETED)
		jw_cstr(w, ",\"deleted\":true");
	else if (o->type != PA_CUS)
		jw_fmt(w, ",\"status\":\"%s\"", pa_status_names[o->status]);
	jw_cstr(w, ",\"metadata\":{}}");
}

static void pa_reply_obj(struct pa_resp *rs, const struct pa_obj *o)
{
	rs->status = 200;
	rs->body.len = 0;
	rs->body.full = false;
	pa_obj_json(&rs->body, o);
	rs->body.len--;              /* reopen the object for the instance tail */
	pa_json_tail(&rs->body);
}

static void pa_reply_list(struct pa_resp *rs, const struct pa_req *rq, enum pa_type type,
                          uint64_t acct)
{
	struct pa_jw *w = &rs->body;
	char lim[16], after[64], pi_f[64], cus_f[64];
	uint64_t limit = 10, i, n = 0, scanned = 0;
	bool more = false, started;
	int na = pa_param(rq->query, rq->query_len, "starting_after", after, sizeof(after));
	int npi = pa_param(rq->query, rq->query_len, "payment_intent", pi_f, sizeof(pi_f));
	int ncus = pa_param(rq->query, rq->query_len, "customer", cus_f, sizeof(cus_f));

	if (pa_param(rq->query, rq->query_len, "limit", lim, sizeof(lim)) >= 0 &&
	    (!pa_parse_u64(lim, strlen(lim), 100, &limit) || limit == 0)) {
		pa_invalid(rs, "limit");
		return;
	}
	/* Stripe's cursor (the SDKs' auto-pagination sends it) and the filters the flows use:
	 * refunds and charges of a payment intent, payment intents and subscriptions of a
	 * customer. Lists are newest first, so "after" means older. */
	if (na == -2 || (na >= 0 && !pa_token_ok(after, (size_t)na, sizeof(after) - 1))) {
		pa_invalid(rs, "starting_after");
		return;
	}
	if (npi == -2 || (npi >= 0 && !pa_token_ok(pi_f, (size_t)npi, sizeof(pi_f) - 1))) {
		pa_invalid(rs, "payment_intent");
		return;
	}
	if (ncus == -2 || (ncus >= 0 && !pa_token_ok(cus_f, (size_t)ncus, sizeof(cus_f) - 1))) {
		pa_invalid(rs, "customer");
		return;
	}
	started = na < 0;
	w->len = 0;
	jw_cstr(w, "{\"object\":\"list\",\"url\":");
	jw_qstr(w, rq->path, rq->path_len);
	jw_cstr(w, ",\"data\":[");
	for (i = pa.obj_seq; type && i > 0 && scanned < PA_LIST_SCAN && scanned < pa.obj_cap;
	     i--, scanned++) {
		const struct pa_obj *o = &pa.objs[(i - 1) % pa.obj_cap];
		size_t before = w->len;

		if (!(o->flags & PA_OBJ_LIVE) || o->type != type || o->acct != acct ||
		    o->status == ST_DELETED)
			continue;
		if (!started) {
			started = strcmp(o->id, after) == 0;
			continue;
		}
		if (npi >= 0 && ((type != PA_CH && type != PA_RE) || strcmp(o->link, pi_f)))
			continue;
		if (ncus >= 0 && (type == PA_PI ? strcmp(o->link2, cus_f) :
		                  type == PA_SUB ? strcmp(o->link, cus_f) : 1))
			continue;
		if (n == limit) {
			more = true;
			break;
		}
		if (n)
			jw_raw(w, ",", 1);
		pa_obj_json(w, o);
		if (w->full || w->cap - w->len < 256) {  /* keep room for the tail */
			w->len = before;
			w->full = false;
			more = true;
			break;
		}
		n++;
	}
	jw_fmt(w, "],\"has_more\":%s", more ? "true" : "false");
	pa_json_tail(w);
}

/* ---- payments: declines, confirmations ------------------------------------------------ */

struct pa_decline {
	const char *pm;        /* Stripe test payment method */
	const char *code;      /* error.code */
	const char *decline;   /* error.decline_code */
	const char *message;
};

static const struct pa_decline pa_declines[] = {
	{ "pm_card_chargeDeclined", "card_declined", "generic_decline",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
	  "Your card has insufficient funds." },
	{ "pm_card_chargeDeclinedLostCard", "card_declined", "lost_card",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedDoNotHonor", "card_declined", "do_not_honor",
	  "Your card was declined." },
	{ "pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card",
	  "Your card has expired." },
	{ "pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc",
	  "Your card's security code is incorrect." },
	{ "pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error",
	  "An error occurred while processing your card. Try again in a little bit." },
	{ "pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined",
	  "card_velocity_exceeded", "Your card was declined." },
};

/* The decline a payment would meet: from the header X-Payapi-Decline (any decline code),
 * else from the payment method. NULL: it is authorised. `tmp` holds a header-made one. */
static const struct pa_decline *pa_decline_for(const struct pa_req *rq, const char *pm,
                                               struct pa_decline *tmp, char *code_buf,
                                               size_t code_cap)
{
	size_t i;

	if (rq->decline_len && pa_token_ok(rq->decline, rq->decline_len, 40) &&
	    rq->decline_len < code_cap) {
		memcpy(code_buf, rq->decline, rq->decline_len);
		code_buf[rq->decline_len] = '\0';
		for (i = 0; i < sizeof(pa_declines) / sizeof(pa_declines[0]); i++)
			if (strcmp(pa_declines[i].decline, code_buf) == 0)
				return &pa_declines[i];
		*tmp = (struct pa_decline){ NULL, "card_declined", code_buf, "Your card was declined." };
		return tmp;
	}
	for (i = 0; pm && i < sizeof(pa_declines) / sizeof(pa_declines[0]); i++)
		if (strcmp(pa_declines[i].pm, pm) == 0)
			return &pa_declines[i];
	return NULL;
}

/* Reads an optional payment_method parameter into o->pm. false: answered 400. */
static bool pa_take_pm(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o)
{
	char pm[sizeof(o->pm)];
	int n = pa_param(rq->body, rq->body_len, "payment_method", pm, sizeof(pm));

	if (n == -1)
		return true;
	if (n < 0 || !pa_token_ok(pm, (size_t)n, sizeof(pm) - 1)) {
		pa_invalid(rs, "payment_method");
		return false;
	}
	memcpy(o->pm, pm, (size_t)n + 1);
	return true;
}

/* Confirms payment intent `pi` (its payment method is set). Creates the charge on
 * success; on a decline answers 402 and returns the intent to requires_payment_method. */
static void pa_pi_confirm(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *pi)
{
	struct pa_decline tmp;
	char code[48];
	const struct pa_decline *d = pa_decline_for(rq, pi->pm, &tmp, code, sizeof(code));
	struct pa_obj *ch;

	if (d) {
		pi->status = ST_REQ_PM;
		pa_error(rs, 402, "card_error", d->code, d->decline, NULL, d->message);
		jw_fmt(&rs->body, ",\"payment_intent\":{\"id\":\"%s\",\"object\":\"payment_intent\""
		       ",\"status\":\"%s\"}", pi->id, pa_status_names[pi->status]);
		pa_error_end(rs);
		rs->should_retry = "false";
		return;
	}
	ch = pa_obj_new(PA_CH, pi->acct, pi);
	ch->amount = pi->amount;
	memcpy(ch->currency, pi->currency, sizeof(ch->currency));
	memcpy(ch->pm, pi->pm, sizeof(ch->pm));
	memcpy(ch->link, pi->id, sizeof(ch->link));
	ch->status = ST_SUCCEEDED;
	memcpy(pi->link, ch->id, sizeof(pi->link));
	if (pi->flags & PA_OBJ_MANUAL) {
		pi->status = ST_REQ_CAPTURE;
	} else {
		pi->status = ST_SUCCEEDED;
		pi->amount_received = pi->amount;
		ch->amount_received = ch->amount;
	}
	pa_reply_obj(rs, pi);
}

/* amount (required, 1..99999999) and currency (required, 3 letters, kept lower case). */
static bool pa_take_amount(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o,
                           bool required)
{
	char v[32];
	uint64_t amount;
	int n = pa_param(rq->body, rq->body_len, "amount", v, sizeof(v));
	int i;

	if (n == -1 && required) {
		pa_missing(rs, "amount");
		return false;
	}
	if (n != -1) {
		if (n < 0 || !pa_parse_u64(v, (size_t)n, 99999999, &amount) || amount == 0) {
			pa_invalid(rs, "amount");
			return false;
		}
		o->amount = (int64_t)amount;
	}
	n = pa_param(rq->body, rq->body_len, "currency", v, sizeof(v));
	if (n == -1 && required) {
		pa_missing(rs, "currency");
		return false;
	}
	if (n != -1) {
		if (n != 3) {
			pa_invalid(rs, "currency");
			return false;
		}
		for (i = 0; i < 3; i++) {
			char ch = v[i];

			if (ch >= 'A' && ch <= 'Z')
				ch += 32;
			if (ch < 'a' || ch > 'z') {
				pa_invalid(rs, "currency");
				return false;
			}
			o->currency[i] = ch;
		}
		o->currency[3] = '\0';
	}
	return true;
}

/* A reference to another object of this instance in parameter `param`; false: answered. */
static bool pa_take_ref(struct pa_resp *rs, const struct pa_req *rq, const char *param,
                        enum pa_type type, uint64_t acct, bool required, struct pa_obj **out)
{
	char v[64];
	int n = pa_param(rq->body, rq->body_len, param, v, sizeof(v));

	*out = NULL;
	if (n == -1) {
		if (required)
			pa_missing(rs, param);
		return !required;
	}
	if (n < 0 || !pa_token_ok(v, (size_t)n, sizeof(v) - 1)) {
		pa_invalid(rs, param);
		return false;
	}
	*out = pa_obj_find(v, (size_t)n, acct);
	if (!*out || (*out)->type != type) {
		pa_no_such(rs, type, v, (size_t)n);
		return false;
	}
	return true;
}

static bool pa_flag_param(const struct pa_req *rq, const char *param, const char *value)
{
	char v[16];
	int n = pa_param(rq->body, rq->body_len, param, v, sizeof(v));

	return n >= 0 && pa_eq(v, (size_t)n, value);
}

static void pa_pi_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj tmp = { 0 }, *cus = NULL, *pi;

	if (!pa_take_amount(rs, rq, &tmp, true) || !pa_take_pm(rs, rq, &tmp) ||
	    !pa_take_ref(rs, rq, "customer", PA_CUS, acct, false, &cus))
		return;
	pi = pa_obj_new(PA_PI, acct, NULL);
	pi->amount = tmp.amount;
	memcpy(pi->currency, tmp.currency, sizeof(pi->currency));
	memcpy(pi->pm, tmp.pm, sizeof(pi->pm));
	if (cus)
		memcpy(pi->link2, cus->id, sizeof(pi->link2));
	if (pa_flag_param(rq, "capture_method", "manual"))
		pi->flags |= PA_OBJ_MANUAL;
	pi->status = pi->pm[0] ? ST_REQ_CONFIRM : ST_REQ_PM;
	if (pa_flag_param(rq, "confirm", "true")) {
		if (!pi->pm[0]) {
			pa_missing(rs, "payment_method");
			return;
		}
		pa_pi_confirm(rs, rq, pi);
		return;
	}
	pa_reply_obj(rs, pi);
}

/* An intent (payment or setup) may be confirmed: its state allows it and it has a payment
 * method, possibly given now. false: answered 400. */
static bool pa_confirmable(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *o)
{
	if (o->status != ST_REQ_PM && o->status != ST_REQ_CONFIRM) {
		pa_unexpected_state(rs, o);
		return false;
	}
	if (!pa_take_pm(rs, rq, o))
		return false;
	if (!o->pm[0]) {
		pa_missing(rs, "payment_method");
		return false;
	}
	return true;
}

static void pa_pi_action(struct pa_resp *rs, const struct pa_req *rq, struct pa_obj *pi,
                         const char *action, size_t alen)
{
	if (pa_eq(action, alen, "confirm")) {
		if (pa_confirmable(rs, rq, pi))
			pa_pi_confirm(rs, rq, pi);
	} else if (pa_eq(action, alen, "capture")) {
		struct pa_obj *ch;

		if (pi->status != ST_REQ_CAPTURE) {
			pa_unexpected_state(rs, pi);
			return;
		}
		pi->status = ST_SUCCEEDED;
		pi->amount_received = pi->amount;
		ch = pa_obj_find(pi->link, strlen(pi->link), pi->acct);
		if (ch)
			ch->amount_received = ch->amount;
		pa_reply_obj(rs, pi);
	} else if (pa_eq(action, alen, "cancel")) {
		if (pi->status == ST_SUCCEEDED || pi->status == ST_CANCELED) {
			pa_unexpected_state(rs, pi);
			return;
		}
		pi->status = ST_CANCELED;
		pa_reply_obj(rs, pi);
	} else {
		pa_simple_error(rs, 404, "invalid_request_error", NULL, NULL,
		                "Unrecognized request URL.");
	}
}

static void pa_refund_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj *pi = NULL, *ch = NULL, *re, tmp = { 0 };
	int64_t left;

	if (!pa_take_ref(rs, rq, "payment_intent", PA_PI, acct, false, &pi) ||
	    !pa_take_ref(rs, rq, "charge", PA_CH, acct, false, &ch))
		return;
	if (!pi && !ch) {
		pa_missing(rs, "payment_intent");
		return;
	}
	if (pi && !ch)
		ch = pa_obj_find(pi->link, strlen(pi->link), acct);
	if (!ch || ch->status != ST_SUCCEEDED || ch->amount_received == 0) {
		pa_simple_error(rs, 400, "invalid_request_error", "charge_not_refundable", NULL,
		                "This payment has no captured charge to refund.");
		return;
	}
	if (!pa_take_amount(rs, rq, &tmp, false))
		return;
	left = ch->amount_received - ch->amount_refunded;
	if (!tmp.amount)
		tmp.amount = left;
	if (left <= 0) {
		pa_simple_error(rs, 400, "invalid_request_error", "charge_already_refunded", NULL,
		                "This charge has already been refunded.");
		return;
	}
	if (tmp.amount > left) {
		pa_simple_error(rs, 400, "invalid_request_error", "amount_too_large", "amount",
		                "Refund amount is greater than the unrefunded amount.");
		return;
	}
	re = pa_obj_new(PA_RE, acct, ch);
	/* the charge may be the oldest object: pa_obj_new kept it, the intent is re-found */
	ch->amount_refunded += tmp.amount;
	re->amount = tmp.amount;
	re->status = ST_SUCCEEDED;
	memcpy(re->currency, ch->currency, sizeof(re->currency));
	memcpy(re->link, ch->link, sizeof(re->link));
	memcpy(re->link2, ch->id, sizeof(re->link2));
	pa_reply_obj(rs, re);
}

static void pa_charge_create(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_obj tmp = { 0 }, *ch;
	char src[48];
	struct pa_decline dtmp;
	char code[48];
	const struct pa_decline *d;
	int n;

	if (!pa_take_amount(rs, rq, &tmp, true))
		return;
	n = pa_param(rq->body, rq->body_len, "source", src, sizeof(src));
	if (n < 0 || !pa_token_ok(src, (size_t)n, sizeof(src) - 1)) {
		if (!pa_take_pm(rs, rq, &tmp))
			return;
		if (!tmp.pm[0]) {
			pa_missing(rs, "source");
			return;
		}
	} else {
		memcpy(tmp.pm, src, (size_t)n + 1);
	}
	d = pa_decline_for(rq, tmp.pm, &dtmp, code, sizeof(code));
	if (d) {
		pa_error(rs, 402, "card_error", d->code, d->decline, NULL, d->message);
		pa_error_end(rs);
		rs->should_retry = "false";
		return;
	}
	ch = pa_obj_new(PA_CH, acct, NULL);
	ch->amount = tmp.amount;
	memcpy(ch->currency, tmp.currency, sizeof(ch->currency));
	memcpy(ch->pm, tmp.pm, sizeof(ch->pm));
	ch->status = ST_SUCCEEDED;
	if (!pa_flag_param(rq, "capture", "false"))
		ch->amount_received = ch->amount;
	pa_reply_obj(rs, ch);
}

/* ---- routing -------------------------------------------------------------------------- */

#define PA_SEG_MAX 6

struct pa_segs {
	const char *s[PA_SEG_MAX];
	size_t n[PA_SEG_MAX];
	int count;
};

/* Splits "/v1/a/b" into segments; false if there are too many or an empty one. */
static bool pa_split(const char *p, size_t len, struct pa_segs *sg)
{
	size_t i = 0;

	sg->count = 0;
	if (len == 0 || p[0] != '/')
		return false;
	while (i < len) {
		size_t start = ++i;

		while (i < len && p[i] != '/')
			i++;
		if (i == start) {
			if (i == len)   /* one trailing slash is tolerated */
				break;
			return false;
		}
		if (sg->count == PA_SEG_MAX)
			return false;
		sg->s[sg->count] = p + start;
		sg->n[sg->count] = i - start;
		sg->count++;
	}
	return true;
}

static enum pa_type pa_type_of(const char *seg, size_t n)
{
	int t;

	for (t = 1; t < PA_TYPE_N; t++)
		if (pa_eq(seg, n, pa_types[t].plural))
			return (enum pa_type)t;
	return 0;
}

/* Stripe's list endpoints that exist but that this emulator never fills. */
static bool pa_is_empty_list(const char *seg, size_t n)
{
	static const char *const names[] = {
		"events", "balance_transactions", "payment_methods", "invoices", "products",
		"prices", "payouts", "disputes", "transfers", "checkout",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (pa_eq(seg, n, names[i]))
			return true;
	return false;
}

static void pa_route(struct pa_resp *rs, const struct pa_req *rq, uint64_t acct)
{
	struct pa_segs sg;
	enum pa_type type;
	struct pa_obj *o;

	if (!pa_split(rq->path, rq->path_len, &sg) || sg.count < 2 || !pa_eq(sg.s[0], sg.n[0], "v1")) {
		pa_unrecognized(rs);
		return;
	}
	if (rq->method == PA_OTHER) {
		pa_simple_error(rs, 405, "invalid_request_error", NULL, NULL,
		                "Unsupported HTTP method.");
		return;
	}
	type = pa_type_of(sg.s[1], sg.n[1]);
	if (!type) {
		if (sg.count == 2 && rq->method == PA_GET && pa_eq(sg.s[1], sg.n[1], "balance")) {
			jw_cstr(&rs->body, "{\"object\":\"balance\",\"available\":[],\"pending\":[],"
			        "\"livemode\":false");
			pa_json_tail(&rs->body);
		} else if (sg.count == 2 && rq->method == PA_GET && pa_is_empty_list(sg.s[1], sg.n[1])) {
			pa_reply_list(rs, rq, 0, acct);
		} else {
			pa_unrecognized(rs);
		}
		return;
	}
	if (sg.count == 2) {
		if (rq->method == PA_GET) {
			pa_reply_list(rs, rq, type, acct);
			return;
		}
		if (rq->method != PA_POST) {
			pa_unrecognized(rs);
			return;
		}
		switch (type) {
		case PA_PI:
			pa_pi_create(rs, rq, acct);
			return;
		case PA_CH:
			pa_charge_create(rs, rq, acct);
			return;
		case PA_RE:
			pa_refund_create(rs, rq, acct);
			return;
		case PA_CUS:
			o = pa_obj_new(PA_CUS, acct, NULL);
			o->status = ST_ACTIVE;
			pa_reply_obj(rs, o);
			return;
		case PA_SUB:
			if (!pa_take_ref(rs, rq, "customer", PA_CUS, acct, true, &o))
				return;
			{
				struct pa_obj *sub = pa_obj_new(PA_SUB, acct, o);

				memcpy(sub->link, o->id, sizeof(sub->link));
				sub->status = ST_ACTIVE;
				pa_reply_obj(rs, sub);
			}
			return;
		case PA_SETI: {
			struct pa_obj tmp = { 0 };

			if (!pa_take_pm(rs, rq, &tmp))
				return;
			o = pa_obj_new(PA_SETI, acct, NULL);
			memcpy(o->pm, tmp.pm, sizeof(o->pm));
			o->status = o->pm[0] ? ST_REQ_CONFIRM : ST_REQ_PM;
			pa_reply_obj(rs, o);
			return;
		}
		default:
			break;
		}
		pa_unrecognized(rs);
		return;
	}
	/* /v1/<type>/<id>[/<action>] */
	o = pa_obj_find(sg.s[2], sg.n[2], acct);
	if (!o || o->type != type) {
		if (sg.count <= 4)
			pa_no_such(rs, type, sg.s[2], sg.n[2]);
		else
			pa_unrecognized(rs);
		return;
	}
	if (sg.count == 3) {
		if (rq->method == PA_GET) {
			pa_reply_obj(rs, o);
		} else if (rq->method == PA_DELETE && (type == PA_CUS || type == PA_SUB)) {
			o->status = type == PA_CUS ? ST_DELETED : ST_CANCELED;
			pa_reply_obj(rs, o);
		} else if (rq->method == PA_POST) {
			/* update: amount/currency while not final, payment_method */
			struct pa_obj tmp = *o;

			if (type == PA_PI && (o->status == ST_SUCCEEDED || o->status == ST_CANCELED ||
			                      o->status == ST_REQ_CAPTURE)) {
				pa_unexpected_state(rs, o);
				return;
			}
			if ((type == PA_PI && !pa_take_amount(rs, rq, &tmp, false)) ||
			    ((type == PA_PI || type == PA_SETI) && !pa_take_pm(rs, rq, &tmp)))
				return;
			*o = tmp;
			if (type == PA_PI && o->pm[0] && o->status == ST_REQ_PM)
				o->status = ST_REQ_CONFIRM;
			pa_reply_obj(rs, o);
		} else {
			pa_unrecognized(rs);
		}
		return;
	}
	if (sg.count == 4 && rq->method == PA_POST && type == PA_PI) {
		pa_pi_action(rs, rq, o, sg.s[3], sg.n[3]);
		return;
	}
	if (sg.count == 4 && rq->method == PA_POST && type == PA_SETI) {
		if (pa_eq(sg.s[3], sg.n[3], "confirm")) {
			if (!pa_confirmable(rs, rq, o))
				return;
			o->status = ST_SUCCEEDED;
			pa_reply_obj(rs, o);
			return;
		}
		if (pa_eq(sg.s[3], sg.n[3], "cancel")) {
			if (o->status == ST_SUCCEEDED || o->status == ST_CANCELED) {
				pa_unexpected_state(rs, o);
				return;
			}
			o->status = ST_CANCELED;
			pa_reply_obj(rs, o);
			return;
		}
	}
	pa_unrecognized(rs);
}

/* ---- one request: faults, idempotency, then the route ------------------------------------ */

void pa_handle(struct pa_resp *rs, const struct pa_req *rq)
{
	static const char *const meth_names[] = { "GET", "POST", "DELETE", "OTHER" };
	uint64_t acct = 0, k1 = 0, k2 = 0, rh = 0;
	bool use_idem;
	struct pa_idem *e;

	if (pa_is_control(rq)) {
		pa_control(rs, rq);
		return;
	}
	pa.st.requests++;
	pa_arrival();
	if (pa_fault_refuse(rs))
		return;
	if (rq->acct_len)
		acct = pa_fnv(PA_FNV_BASIS, rq->acct, rq->acct_len) | 1;
	use_idem = rq->method == PA_POST && rq->idem_len > 0;
	if (use_idem) {
		k1 = pa_fnv(pa_fnv(PA_FNV_BASIS, &acct, sizeof(acct)), rq->idem, rq->idem_len);
		k2 = pa_fnv(pa_fnv(0x84222325cbf29ce4ULL, rq->idem, rq->idem_len), &acct, sizeof(acct));
		rh = pa_fnv(PA_FNV_BASIS, meth_names[rq->method], strlen(meth_names[rq->method]));
		rh = pa_fnv(pa_fnv(rh, rq->path, rq->path_len), "?", 1);
		rh = pa_fnv(rh, rq->body, rq->body_len);
		if (pa_fault_drop_first(rs, rq, k1, k2))
			return;
		e = pa_idem_find(k1, k2);
		if (e && e->req != rh) {
			pa_simple_error(rs, 400, "idempotency_error", NULL, NULL,
			                "Keys for idempotent requests can only be used with the same "
			                "parameters they were first used with.");
			rs->should_retry = "false";
			return;
		}
		if (e) {
			pa.st.replays++;
			rs->status = e->status;
			rs->replayed = true;
			rs->should_retry = e->should_retry == 1 ? "true" :
			                   e->should_retry == 2 ? "false" : NULL;
			jw_raw(&rs->body, e->body, e->body_len);
			return;
		}
	}
	if (pa_fault_lock(rs))
		return;
	if (!pa_fault_error(rs)) {
		uint64_t objects = pa.st.objects;

		pa_route(rs, rq, acct);
		if (use_idem && pa.st.objects > objects && rs->status / 100 == 2)
			pa_keylog_add(rq->idem, rq->idem_len);
	}
	/* Stripe saves a result once the endpoint started executing, 5xx included; failed
	 * validation (400) is not saved. */
	if (use_idem && !rs->body.full && rs->status != 400)
		pa_idem_store(k1, k2, rh, rs->status,
		              rs->should_retry ? (rs->should_retry[0] == 't' ? 1 : 2) : 0,
		              rs->body.buf, rs->body.len);
}
