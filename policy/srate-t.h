/* srate-t.h: types of the per-backend, per-segment success-rate posteriors.
 * Types only: no functions, nothing beyond the C library. */
#ifndef SRATE_T_H
#define SRATE_T_H

#include <stdint.h>

/* Back-off levels, most specific first. A record updates every level; a lookup takes
 * the first level with enough (time-discounted) data. */
enum srt_level {
	SRT_L_FULL = 0,   /* backend x currency x country x brand x funding */
	SRT_L_BRAND,      /* backend x currency x country x brand */
	SRT_L_COUNTRY,    /* backend x currency x country */
	SRT_L_CURRENCY,   /* backend x currency */
	SRT_L_BACKEND,    /* backend */
	SRT_LEVELS
};

/* A segment. Fields are small codes (srt_code() of the string, 0 = unknown), so the
 * engine can build one from a request without copying strings. backend is the
 * engine's own backend index (any stable number, including 0). */
struct srt_seg {
	uint32_t backend;
	uint32_t currency, country, brand, funding;
};

struct srt_cfg {
	double half_life_s;   /* counts halve after this many seconds; 0 = never decay */
	double prior_a;       /* Beta prior pseudo-successes (> 0), e.g. 1 */
	double prior_b;       /* Beta prior pseudo-failures (> 0), e.g. 1 */
	double min_n;         /* a level is used once its discounted count reaches this */
	double max_n;         /* evidence cap: at this discounted count, each new outcome
	                       * displaces as much old weight; 0 = none */
	uint32_t max_segments;/* keys the table holds before evicting */
	double thin_n;        /* under a thin level (0 < n < min_n), the coarser level's mean is
	                       * worth at most this many outcomes; 0 = the plain back-off */
};

/* One key's discounted counts, as of t_us. key 0 marks an empty slot. */
struct srt_entry {
	uint64_t key;  /* 64-bit hash of (level, segment fields); never 0 */
	uint64_t t_us; /* when s and f were last brought up to date */
	double s, f;   /* discounted successes and failures (prior not included) */
};

/* Slots per block of the dirty map: srt_copy() copies only the blocks written since
 * the destination's last copy from the same source (64 x 32 bytes = 2 KB). */
#define SRT_BLOCK_SLOTS 64

/* The table: open addressing, linear probing, power-of-two slots, at most 3/4 full.
 * All of it lives in caller memory given at init; nothing allocates afterwards.
 * To publish it to readers, copy it with srt_copy() into a second table: lookups only
 * read. Every write stamps its block with the table's next generation, so a copy
 * into a table last copied from the same source moves only the blocks written since
 * (a few KB per publish instead of the whole table). */
struct srt_table {
	struct srt_entry *e;
	uint64_t *blk_gen;  /* [cap / SRT_BLOCK_SLOTS]: generation of each block's last write */
	uint64_t gen;       /* writes so far (starts at 1) */
	const struct srt_table *copied_from; /* a copy: its source, and the source's */
	uint64_t copied_gen;                 /* generation then (0: never copied) */
	uint32_t cap;       /* slots, a power of two */
	uint32_t limit;     /* most keys held (cap * 3 / 4) */
	uint32_t used;
	uint64_t evictions; /* keys dropped to make room */
	struct srt_cfg cfg;
};

/* A posterior as read by a lookup: Beta(a, b), prior included. */
struct srt_post {
	double a, b;
	double n;  /* discounted observations behind it (a + b - prior) */
	int level; /* enum srt_level it came from, or -1: prior only */
};

#endif /* SRATE_T_H */
