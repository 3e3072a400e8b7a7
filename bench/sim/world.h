/* world.h: random worlds for the simulator (world.c): a world seed → a scenario file and
 * the policy payspoa runs with in it. Declarations only. */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* World k of `payspoa-sim --random N --seed S`: its world seed (also its traffic seed). */
uint64_t world_seed(uint64_t seed, unsigned k);

/* Draws world `wseed` (bench/sim/scenarios/README.md, "Random worlds", has the
 * distributions) and writes it as two files in `dir`: world-<wseed>.conf (the scenario)
 * and world-<wseed>-policy.conf (the policy it names, relatively). The scenario path goes
 * to path[n]. Returns 0, or -1 with the reason in err. The same wseed always writes the
 * same bytes; a scenario file is what the world is, so loading it back runs the world.
 * learning: NULL, or settings the policy's `learning` group gets (`--world-learning`, to
 * judge a learning setting on the worlds; libconfig text, checked when the world loads). */
int world_write(uint64_t wseed, const char *learning, const char *dir, char *path, size_t n, char *err,
                size_t errlen);

#endif /* SIM_WORLD_H */
