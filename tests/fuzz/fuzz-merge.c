/* fuzz-merge.c: the parser of the fleet's learning texts (policy/merge.c) on arbitrary
 * bytes, which is what another node, or anyone who can publish on the fleet's Redis, may
 * send. Invariants: a parse is deterministic; an accepted breaker text is written back by
 * its formatter to the very same bytes; an accepted learning text re-encodes, parses
 * again to the same counts (records of one key merge, so bytes may differ). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mrg_cell m1[256], m2[256], m3[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mrg_delta d1, d2, d3;
	struct mrg_msg a, b;
	static char out[65536];
	char *in;
	int rc, n;

	if (size > 8192)
		return 0;
	in = malloc(size + 1); /* exactly the input: ASan sees any read past it */
	FUZZ_ASSERT(in);
	memcpy(in, data, size);
	FUZZ_ASSERT(mrg_init(&d1, m1, 256) == 0 && mrg_init(&d2, m2, 256) == 0 && mrg_init(&d3, m3, 256) == 0);
	rc = mrg_parse(in, size, &a, &d1);
	FUZZ_ASSERT(rc == mrg_parse(in, size, &b, &d2));
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0 && a.kind == MRG_BREAKER) {
		n = mrg_encode_breaker(a.node, a.seq, a.backend, out, sizeof(out));
		FUZZ_ASSERT(n >= 0 && (size_t)n == size && memcmp(out, in, size) == 0);
	} else if (rc == 0) {
		FUZZ_ASSERT(a.kind == MRG_LEARN && d1.n == d2.n);
		n = mrg_encode(&d1, a.node, a.seq, out, sizeof(out));
		FUZZ_ASSERT(n >= 0);
		FUZZ_ASSERT(mrg_parse(out, (size_t)n, &b, &d3) == 0 && d3.n == d1.n && b.seq == a.seq);
		for (uint32_t i = 0; i < d1.cap; i++)
			if (d1.cell[i].used) {
				const struct mrg_cell *c = mrg_find(&d3, &d1.cell[i].k);

				FUZZ_ASSERT(c && c->s == d1.cell[i].s && c->f == d1.cell[i].f);
			}
	}
	free(in);
	return 0;
}
