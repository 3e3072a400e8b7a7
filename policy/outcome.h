/* outcome.h: classify a `pay-response` outcome (success, declines, PSP error, 429s).
 * Pure: no clock, no I/O, no allocation; the table lives in caller memory. */
#ifndef OUTCOME_H
#define OUTCOME_H

#include <stddef.h>

#include "outcome-t.h"
#include "pay-t.h"

/* How many rules the built-in defaults take: size the caller's array at least this. */
size_t oc_default_count(void);

/* Use `rules[0..cap-1]` (caller-owned, outlives the table) and load the built-in
 * defaults into it. Returns 0, or -1 if cap < oc_default_count() (table left empty). */
int oc_table_init(struct oc_table *t, struct oc_rule *rules, size_t cap);

/* Forget every rule (the policy replaces the defaults rather than extending them). */
void oc_table_clear(struct oc_table *t);

/* Map `code` (len bytes, case-insensitive) to kind, replacing an existing rule for the
 * same code. kind must be OC_DECLINE_CUSTOMER, OC_DECLINE_SOFT or OC_PSP_ERROR.
 * Returns 0, or -1 if the kind is not one of those, the code is empty or longer than
 * OC_CODE_MAX, or the table is full (nothing changed in every failing case). */
int oc_table_set(struct oc_table *t, const char *code, size_t len, enum oc_kind kind);

/* Kind for a card_error whose code is not in the table (default OC_DECLINE_SOFT).
 * Same accepted kinds and return as oc_table_set. */
int oc_table_set_unknown(struct oc_table *t, enum oc_kind kind);

/* The kind `code` maps to, or -1 if it has no rule. */
int oc_table_find(const struct oc_table *t, const char *code, size_t len);

/* Classify o. slow_ms: latency strictly above it sets OC_F_SLOW (<= 0: never slow).
 * Precedence: no status -> PSP error + TIMEOUT; 5xx -> PSP error; 429 -> rate limited
 * or lock conflict; 402, or a 4xx with err_type card_error -> the table, looked up by
 * decline code, then by error code; other 4xx -> client error; 2xx -> success; any
 * other status (1xx, 3xx, > 599) -> PSP error, as no sane PSP answers that.
 * Never fails; safe from any thread against a table nobody writes. */
struct oc_class oc_classify(const struct oc_table *t, const struct pay_outcome *o,
                            int64_t slow_ms);

/* A short stable name for the kind ("success", "decline_customer", ...). */
const char *oc_kind_name(enum oc_kind k);

#endif /* OUTCOME_H */
