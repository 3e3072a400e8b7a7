/* test-classify.c: policy/classify.c: path patterns (`*` within a segment, `**`
 * across segments) against paths that must and must not match. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"
#include "test.h"

TEST(path_patterns)
{
	static const struct { const char *pat, *path; bool match; } cases[] = {
		{ "/v1/charges", "/v1/charges", true },
		{ "/v1/charges", "/v1/charges/ch_1", false },
		{ "/v1/charges**", "/v1/charges/ch_1/refund", true },
		{ "/v1/charges**", "/v1/chargesx", true },
		{ "/v1/*/confirm", "/v1/pi/confirm", true },
		{ "/v1/*/confirm", "/v1//confirm", true },
		{ "/v1/*/confirm", "/v1/a/b/confirm", false },
		{ "/v1/pi_*/x", "/v1/pi_123/x", true },
		{ "/v1/pi_*/x", "/v1/ch_123/x", false },
		{ "/v1/*_end", "/v1/a_end_end", true },
		{ "/**", "/", true },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT(cls_pattern_check(cases[i].pat) == NULL);
		if (cls_path_match(cases[i].pat, cases[i].path, (uint32_t)strlen(cases[i].path)) != cases[i].match)
			TEST_FAIL_("case %u: %s ~ %s", i, cases[i].pat, cases[i].path);
	}
	ASSERT(!cls_path_match("/v1/x", NULL, 0));
}

int main(void)
{
	RUN(path_patterns);
	return test_summary();
}
