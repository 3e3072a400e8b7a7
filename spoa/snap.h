/* snap.h: snapshots of the engine's learned state and pins (policy/state.h) as a msgpack
 * file: written atomically (temp file in the same directory, fsync, rename, fsync of the
 * directory), read back at start. The file is a stream of msgpack arrays:
 *   ["payspoa-state", version, wall_us, engine_now_us, fingerprint]   header
 *   [[backend, account], ...]                                          the capture's backends
 *   ["p", kind, b, key, age_s, b, key, age_s, ...]                     pins (b: index above)
 *   ["r", kind, name, name2, bin]                                      a learned record
 *   ["s", key, t_us, s, f, ...]                                        posterior entries
 *   ["e", pins, records, entries, checksum]                            end: FNV-1a 64 of
 *                                                                      every byte before it
 * A file without its end, with a wrong checksum, another magic or a later version is
 * refused whole (nothing is imported): a cold start with the reason, never a crash. */
#ifndef SNAP_H
#define SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define SNAP_MAGIC   "payspoa-state"
#define SNAP_VERSION 1u
#define SNAP_MAX_FILE (4ULL << 30)  /* refused above: no snapshot of ours comes near */
#define SNAP_MAX_OBJ  (1u << 20)    /* one top-level object (the writer's are < 200 KB) */

struct snap_result {
	uint64_t pins, recs, srt; /* written, or found in the file */
	uint64_t bytes;
	bool learned;             /* load: the fingerprint matched (learned state loaded) */
	struct pol_state_import im; /* load: what was restored and dropped */
};

/* Encodes the capture st (taken at wall-clock wall_us) into path. Any thread; reads the
 * pins lock-free. Returns 0, or -1 with err filled (path untouched: the previous file
 * stays whole). */
int snap_write(const struct pol_state *st, uint64_t wall_us, const char *path, struct snap_result *res,
               char *err, size_t errlen);

/* Loads path into e (control thread, before the first decision): 1 when there is no
 * file (cold start), 0 when loaded, -1 when refused (err says why; nothing imported). */
int snap_load(struct pol_engine *e, const char *path, uint64_t now_us, uint64_t wall_us,
              struct snap_result *res, char *err, size_t errlen);

/* The same from memory (tests, fuzzing): 0 or -1. */
int snap_load_buf(struct pol_engine *e, const uint8_t *buf, size_t len, uint64_t now_us, uint64_t wall_us,
                  struct snap_result *res, char *err, size_t errlen);

#endif /* SNAP_H */
