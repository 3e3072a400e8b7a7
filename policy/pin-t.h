/* pin-t.h: affinity tables (idempotency key / object id / Connect account → backend).
 * Types only. */
#ifndef PIN_T_H
#define PIN_T_H

#include <stdatomic.h>
#include <stdint.h>

#define PIN_WAYS 4 /* slots per bucket: 4 × 16 bytes = one cache line */

/* One entry. `meta` is a per-slot seqlock and the value at once:
 *   bit 63 lock | bits 56..62 backend index | bits 32..55 version | bits 0..31 expiry (s).
 * Expiry 0 means empty. `key` is the full 64-bit hash (0 is mapped to 1). */
struct pin_slot {
	_Atomic uint64_t key;
	_Atomic uint64_t meta;
};

/* A fixed-size, lock-free table shared by all worker threads. Sized at load, never
 * grows: a full bucket loses its entry closest to expiry (the oldest, since one table
 * has one TTL) and `evicted` counts it. */
struct pin_table {
	struct pin_slot *slots; /* nbuckets × PIN_WAYS, cache-line aligned */
	uint32_t bmask;         /* nbuckets - 1 */
	uint32_t ttl_s;
	_Atomic uint64_t stored;  /* entries written */
	_Atomic uint64_t evicted; /* live entries pushed out by a full bucket */
};

#endif /* PIN_T_H */
