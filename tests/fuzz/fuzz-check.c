/* fuzz-check.c: the invariant checks of fuzz-check.h. Fuzz build only. */
#include <string.h>

#include "fuzz-check.h"
#include "spop-client.h"

void fuzz_check_ack_payload(const uint8_t *p, size_t len)
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

struct pol_engine *fuzz_engine_load(const char *who)
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
