/* pol-test.h: helpers the policy unit tests share (built into libtest.a). Each fails the
 * running case (test.h) rather than return an error. */
#ifndef POL_TEST_H
#define POL_TEST_H

#include <stdbool.h>

#include "pay-t.h"
#include "policy.h"
#include "test.h"

/* A pay_str from a string literal. */
#define S(lit) ((struct pay_str){ (lit), sizeof(lit) - 1 })

/* Two accounts that both present USD; "pa" is cheaper (2.9 % vs 3.5 %, same fixed part),
 * so it is the first choice of every USD payment until something is learned. */
#define POL_TEST_TWO_USD_ACCOUNTS \
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; }, { name = \"b\"; percent = 3.5; fixed = 30; } );\n" \
	"backends = (\n" \
	" { name = \"pa\"; account = \"acct_a\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"a\"; },\n" \
	" { name = \"pb\"; account = \"acct_b\"; entity = \"x\"; region = \"other\"; currencies = [ \"usd\" ]; fee_schedule = \"b\"; }\n" \
	");\n"

/* Does the verdict's reason hold `tok` as a whole space-separated token? */
bool has_token(const struct pay_verdict *v, const char *tok);

/* A $100.00 USD charge with a US Visa credit card, on the payment_intents endpoint. */
struct pay_request pol_test_usd_charge(void);

/* The pay-response HAProxy reports for verdict v: its decision id, the backend it
 * chose (be_name), the status and latency; callers add error fields. */
struct pay_outcome pol_test_answer(const struct pay_verdict *v, int status, int latency_ms);

/* An engine for `workers` threads from policy text ("test" in errors); a policy the
 * loader refuses fails the case with its file:line message. */
struct pol_engine *pol_test_engine(const char *text, unsigned workers);

/* The policy in `file`; one the loader refuses fails the case with its file:line
 * message. The caller frees it (pol_free) or hands it to an engine. */
struct policy *pol_test_load(const char *file);

/* Engine ticks every 50 ms in (from, to], as the daemon's control thread makes them. */
void pol_test_ticks(struct pol_engine *e, uint64_t from, uint64_t to);

/* The breaker state of backend i ("closed", "open", ...) as the engine reports it. */
const char *pol_test_breaker(struct pol_engine *e, unsigned i, uint64_t now);

#endif /* POL_TEST_H */
