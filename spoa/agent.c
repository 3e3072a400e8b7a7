/* agent.c: SPOE messages ↔ the engine (see agent.h).
 * Must not allocate, block or log: one call per NOTIFY on the decision path. */
#include <string.h>

#include "agent.h"
#include "policy.h"
#include "spop.h"

#define NAME_IS(s, lit) ((s).len == sizeof(lit) - 1 && memcmp((s).ptr, lit, sizeof(lit) - 1) == 0)

/* String-like argument → pay_str. NULL (absent sample) stays absent; other types are
 * counted as bad and treated as absent. */
static void arg_str(struct agent *a, const struct spop_data *d, struct pay_str *out)
{
	if (d->type == SPOP_DATA_STR || d->type == SPOP_DATA_BIN) {
		out->ptr = d->v.s.ptr;
		out->len = d->v.s.len > UINT32_MAX ? UINT32_MAX : (uint32_t)d->v.s.len;
	} else if (d->type != SPOP_DATA_NULL) {
		a->counts.bad_args++;
	}
}

/* Integer argument: any integer type, or a decimal string (req.body_param gives
 * strings). Returns 1 with *v set, 0 when absent or not a number. */
static int arg_int(struct agent *a, const struct spop_data *d, int64_t *v)
{
	switch (d->type) {
	case SPOP_DATA_INT32:
	case SPOP_DATA_INT64:
		*v = d->v.i;
		return 1;
	case SPOP_DATA_UINT32:
	case SPOP_DATA_UINT64:
		*v = d->v.u > INT64_MAX ? INT64_MAX : (int64_t)d->v.u;
		return 1;
	case SPOP_DATA_STR: {
		const char *s = d->v.s.ptr, *e = s + d->v.s.len;
		int neg = 0;
		int64_t x = 0;

		if (s < e && (*s == '-' || *s == '+'))
			neg = *s++ == '-';
		if (s == e || e - s > 18) /* 18 digits never overflow int64 */
			break;
		for (; s < e; s++) {
			if (*s < '0' || *s > '9')
				goto bad;
			x = x * 10 + (*s - '0');
		}
		*v = neg ? -x : x;
		return 1;
	}
	case SPOP_DATA_NULL:
		return 0;
	default:
		break;
	}
bad:
	a->counts.bad_args++;
	return 0;
}

/* Reads the nargs arguments of a pay-request into *rq. */
static int read_request(struct agent *a, const uint8_t **p, const uint8_t *end, unsigned nargs,
                        struct pay_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	while (nargs--) {
		struct spop_str k;
		struct spop_data d;

		if (spop_kv_get(p, end, &k, &d) < 0)
			return -1;
		switch (k.len) {
		case 2:
			if (NAME_IS(k, "id")) arg_str(a, &d, &rq->id);
			break;
		case 4:
			if (NAME_IS(k, "path")) arg_str(a, &d, &rq->path);
			else if (NAME_IS(k, "idem")) arg_str(a, &d, &rq->idem);
			break;
		case 5:
			if (NAME_IS(k, "class")) arg_str(a, &d, &rq->class_hint);
			break;
		case 6:
			if (NAME_IS(k, "method")) arg_str(a, &d, &rq->method);
			else if (NAME_IS(k, "amount")) rq->has_amount = arg_int(a, &d, &rq->amount);
			else if (NAME_IS(k, "charge")) arg_str(a, &d, &rq->charge);
			break;
		case 7:
			if (NAME_IS(k, "account")) arg_str(a, &d, &rq->account);
			break;
		case 8:
			if (NAME_IS(k, "currency")) arg_str(a, &d, &rq->currency);
			else if (NAME_IS(k, "customer")) arg_str(a, &d, &rq->customer);
			break;
		case 10:
			if (NAME_IS(k, "card_brand")) arg_str(a, &d, &rq->card_brand);
			break;
		case 12:
			if (NAME_IS(k, "card_country")) arg_str(a, &d, &rq->card_country);
			else if (NAME_IS(k, "card_funding")) arg_str(a, &d, &rq->card_funding);
			break;
		case 14:
			if (NAME_IS(k, "payment_intent")) arg_str(a, &d, &rq->payment_intent);
			break;
		default:
			break;
		}
	}
	return 0;
}

static int read_outcome(struct agent *a, const uint8_t **p, const uint8_t *end, unsigned nargs,
                        struct pay_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->latency_ms = -1;
	while (nargs--) {
		struct spop_str k;
		struct spop_data d;
		int64_t v;

		if (spop_kv_get(p, end, &k, &d) < 0)
			return -1;
		if (NAME_IS(k, "id")) arg_str(a, &d, &o->id);
		else if (NAME_IS(k, "decision")) arg_str(a, &d, &o->decision);
		else if (NAME_IS(k, "backend")) arg_str(a, &d, &o->backend);
		else if (NAME_IS(k, "status")) { if (arg_int(a, &d, &v)) o->status = v; }
		else if (NAME_IS(k, "latency_ms")) { if (arg_int(a, &d, &v)) o->latency_ms = v; }
		else if (NAME_IS(k, "should_retry")) arg_str(a, &d, &o->should_retry);
		else if (NAME_IS(k, "rl_reason")) arg_str(a, &d, &o->rl_reason);
		else if (NAME_IS(k, "err_type")) arg_str(a, &d, &o->err_type);
		else if (NAME_IS(k, "err_code")) arg_str(a, &d, &o->err_code);
		else if (NAME_IS(k, "decline")) arg_str(a, &d, &o->decline);
		else if (NAME_IS(k, "object")) arg_str(a, &d, &o->object);
		else if (NAME_IS(k, "idem")) arg_str(a, &d, &o->idem);
		else if (NAME_IS(k, "account")) arg_str(a, &d, &o->account);
	}
	return 0;
}

static const char *const verdict_names[] = {
	[PAY_ALLOW] = "allow", [PAY_QUEUE] = "queue", [PAY_REJECT] = "reject",
};

/* Writes stmt whole or not at all (w is never left overflowed by it). */
#define OPTIONAL(w, stmt) do { uint8_t *save_ = (w)->p; stmt; \
	if ((w)->overflow) { (w)->p = save_; (w)->overflow = false; } } while (0)

/* The verdict as txn.pay.* variables, most important first, so that a small
 * max-frame-size loses the explanations before the routing. verdict + backend go
 * together or not at all: a verdict that cannot carry its backend is dropped whole
 * (only possible with a huge backend name in a tiny frame) and counted. Returns 0, or
 * -1 when dropped. */
int agent_put_verdict(struct spop_wbuf *w, const struct pay_verdict *v)
{
	const char *verdict = verdict_names[v->verdict <= PAY_REJECT ? v->verdict : PAY_ALLOW];
	uint8_t *start = w->p;

	spop_put_set_var_str(w, SPOP_SCOPE_TXN, "verdict", verdict, strlen(verdict));
	spop_put_set_var_str(w, SPOP_SCOPE_TXN, "backend", v->backend, strlen(v->backend));
	if (w->overflow) {
		w->p = start;
		w->overflow = false;
		return -1;
	}
	OPTIONAL(w, spop_put_set_var_int(w, SPOP_SCOPE_TXN, "prio", v->prio));
	OPTIONAL(w, spop_put_set_var_int(w, SPOP_SCOPE_TXN, "offset", v->offset_ms));
	if (v->verdict == PAY_REJECT)
		OPTIONAL(w, spop_put_set_var_int(w, SPOP_SCOPE_TXN, "retry_after", v->retry_after_s));
	OPTIONAL(w, spop_put_set_var_str(w, SPOP_SCOPE_TXN, "decision", v->decision, v->decision_len));
	OPTIONAL(w, spop_put_set_var_str(w, SPOP_SCOPE_TXN, "class", v->class_name, strlen(v->class_name)));
	OPTIONAL(w, spop_put_set_var_str(w, SPOP_SCOPE_TXN, "reason", v->reason, v->reason_len));
	return 0;
}

int agent_notify(struct agent *a, const uint8_t *p, const uint8_t *end, struct spop_wbuf *w)
{
	uint8_t *first = w->p;
	bool decided = false;

	a->hold = false;
	while (p < end) {
		struct spop_str name;
		unsigned nargs;

		if (spop_msg_get(&p, end, &name, &nargs) < 0)
			return -1;
		/* One decision per NOTIFY: a second pay-request in the same frame (a group
		 * misconfigured with it twice) would set every variable again and take budget
		 * for a verdict nobody reads, so it is skipped like an unknown message. */
		if (NAME_IS(name, "pay-request") && !decided) {
			struct pay_request rq;
			struct pay_verdict v;

			if (read_request(a, &p, end, nargs, &rq) < 0)
				return -1;
			pol_decide(a->engine, a->worker, &rq, a->now_us, &v);
			decided = true;
			a->counts.requests++;
			a->counts.allow += v.verdict == PAY_ALLOW;
			a->counts.queue += v.verdict == PAY_QUEUE;
			a->counts.reject += v.verdict == PAY_REJECT;
			if (agent_put_verdict(w, &v) < 0)
				a->counts.truncated++;
			else if (v.claim && a->claims) {
				a->hold = true;
				a->held = v;
			}
		} else if (NAME_IS(name, "pay-response")) {
			struct pay_outcome o;

			if (read_outcome(a, &p, end, nargs, &o) < 0)
				return -1;
			pol_observe(a->engine, a->worker, &o, a->now_us);
			if (a->upstream && o.latency_ms >= 0)
				hist_add(a->upstream, (uint64_t)o.latency_ms * 1000, 1);
			a->counts.responses++;
		} else {
			struct spop_str k;
			struct spop_data d;

			if (NAME_IS(name, "pay-request"))
				a->counts.duplicates++;
			else
				a->counts.unknown++;
			while (nargs--)
				if (spop_kv_get(&p, end, &k, &d) < 0)
					return -1;
		}
	}
	/* Never an empty ACK: early 3.1 stalled on those until its processing timeout. */
	if (w->p == first)
		spop_put_set_var_int(w, SPOP_SCOPE_TXN, "ack", 1);
	return 0;
}
