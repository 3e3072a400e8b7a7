/* test-hapcfg.c: unit tests of spoa/hapcfg.c, the HAProxy block generated from a policy:
 * haproxy/haproxy.cfg and haproxy/snippet.cfg hold exactly what the generator prints for
 * conf/payspoa.conf (their one writer), the frames' default addresses are the default
 * policy's sockets, backend ids depend on the name alone, the per-currency fallback
 * keeps the compliance rules, and payspoa -c --haproxy finds backends missing on either
 * side and an agent server that reaches no listener. Run from the top of the tree
 * (tests/run does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hapcfg.h"
#include "policy.h"
#include "test.h"

#define REGEN "make haproxy-config (payspoa haproxy-snippet -f conf/payspoa.conf between the markers)"

static struct policy *load(const char *text)
{
	char err[512];
	struct policy *p = text ? pol_load_string(text, "t.conf", err, sizeof(err))
	                        : pol_load("conf/payspoa.conf", err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	return p;
}

/* The generator's output for p (malloc'ed, NUL-terminated). */
static char *generate(const struct policy *p, const char *source)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT(f);
	ASSERT_EQ(hapcfg_write(f, p, source), 0);
	fclose(f);
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		TEST_FAIL_("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ASSERT(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The block of `path` between the markers, end marker line included, equals `want`. */
static void check_block(const char *path, const char *want)
{
	char *text = slurp(path), *b = strstr(text, HAPCFG_BEGIN), *e;

	if (!b)
		TEST_FAIL_("%s: no line starting with \"%s\"; regenerate: %s", path, HAPCFG_BEGIN, REGEN);
	e = strstr(b, HAPCFG_END);
	if (!e || !strchr(e, '\n'))
		TEST_FAIL_("%s: no end marker \"%s\"; regenerate: %s", path, HAPCFG_END, REGEN);
	e = strchr(e, '\n') + 1;
	if ((size_t)(e - b) != strlen(want) || memcmp(b, want, strlen(want)) != 0) {
		size_t i = 0, line = 1;

		while (b + i < e && want[i] && b[i] == want[i])
			line += want[i++] == '\n';
		TEST_FAIL_("%s differs from the generator at line %zu of the block; regenerate: %s",
		           path, line, REGEN);
	}
	free(text);
}

TEST(haproxy_cfg_is_generated)
{
	struct policy *p = load(NULL);
	char *want = generate(p, "conf/payspoa.conf");

	check_block("haproxy/haproxy.cfg", want);
	check_block("haproxy/snippet.cfg", want);
	free(want);
	pol_free(p);
}

/* The hand-written frames' defaults reach the default policy's sockets: haproxy.cfg's
 * PAY_AGENT_ADDR is unix@ + the path conf/payspoa.conf listens on, PAY_OUTCOME_SOCK its
 * outcome socket, and snippet.cfg's agent server the same unix@ path. */
TEST(frame_defaults_reach_the_default_policy)
{
	struct policy *p = load(NULL);
	const struct pol_agent *a = pol_agent(p);
	char *text = slurp("haproxy/haproxy.cfg"), want[300];
	const char *path = a->listen[0] + 5;

	ASSERT_EQ(a->nlisten, 1);
	ASSERT_EQ(strncmp(a->listen[0], "unix:", 5), 0);
	snprintf(want, sizeof(want), "\n\tpresetenv PAY_AGENT_ADDR   unix@%s\n", path);
	if (!strstr(text, want))
		TEST_FAIL_("haproxy/haproxy.cfg has no line \"%.*s\"", (int)strlen(want) - 2, want + 1);
	ASSERT(a->outcome_socket);
	snprintf(want, sizeof(want), "\n\tpresetenv PAY_OUTCOME_SOCK %s\n", a->outcome_socket);
	if (!strstr(text, want))
		TEST_FAIL_("haproxy/haproxy.cfg has no line \"%.*s\"", (int)strlen(want) - 2, want + 1);
	free(text);
	text = slurp("haproxy/snippet.cfg");
	snprintf(want, sizeof(want), "\n\tserver payspoa1 unix@%s ", path);
	if (!strstr(text, want))
		TEST_FAIL_("haproxy/snippet.cfg has no line \"%.*s...\"", (int)strlen(want) - 2, want + 1);
	free(text);
	pol_free(p);
}

static const char base[] =
	"fee_schedules = ( { name = \"f\"; percent = 2.0; fixed = 20; cross_border = 1.0; fx = 1.0; } );\n"
	"regions = { us = [ \"US\" ]; eea = [ \"DE\", \"FR\" ]; };\n"
	"classes = ( { name = \"std\"; priority = 0; } );\n"
	"classify = { default = \"std\"; };\n";

/* Backend ids: from the name alone, so reordering or adding backends keeps them. */
TEST(backend_id_stable)
{
	char text[4096];
	struct policy *a, *b;

	snprintf(text, sizeof(text), "%s%s", base,
	         "backends = ( { name = \"one\"; account = \"a1\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; },\n"
	         "  { name = \"two\"; account = \"a2\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n");
	a = load(text);
	snprintf(text, sizeof(text), "%s%s", base,
	         "backends = ( { name = \"zero\"; account = \"a0\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; },\n"
	         "  { name = \"two\"; account = \"a2\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; },\n"
	         "  { name = \"one\"; account = \"a1\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n");
	b = load(text);
	ASSERT_EQ(hapcfg_backend_id(a, 0), hapcfg_backend_id(b, 2));
	ASSERT_EQ(hapcfg_backend_id(a, 1), hapcfg_backend_id(b, 1));
	ASSERT_NE(hapcfg_backend_id(b, 0), hapcfg_backend_id(b, 1));
	ASSERT_NE(hapcfg_backend_id(b, 0), hapcfg_backend_id(b, 2));
	ASSERT_NE(hapcfg_backend_id(b, 1), hapcfg_backend_id(b, 2));
	pol_free(a);
	pol_free(b);
}

/* The default policy: EUR (compliance: EEA entity only) and GBP (cheaper for a domestic
 * card) to stripe_eu, USD to stripe_us; default_backend stays the policy's. */
TEST(per_currency_fallback)
{
	struct policy *p = load(NULL);
	char *out = generate(p, "x");

	ASSERT(strstr(out, "\tuse_backend stripe_us if { var(txn.pay_cur) -m str usd cad aud jpy }\n"));
	ASSERT(strstr(out, "\tuse_backend stripe_eu if { var(txn.pay_cur) -m str eur gbp sek dkk pln chf }\n"));
	ASSERT(strstr(out, "\tdefault_backend stripe_us\n"));
	/* the table pins come before the advice, the advice before the fallback */
	ASSERT(strstr(out, "if { var(txn.pay_pin) -m int") < strstr(out, "if pay_known_backend"));
	ASSERT(strstr(out, "if pay_known_backend") < strstr(out, "var(txn.pay_cur) -m str usd"));
	free(out);
	pol_free(p);
}

/* A currency no backend may take (the only entity compliance allows for EUR is disabled):
 * refused without advice, never sent to the default. */
TEST(currency_without_backend_refused)
{
	char text[4096];
	struct policy *p;
	char *out;

	snprintf(text, sizeof(text), "%s%s", base,
	         "backends = ( { name = \"us\"; account = \"a1\"; entity = \"inc\"; region = \"us\"; currencies = [ \"usd\", \"eur\" ]; fee_schedule = \"f\"; },\n"
	         "  { name = \"eu\"; account = \"a2\"; entity = \"bv\"; region = \"eea\"; currencies = [ \"eur\" ]; fee_schedule = \"f\"; enabled = false; } );\n"
	         "compliance = ( { name = \"eea\"; currencies = [ \"eur\" ]; entities = [ \"bv\" ]; } );\n");
	p = load(text);
	out = generate(p, "x");
	ASSERT(strstr(out, "http-request deny deny_status 503"));
	/* a retry cannot succeed: Stripe's SDKs are told not to */
	ASSERT(strstr(out, "currency_not_routable"));
	ASSERT(strstr(out, "hdr Stripe-Should-Retry false if !pay_pinned !pay_known_backend"));
	ASSERT(strstr(out, "{ var(txn.pay_cur) -m str eur }"));
	ASSERT(!strstr(out, "-m str usd eur"));
	free(out);
	pol_free(p);
}

/* HAProxy's own answers tell Stripe's SDKs whether to retry (Stripe-Should-Retry, which
 * they obey first): a shed and fail closed yes, a request pinned to a vanished account
 * no, and that rule comes first (the first deny that matches answers). */
TEST(local_answers_tell_sdks_whether_to_retry)
{
	struct policy *p = load(NULL);
	char *out = generate(p, "x");
	const char *gone = strstr(out, "hdr Stripe-Should-Retry false if { var(txn.pay.verdict) -m str reject } { var(txn.pay.reason) -m sub pin:gone }");
	const char *shed = strstr(out, "hdr Stripe-Should-Retry true if { var(txn.pay.verdict) -m str reject }\n");

	ASSERT(gone && shed && gone < shed);
	ASSERT(strstr(out, "deny_status 429 content-type application/json string '{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"rate_limit\","));
	ASSERT(strstr(out, "hdr Retry-After 1 hdr Stripe-Should-Retry true if { env(PAY_FAIL_CLOSED) -m str 1 }"));
	/* a list filtered by a payment goes where the payment is */
	ASSERT(strstr(out, "http-request set-var(txn.pay_obj) url_param(payment_intent) if !{ var(txn.pay_obj) -m found }"));
	free(out);
	pol_free(p);
}

TEST(check_haproxy_file)
{
	struct policy *p = load(NULL);
	char path[] = "/tmp/test-hapcfg.XXXXXX", *out = NULL;
	size_t len = 0;
	int fd = mkstemp(path);
	FILE *f, *o;

	ASSERT(fd >= 0);
	f = fdopen(fd, "w");
	fputs("frontend payments\n\tdefault_backend stripe_us\nbackend stripe_us\n\tserver a 1.2.3.4:1\n"
	      "listen stripe_apac\n\tserver b 1.2.3.4:2\nbackend spoe-payspoa\n\tmode tcp\n", f);
	fclose(f);
	o = open_memstream(&out, &len);
	/* the default policy's three other backends are missing, and one is unknown */
	ASSERT_EQ(hapcfg_check(o, p, path), 4);
	fclose(o);
	ASSERT(strstr(out, "backend 'stripe_eu' of the policy"));
	ASSERT(strstr(out, "backend 'stripe_us_standby' of the policy"));
	ASSERT(strstr(out, "backend 'stripe_eu_standby' of the policy"));
	ASSERT(strstr(out, "backend 'stripe_apac' is not in the policy"));
	ASSERT(!strstr(out, "spoe-payspoa"));
	free(out);
	o = open_memstream(&out, &len);
	ASSERT_EQ(hapcfg_check(o, p, "haproxy/haproxy.cfg"), 0);
	ASSERT_EQ(hapcfg_check(o, p, "/nonexistent/haproxy.cfg"), -1);
	fclose(o);
	free(out);
	unlink(path);
	pol_free(p);
}

/* check_agent HAPROXY_TEXT: hapcfg_check of p against a file holding text (the
 * policy's four backends added), its output in *out (malloc'ed). */
static int check_agent(const struct policy *p, const char *text, char **out)
{
	char path[] = "/tmp/test-hapcfg.XXXXXX";
	size_t len = 0;
	int fd = mkstemp(path), rc, i;
	FILE *f, *o;

	ASSERT(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	for (i = 0; i < p->nbackends; i++)
		fprintf(f, "backend %s\n\tserver s 127.0.0.1:1\n", p->backends[i].name);
	fclose(f);
	o = open_memstream(out, &len);
	rc = hapcfg_check(o, p, path);
	fclose(o);
	unlink(path);
	return rc;
}

/* The agent's server must reach one of the policy's listeners, its ${VAR} resolved as
 * HAProxy does (the file's setenv, the environment, the file's presetenv): otherwise
 * HAProxy routes every request without advice while both sides look healthy. Each row:
 * PAYSPOA_TEST_AGENT's value in the environment (NULL: unset), whether the policy is the
 * default (unix:/tmp/payspoa-agent.sock) or the TCP one below, the HAProxy text before the
 * policy's backends, hapcfg_check's exit code, what its output must and must not hold. */
TEST(check_agent_address)
{
	static const char presetenv[] = "global\n\tpresetenv PAYSPOA_TEST_AGENT unix@/tmp/payspoa-agent.sock\n"
	                                "backend spoe-payspoa\n\tserver a \"${PAYSPOA_TEST_AGENT}\" check\n";
	static const struct {
		const char *env;
		bool tcp;
		const char *haproxy;
		int rc;
		const char *want[2], *unwanted;
	} rows[] = {
		{ NULL, false, "backend spoe-payspoa\n\tserver a unix@/tmp/payspoa-agent.sock check\n", 0, { NULL }, NULL },
		{ NULL, false, "backend spoe-payspoa\n\tserver a /tmp/payspoa-agent.sock\n", 0, { NULL }, NULL },
		{ NULL, false, "backend spoe-payspoa\n\tserver a 127.0.0.1:12345 check\n", 1,
		  { "spoe-payspoa's server a connects to 127.0.0.1:12345, where payspoa does not listen",
		    "unix:/tmp/payspoa-agent.sock): HAProxy would route every request without advice" }, NULL },
		/* presetenv gives way to the environment, which gives way to setenv */
		{ NULL, false, presetenv, 0, { NULL }, NULL },
		{ "unix@/run/elsewhere.sock", false, presetenv, 1, { "connects to unix@/run/elsewhere.sock" }, NULL },
		{ "unix@/run/elsewhere.sock", false,
		  "global\n\tsetenv PAYSPOA_TEST_AGENT \"unix@/tmp/payspoa-agent.sock\"\n"
		  "backend spoe-payspoa\n\tserver a ${PAYSPOA_TEST_AGENT} check\n", 0, { NULL }, NULL },
		/* set nowhere, or inside a longer address: a warning, not a mismatch */
		{ NULL, false, "backend spoe-payspoa\n\tserver a ${PAYSPOA_TEST_AGENT}\n", 0,
		  { "warning: spoe-payspoa's server a is ${PAYSPOA_TEST_AGENT}: cannot tell whether it reaches" }, NULL },
		{ NULL, false, "backend spoe-payspoa\n\tserver a 127.0.0.1:${PAYSPOA_TEST_AGENT}\n", 0,
		  { "warning: spoe-payspoa's server a is 127.0.0.1:${PAYSPOA_TEST_AGENT}: cannot tell" }, NULL },
		/* TCP listeners: host and port, a wildcard host takes any, another name only warns */
		{ NULL, true, "backend spoe-payspoa\n\tserver a 127.0.0.1:9000\n\tserver b ipv4@10.1.2.3:9001\n"
		              "\tserver c ipv6@::1:9003\n\tserver d [::1]:9003\n", 0, { NULL }, "spoe-payspoa" },
		{ NULL, true, "backend spoe-payspoa\n\tserver a localhost:9000\n", 0,
		  { "warning: spoe-payspoa's server a connects to localhost:9000, a port payspoa listens on" }, NULL },
		{ NULL, true, "backend spoe-payspoa\n\tserver a 127.0.0.1:9002\n\tserver b unix@/tmp/x.sock\n", 2, { NULL }, NULL },
		/* a conditional block inside the agent's backend does not end it; indentation is
		 * optional in HAProxy's files */
		{ NULL, true, "backend spoe-payspoa\n.if defined(X)\n\tmode tcp\n.endif\n\tserver a 127.0.0.1:9002\n", 1, { NULL }, NULL },
		{ NULL, true, "backend spoe-payspoa\nserver a 127.0.0.1:9002\n", 1, { NULL }, NULL },
		/* a server line of another backend is not the agent's */
		{ NULL, true, "backend other\n\tserver a 127.0.0.1:9002\nbackend spoe-payspoa\n\tserver b 127.0.0.1:9000\n", 1,
		  { "backend 'other' is not in the policy" }, NULL },
	};
	struct policy *p = load(NULL), *t;
	char text[4096], *out;
	size_t i, j;
	int rc;

	snprintf(text, sizeof(text), "%sagent = { listen = [ \"127.0.0.1:9000\", \"0.0.0.0:9001\", \"[::1]:9003\" ]; };\n%s",
	         base,
	         "backends = ( { name = \"one\"; account = \"a1\"; entity = \"e\"; region = \"us\"; currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n");
	t = load(text);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].env)
			setenv("PAYSPOA_TEST_AGENT", rows[i].env, 1);
		else
			unsetenv("PAYSPOA_TEST_AGENT");
		rc = check_agent(rows[i].tcp ? t : p, rows[i].haproxy, &out);
		if (rc != rows[i].rc)
			TEST_FAIL_("row %zu: exit %d, want %d; output:\n%s", i, rc, rows[i].rc, out);
		for (j = 0; j < 2 && rows[i].want[j]; j++)
			if (!strstr(out, rows[i].want[j]))
				TEST_FAIL_("row %zu: no \"%s\" in the output:\n%s", i, rows[i].want[j], out);
		if (rows[i].unwanted && strstr(out, rows[i].unwanted))
			TEST_FAIL_("row %zu: \"%s\" in the output:\n%s", i, rows[i].unwanted, out);
		free(out);
	}
	unsetenv("PAYSPOA_TEST_AGENT");
	pol_free(t);
	pol_free(p);
}

/* fleet.claim: the held ACK's deadline must be below the SPOE agent's timeout
 * processing (haproxy/payspoa.spoe.conf, 100 ms, named by haproxy/haproxy.cfg). */
static struct policy *load_fleet(int claim_timeout_ms)
{
	char path[64], err[512];
	struct policy *p;
	FILE *f;

	/* beside conf/payspoa.conf: its own @include resolves against the including folder */
	snprintf(path, sizeof(path), "conf/.test-hapcfg-%d.conf", (int)getpid());
	f = fopen(path, "w");
	ASSERT(f != NULL);
	fprintf(f, "@include \"payspoa.conf\"\nfleet = { redis = \"127.0.0.1:6379\"; claim_timeout_ms = %d; };\n",
	        claim_timeout_ms);
	fclose(f);
	p = pol_load(path, err, sizeof(err));
	unlink(path);
	if (!p)
		TEST_FAIL_("%s", err);
	return p;
}

TEST(check_claim_timeout_below_processing)
{
	struct policy *p;
	char *out = NULL;
	size_t len = 0;
	FILE *o;

	p = load_fleet(40);
	o = open_memstream(&out, &len);
	ASSERT_EQ(hapcfg_check(o, p, "haproxy/haproxy.cfg"), 0);
	fclose(o);
	ASSERT(!strstr(out, "claim_timeout_ms"));
	free(out);
	pol_free(p);
	p = load_fleet(100);
	out = NULL;
	o = open_memstream(&out, &len);
	ASSERT_EQ(hapcfg_check(o, p, "haproxy/haproxy.cfg"), 1);
	fclose(o);
	ASSERT(strstr(out, "fleet.claim_timeout_ms (100 ms, "));
	ASSERT(strstr(out, "is not below the SPOE agent's timeout processing (100 ms)"));
	free(out);
	pol_free(p);
}

int main(void)
{
	RUN(haproxy_cfg_is_generated);
	RUN(frame_defaults_reach_the_default_policy);
	RUN(backend_id_stable);
	RUN(per_currency_fallback);
	RUN(currency_without_backend_refused);
	RUN(local_answers_tell_sdks_whether_to_retry);
	RUN(check_haproxy_file);
	RUN(check_agent_address);
	RUN(check_claim_timeout_below_processing);
	return test_summary();
}
