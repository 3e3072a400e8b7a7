/* classify.h: classification of a request into a traffic class by ordered rules, and
 * the path patterns shared with the endpoint budgets. Pure, no allocation. */
#ifndef CLASSIFY_H
#define CLASSIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "pay-t.h"

struct policy;

/* Path patterns: literal bytes, `*` = any run of bytes other than '/' (at most one per
 * segment, so matching is linear in the path), and a final `**` = anything, '/'
 * included. The whole path must match. Returns NULL when pat is valid, else why not. */
const char *cls_pattern_check(const char *pat);
bool cls_path_match(const char *pat, const char *path, uint32_t len);

/* Method rule ("" = any) against the request's method, ASCII case-insensitively. */
bool cls_method_match(const char *method, struct pay_str m);

/* Index of the class of rq: the first rule that matches, else the default class. */
int cls_classify(const struct policy *p, const struct pay_request *rq);

#endif /* CLASSIFY_H */
