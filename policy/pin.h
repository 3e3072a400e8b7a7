/* pin.h: generational affinity tables (pin-t.h). Workers: pin_get, pin_claim, pin_set,
 * lock-free and allocation-free. Control thread: everything else. Time is in seconds of
 * the caller's monotonic clock; keys are 64-bit hashes (the low byte is not kept). */
#ifndef PIN_H
#define PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pin-t.h"

#define PIN_NONE (-1) /* no pin */
#define PIN_FULL (-2) /* pin_claim: the current generation had no room along the key's probe */

/* Sets up an empty table promising `capacity` pins for ttl_s seconds (pin_size), with
 * one generation that starts at the first pin_tick. Returns 0 or -1 (no memory). */
int pin_init(struct pin_table *t, uint64_t capacity, uint32_t ttl_s);
void pin_destroy(struct pin_table *t); /* frees everything; accepts a zeroed table */

/* Changes the promise (on reload): applies to the generations started from now on, and
 * the TTL to when existing ones are dropped. */
void pin_size(struct pin_table *t, uint64_t capacity, uint32_t ttl_s);

/* Slots of one generation for `capacity` pins over ttl (the load limit included). */
uint64_t pin_gen_slots(uint64_t capacity);

/* Read-only: the backend id pinned for key, or PIN_NONE. */
int pin_get(const struct pin_table *t, uint64_t key);

/* A hint, for a batch: asks for key's home line in every live generation (where
 * pin_get, pin_claim and pin_set walk first) without waiting for it, so that the walks of
 * a batch that follows find their lines in cache instead of missing one after another.
 * Same thread rules as pin_get. */
void pin_prefetch(const struct pin_table *t, uint64_t key);

/* Insert-if-absent, linearizable across threads: the id pinned for key after the call:
 * `id` when this call won, another id when a claim came first (the caller follows it),
 * or PIN_FULL (nothing written for key in the current generation). id < PIN_MAX_IDS. */
int pin_claim(struct pin_table *t, uint64_t key, unsigned id);

/* pin_claim by a worker still holding list l (older than the table's): for tests of the
 * race between a claim and a rotation. */
int pin_claim_from(struct pin_table *t, const struct pin_list *l, uint64_t key, unsigned id);

/* Pins key to id whatever it was pinned to (a correction: the entry is rewritten in
 * place). Returns the id it held before, PIN_NONE when it had none (then claimed), or
 * PIN_FULL. */
int pin_set(struct pin_table *t, uint64_t key, unsigned id);

/* Control thread, every tick: frees what was retired at an epoch <= min_seen; drops the
 * generations whose youngest pin is older than the TTL; starts a new generation when the
 * current one's period is over or it took its share of claims (`claims`: the table's
 * claims so far, summed by the caller); with PIN_MAX_GENS live, the oldest is dropped
 * first and its live pins are counted in `evicted`. Retired memory is tagged with
 * `epoch`; returns true when something was published, and the caller must then make
 * `epoch` the new epoch (QSBR, engine.c). Allocates (the new generation); on failure the
 * current one keeps taking claims. */
bool pin_tick(struct pin_table *t, uint32_t now_s, uint64_t claims, uint64_t epoch, uint64_t min_seen);

/* Pins held, from `claims` (the table's claims so far, as pin_tick takes it): those made
 * since the oldest live generation started (a rewrite counts as a claim; an estimate). */
uint64_t pin_live(const struct pin_table *t, uint64_t claims);

/* Every pin, for snapshots: fn(arg, key, id, age_s) with key as pin_restore takes it and
 * age_s the youngest the pin can be (its generation's end; 0 in the current one). */
void pin_each(const struct pin_table *t, uint32_t now_s,
              void (*fn)(void *arg, uint64_t key, unsigned id, uint32_t age_s), void *arg);

/* Control thread, before workers run: puts back a pin of that age (pin_each). A pin
 * older than the TTL is not restored. Returns 0, or -1 when it found no room. */
int pin_restore(struct pin_table *t, uint64_t key, unsigned id, uint32_t age_s, uint32_t now_s);

/* Checks the invariants: every entry sits within the probe reach of its home line, its
 * id < nids; generations are in order and at most PIN_MAX_GENS. Valid at any time.
 * Returns 0, or -1 with the first violation in err. */
int pin_verify(const struct pin_table *t, unsigned nids, char *err, size_t errlen);

#endif /* PIN_H */
