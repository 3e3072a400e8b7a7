/* test-logline.c: the outcome log line parser (spoa/logline.c): the lines HAProxy 2.6
 * really printed with the generated log-format (captured from a unix datagram socket),
 * escapes, absent samples, and a table of malformed and truncated lines. */
#include <stdio.h>
#include <string.h>

#include "logline.h"
#include "test.h"

/* p as a writable copy (the parser decodes in place). */
static int parse(const char *p, struct pay_outcome *o, char *buf, size_t size)
{
	size_t n = strlen(p);

	ASSERT(n < size);
	memcpy(buf, p, n + 1);
	return logline_parse(buf, n, o);
}

#define ASSERT_PSTR(s, lit) do { ASSERT((s).ptr != NULL); ASSERT_EQ((s).len, strlen(lit)); \
	ASSERT_MEMEQ((s).ptr, lit, (s).len); } while (0)

/* HAProxy 2.6's own 503 for a server that refused the connection, as it printed it. */
TEST(haproxy_dead_server_line)
{
	char buf[1024];
	struct pay_outcome o;

	ASSERT_EQ(parse("{\"decision\":\"-\",\"backend\":\"stripe_us\",\"status\":\"503\",\"latency_ms\":\"3004\","
	                "\"term\":\"SC\",\"should_retry\":\"-\",\"rl_reason\":\"-\",\"err_type\":\"-\",\"err_code\":\"-\","
	                "\"decline\":\"-\",\"object\":\"-\",\"idem\":\"-\",\"account\":\"-\"}\n", &o, buf, sizeof(buf)), 1);
	ASSERT_EQ(o.channel, PAY_CH_LOG);
	ASSERT_PSTR(o.backend, "stripe_us");
	ASSERT_EQ(o.status, 503);
	ASSERT_EQ(o.latency_ms, 3004);
	ASSERT_PSTR(o.term, "SC");
	ASSERT(o.decision.ptr == NULL && o.idem.ptr == NULL && o.err_code.ptr == NULL && o.account.ptr == NULL);
}

/* A decline with every field, json(utf8s) escapes decoded (\" \\ \u00e9), keys in another
 * order, an unknown key skipped, bare integers accepted. */
TEST(declined_line_with_escapes)
{
	char buf[1024];
	struct pay_outcome o;

	ASSERT_EQ(parse("{ \"status\" : 402, \"future\":\"x\", \"latency_ms\":\"-\",\"backend\":\"stripe_eu\","
	                "\"err_type\":\"card_error\",\"err_code\":\"card_declined\",\"decline\":\"insufficient_funds\","
	                "\"should_retry\":\"false\",\"account\":\"acct_1\\\"x\\\\\\u00e9\",\"idem\":\"AB01\","
	                "\"decision\":\"0001\"}", &o, buf, sizeof(buf)), 1);
	ASSERT_EQ(o.status, 402);
	ASSERT_EQ(o.latency_ms, -1);
	ASSERT_PSTR(o.err_type, "card_error");
	ASSERT_PSTR(o.err_code, "card_declined");
	ASSERT_PSTR(o.decline, "insufficient_funds");
	ASSERT_PSTR(o.should_retry, "false");
	ASSERT_PSTR(o.account, "acct_1\"x\\\xc3\xa9");
	ASSERT_PSTR(o.idem, "AB01");
	ASSERT_PSTR(o.decision, "0001");
	ASSERT(o.term.ptr == NULL);
}

/* An empty string is present and empty; "-" alone is absent. */
/* The scan moves bytes only after an escape: plain runs between escapes, an escape first
 * and last; the order hint misses (a key repeated, one skipped back) without losing any
 * key, and a repeated key keeps its last value. */
TEST(escapes_between_runs_and_order_hint_misses)
{
	char buf[1024];
	struct pay_outcome o;

	ASSERT_EQ(parse("{\"decision\":\"\\u0041bc\\/de\\\"\",\"backend\":\"b1\",\"status\":\"200\","
	                "\"backend\":\"b2\",\"latency_ms\":\"7\",\"decision\":\"\\tx\\n\","
	                "\"object\":\"pi_1\",\"status\":\"201\",\"idem\":\"ff\"}", &o, buf, sizeof(buf)), 1);
	ASSERT_PSTR(o.decision, "\tx\n");
	ASSERT_PSTR(o.backend, "b2");
	ASSERT_EQ(o.status, 201);
	ASSERT_EQ(o.latency_ms, 7);
	ASSERT_PSTR(o.object, "pi_1");
	ASSERT_PSTR(o.idem, "ff");
	ASSERT_EQ(parse("{\"decision\":\"\\u0041bc\\/de\\\"\"}", &o, buf, sizeof(buf)), 1);
	ASSERT_PSTR(o.decision, "Abc/de\"");
}

TEST(empty_and_absent)
{
	char buf[256];
	struct pay_outcome o;

	ASSERT_EQ(parse("{\"object\":\"\",\"rl_reason\":\"-\",\"err_code\":\"--\"}", &o, buf, sizeof(buf)), 1);
	ASSERT(o.object.ptr != NULL);
	ASSERT_EQ(o.object.len, 0);
	ASSERT(o.rl_reason.ptr == NULL);
	ASSERT_PSTR(o.err_code, "--");
	ASSERT_EQ(o.status, 0);
}

TEST(malformed_and_truncated)
{
	static const struct { const char *line; int rc; } table[] = {
		{ "", LOGLINE_TRUNCATED },
		{ "\n", LOGLINE_TRUNCATED },
		{ "{", LOGLINE_TRUNCATED },
		{ "{\"status\":\"50", LOGLINE_TRUNCATED },
		{ "{\"status\":\"503\"", LOGLINE_TRUNCATED },
		{ "{\"status\":\"503\",", LOGLINE_TRUNCATED },
		{ "{\"account\":\"a\\", LOGLINE_TRUNCATED },
		{ "{\"account\":\"\\u00", LOGLINE_TRUNCATED },
		{ "[]", LOGLINE_MALFORMED },
		{ "status=503", LOGLINE_MALFORMED },
		{ "{\"status\":\"5x3\"}", LOGLINE_MALFORMED },
		{ "{\"status\":\"1234567890123456789\"}", LOGLINE_MALFORMED }, /* 19 digits */
		{ "{\"status\":true}", LOGLINE_MALFORMED },
		{ "{\"status\":{\"a\":1}}", LOGLINE_MALFORMED },
		{ "{\"account\":\"\\x41\"}", LOGLINE_MALFORMED },
		{ "{\"account\":\"\\u00g1\"}", LOGLINE_MALFORMED },
		{ "{\"account\":\"a\tb\"}", LOGLINE_MALFORMED },  /* raw control character */
		{ "{\"status\":\"503\"} x", LOGLINE_MALFORMED },   /* text after the object */
		{ "{\"status\":\"503\" \"term\":\"SC\"}", LOGLINE_MALFORMED },
		{ "{status:503}", LOGLINE_MALFORMED },
		{ "{\"status\"=503}", LOGLINE_MALFORMED },
		{ "{}", 1 },
		{ " {\"status\":\"200\"} \r\n", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char buf[256];
		struct pay_outcome o;
		int rc = parse(table[i].line, &o, buf, sizeof(buf));

		if (rc != table[i].rc)
			TEST_FAIL_("line %zu '%s': %d, want %d", i, table[i].line, rc, table[i].rc);
	}
}

/* The parser never reads past len: the same line cut at every length is truncated or
 * malformed, never accepted (and ASan watches the reads in `make asan`). */
TEST(every_prefix_refused)
{
	static const char line[] = "{\"decision\":\"-\",\"backend\":\"stripe_us\",\"status\":\"503\",\"term\":\"SC\"}";
	size_t n;

	for (n = 0; n < sizeof(line) - 1; n++) {
		char buf[sizeof(line)];
		struct pay_outcome o;

		memcpy(buf, line, n);
		ASSERT(logline_parse(buf, n, &o) < 0);
	}
}

/* A quote, an escape or a control byte at every offset of a long value, with bytes
 * >= 0x80 (UTF-8) around it: each is seen where it is (a guard for any faster scan of
 * the plain runs; one that read 8 bytes at a time was tried and cost more instructions
 * per line on HAProxy's lines, whose strings average ~7 bytes). */
TEST(stop_bytes_at_every_offset)
{
	char line[256], buf[256], want[64];
	struct pay_outcome o;
	int at, k;

	for (at = 0; at < 24; at++) {
		for (k = 0; k < 4; k++) {
			char val[40];
			int n;

			memset(val, 'a', 32);
			val[32] = 0;
			val[(at + 9) % 32] = (char)0xc3; /* UTF-8 é: plain */
			val[(at + 10) % 32] = (char)0xa9;
			snprintf(want, sizeof(want), "%.*s", at, val);
			switch (k) {
			case 0: /* the closing quote itself at offset at */
				n = snprintf(line, sizeof(line), "{\"backend\":\"%.*s\"}", at, val);
				break;
			case 1: /* an escaped quote at at: decoded, the rest follows */
				n = snprintf(line, sizeof(line), "{\"backend\":\"%.*s\\\"%s\"}", at, val, val + at);
				snprintf(want, sizeof(want), "%.*s\"%s", at, val, val + at);
				break;
			case 2: /* a raw control byte at at: malformed */
				n = snprintf(line, sizeof(line), "{\"backend\":\"%.*s\t%s\"}", at, val, val + at);
				break;
			default: /* a backslash-n escape at at */
				n = snprintf(line, sizeof(line), "{\"backend\":\"%.*s\\n%s\"}", at, val, val + at);
				snprintf(want, sizeof(want), "%.*s\n%s", at, val, val + at);
				break;
			}
			ASSERT(n > 0 && (size_t)n < sizeof(line));
			if (k == 2) {
				ASSERT_EQ(parse(line, &o, buf, sizeof(buf)), LOGLINE_MALFORMED);
				continue;
			}
			ASSERT_EQ(parse(line, &o, buf, sizeof(buf)), 1);
			if (k == 0 && at == 0) {
				ASSERT(o.backend.ptr != NULL && o.backend.len == 0);
				continue;
			}
			ASSERT_PSTR(o.backend, want);
		}
	}
}

int main(void)
{
	RUN(haproxy_dead_server_line);
	RUN(declined_line_with_escapes);
	RUN(escapes_between_runs_and_order_hint_misses);
	RUN(empty_and_absent);
	RUN(malformed_and_truncated);
	RUN(every_prefix_refused);
	RUN(stop_bytes_at_every_offset);
	return test_summary();
}
