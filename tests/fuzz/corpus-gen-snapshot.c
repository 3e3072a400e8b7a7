/* corpus-gen-snapshot.c: writes the seed corpus of fuzz-snapshot: real snapshots of the
 * engine of conf/payspoa.conf, cold and after some traffic (pins of the three kinds,
 * breakers, posteriors, forecasts). Not built by make; after `make`, run:
 *   cc -D_GNU_SOURCE -Ispoa -Ipolicy -Itests/lib -o /tmp/corpus-gen-snapshot \
 *      tests/fuzz/corpus-gen-snapshot.c build/release/libpayspoa.a \
 *      $(pkg-config --libs libconfig msgpack) -lev -lm -pthread
 *   /tmp/corpus-gen-snapshot tests/fuzz/corpus/snapshot */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "snap.h"
#include "state.h"

#define SEC 1000000ULL

static void save(struct pol_engine *e, uint64_t now, const char *dir, const char *name)
{
	char path[512], err[256];
	struct pol_state *st = pol_state_capture(e, now);
	struct snap_result r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!st || snap_write(st, 1800000000ULL * SEC, path, &r, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", path, st ? err : "capture failed");
		exit(1);
	}
	pol_state_free(st);
}

static struct pay_str str(const char *s)
{
	return (struct pay_str){ s, (uint32_t)strlen(s) };
}

int main(int argc, char **argv)
{
	static const char *cur[] = { "usd", "eur", "gbp" }, *cc[] = { "US", "FR", "GB" };
	char err[512], key[32], obj[32];
	struct policy *p;
	struct pol_engine *e;
	int i;

	if (argc != 2)
		return 2;
	p = pol_load("conf/payspoa.conf", err, sizeof(err));
	if (!p || !(e = pol_engine_new(p, 1, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	save(e, 10 * SEC, argv[1], "cold");
	for (i = 0; i < 40; i++) {
		struct pay_request rq = { 0 };
		struct pay_verdict v;
		struct pay_outcome o = { 0 };
		uint64_t now = 10 * SEC + (uint64_t)i * 100000;

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(obj, sizeof(obj), "pi_%d", i);
		rq.method = str("POST");
		rq.path = str("/v1/payment_intents");
		rq.currency = str(cur[i % 3]);
		rq.card_country = str(cc[i % 3]);
		rq.idem = str(key);
		if (i % 4 == 0)
			rq.account = str("acct_connected_1");
		rq.amount = 1000;
		rq.has_amount = true;
		pol_decide(e, 0, &rq, now, &v);
		o.decision = (struct pay_str){ v.decision, v.decision_len };
		o.backend = str(v.backend);
		o.status = i % 6 ? 200 : 502;
		o.latency_ms = 120;
		o.object = str(obj);
		pol_observe(e, 0, &o, now + 1000);
		pol_quiesce(e, 0);
		pol_tick(e, now + 2000);
	}
	save(e, 15 * SEC, argv[1], "warm");
	pol_engine_free(e);
	return 0;
}
