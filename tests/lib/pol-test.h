/* pol-test.h: helpers the engine's unit tests share. Header-only (static inline). */
#ifndef POL_TEST_H
#define POL_TEST_H

#include <stdbool.h>
#include <string.h>

#include "pay-t.h"
#include "policy.h"
#include "test.h"

/* A pay_str from a string literal. */
#define S(lit) ((struct pay_str){ (lit), sizeof(lit) - 1 })

/* Does the verdict's reason hold `tok` as a whole space-separated token? */
static inline bool has_token(const struct pay_verdict *v, const char *tok)
{
	size_t n = strlen(tok);
	const char *s = v->reason;

	while ((s = strstr(s, tok))) {
		if ((s == v->reason || s[-1] == ' ') && (s[n] == ' ' || s[n] == 0))
			return true;
		s++;
	}
	return false;
}

/* An engine for `workers` threads from policy text ("test" in errors); a policy the
 * loader refuses fails the case with its file:line message. */
static inline struct pol_engine *pol_test_engine(const char *text, unsigned workers)
{
	char err[512];
	struct policy *p = pol_load_string(text, "test", err, sizeof(err));
	struct pol_engine *e;

	if (!p)
		TEST_FAIL_("%s", err);
	if (!(e = pol_engine_new(p, workers, err, sizeof(err))))
		TEST_FAIL_("%s", err);
	return e;
}

#endif /* POL_TEST_H */
