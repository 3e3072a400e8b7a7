/* hapcfg.c: writes the HAProxy lines that a policy implies (payspoa haproxy-snippet) and
 * checks an HAProxy file's backends and agent address against a policy. Reads a loaded
 * policy only; never runs in the daemon.
 *
 * What the generated block does, and why, is explained once in haproxy/README.md
 * ("Generated from the policy", "Pins in HAProxy"); the comments it prints are the short
 * form. The same text must parse without a warning on HAProxy 2.6 and 3.x, so it uses
 * only keywords both document: peers/peer/table, track-sc0..2 and sc-set-gpt0 in
 * http-response (2.6 has three sticky counters), table_gpt0, field, json_query, nbsrv. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "hapcfg.h"
#include "logline.h"
#include "policy.h"

/* HAProxy's stick-table expiry is a 32-bit count of milliseconds: at most 24.8 days. */
#define HAPCFG_EXPIRE_MAX_S  (24u * 86400u)
/* Entries per table at most: 2^24, about 3.5 GB at the ~210 bytes an entry takes
 * (measured on 2.6: haproxy/README.md). Past its size a table drops its oldest entries,
 * which is safer than an HAProxy that grows until the kernel kills it. */
#define HAPCFG_SIZE_MAX      16777216.0
/* The agent's SPOE backend (payspoa.spoe.conf, `use-backend`). */
#define HAPCFG_SPOE_BACKEND  "spoe-payspoa"
#define HAPCFG_TABLES        "payspoa_pins"
#define HAPCFG_FLEET_PEERS   8  /* other nodes a fleet's pin tables name (PAY_PEER1..8) */

/* The outcome channel (PAY_OUTCOMES, read by HAProxy's conditional blocks when it parses
 * the file, 2.4+): "log" and "both" send the log line, anything but "log" sends
 * pay-response, so an unset or misspelt value keeps the pay-response default. */
#define HAPCFG_IF_LOG   ".if streq(\"${PAY_OUTCOMES}\",log) || streq(\"${PAY_OUTCOMES}\",both)\n"
#define HAPCFG_IF_SPOE  ".if !streq(\"${PAY_OUTCOMES}\",log)\n"

/* The log line's fields (spoa/logline.h): key, HAProxy expression. Strings go through
 * the json(utf8s) converter (2.6 has it; not the %{+json} log-format encoding, which
 * 2.6 lacks); HAProxy prints "-" for an absent sample. The response's fields come from
 * variables the http-response rules set: at log time the response is gone. */
static const char *const hapcfg_log_fields[][2] = {
	{ "decision", "%[var(txn.pay.decision),json(utf8s)]" },
	{ "backend", "%[be_name,json(utf8s)]" },
	{ "status", "%ST" },
	{ "latency_ms", "%[date(0,ms),sub(txn.pay_t0)]" },
	{ "term", "%ts" },
	{ "should_retry", "%[var(txn.pay_sr),json(utf8s)]" },
	{ "rl_reason", "%[var(txn.pay_rl),json(utf8s)]" },
	{ "err_type", "%[var(txn.pay_et),json(utf8s)]" },
	{ "err_code", "%[var(txn.pay_ec),json(utf8s)]" },
	{ "decline", "%[var(txn.pay_dc),json(utf8s)]" },
	{ "object", "%[var(txn.pay_new),json(utf8s)]" },
	{ "idem", "%[var(txn.pay_idem),hex]" },
	{ "account", "%[var(txn.pay_acct),json(utf8s)]" },
};

/* The local answers, shaped like Stripe's errors ({"error":{"type","code","message"}})
 * so that Stripe's SDKs parse them; Stripe-Should-Retry is the header every SDK obeys
 * before any other retry rule (haproxy/README.md, "What Stripe's SDKs do"). None of them
 * reached an account: retrying with the same key charges nothing twice. */
static const char hapcfg_fail_closed_body[] =
	"'{\"error\":{\"type\":\"api_error\",\"code\":\"routing_unavailable\","
	"\"message\":\"Payment routing is unavailable; retry later.\"}}'";
static const char hapcfg_refused_body[] =
	"'{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"currency_not_routable\","
	"\"message\":\"No payment account may take this currency under the routing policy.\"}}'";
static const char hapcfg_shed_body[] =
	"'{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"rate_limit\","
	"\"message\":\"Request shed by payspoa; retry after the delay in Retry-After.\"}}'";
static const char hapcfg_gone_body[] =
	"'{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"account_unavailable\","
	"\"message\":\"This request belongs to a payment account the routing policy no longer has.\"}}'";

/* FNV-1a, 32 bits. */
static uint32_t hapcfg_fnv(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* Ids live in [10000, 1009999]: above the small ids HAProxy gives other sections by
 * itself, within the 32-bit gpt0 and the int of a proxy id. Two names that land on the
 * same id: the later one in policy order takes the next free one (the loader keeps at
 * most POL_MAX_BACKENDS, so the probe ends). */
#define HAPCFG_ID_BASE  10000u
#define HAPCFG_ID_SPAN  1000000u

uint32_t hapcfg_backend_id(const struct policy *p, int b)
{
	uint32_t id = HAPCFG_ID_BASE + hapcfg_fnv(p->backends[b].name) % HAPCFG_ID_SPAN;
	int i;

again:
	for (i = 0; i < b; i++)
		if (hapcfg_backend_id(p, i) == id) {
			id = id + 1 == HAPCFG_ID_BASE + HAPCFG_ID_SPAN ? HAPCFG_ID_BASE : id + 1;
			goto again;
		}
	return id;
}

/* The environment variable holding backend b's server address: PAY_BE_<NAME>_ADDR,
 * the name upper-cased with every other character than [A-Z0-9] turned into '_'. */
static void hapcfg_addr_var(const char *name, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "PAY_BE_");

	for (; *name && n + 6 < cap; name++)
		out[n++] = isalnum((unsigned char)*name) ? (char)toupper((unsigned char)*name) : '_';
	snprintf(out + n, cap - n, "_ADDR");
}

static void hapcfg_currency(uint32_t v, char out[4])
{
	out[0] = (char)(v >> 16);
	out[1] = (char)(v >> 8);
	out[2] = (char)v;
	out[3] = '\0';
}

/* Backends the compliance rules allow for currency c whatever the card. HAProxy does not
 * know the card's region, so a rule limited to some regions is applied as if the card
 * were from one of them (the stricter choice); if that leaves nothing, only the rules
 * for every region apply. */
static uint64_t hapcfg_allowed(const struct policy *p, int c, bool with_regional)
{
	uint64_t allowed = ~0ULL;
	int i;

	for (i = 0; i < p->ncompliance; i++) {
		const struct pol_compliance *r = &p->compliance[i];

		if (r->regions && !with_regional)
			continue;
		if (r->currencies && !(r->currencies & (1ULL << c)))
			continue;
		allowed &= r->allowed;
	}
	return allowed;
}

/* The backend a request in currency c goes to without advice: among the enabled backends
 * that serve c and that compliance allows, the one with the lowest fee for a domestic
 * card (the card's region is the backend's) at the policy's nominal amount; policy order
 * breaks ties. -1: no backend may take c. */
static int hapcfg_preferred(const struct policy *p, int c)
{
	uint64_t serve = 0, cand;
	double best = 0;
	int i, pick = -1;

	for (i = 0; i < p->nbackends; i++)
		if (p->backends[i].enabled && (p->backends[i].currencies & (1ULL << c)))
			serve |= 1ULL << i;
	cand = serve & hapcfg_allowed(p, c, true);
	if (!cand)
		cand = serve & hapcfg_allowed(p, c, false);
	for (i = 0; i < p->nbackends; i++) {
		const struct pol_backend *b = &p->backends[i];
		double fee;

		if (!(cand & (1ULL << i)))
			continue;
		fee = cost_fee(&p->fees[b->fee], b, p->score.nominal_amount, b->region,
		               POL_FUND_ANY, c);
		if (pick < 0 || fee < best) {
			pick = i;
			best = fee;
		}
	}
	return pick;
}

/* Requests per second the policy's account budgets admit in all (the pin tables' rate). */
static double hapcfg_rate(const struct policy *p)
{
	double r = 0;
	int i;

	for (i = 0; i < p->naccounts; i++)
		r += p->accounts[i].budget.rate;
	return r > 0 ? r : p->thr.account.rate;
}

static void hapcfg_prefixes(FILE *f, const struct policy *p)
{
	int i;

	for (i = 0; i < p->pin.nprefixes; i++)
		fprintf(f, " %s", p->pin.prefixes[i]);
}

/* Hours a pin survives in a table of n entries filled at `rate` keys/s, at most ttl_s. */
static double hapcfg_hours(double n, double rate, uint32_t ttl_s)
{
	double s = rate > 0 ? n / rate : ttl_s;

	return (s < ttl_s ? s : ttl_s) / 3600.0;
}

static void hapcfg_peers(FILE *f, const struct policy *p)
{
	double rate = hapcfg_rate(p);
	uint32_t obj_ttl = p->pin.object_ttl_s;
	double idem_n = rate * p->pin.idem_ttl_s, obj_n;
	unsigned n;

	if (obj_ttl > HAPCFG_EXPIRE_MAX_S)
		obj_ttl = HAPCFG_EXPIRE_MAX_S;
	obj_n = rate * obj_ttl;
	if (idem_n > HAPCFG_SIZE_MAX)
		idem_n = HAPCFG_SIZE_MAX;
	if (obj_n > HAPCFG_SIZE_MAX)
		obj_n = HAPCFG_SIZE_MAX;
	if (idem_n < 1024)
		idem_n = 1024;
	if (obj_n < 1024)
		obj_n = 1024;
	fprintf(f,
	"# HAProxy-side pins: the backend (be_id) that first answered an idempotency key or an\n"
	"# object, kept even when payspoa is down or late. Read on every request: a pin found\n"
	"# here wins over payspoa's advice. The local peer hands the tables to the new process\n"
	"# on a reload (haproxy -sf); it needs \"localpeer payspoa\" (or PAY_PEER_NAME) in global\n"
	"# and a free PAY_PEER_ADDR per HAProxy instance. Sized for every key the budgets admit\n"
	"# over the TTL (%.0f req/s), at most %.0f entries (~210 bytes each, allocated as\n"
	"# used); when a table is full its oldest entries are dropped, so at the full budget\n"
	"# rate a key keeps its pin for %.1f h and an object for %.1f h (haproxy/README.md).\n"
	"peers " HAPCFG_TABLES "\n"
	"\t# this HAProxy: PAY_PEER_NAME (payspoa when unset), global's localpeer\n"
	"\tpeer \"${PAY_PEER_NAME-payspoa}\" \"${PAY_PEER_ADDR}\"\n",
	rate, HAPCFG_SIZE_MAX, hapcfg_hours(idem_n, rate, p->pin.idem_ttl_s),
	hapcfg_hours(obj_n, rate, obj_ttl));
	/* A fleet (README.md, "Fleet"): the other nodes' HAProxys share the tables, so that a
	 * retry on a node whose payspoa is absent still finds its pin. Every node names every
	 * other one, with the same names as their localpeer. HAProxy 3.2 reads the lines of a
	 * skipped .if block too and warns about an empty argument: hence the defaults. */
	fprintf(f, "\t# a fleet: the other nodes' HAProxys, PAY_PEER<n>_NAME (their localpeer) and _ADDR\n");
	for (n = 1; n <= HAPCFG_FLEET_PEERS; n++)
		fprintf(f, ".if defined(PAY_PEER%u_ADDR)\n\tpeer \"${PAY_PEER%u_NAME-unset}\" \"${PAY_PEER%u_ADDR-127.0.0.1:1}\"\n.endif\n", n, n, n);
	fprintf(f,
	"\t# SHA-256 of Idempotency-Key (32 bytes) -> be_id, for pinning.idem_ttl_s\n"
	"\ttable idem type binary len 32 size %.0f expire %us store gpt0\n"
	"\t# object ids with the policy's prefixes -> be_id, for pinning.object_ttl_s%s\n"
	"\ttable obj type string len 48 size %.0f expire %us store gpt0\n\n",
	idem_n, p->pin.idem_ttl_s,
	obj_ttl < p->pin.object_ttl_s ? " (at most 24 days in HAProxy)" : "", obj_n, obj_ttl);
}

/* The log-format argument's text, inside its double quotes: {"key":"expr",...} with every
 * quote escaped for HAProxy's parser. */
static void hapcfg_log_format(FILE *f)
{
	size_t k;

	fputc('{', f);
	for (k = 0; k < sizeof(hapcfg_log_fields) / sizeof(hapcfg_log_fields[0]); k++)
		fprintf(f, "%s\\\"%s\\\":\\\"%s\\\"", k ? "," : "", hapcfg_log_fields[k][0], hapcfg_log_fields[k][1]);
	fputc('}', f);
}

static void hapcfg_frontend_head(FILE *f, const struct policy *p)
{
	fprintf(f,
	"frontend payments\n"
	"\tbind \"${PAY_HTTP_ADDR}\"\n"
	"\t# Correlates pay-request and pay-response (never the stream id: 3.1+ reuses them).\n"
	"\tunique-id-format %%[uuid()]\n"
	"\t# req.body_param(...) reads the form-encoded body: buffer it.\n"
	"\toption http-buffer-request\n"
	"\tfilter spoe engine payspoa config payspoa.spoe.conf\n\n"
	"\t# Outcomes (haproxy/README.md), chosen by PAY_OUTCOMES when HAProxy reads this file:\n"
	"\t# spoe (default): the pay-response SPOE message, on the response path; log: one JSON\n"
	"\t# line per request to payspoa's agent.outcome_socket (PAY_OUTCOME_SOCK), off the\n"
	"\t# response path, which also reports HAProxy's own 502/503/504, queue timeouts and\n"
	"\t# requests routed without advice; both: the two (payspoa learns each outcome once).\n"
	HAPCFG_IF_LOG
	"\tlog \"${PAY_OUTCOME_SOCK}\" len %d format raw local1 info\n"
	"\tlog-format \"",
	LOGLINE_MAX);
	hapcfg_log_format(f);
	fprintf(f, "\"\n"
	"\thttp-request set-var(txn.pay_acct) req.hdr(Stripe-Account) if { req.hdr(Stripe-Account) -m found }\n"
	".endif\n\n"
	"\t# 1. Ask payspoa. On error or timeout nothing is set but txn.pay.error.\n"
	"\thttp-request send-spoe-group payspoa pay-request\n"
	"\t# Fail closed (PAY_FAIL_CLOSED=1): no advice -> 503 instead of the fallbacks below.\n"
	"\t# Local answers are Stripe-shaped errors with Stripe-Should-Retry, which Stripe's SDKs\n"
	"\t# obey first: nothing reached an account, a retry with the same key is safe.\n"
	"\thttp-request deny deny_status 503 content-type application/json string %s hdr Retry-After 1 hdr Stripe-Should-Retry true if { env(PAY_FAIL_CLOSED) -m str 1 } !{ var(txn.pay.verdict) -m found }\n\n"
	"\t# 2. Shed: 429 with Retry-After and Stripe-Should-Retry: true; a request pinned to an\n"
	"\t# account the policy no longer has (pin:gone) never succeeds elsewhere: false.\n"
	"\thttp-request deny deny_status 429 content-type application/json string %s hdr Retry-After %%[var(txn.pay.retry_after,1)] hdr Stripe-Should-Retry false if { var(txn.pay.verdict) -m str reject } { var(txn.pay.reason) -m sub pin:gone }\n"
	"\thttp-request deny deny_status 429 content-type application/json string %s hdr Retry-After %%[var(txn.pay.retry_after,1)] hdr Stripe-Should-Retry true if { var(txn.pay.verdict) -m str reject }\n\n"
	"\t# 3. Priority in the backend queue: lower class first; the offset (ms) delays.\n"
	"\thttp-request set-priority-class var(txn.pay.prio) if { var(txn.pay.prio) -m found }\n"
	"\thttp-request set-priority-offset var(txn.pay.offset) if { var(txn.pay.offset) -m found }\n"
	"\t# Start of the upstream round trip, for the outcome's latency_ms.\n"
	"\thttp-request set-var(txn.pay_t0) date(0,ms)\n\n",
	hapcfg_fail_closed_body, hapcfg_gone_body, hapcfg_shed_body);

	fprintf(f,
	"\t# 4. The request's keys: the idempotency hash (as pay-request sends it, binary here),\n"
	"\t# the object in the path (/v1/<collection>/<id>[/...]) or else in the form body or\n"
	"\t# else in the query (a list filtered by it), and\n"
	"\t# the currency; then the pins the tables hold for them (the object's first).\n"
	"\tacl pay_obj_path path,field(4,/) -m beg");
	hapcfg_prefixes(f, p);
	fprintf(f,
	"\n\thttp-request set-var(txn.pay_idem) req.hdr(Idempotency-Key),sha2(256) if { req.hdr(Idempotency-Key) -m found }\n"
	"\thttp-request set-var(txn.pay_obj) path,field(4,/) if { path_beg /v1/ } pay_obj_path\n");
	{
		static const char *const body_keys[] = { "payment_intent", "charge", "customer" };
		size_t k;

		for (k = 0; k < sizeof(body_keys) / sizeof(body_keys[0]); k++) {
			fprintf(f, "\thttp-request set-var(txn.pay_obj) req.body_param(%s) if !{ var(txn.pay_obj) -m found } { req.body_param(%s) -m beg",
			        body_keys[k], body_keys[k]);
			hapcfg_prefixes(f, p);
			fprintf(f, " }\n");
		}
		/* a list filtered by an object (GET /v1/refunds?payment_intent=pi_...) exists only
		 * on that object's account */
		for (k = 0; k < sizeof(body_keys) / sizeof(body_keys[0]); k++) {
			fprintf(f, "\thttp-request set-var(txn.pay_obj) url_param(%s) if !{ var(txn.pay_obj) -m found } { url_param(%s) -m beg",
			        body_keys[k], body_keys[k]);
			hapcfg_prefixes(f, p);
			fprintf(f, " }\n");
		}
	}
	fprintf(f,
	"\thttp-request set-var(txn.pay_cur) req.body_param(currency),lower if { req.body_param(currency) -m found }\n"
	"\thttp-request set-var(txn.pay_pin) var(txn.pay_obj),table_gpt0(" HAPCFG_TABLES "/obj) if { var(txn.pay_obj) -m found }\n"
	"\thttp-request set-var(txn.pay_pin) var(txn.pay_idem),table_gpt0(" HAPCFG_TABLES "/idem) if !{ var(txn.pay_pin) -m int gt 0 } { var(txn.pay_idem) -m found }\n");
}

/* The known-backend list, as ACL patterns. */
static void hapcfg_names(FILE *f, const struct policy *p)
{
	int i;

	for (i = 0; i < p->nbackends; i++)
		fprintf(f, " %s", p->backends[i].name);
}

static void hapcfg_routing(FILE *f, const struct policy *p)
{
	int pref[POL_MAX_CURRENCIES];
	char code[4];
	bool refused = false;
	int c, i;

	for (c = 0; c < p->ncurrencies; c++) {
		pref[c] = hapcfg_preferred(p, c);
		refused |= pref[c] < 0;
	}
	fprintf(f, "\tacl pay_known_backend var(txn.pay.backend) -m str");
	hapcfg_names(f, p);
	/* pinned to a backend that still exists (a pin to a vanished one routes nothing) */
	fprintf(f, "\n\tacl pay_pinned var(txn.pay_pin) -m int");
	for (i = 0; i < p->nbackends; i++)
		fprintf(f, " %u", hapcfg_backend_id(p, i));
	fprintf(f, "\n");
	if (refused) {
		fprintf(f, "\t# Currencies no backend may take under the compliance rules: refused without advice\n"
		        "\t# (a retry cannot succeed: Stripe-Should-Retry false).\n"
		        "\thttp-request deny deny_status 503 content-type application/json string %s hdr Retry-After 1 hdr Stripe-Should-Retry false if !pay_pinned !pay_known_backend { var(txn.pay_cur) -m str",
		        hapcfg_refused_body);
		for (c = 0; c < p->ncurrencies; c++)
			if (pref[c] < 0) {
				hapcfg_currency(p->currencies[c], code);
				fprintf(f, " %s", code);
			}
		fprintf(f, " }\n");
	}
	fprintf(f,
	"\n\t# 5. Route, first match wins: (a) a pin in the tables, which records where the first\n"
	"\t# attempt really went (payspoa's advice may come from a decision HAProxy ignored);\n"
	"\t# (b) payspoa's advice, only to a backend listed here; (c) without usable advice, the\n"
	"\t# backend the policy prefers for the currency (compliance kept: cheapest for a\n"
	"\t# domestic card); (d) default_backend for requests without a currency.\n");
	for (i = 0; i < p->nbackends; i++)
		fprintf(f, "\tuse_backend %s if { var(txn.pay_pin) -m int %u }\n",
		        p->backends[i].name, hapcfg_backend_id(p, i));
	fprintf(f, "\tuse_backend %%[var(txn.pay.backend)] if pay_known_backend\n");
	for (i = 0; i < p->nbackends; i++) {
		bool any = false;

		for (c = 0; c < p->ncurrencies; c++) {
			if (pref[c] != i)
				continue;
			if (!any)
				fprintf(f, "\tuse_backend %s if { var(txn.pay_cur) -m str", p->backends[i].name);
			any = true;
			hapcfg_currency(p->currencies[c], code);
			fprintf(f, " %s", code);
		}
		if (any)
			fprintf(f, " }\n");
	}
	fprintf(f, "\tdefault_backend %s\n\n", p->backends[p->default_backend].name);
}

static void hapcfg_response(FILE *f, const struct policy *p)
{
	fprintf(f,
	"\t# 6. After the upstream answered (HAProxy's own 502/503/504 run no http-response\n"
	"\t# rule). wait-for-body lets HAProxy read the JSON fields.\n"
	"\thttp-response wait-for-body time 1s\n"
	"\t# Record the backend really used (be_id), whatever payspoa advised, first writer\n"
	"\t# wins: the idempotency key on every answer, the object of the request and the\n"
	"\t# object created ($.id) on a 2xx. Sticky counters sc0-sc2 are used here.\n"
	"\tacl pay_backend_used be_name -m str");
	hapcfg_names(f, p);
	fprintf(f,
	"\n\thttp-response track-sc0 var(txn.pay_idem) table " HAPCFG_TABLES "/idem if pay_backend_used { var(txn.pay_idem) -m found } !{ var(txn.pay_idem),table_gpt0(" HAPCFG_TABLES "/idem) -m int gt 0 }\n"
	"\thttp-response sc-set-gpt0(0) be_id if { sc0_get_gpt0 -m int 0 }\n"
	"\thttp-response track-sc1 var(txn.pay_obj) table " HAPCFG_TABLES "/obj if pay_backend_used { status 200:299 } { var(txn.pay_obj) -m found } !{ var(txn.pay_obj),table_gpt0(" HAPCFG_TABLES "/obj) -m int gt 0 }\n"
	"\thttp-response sc-set-gpt0(1) be_id if { sc1_get_gpt0 -m int 0 }\n"
	"\thttp-response set-var(txn.pay_new) res.body,json_query('$.id') if pay_backend_used { status 200:299 }\n"
	"\thttp-response track-sc2 var(txn.pay_new) table " HAPCFG_TABLES "/obj if { var(txn.pay_new) -m beg");
	hapcfg_prefixes(f, p);
	fprintf(f,
	" } !{ var(txn.pay_new),table_gpt0(" HAPCFG_TABLES "/obj) -m int gt 0 }\n"
	"\thttp-response sc-set-gpt0(2) be_id if { sc2_get_gpt0 -m int 0 }\n"
	"\t# Report the outcome, after every rule whose variables it reads. log: the response's\n"
	"\t# fields the log line prints (at log time the response is gone).\n"
	HAPCFG_IF_LOG
	"\thttp-response set-var(txn.pay_sr) res.hdr(Stripe-Should-Retry) if { res.hdr(Stripe-Should-Retry) -m found }\n"
	"\thttp-response set-var(txn.pay_rl) res.hdr(Stripe-Rate-Limited-Reason) if { res.hdr(Stripe-Rate-Limited-Reason) -m found }\n"
	"\thttp-response set-var(txn.pay_et) res.body,json_query('$.error.type') if pay_backend_used { status 400:599 }\n"
	"\thttp-response set-var(txn.pay_ec) res.body,json_query('$.error.code') if pay_backend_used { status 400:599 }\n"
	"\thttp-response set-var(txn.pay_dc) res.body,json_query('$.error.decline_code') if pay_backend_used { status 400:599 }\n"
	".endif\n"
	"\t# spoe: pay-response, when payspoa decided, and also when it did not (late) while its\n"
	"\t# server is UP, so that it learns the backend really used; a late agent may hold such\n"
	"\t# a response up to its timeout processing once more. A DOWN agent costs nothing.\n"
	HAPCFG_IF_SPOE
	"\thttp-response send-spoe-group payspoa pay-response if { var(txn.pay.verdict) -m found } || { nbsrv(" HAPCFG_SPOE_BACKEND ") gt 0 }\n"
	".endif\n\n"
	"\t# What payspoa advised and what HAProxy did, for the demo and the tests (drop these\n"
	"\t# where clients must not see them). http-after-response also covers 429/503.\n");
	{
		static const char *const hdrs[][2] = {
			{ "X-Pay-Backend", "pay.backend" }, { "X-Pay-Class", "pay.class" },
			{ "X-Pay-Verdict", "pay.verdict" }, { "X-Pay-Reason", "pay.reason" },
			{ "X-Pay-Decision", "pay.decision" }, { "X-Pay-Prio", "pay.prio" },
			{ "X-Pay-Error", "pay.error" }, { "X-Pay-Pin", "pay_pin" },
		};
		size_t k;

		for (k = 0; k < sizeof(hdrs) / sizeof(hdrs[0]); k++)
			fprintf(f, "\thttp-after-response set-header %s %%[var(txn.%s)] if { var(txn.%s) -m found }\n",
			        hdrs[k][0], hdrs[k][1], hdrs[k][1]);
	}
	fprintf(f, "\thttp-after-response set-header X-Pay-Served-By %%[be_name]\n\n");
}

static void hapcfg_backends(FILE *f, const struct policy *p)
{
	char var[POL_NAME_MAX + 16];
	int i;

	fprintf(f,
	"# The payment backends, one per policy backend. The id is derived from the name and is\n"
	"# what the pin tables store: never change it by hand. maxconn makes requests queue\n"
	"# (priorities matter only then). Never add \"option redispatch\" or retry-on beyond\n"
	"# conn-failure: a POST that reached an account must not be sent to another.\n");
	for (i = 0; i < p->nbackends; i++) {
		hapcfg_addr_var(p->backends[i].name, var, sizeof(var));
		fprintf(f, "backend %s\n\tid %u\n\tserver %s \"${%s}\" check inter 2s maxconn 128\n\n",
		        p->backends[i].name, hapcfg_backend_id(p, i), p->backends[i].name, var);
	}
}

int hapcfg_write(FILE *f, const struct policy *p, const char *source)
{
	fprintf(f, HAPCFG_BEGIN " (from %s; do not edit) ====\n"
	        "# Regenerate with: payspoa haproxy-snippet -f %s\n\n", source, source);
	hapcfg_peers(f, p);
	hapcfg_frontend_head(f, p);
	hapcfg_routing(f, p);
	hapcfg_response(f, p);
	hapcfg_backends(f, p);
	fprintf(f, HAPCFG_END " ====\n");
	return ferror(f) ? -1 : 0;
}

/* ---- payspoa -c --haproxy FILE ----------------------------------------------------- */

#define HAPCFG_MAX_FILE_BACKENDS 1024

/* An HAProxy time ("100ms", "1s", "500" = ms, "250us"), in ms; -1 when not one. */
static double hapcfg_time_ms(const char *v)
{
	char *end;
	double x = strtod(v, &end);

	if (end == v || x < 0)
		return -1;
	if (*end == 0 || strcmp(end, "ms") == 0)
		return x;
	if (strcmp(end, "us") == 0)
		return x / 1000;
	if (strcmp(end, "s") == 0)
		return x * 1000;
	if (strcmp(end, "m") == 0)
		return x * 60000;
	return -1;
}

/* The `timeout processing` of the SPOE agent a `filter spoe ... config FILE` line of cfg
 * names (FILE as HAProxy takes it, from its working directory, else beside cfg): ms, or
 * -1 when no file or no such line was found. */
static double hapcfg_spoe_processing(const char *cfg)
{
	char line[4096], conf[1024], alt[2048];
	double ms = -1;
	const char *slash;
	FILE *in = fopen(cfg, "r"), *sp = NULL;

	if (!in)
		return -1;
	conf[0] = 0;
	while (fgets(line, sizeof(line), in)) {
		const char *c = strstr(line, " config ");

		if (strstr(line, "filter spoe") && c && sscanf(c + 8, "%1023s", conf) == 1)
			break;
		conf[0] = 0;
	}
	fclose(in);
	if (!conf[0])
		return -1;
	if (!(sp = fopen(conf, "r")) && conf[0] != '/' && (slash = strrchr(cfg, '/'))) {
		snprintf(alt, sizeof(alt), "%.*s/%s", (int)(slash - cfg), cfg, conf);
		sp = fopen(alt, "r");
	}
	if (!sp)
		return -1;
	while (fgets(line, sizeof(line), sp)) {
		char kw[32], what[32], val[32];

		if (sscanf(line, "%31s %31s %31s", kw, what, val) == 3 && strcmp(kw, "timeout") == 0 &&
		    strcmp(what, "processing") == 0)
			ms = hapcfg_time_ms(val);
	}
	fclose(sp);
	return ms;
}

/* An HAProxy `setenv` or `presetenv` line of the file. */
struct hapcfg_env {
	char kind;            /* 's' setenv, 'p' presetenv */
	char name[64], value[256];
};

/* The value of an HAProxy server address as HAProxy would see it: "${VAR}" (quoted or
 * not) from the file's `setenv`, else the environment, else the file's `presetenv`
 * (HAProxy's order); any other text as written. Returns false when the variable is set
 * nowhere, or when a variable sits inside a longer address (not resolved here). */
static bool hapcfg_resolve(const char *addr, const struct hapcfg_env *env, int nenv, char *buf, size_t cap)
{
	char name[64];
	const char *v = NULL;
	size_t n = strlen(addr);
	int i;

	if (n >= 2 && addr[0] == '"' && addr[n - 1] == '"')
		addr++, n -= 2;
	if (n < 4 || addr[0] != '$' || addr[1] != '{' || addr[n - 1] != '}') {
		snprintf(buf, cap, "%.*s", (int)n, addr);
		return !strstr(buf, "${"); /* a variable inside a longer address: not judged */
	}
	snprintf(name, sizeof(name), "%.*s", (int)(n - 3), addr + 2);
	for (i = 0; i < nenv && !v; i++)
		if (env[i].kind == 's' && strcmp(env[i].name, name) == 0)
			v = env[i].value;
	if (!v)
		v = getenv(name);
	for (i = 0; i < nenv && !v; i++)
		if (env[i].kind == 'p' && strcmp(env[i].name, name) == 0)
			v = env[i].value;
	if (!v)
		return false;
	snprintf(buf, cap, "%s", v);
	return true;
}

/* Whether HAProxy's server address `a` (unix@/path, /path, [ipv4@|ipv6@]host:port) reaches
 * one of the policy's listeners (unix:/path, host:port, [v6]:port): a socket by its path,
 * TCP by its port and host, a listener on a wildcard host taking any. *port_only: a TCP
 * listener on that port exists under another host name (which may or may not be the
 * same address: not judged). */
static bool hapcfg_reaches(const char *a, const struct pol_agent *ag, bool *port_only)
{
	const char *hp, *colon;
	int i;

	*port_only = false;
	if (strncmp(a, "unix@", 5) == 0 || a[0] == '/') {
		const char *path = a[0] == '/' ? a : a + 5;

		for (i = 0; i < ag->nlisten; i++)
			if (strncmp(ag->listen[i], "unix:", 5) == 0 && strcmp(ag->listen[i] + 5, path) == 0)
				return true;
		return false;
	}
	hp = strncmp(a, "ipv4@", 5) == 0 || strncmp(a, "ipv6@", 5) == 0 ? a + 5 : a;
	if (!(colon = strrchr(hp, ':')))
		return false;
	for (i = 0; i < ag->nlisten; i++) {
		const char *l = ag->listen[i], *lc = strrchr(l, ':');
		size_t hl = (size_t)(colon - hp), ll;

		if (strncmp(l, "unix:", 5) == 0 || !lc || strcmp(lc, colon) != 0)
			continue;
		ll = (size_t)(lc - l);
		if ((ll == hl && strncmp(l, hp, hl) == 0) || (ll == 7 && strncmp(l, "0.0.0.0", 7) == 0) ||
		    (ll == 4 && strncmp(l, "[::]", 4) == 0) ||
		    (ll == hl + 2 && l[0] == '[' && strncmp(l + 1, hp, hl) == 0)) /* [v6]:port and ipv6@v6:port */
			return true;
		*port_only = true;
	}
	return false;
}

/* Whether kw starts a section of an HAProxy file, whatever the line's indentation (which
 * HAProxy does not require); any other line, `.if` included, belongs to the section it
 * is in. */
static bool hapcfg_section(const char *kw)
{
	static const char *const sections[] = { "global", "defaults", "frontend", "backend", "listen", "peers",
	                                        "resolvers", "userlist", "program", "ring", "log-forward",
	                                        "http-errors", "cache", "mailers", "crt-store", "traces" };

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(kw, sections[i]) == 0)
			return true;
	return false;
}

/* The agent's backend (HAPCFG_SPOE_BACKEND) of the file: each `server` line's address,
 * resolved as HAProxy would, must reach one of the policy's listeners, or HAProxy routes
 * every request without advice (fail open) while both sides look healthy on their own.
 * Returns the number of servers that cannot; a server whose address cannot be resolved
 * or judged gets a warning line and is not counted. */
static int hapcfg_check_agent(FILE *out, const struct policy *p, const char *path)
{
	static struct hapcfg_env env[64];
	static char servers[8][300], names[8][64];
	const struct pol_agent *ag = pol_agent(p);
	char line[4096];
	int nenv = 0, ns = 0, bad = 0, i, j;
	bool in_agent = false;
	FILE *in = fopen(path, "r");

	if (!in)
		return 0;
	while (fgets(line, sizeof(line), in)) {
		char kw[16], a1[300], a2[300];
		int k = sscanf(line, "%15s %299s %299s", kw, a1, a2);

		if (k < 1 || kw[0] == '#')
			continue;
		if (hapcfg_section(kw)) {
			in_agent = k >= 2 && (strcmp(kw, "backend") == 0 || strcmp(kw, "listen") == 0) &&
			           strcmp(a1, HAPCFG_SPOE_BACKEND) == 0;
			continue;
		}
		size_t l1 = k >= 2 ? strlen(a1) : 0, l2 = k == 3 ? strlen(a2) : 0;

		if (k == 3 && (strcmp(kw, "setenv") == 0 || strcmp(kw, "presetenv") == 0) && nenv < 64 &&
		    l1 < sizeof(env[0].name) && l2 < sizeof(env[0].value)) {
			const char *v = a2;

			if (l2 >= 2 && a2[0] == '"' && a2[l2 - 1] == '"') /* HAProxy drops the quotes */
				v++, l2 -= 2;
			env[nenv].kind = kw[0] == 's' ? 's' : 'p';
			memcpy(env[nenv].name, a1, l1 + 1);
			memcpy(env[nenv].value, v, l2);
			env[nenv].value[l2] = 0;
			nenv++;
		} else if (in_agent && k == 3 && strcmp(kw, "server") == 0 && ns < 8 && l1 < sizeof(names[0])) {
			memcpy(names[ns], a1, l1 + 1);
			memcpy(servers[ns], a2, l2 + 1); /* l2 < 300: sscanf's bound */
			ns++;
		}
	}
	fclose(in);
	for (i = 0; i < ns; i++) {
		char addr[300];
		bool port_only;

		if (!hapcfg_resolve(servers[i], env, nenv, addr, sizeof(addr))) {
			fprintf(out, "%s: warning: %s's server %s is %s: cannot tell whether it reaches payspoa "
			        "(a variable set nowhere, or inside the address)\n", path, HAPCFG_SPOE_BACKEND, names[i],
			        servers[i]);
		} else if (hapcfg_reaches(addr, ag, &port_only)) {
			continue;
		} else if (port_only) {
			fprintf(out, "%s: warning: %s's server %s connects to %s, a port payspoa listens on under "
			        "another host name (%s)\n", path, HAPCFG_SPOE_BACKEND, names[i], addr, p->file);
		} else {
			fprintf(out, "%s: %s's server %s connects to %s, where payspoa does not listen (agent.listen of %s:",
			        path, HAPCFG_SPOE_BACKEND, names[i], addr, p->file);
			for (j = 0; j < ag->nlisten; j++)
				fprintf(out, " %s", ag->listen[j]);
			fprintf(out, "): HAProxy would route every request without advice\n");
			bad++;
		}
	}
	return bad;
}

int hapcfg_check(FILE *out, const struct policy *p, const char *path)
{
	static char names[HAPCFG_MAX_FILE_BACKENDS][POL_NAME_MAX + 2];
	char line[4096];
	int n = 0, bad = 0, i, j;
	FILE *in = fopen(path, "r");

	if (!in) {
		fprintf(out, "%s: cannot read\n", path);
		return -1;
	}
	/* Section headers only: "backend NAME" or "listen NAME" at the start of a line
	 * (a listen section is a backend too). */
	while (fgets(line, sizeof(line), in)) {
		char kw[16], name[POL_NAME_MAX + 2];

		if (sscanf(line, "%15s %64s", kw, name) != 2 || line[0] == ' ' || line[0] == '\t')
			continue;
		if (strcmp(kw, "backend") && strcmp(kw, "listen"))
			continue;
		if (strcmp(name, HAPCFG_SPOE_BACKEND) == 0 || n == HAPCFG_MAX_FILE_BACKENDS)
			continue;
		snprintf(names[n++], sizeof(names[0]), "%s", name);
	}
	fclose(in);
	for (i = 0; i < p->nbackends; i++) {
		for (j = 0; j < n && strcmp(names[j], p->backends[i].name); j++)
			;
		if (j == n) {
			fprintf(out, "%s: backend '%s' of the policy (%s:%d) is missing\n", path,
			        p->backends[i].name, p->file, p->backends[i].line);
			bad++;
		}
	}
	for (j = 0; j < n; j++) {
		for (i = 0; i < p->nbackends && strcmp(names[j], p->backends[i].name); i++)
			;
		if (i == p->nbackends) {
			fprintf(out, "%s: backend '%s' is not in the policy %s\n", path, names[j], p->file);
			bad++;
		}
	}
	/* a held ACK (fleet.claim) must leave before HAProxy stops waiting for it */
	if (p->fleet.redis[0] && p->fleet.claim) {
		double proc = hapcfg_spoe_processing(path);

		if (proc < 0) {
			fprintf(out, "%s: warning: no SPOE agent's `timeout processing` found (filter spoe ... config FILE): "
			        "fleet.claim_timeout_ms (%d ms) must be below it\n", path, p->fleet.claim_timeout_ms);
		} else if (p->fleet.claim_timeout_ms >= proc) {
			fprintf(out, "%s: fleet.claim_timeout_ms (%d ms, %s) is not below the SPOE agent's timeout processing "
			        "(%g ms): a held ACK would come after HAProxy routed without advice\n", path,
			        p->fleet.claim_timeout_ms, p->file, proc);
			bad++;
		}
	}
	return bad + hapcfg_check_agent(out, p, path);
}
