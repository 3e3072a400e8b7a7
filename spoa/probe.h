/* probe.h: active HTTP(S) probes of the backends (backends[].probe_url), on the control
 * thread through httpc; each result goes to the engine (pol_engine_probe_result). */
#ifndef PROBE_H
#define PROBE_H

#include <ev.h>
#include <stdint.h>

#include "httpc.h"
#include "policy.h"

struct probe_set;

/* Counters of the probes, read into the daemon's totals (stats-t.h, owner daemon). */
struct probe_counts {
	uint64_t sent, failed, skipped;
};

/* One probe per backend of p with a probe_url, each on its own timer; the first probe
 * goes out at once. Returns NULL with err filled (out of memory); a policy without probes
 * gives an empty set. The set keeps no pointer into p. */
struct probe_set *probe_set_new(struct ev_loop *loop, struct httpc *h, struct pol_engine *e,
                                const struct policy *p, char *err, size_t errlen);
/* Stops every probe (in-flight transfers are cancelled) and frees; accepts NULL. */
void probe_set_free(struct probe_set *ps);
/* Adds the set's counts into *c (counts survive a reload through the caller). */
void probe_set_counts(const struct probe_set *ps, struct probe_counts *c);

#endif /* PROBE_H */
