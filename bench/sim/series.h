/* series.h: the simulator's time-series outputs (series.c): a CSV of every strategy's
 * series and a self-contained HTML page of inline SVG plots per scenario. Declarations
 * only; both read results the event loop filled (struct sim_result.series). */
#ifndef SIM_SERIES_H
#define SIM_SERIES_H

#include <stdbool.h>
#include <stdio.h>

#include "sim-t.h"

/* Where the series go: CSV rows `scenario,strategy,t_s,series,value` (a header line
 * first), or JSON `{"columns":[those five],"rows":[{"scenario":…,"strategy":…,"t_s":…,
 * "series":…,"value":…},…]}` with the same rows and number texts. Zero it, set f and
 * json; series_end closes the JSON document. */
struct series_out {
	FILE *f;
	bool json;
	unsigned scenarios;  /* scenarios written */
	unsigned long rows;  /* JSON rows written */
};

/* Appends one scenario's series of every strategy that ran (res[SIM_S_COUNT],
 * names[SIM_S_COUNT]). Series: auth_rate (%), charges (issuer answers/s),
 * share:<backend> (% of creations), shed:<class> (/s), upstream_429 (/s); a bin without
 * charges (creations) has no auth_rate (share) row. t_s is the bin's start. */
void series_write(struct series_out *o, const struct sim_scenario *sc, const struct sim_result *res,
                  const char *const *names);
void series_end(struct series_out *o);

/* A JSON string: quotes and backslashes escaped, control characters left out. */
void series_json_str(FILE *f, const char *s);

/* Writes one HTML page (inline SVG, no script, no external file) to path: per strategy
 * that ran, authorisation rate, share per backend, shed per class and upstream 429s over
 * time, the incidents marked. Returns 0, or -1 with the reason in err. */
int series_html(const char *path, const struct sim_scenario *sc, const struct sim_result *res,
                const char *const *names, char *err, size_t errlen);

#endif /* SIM_SERIES_H */
