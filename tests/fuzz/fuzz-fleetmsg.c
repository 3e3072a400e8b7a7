/* fuzz-fleetmsg.c: the fleet's parsers (spoa/fleetmsg.c) on arbitrary bytes, which is what
 * another node, or anyone who can write to the fleet's Redis, may send: a channel message,
 * a pin's value, a pin's key name. Invariants: a parse is deterministic; what a parser
 * accepts is written back by its formatter to the very same bytes (so nothing is read past
 * the input and every accepted field is well-formed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetmsg.h"
#include "fuzz-check.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_msg m, m2;
	char be[FLEET_NAME_MAX], acct[FLEET_NAME_MAX], out[600];
	unsigned table;
	uint64_t key;
	char *a;
	int rc, n;

	if (size > 1024)
		return 0;
	a = malloc(size + 1); /* exactly the input: ASan sees any read past it */
	FUZZ_ASSERT(a);
	memcpy(a, data, size);

	rc = fleet_msg_parse(a, size, &m);
	FUZZ_ASSERT(rc == fleet_msg_parse(a, size, &m2));
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0) {
		FUZZ_ASSERT(m.table < POL_PIN_TABLES);
		n = fleet_msg_format(out, sizeof(out), &m);
		FUZZ_ASSERT(n >= 0 && (size_t)n == size && memcmp(out, a, size) == 0);
	}

	if (fleet_value_parse(a, size, be, acct) == 0) {
		n = fleet_value_format(out, sizeof(out), be, acct);
		FUZZ_ASSERT(n >= 0 && (size_t)n == size && memcmp(out, a, size) == 0);
	}

	if (fleet_key_parse("payspoa", a, size, &table, &key) == 0) {
		FUZZ_ASSERT(table < POL_PIN_TABLES);
		n = fleet_key_format(out, sizeof(out), "payspoa", table, key);
		FUZZ_ASSERT(n >= 0 && (size_t)n == size && memcmp(out, a, size) == 0);
	}
	free(a);
	return 0;
}
