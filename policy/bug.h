/* bug.h: invariant checks, HAProxy's BUG_ON idea. Active in builds compiled with
 * -DPOL_CHECKS (the Makefile sets it for sanitizer builds, VARIANT=debug, or CHECKS=1);
 * compiled out elsewhere, so a check may cost what it needs to.
 *
 * BUG_ON(cond): when checks are on and cond holds, print file:line and cond on stderr
 * and abort. Off, cond is type-checked but never evaluated: it must have no side effect.
 * POL_VERIFY(fn, args...): when checks are on, call fn(args..., err, errlen), a *_verify()
 * function, and abort with its message if it returns < 0.
 * Both break the "no I/O" rule of policy/ on purpose: a broken invariant means memory
 * is already corrupt, and the only safe thing left is to stop loudly. */
#ifndef POL_BUG_H
#define POL_BUG_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef POL_CHECKS
#define POL_CHECKS_ON 1
#else
#define POL_CHECKS_ON 0
#endif

static inline _Noreturn void pol_bug(const char *file, int line, const char *what, const char *msg)
{
	fprintf(stderr, "BUG at %s:%d: %s%s%s\n", file, line, what, msg ? ": " : "", msg ? msg : "");
	abort();
}

#define BUG_ON(cond) do { \
	if (POL_CHECKS_ON && (cond)) \
		pol_bug(__FILE__, __LINE__, #cond, NULL); \
} while (0)

#define POL_VERIFY(fn, ...) do { \
	if (POL_CHECKS_ON) { \
		char pol_verify_err_[256]; \
		if (fn(__VA_ARGS__, pol_verify_err_, sizeof(pol_verify_err_)) < 0) \
			pol_bug(__FILE__, __LINE__, #fn, pol_verify_err_); \
	} \
} while (0)

/* For *_verify() functions: writes the reason into err and returns -1. */
static inline __attribute__((format(printf, 3, 4))) int pol_verify_fail(char *err, size_t errlen,
                                                                      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

#endif /* POL_BUG_H */
