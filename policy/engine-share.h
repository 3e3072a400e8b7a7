/* engine-share.h: learning shared across a fleet of nodes (issue 10), engine side. The
 * learning tick collects the outcome counts it adds to the master posteriors into a
 * delta (merge.h) and notes the breakers this node's own evidence opened; the control
 * thread (spoa/fleet-learn.c) exports both and applies the other nodes' deltas and
 * breaker openings. Control thread only: never a worker, so no lock; nothing allocates
 * after pol_engine_learn_share. */
#ifndef ENGINE_SHARE_H
#define ENGINE_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "merge.h"

struct pol_engine;
struct srt_seg;

#define POL_SHARE_MAX_OPENED 64 /* breakers opened here between two exports, at most */

struct pol_share {
	struct mrg_delta d;          /* outcomes the posteriors learned here since the last export */
	struct mrg_cell *mem;
	char opened[POL_SHARE_MAX_OPENED][MRG_NAME_MAX]; /* breakers opened here since the last call */
	unsigned nopened;
	uint64_t opened_dropped;     /* openings not noted: more than POL_SHARE_MAX_OPENED at once */
};

/* Turns sharing on (control thread; before the workers decide, or later): from the next
 * tick the outcomes the master posteriors learn are collected in a delta of `cells`
 * cells (a power of two >= 4). 0, or -1 (no memory, bad size). Cannot be turned off. */
int pol_engine_learn_share(struct pol_engine *e, uint32_t cells);
/* Swap-and-reset: the delta collected since the last export is added into out (cells
 * that do not fit are counted in out->dropped) and the engine's is emptied; its own drops
 * move into out->dropped too. Returns the outcomes moved (0 when sharing is off). */
uint64_t pol_engine_learn_export(struct pol_engine *e, struct mrg_delta *out);
/* The breakers opened since the last call by this node's own evidence (not by another
 * node's, not by an operator): fn once per backend name. Returns how many. */
unsigned pol_engine_learn_opened(struct pol_engine *e, void (*fn)(void *arg, const char *backend), void *arg);
/* Another node's delta into the master posteriors, at now_us (monotonic), counted apart:
 * never collected into this node's delta, so never published again. Cells whose backend
 * this node does not have are skipped. Returns the outcomes applied. */
uint64_t pol_engine_learn_apply(struct pol_engine *e, const struct mrg_delta *d, uint64_t now_us);
/* Another node's breaker for backend opened: opens it here unless this node's own recent
 * evidence says healthy (POL_SHARE_KEPT) or it is open or half-open already
 * (POL_SHARE_NONE). Returns POL_SHARE_OPENED, POL_SHARE_KEPT, POL_SHARE_NONE, or -1 (no
 * backend of that name). */
enum { POL_SHARE_NONE = 0, POL_SHARE_OPENED, POL_SHARE_KEPT };
int pol_engine_learn_breaker(struct pol_engine *e, const char *backend, uint64_t now_us);

/* Internal (engine-learn.c, on the tick): one outcome the posteriors learned. */
void pol_share_free(struct pol_share *s); /* pol_engine_free; accepts NULL */
void pol_share_add(struct pol_share *s, const char *backend, const struct srt_seg *seg, bool success);
void pol_share_note_open(struct pol_share *s, const char *backend);

#endif /* ENGINE_SHARE_H */
