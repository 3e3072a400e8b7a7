/* pin-t.h: affinity tables (idempotency key / object id / Connect account → backend id),
 * generational and lock-free. Types only. */
#ifndef PIN_T_H
#define PIN_T_H

#include <stdatomic.h>
#include <stdint.h>

#define PIN_LINE      8   /* entries per probe step: 8 × 8 bytes = one cache line */
#define PIN_PERIODS   4   /* a generation takes claims for ttl / PIN_PERIODS seconds */
#define PIN_MAX_GENS  (PIN_PERIODS + 2) /* current + PIN_PERIODS kept for the TTL + 1 early */
#define PIN_MAX_IDS   127 /* backend ids 0..126: an entry is never all-ones */
#define PIN_LOAD_PCT  80  /* a generation this full rotates before its period ends */
#define PIN_EMPTY     0ULL
#define PIN_SEALED    UINT64_MAX

/* One generation: an open-addressing array of 64-bit entries, (fingerprint | 0x80 | id):
 * the key's hash with its low byte replaced, so 0 (empty) and all-ones (SEALED: no
 * entry may be written here any more) never name a pin. Slots only ever go 0 → entry,
 * 0 → SEALED, or entry → entry of the same key (a correction); never back to 0. */
struct pin_gen {
	_Atomic uint64_t *slot;   /* nlines × PIN_LINE, cache-line aligned, inside mem */
	void *mem;
	uint32_t nlines;
	uint32_t t0_s;            /* became current */
	_Atomic uint32_t end_s;   /* stopped being current; 0 while it is (snapshot scans
	                           * read it while the control thread rotates) */
	uint64_t seq;             /* 1, 2, ... in the order they became current */
	uint64_t claims0, claims1; /* the table's claim count when it started / ended */
	uint64_t retired_epoch;   /* control thread: freed once every worker passed it */
	struct pin_gen *next_retired;
};

/* What workers walk: the live generations, oldest first; g[n - 1] takes new claims.
 * Immutable once published; replaced whole by the control thread. */
struct pin_list {
	unsigned n;
	struct pin_gen *g[PIN_MAX_GENS];
	uint64_t retired_epoch;
	struct pin_list *next_retired;
};

/* A table shared by every worker. Workers claim, look up and correct entries lock-free;
 * the control thread (pin_tick) rotates, drops and frees generations. */
struct pin_table {
	_Atomic(struct pin_list *) list;
	uint32_t ttl_s, period_s;  /* control thread */
	uint32_t gen_lines;        /* lines of the next generation (pin_size) */
	uint64_t capacity;         /* pins promised over the TTL (the setting) */
	uint64_t next_seq;
	uint64_t claims;           /* control thread: the last count pin_tick was given */
	struct pin_list *rlist;    /* retired lists and generations, waiting for a grace */
	struct pin_gen *rgen;
	_Atomic uint64_t restored; /* pins put back by pin_restore: counted as claims (those
	                            * in older generations also in the current one's claims0) */
	_Atomic uint64_t evicted;  /* live pins dropped before their TTL (memory cap) */
	_Atomic uint64_t rotations, early; /* generations started; of those, for load */
};

#endif /* PIN_T_H */
