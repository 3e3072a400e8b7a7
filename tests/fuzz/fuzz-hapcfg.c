/* fuzz-hapcfg.c: `payspoa -c --haproxy FILE` (spoa/hapcfg.c) on arbitrary files: the input
 * is both the HAProxy file (its section headers, its `filter spoe ... config` line) and
 * the SPOE file that line names (its `timeout processing`), checked against a policy with
 * a fleet and claims on. Invariants: no read past a line, a result that is a count (the
 * files exist), and the same result twice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-check.h"
#include "hapcfg.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct policy *pol;
static char cfg[64], spoe[64];

static const char pol_text[] =
	"fee_schedules = ( { name = \"a\"; percent = 2.9; fixed = 30; } );\n"
	"backends = ( { name = \"stripe_us\"; account = \"acct_a\"; entity = \"x\"; region = \"other\";\n"
	"  currencies = [ \"usd\" ]; fee_schedule = \"a\"; } );\n"
	"default_backend = \"stripe_us\";\n"
	"classes = ( { name = \"std\"; } );\n"
	"fleet = { redis = \"127.0.0.1:6379\"; claim_timeout_ms = 40; };\n";

static void cleanup(void)
{
	unlink(cfg);
	unlink(spoe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f, *out;
	int a, b;

	if (size > 4096)
		return 0;
	if (!pol) {
		char err[256];

		pol = pol_load_string(pol_text, "fuzz.conf", err, sizeof(err));
		FUZZ_ASSERT(pol);
		snprintf(cfg, sizeof(cfg), "/tmp/fuzz-hapcfg-%d.cfg", (int)getpid());
		snprintf(spoe, sizeof(spoe), "/tmp/fuzz-hapcfg-%d.spoe", (int)getpid());
		atexit(cleanup);
	}
	f = fopen(spoe, "w");
	FUZZ_ASSERT(f);
	fwrite(data, 1, size, f);
	fclose(f);
	f = fopen(cfg, "w");
	FUZZ_ASSERT(f);
	fwrite(data, 1, size, f);
	fprintf(f, "\n\tfilter spoe engine payspoa config %s\n", spoe);
	fclose(f);
	out = fopen("/dev/null", "w");
	FUZZ_ASSERT(out);
	a = hapcfg_check(out, pol, cfg);
	b = hapcfg_check(out, pol, cfg);
	fclose(out);
	FUZZ_ASSERT(a >= 0 && a == b);
	return 0;
}
