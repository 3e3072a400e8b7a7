/* fuzz-scenario: the simulator's scenario loader (bench/sim/scenario.c) on arbitrary text.
 * Nothing may crash, leak or read out of bounds; a refused file must come with
 * "path:line: message" (or the path alone for a file that cannot be read), and a loaded
 * one must hold within its table sizes. Inputs with @include are skipped: an include
 * could name any file on the machine (a FIFO, a device). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-check.h"
#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5's leaks on parse errors inside strings (see fuzz-policy.c). */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static char fuzz_dir[] = "/tmp/fuzz-scenario.XXXXXX";
static char fuzz_path[64];

static void fuzz_cleanup(void)
{
	rmdir(fuzz_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sim_scenario sc;
	char err[512];
	FILE *f;

	if (memmem(data, size, "@include", 8))
		return 0;
	if (!fuzz_path[0]) {
		if (!mkdtemp(fuzz_dir))
			abort();
		atexit(fuzz_cleanup);
		snprintf(fuzz_path, sizeof(fuzz_path), "%s/s.conf", fuzz_dir);
	}
	if (!(f = fopen(fuzz_path, "w")) || fwrite(data, 1, size, f) != size || fclose(f))
		abort();
	err[0] = 0;
	if (sc_load(fuzz_path, &sc, err, sizeof(err))) {
		FUZZ_ASSERT(strncmp(err, fuzz_path, strlen(fuzz_path)) == 0);
	} else {
		FUZZ_ASSERT(sc.nbackends >= 1 && sc.nbackends <= SIM_MAX_BACKENDS);
		FUZZ_ASSERT(sc.naccounts >= 1 && sc.naccounts <= SIM_MAX_ACCOUNTS);
		FUZZ_ASSERT(sc.nincidents <= SIM_MAX_INCIDENTS && sc.nendpoints <= SIM_MAX_ENDPOINTS);
		FUZZ_ASSERT(sc.nsegs <= SIM_MAX_SEGS && sc.nclasses <= SIM_MAX_CLASSES);
		sc_scale(&sc, 0.5);
	}
	unlink(fuzz_path);
	return 0;
}
