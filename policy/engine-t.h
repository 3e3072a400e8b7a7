/* engine-t.h: the engine's runtime types: the view workers read, per-worker slots, and
 * the engine that publishes views. Types only. */
#ifndef ENGINE_T_H
#define ENGINE_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "pin-t.h"
#include "policy-t.h"
#include "score-t.h"
#include "thr-t.h"

/* Per-worker counters: written only by their worker (relaxed load + store, no RMW),
 * summed by the control thread. */
struct pol_counters {
	_Atomic uint64_t decisions, allow, queue, reject, panic, pinned, pin_down, spill;
	_Atomic uint64_t observed, observe_bad, learned_objects;
};

/* One immutable policy plus the live state sized for it. Workers reach it through
 * pol_engine.view; it is freed only once every worker has passed a quiescent point
 * after it was retired. */
struct pol_view {
	struct policy *p;
	uint16_t gen;                        /* echoed in decision ids */
	uint64_t all;                        /* mask of every backend */
	uint64_t enabled;                    /* backends enabled in the file */
	uint64_t connect;                    /* Connect platforms */
	_Atomic uint64_t disabled;           /* backends disabled by the admin */
	uint64_t by_currency[POL_MAX_CURRENCIES]; /* backends presenting each currency */
	uint64_t connect_hash[POL_MAX_CONNECT];   /* pstr_hash of each connect account */
	struct thr_state thr;                /* rate budgets */
	struct pin_table idem, object, account; /* affinity */
	struct score_health health[POL_MAX_BACKENDS]; /* the learning loop's view of each backend */
	uint64_t retired_epoch;              /* control thread only */
	struct pol_view *next_retired;
};

#define POL_OFFLINE UINT64_MAX

struct pol_worker {
	_Atomic uint64_t seen;   /* epoch at the last quiescent point, or POL_OFFLINE */
	uint64_t seq;            /* decision sequence, owner thread only */
	struct pol_counters c;
} __attribute__((aligned(64)));

struct pol_engine {
	_Atomic(struct pol_view *) view;
	_Atomic uint64_t epoch;
	unsigned nworkers;
	uint16_t next_gen;       /* control thread only */
	uint64_t reloads;        /* control thread only */
	struct pol_worker *workers;
	struct pol_view *retired; /* control thread only */
};

#endif /* ENGINE_T_H */
