/* test-webhook.c: the webhook signature (Payspoa-Signature, Stripe's scheme) against
 * values computed independently (Python's hmac module), and its contract on small
 * buffers; the delivery itself is tested end to end by tests/integ/test-webhooks.sh. */
#include <string.h>

#include "test.h"
#include "webhook.h"

TEST(signature_known_answers)
{
	static const char body[] = "{\"id\":\"evt_1\",\"type\":\"breaker.opened\"}";
	char out[160];

	ASSERT_EQ(webhook_sign((const uint8_t *)"whsec_test", 10, 1700000000, body, strlen(body), out, sizeof(out)), 0);
	ASSERT_STREQ(out, "t=1700000000,v1=e4d709595eba77b3a613464e059fb66b4ac0fa11048cab1940f3196dbfed3619");
	/* an empty body still signs "t." */
	ASSERT_EQ(webhook_sign((const uint8_t *)"k", 1, 0, "", 0, out, sizeof(out)), 0);
	ASSERT_STREQ(out, "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

/* The signature covers the time and every byte of the body. */
TEST(signature_covers_time_and_body)
{
	char a[160], b[160], c[160];

	ASSERT_EQ(webhook_sign((const uint8_t *)"s", 1, 100, "{\"a\":1}", 7, a, sizeof(a)), 0);
	ASSERT_EQ(webhook_sign((const uint8_t *)"s", 1, 101, "{\"a\":1}", 7, b, sizeof(b)), 0);
	ASSERT_EQ(webhook_sign((const uint8_t *)"s", 1, 100, "{\"a\":2}", 7, c, sizeof(c)), 0);
	ASSERT(strcmp(strchr(a, ','), strchr(b, ',')) != 0);
	ASSERT(strcmp(a, c) != 0);
}

/* Too small a buffer: -1, never a cut signature. */
TEST(signature_buffer_too_small)
{
	char out[40];

	ASSERT_EQ(webhook_sign((const uint8_t *)"s", 1, 100, "x", 1, out, sizeof(out)), -1);
}

int main(void)
{
	RUN(signature_known_answers);
	RUN(signature_covers_time_and_body);
	RUN(signature_buffer_too_small);
	return test_summary();
}
