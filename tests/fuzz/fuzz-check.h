/* fuzz-check.h: invariant checks shared by the SPOP fuzz targets (fuzz-check.c, linked
 * into every target); each aborts with a message on failure so libFuzzer records the
 * input. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy.h"

#define FUZZ_ASSERT(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

/* An ACK payload: ≥ 1 action, every one a well-formed set-var in scope txn whose name
 * fits HAProxy 2.6's "txn.pay.<name>" 64-byte buffer. */
void fuzz_check_ack_payload(const uint8_t *p, size_t len);

/* The real engine, built once from conf/payspoa.conf ($PAYSPOA_CONF) for one worker;
 * exits when the policy does not load. */
struct pol_engine *fuzz_engine_load(const char *who);

#endif /* FUZZ_CHECK_H */
