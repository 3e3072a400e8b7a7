/* series.h: the simulator's time-series outputs (series.c): a CSV of every strategy's
 * series and a self-contained HTML page of inline SVG plots per scenario. Declarations
 * only; both read results the event loop filled (struct sim_result.series). */
#ifndef SIM_SERIES_H
#define SIM_SERIES_H

#include <stdbool.h>
#include <stdio.h>

#include "sim-t.h"

/* Appends the series of every strategy that ran (res[SIM_S_COUNT], names[SIM_S_COUNT])
 * to f as CSV rows `scenario,strategy,t_s,series,value`, after a header line when
 * `header`. Series: auth_rate (%), charges (issuer answers/s), share:<backend> (% of
 * creations), shed:<class> (/s), upstream_429 (/s); a bin without charges (creations)
 * has no auth_rate (share) row. t_s is the bin's start. */
void series_csv(FILE *f, const struct sim_scenario *sc, const struct sim_result *res, const char *const *names,
                bool header);

/* Writes one HTML page (inline SVG, no script, no external file) to path: per strategy
 * that ran, authorisation rate, share per backend, shed per class and upstream 429s over
 * time, the incidents marked. Returns 0, or -1 with the reason in err. */
int series_html(const char *path, const struct sim_scenario *sc, const struct sim_result *res,
                const char *const *names, char *err, size_t errlen);

#endif /* SIM_SERIES_H */
