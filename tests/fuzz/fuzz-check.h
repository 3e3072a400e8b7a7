/* fuzz-check.h: invariant checks shared by the SPOP fuzz targets. Header-only (the fuzz
 * build compiles one target file with the sources); aborts with a message on failure so
 * libFuzzer records the input. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "spop-client.h"

#define FUZZ_ASSERT(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

/* An ACK payload: ≥ 1 action, every one a well-formed set-var in scope txn whose name
 * fits HAProxy 2.6's "txn.pay.<name>" 64-byte buffer. */
static inline void fuzz_check_ack_payload(const uint8_t *p, size_t len)
{
	static struct sc_ack a;
	int n = sc_ack_decode(p, len, &a);

	if (n < 1) {
		fprintf(stderr, "ACK payload of %zu bytes: %s; hex:", len, n < 0 ? "malformed" : "empty");
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, " %02x", p[i]);
		fputc('\n', stderr);
		abort();
	}
	for (unsigned i = 0; i < a.n; i++) {
		FUZZ_ASSERT(a.v[i].action == SPOP_ACT_SET_VAR);
		FUZZ_ASSERT(a.v[i].scope == SPOP_SCOPE_TXN);
		FUZZ_ASSERT(a.v[i].nlen >= 1 && strlen("txn.pay.") + a.v[i].nlen < 64);
	}
}

/* The real engine, built once from conf/payspoa.conf ($PAYSPOA_CONF) for one worker;
 * exits when the policy does not load. */
static inline struct pol_engine *fuzz_engine_load(const char *who)
{
	const char *path = getenv("PAYSPOA_CONF") ? getenv("PAYSPOA_CONF") : "conf/payspoa.conf";
	struct pol_engine *e = NULL;
	char err[512];
	struct policy *p = pol_load(path, err, sizeof(err));

	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "%s: %s\n", who, err);
		exit(1);
	}
	return e;
}

#endif /* FUZZ_CHECK_H */
