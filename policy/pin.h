/* pin.h: affinity tables. Lock-free, fixed size; no allocation after pin_init. Time is
 * in seconds of the caller's monotonic clock (now_us / 1e6). */
#ifndef PIN_H
#define PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pin-t.h"

/* Allocates `slots` (a power of two >= PIN_WAYS) entries. Returns 0 or -1 (no memory). */
int pin_init(struct pin_table *t, uint32_t slots, uint32_t ttl_s);
void pin_destroy(struct pin_table *t); /* accepts a zeroed table */

/* The backend pinned for key, or -1 when none is live. */
int pin_get(const struct pin_table *t, uint64_t key, uint32_t now_s);

/* Pins key to backend until now_s + ttl (an existing entry for key is replaced). */
void pin_put(struct pin_table *t, uint64_t key, unsigned backend, uint32_t now_s);

/* Pins key to backend until exp_s (snapshots: a restored pin keeps its age). An
 * existing live entry for key is left alone. exp_s <= now_s: nothing. */
void pin_put_until(struct pin_table *t, uint64_t key, unsigned backend, uint32_t exp_s, uint32_t now_s);

/* Calls cb for every live entry (key, backend, expiry), reading slots lock-free like
 * pin_get: safe while workers write (an entry written during the scan may be missed).
 * Stops early when cb returns non-zero, and returns that value (else 0). */
typedef int (*pin_visit_fn)(void *arg, uint64_t key, unsigned backend, uint32_t exp_s);
int pin_foreach(const struct pin_table *t, uint32_t now_s, pin_visit_fn cb, void *arg);

/* Copies the live entries of src into dst where dst has no live entry for the key,
 * keeping their expiry; backend b becomes map[b], or is dropped when map[b] < 0.
 * Used on reload. Safe while workers use both tables (an entry written to src during
 * the copy may be missed; the engine merges again when it retires src). */
void pin_merge(struct pin_table *dst, const struct pin_table *src, const int *map, uint32_t now_s);

/* Checks the table's invariants: no slot locked, every written slot's key is non-zero
 * and in its own bucket, its backend < nbackends, no two live slots of a bucket hold
 * the same key, evicted <= stored. Valid only while no thread writes (a writer holds a
 * slot locked for two stores). Returns 0, or -1 with the first violation in err. */
int pin_verify(const struct pin_table *t, unsigned nbackends, uint32_t now_s, char *err, size_t errlen);

/* Live entries (an O(size) scan, for the admin socket). */
uint64_t pin_live(const struct pin_table *t, uint32_t now_s);

#endif /* PIN_H */
