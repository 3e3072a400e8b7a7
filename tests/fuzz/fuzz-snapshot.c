/* fuzz-snapshot: the snapshot loader (spoa/snap.c) on arbitrary bytes, into the real
 * engine of conf/payspoa.conf. Nothing may crash, leak, read out of bounds or allocate
 * without bound; a refused file must say why; a loaded one must leave the engine's
 * invariants whole (pins included). Seeds: real snapshots (corpus-gen-snapshot.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "policy.h"
#include "snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US  (5000ULL * 1000000)
#define WALL_US (1800000000ULL * 1000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pol_engine *e;
	struct snap_result r;
	char err[256];

	if (!e)
		e = fuzz_engine_load("fuzz-snapshot");
	err[0] = 0;
	if (snap_load_buf(e, data, size, NOW_US, WALL_US, &r, err, sizeof(err)) < 0) {
		FUZZ_ASSERT(err[0] != 0);
		return 0;
	}
	FUZZ_ASSERT(r.im.pins + r.im.pins_dropped == r.pins);
	FUZZ_ASSERT(r.im.recs + r.im.recs_dropped == r.recs);
	if (pol_engine_verify(e, NOW_US, true, err, sizeof(err)) < 0) {
		fprintf(stderr, "engine invariant after a load: %s\n", err);
		abort();
	}
	return 0;
}
