/* scenario.h: reads a simulator scenario file into a struct sim_scenario (scenario.c).
 * Declarations only. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stddef.h>

#include "sim-t.h"

/* Loads `path` into *sc (zeroed first). Returns 0, or -1 with "file:line: message" in
 * err. @include resolves against the scenario's directory. */
int sc_load(const char *path, struct sim_scenario *sc, char *err, size_t errlen);

/* --scale: every scenario time (duration, surges, incidents) times x; shapes stay. */
void sc_scale(struct sim_scenario *sc, double x);

#endif /* SIM_SCENARIO_H */
