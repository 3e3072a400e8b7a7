/* classify.c: ordered classification rules (method, path pattern, trusted hint) and the
 * path pattern matcher. Pure: no allocation, no I/O; runs on the decision path. */
#include <string.h>

#include "classify.h"
#include "policy-t.h"
#include "pstr.h"

const char *cls_pattern_check(const char *pat)
{
	const char *c;
	int stars = 0;

	if (pat[0] != '/')
		return "must start with '/'";
	for (c = pat; *c; c++) {
		if (*c == '/') {
			stars = 0;
		} else if (*c == '*') {
			if (c[1] == '*')
				return c[2] ? "'**' is only allowed at the end" : NULL;
			if (++stars > 1)
				return "at most one '*' per path segment";
		}
	}
	return NULL;
}

/* Recursion depth is bounded by the number of '*' in pat; with one '*' per segment each
 * star retries at most the length of its own segment, because what follows it in the
 * pattern must reach the next '/' in the same place. */
static bool cls_match_from(const char *pat, const char *s, const char *end)
{
	for (;;) {
		if (!*pat)
			return s == end;
		if (pat[0] == '*' && pat[1] == '*')
			return true;
		if (*pat == '*') {
			pat++;
			for (;;) {
				if (cls_match_from(pat, s, end))
					return true;
				if (s == end || *s == '/')
					return false;
				s++;
			}
		}
		if (s == end || *s != *pat)
			return false;
		pat++;
		s++;
	}
}

bool cls_path_match(const char *pat, const char *path, uint32_t len)
{
	if (!path)
		return false;
	return cls_match_from(pat, path, path + len);
}

bool cls_method_match(const char *method, struct pay_str m)
{
	return !method[0] || pstr_eq_ci(m, method);
}

int cls_classify(const struct policy *p, const struct pay_request *rq)
{
	int i;

	for (i = 0; i < p->nrules; i++) {
		const struct pol_rule *r = &p->rules[i];

		if (!cls_method_match(r->method, rq->method))
			continue;
		if (r->path[0] && !cls_path_match(r->path, rq->path.ptr, rq->path.len))
			continue;
		if (r->hint[0] && (!p->trust_hints || !pstr_eq(rq->class_hint, r->hint)))
			continue;
		return r->cls;
	}
	return p->default_class;
}
