/* test-fleetmsg.c: the fleet's texts in Redis (spoa/fleetmsg.c): each form parsed and
 * written back, and the malformed ones refused (a field missing or extra, a space too
 * many, a table out of range, upper-case or short hex, a leading zero, a name too long). */
#include <string.h>

#include "fleetmsg.h"
#include "policy.h"
#include "test.h"

#define P(s) (s), strlen(s)

TEST(message_round_trip)
{
	const char *t = "n1 0 00c0ffee00c0ffee stripe_us acct_us_payspoa 1765000000000000";
	struct fleet_msg m;
	char out[256];

	ASSERT_EQ(fleet_msg_parse(P(t), &m), 0);
	ASSERT_STREQ(m.node, "n1");
	ASSERT_EQ(m.table, POL_PIN_IDEM);
	ASSERT_EQ(m.key, 0x00c0ffee00c0ffeeULL);
	ASSERT_STREQ(m.backend, "stripe_us");
	ASSERT_STREQ(m.account, "acct_us_payspoa");
	ASSERT_EQ(m.wall_us, 1765000000000000ULL);
	ASSERT_EQ(fleet_msg_format(out, sizeof(out), &m), (long long)strlen(t));
	ASSERT_STREQ(out, t);
}

TEST(message_refused)
{
	static const char *const bad[] = {
		"", "n1", "n1 0 00c0ffee00c0ffee stripe_us acct_us 1 extra",
		"n1 0 00c0ffee00c0ffee stripe_us acct_us", "n1  0 00c0ffee00c0ffee a b 1",
		"n1 3 00c0ffee00c0ffee a b 1", "n1 0 00C0FFEE00C0FFEE a b 1", "n1 0 00c0ffee a b 1",
		"n1 0 00c0ffee00c0ffee a b 01", "n1 0 00c0ffee00c0ffee a b 12345678901234567890",
		"n1 0 00c0ffee00c0ffee a b 1 ", "n1 0 00c0ffee00c0ffee a\tb c 1", "n1 0 00c0ffee00c0ffee a b x",
		"n1 0 00c0ffee00c0ffee aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b 1",
	};
	struct fleet_msg m;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fleet_msg_parse(P(bad[i]), &m) != -1)
			TEST_FAIL_("accepted: '%s'", bad[i]);
}

TEST(value_and_key)
{
	char be[FLEET_NAME_MAX], acct[FLEET_NAME_MAX], out[128];
	unsigned table;
	uint64_t key;

	ASSERT_EQ(fleet_value_parse(P("stripe_eu acct_eu"), be, acct), 0);
	ASSERT_STREQ(be, "stripe_eu");
	ASSERT_STREQ(acct, "acct_eu");
	ASSERT_EQ(fleet_value_parse(P("stripe_eu"), be, acct), -1);
	ASSERT_EQ(fleet_value_parse(P("stripe_eu acct_eu x"), be, acct), -1);
	ASSERT_EQ(fleet_value_parse(P(" acct_eu"), be, acct), -1);
	ASSERT_EQ(fleet_key_parse("payspoa", P("payspoa:pin:2:0123456789abcdef"), &table, &key), 0);
	ASSERT_EQ(table, POL_PIN_ACCOUNT);
	ASSERT_EQ(key, 0x0123456789abcdefULL);
	fleet_key_format(out, sizeof(out), "payspoa", table, key);
	ASSERT_STREQ(out, "payspoa:pin:2:0123456789abcdef");
	ASSERT_EQ(fleet_key_parse("other", P("payspoa:pin:2:0123456789abcdef"), &table, &key), -1);
	ASSERT_EQ(fleet_key_parse("payspoa", P("payspoa:pin:3:0123456789abcdef"), &table, &key), -1);
	ASSERT_EQ(fleet_key_parse("payspoa", P("payspoa:pin:2:0123456789abcde"), &table, &key), -1);
	ASSERT_EQ(fleet_key_parse("payspoa", P("payspoa:node:2:0123456789abcdef"), &table, &key), -1);
}

int main(void)
{
	RUN(message_round_trip);
	RUN(message_refused);
	RUN(value_and_key);
	return test_summary();
}
