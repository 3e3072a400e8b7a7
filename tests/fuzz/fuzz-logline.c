/* fuzz-logline.c: the outcome log line parser (spoa/logline.c) on arbitrary bytes, then
 * what it accepts into the real engine on the log reader's path (pol_observe).
 * Invariants: every string it returns lies inside the input buffer; a parse is
 * deterministic; a line it refuses has a known error code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "logline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(struct pay_str s, const char *buf, size_t size)
{
	if (!s.ptr) {
		FUZZ_ASSERT(s.len == 0);
		return;
	}
	FUZZ_ASSERT(s.ptr >= buf && s.ptr <= buf + size && s.len <= (size_t)(buf + size - s.ptr));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pol_engine *e;
	static uint64_t now = 1000000;
	char *a, *b;
	struct pay_outcome o, o2;
	int rc, rc2;

	if (!e)
		e = fuzz_engine_load("fuzz-logline");
	if (size > 4 * LOGLINE_MAX)
		return 0;
	a = malloc(size + 1); /* exactly the input: ASan sees any read past it */
	b = malloc(size + 1);
	FUZZ_ASSERT(a && b);
	memcpy(a, data, size);
	memcpy(b, data, size);
	rc = logline_parse(a, size, &o);
	rc2 = logline_parse(b, size, &o2);
	FUZZ_ASSERT(rc == rc2);
	FUZZ_ASSERT(rc == 1 || rc == LOGLINE_MALFORMED || rc == LOGLINE_TRUNCATED);
	if (rc == 1) {
		const struct pay_str *f[] = { &o.id, &o.decision, &o.backend, &o.should_retry, &o.rl_reason,
		                              &o.err_type, &o.err_code, &o.decline, &o.object, &o.idem,
		                              &o.account, &o.term };
		size_t k;

		FUZZ_ASSERT(o.channel == PAY_CH_LOG);
		for (k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
			const struct pay_str *g = (const struct pay_str *)((const char *)&o2 + ((const char *)f[k] - (const char *)&o));

			check_str(*f[k], a, size);
			FUZZ_ASSERT(f[k]->len == g->len && (!f[k]->len || memcmp(f[k]->ptr, g->ptr, f[k]->len) == 0));
		}
		FUZZ_ASSERT(o.status == o2.status && o.latency_ms == o2.latency_ms);
		pol_observe(e, 0, &o, now += 1000);
		pol_quiesce(e, 0);
		if ((now / 1000) % 64 == 0)
			pol_tick(e, now);
	}
	free(a);
	free(b);
	return 0;
}
