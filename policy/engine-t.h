/* engine-t.h: the engine's runtime types: the view workers read, per-worker slots, and
 * the engine that publishes views. Types only. */
#ifndef ENGINE_T_H
#define ENGINE_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "policy-t.h"

/* Per-worker counters: written only by their worker (relaxed load+store, no RMW), read
 * by the control thread. */
struct pol_counters {
	_Atomic uint64_t decisions, allow, queue, reject, panic, pinned, pin_down;
	_Atomic uint64_t observed, observe_bad, learned_objects;
};

/* One immutable policy plus the live state sized for it. Workers reach it through
 * pol_engine.view; it is freed only after every worker has passed a quiescent point
 * since it was retired. */
struct pol_view {
	struct policy *p;
	uint16_t gen;                       /* echoed in decision ids */
	uint64_t retired_epoch;
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
	uint16_t next_gen;
	struct pol_worker *workers;
	struct pol_view *retired; /* control thread only */
};

#endif /* ENGINE_T_H */
