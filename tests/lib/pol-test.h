/* pol-test.h: helpers the engine's unit tests share. Header-only (static inline). */
#ifndef POL_TEST_H
#define POL_TEST_H

#include <stdbool.h>
#include <string.h>

#include "pay-t.h"

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

#endif /* POL_TEST_H */
