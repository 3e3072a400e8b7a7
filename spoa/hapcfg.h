/* hapcfg.h: the HAProxy configuration generated from a policy (`payspoa haproxy-snippet`)
 * and the check of an HAProxy file against a policy (`payspoa -c --haproxy FILE`).
 * Boot-time only: never called from a worker. */
#ifndef HAPCFG_H
#define HAPCFG_H

#include <stdint.h>
#include <stdio.h>

#include "policy-t.h"

/* The lines that open and close the generated block inside haproxy/haproxy.cfg and
 * haproxy/snippet.cfg; the test that compares them with a fresh output looks for these. */
#define HAPCFG_BEGIN "# ==== BEGIN payspoa haproxy-snippet"
#define HAPCFG_END   "# ==== END payspoa haproxy-snippet"

/* Writes the generated block (peers section with the pin tables, frontend `payments`,
 * one backend per policy backend) for policy p to f, markers included. `source` is the
 * policy file name printed in the header (as the user typed it, so the output does not
 * depend on the directory). Returns 0, or -1 if writing failed. */
int hapcfg_write(FILE *f, const struct policy *p, const char *source);

/* The stable numeric HAProxy id (`id` of the backend section, what `be_id` returns and
 * the pin tables store) of p's backend b: derived from the name alone, so that adding,
 * removing or reordering backends never changes the id of another one. */
uint32_t hapcfg_backend_id(const struct policy *p, int b);

/* Compares the backends of the HAProxy configuration file `path` with p's: writes one
 * line to out per policy backend that the file lacks and per file backend the policy does
 * not know (the agent's SPOE backend, named by payspoa.spoe.conf, is not counted), and
 * one per server of that agent backend whose address (`${VAR}` resolved as HAProxy does:
 * the file's setenv, the environment, the file's presetenv) reaches none of p's
 * listeners. Returns the number of mismatches, or -1 (message written to out) if the
 * file cannot be read. */
int hapcfg_check(FILE *out, const struct policy *p, const char *path);

#endif /* HAPCFG_H */
