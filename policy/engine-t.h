/* engine-t.h: the engine's runtime types: the view workers read, per-worker slots, and
 * the engine that publishes views. Types only. */
#ifndef ENGINE_T_H
#define ENGINE_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "aimd-t.h"
#include "anomaly-t.h"
#include "breaker-t.h"
#include "counters-t.h"
#include "forecast-t.h"
#include "pin-t.h"
#include "policy-t.h"
#include "policy.h"
#include "score-t.h"
#include "srate-t.h"
#include "thr-t.h"

/* Per-worker counters (the lists in counters-t.h): written only by their worker
 * (relaxed load + store, no RMW), summed by the control thread. */
struct pol_counters {
#define X(name, type, help) _Atomic uint64_t name;
	POL_COUNTERS(X)
#undef X
#define X(name, type, n, label, values, help) _Atomic uint64_t name[POL_VEC_ROOM(n)];
	POL_COUNTER_VECS(X)
#undef X
};

/* One outcome as a worker hands it to the control thread: indices are those of the
 * view of generation `gen` (the one the worker held), segment fields as the decision
 * id carried them. 32 bytes. */
struct pol_event {
	uint64_t t_us;
	int32_t latency_ms;     /* -1: absent */
	uint16_t gen;
	uint16_t country;       /* 1 + 26 a + b for "AB", 0 = unknown */
	uint8_t backend;        /* the backend really used */
	uint8_t cls;            /* 0xff: unknown (no valid decision id) */
	uint8_t cur;            /* currency index, 0xff: none */
	uint8_t funding;        /* enum pol_funding */
	uint8_t brand;          /* pol_brand code, 0 = unknown */
	uint8_t endpoint;       /* endpoint index, 0xff: none */
	uint8_t kind, rl;       /* enum oc_kind, enum oc_rl */
	uint8_t flags;          /* OC_F_* */
	uint8_t seg;            /* 1: the decision id was valid (segment fields known) */
	uint8_t late;           /* 1: answered after its bucket was judged (engine-learn.c) */
	uint8_t pad;
	uint32_t dtick;         /* the decision's unanswered-accounting tick, with late */
};

/* A single-producer (the worker), single-consumer (the control thread) ring: the
 * producer writes a slot, then publishes head with release; the consumer reads up to
 * head (acquire), then gives the slots back by storing tail with release. Full: the
 * event is dropped and counted, never waited for. */
#define POL_RING_SIZE 4096u /* events per worker and tick (~80 000 outcomes/s at 50 ms) */

struct pol_ring {
	_Atomic uint32_t head;
	char pad0[60];
	_Atomic uint32_t tail;
	char pad1[60];
	struct pol_event ev[POL_RING_SIZE];
};

struct pol_learn; /* engine-learn.h: the control thread's master state */

/* Unanswered decisions. HAProxy sends no pay-response for the responses it makes itself
 * (503 no server / refused, 504 timeout server, 502), so a dead or hung backend would
 * teach nothing. Workers count, per backend and per tick of POL_UNANS_TICK_US, the
 * decisions they allowed or queued and the answers that came back (by the tick the
 * decision id carries); the control thread judges a tick once grace_ms has passed
 * (engine-learn.c). One cell per worker x backend x slot; the worker is its only
 * writer (relaxed load + store, no RMW); tag = tick + 1 says whose counts they are
 * (0: never used), so a slot reused for a newer tick resets, and a stale one is ignored. */
#define POL_UNANS_TICK_US 100000u

struct pol_unans_cell {
	_Atomic uint32_t tag, decided, answered, pad;
};

/* A segment's answered share on a backend (learning.answer_half_life_s): cells per
 * backend, a segment's cell a hash of its fields (currency code, country, brand, funding;
 * two segments that share a cell share their share: rare with a few hundred segments). */
#define POL_SEGA_CELLS 1024u

static inline unsigned pol_sega_cell(uint32_t curcode, unsigned country, unsigned brand, unsigned funding)
{
	uint64_t h = ((uint64_t)curcode << 32) ^ ((uint64_t)country << 16) ^ ((uint64_t)brand << 4) ^ funding;

	h *= 0x9e3779b97f4a7c15ULL;
	return (unsigned)(h >> 54) & (POL_SEGA_CELLS - 1);
}

/* A segment's published cell f (pol_view.sega: 0 = answered as its backend, else its
 * relative answered share × 1e6 + 1) is scored away when at or below
 * breaker.scope_factor: its failures are its own, it is moved, not its backend. */
static inline bool pol_sega_away(uint32_t f, double scope_factor)
{
	return f && f <= (uint32_t)(scope_factor * 1e6) + 1;
}

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
	_Atomic uint64_t drained;            /* backends drained by the admin: pinned requests only */
	uint64_t by_currency[POL_MAX_CURRENCIES]; /* backends presenting each currency */
	uint64_t connect_hash[POL_MAX_CONNECT];   /* pstr_hash of each connect account */
	struct thr_state thr;                /* rate budgets */
	struct pol_lease_cell *lease;        /* leased budgets (engine-lease.h), as thr's
	                                      * cells; NULL = the GCRA cells decide */
	/* the engine's pin ids (struct pol_pins) in this policy: id → backend index (the
	 * backend of that name, else one of the same account, else -1: pin:gone), and back */
	int8_t pin_be[PIN_MAX_IDS];
	uint8_t pin_id[POL_MAX_BACKENDS];
	struct score_health health[POL_MAX_BACKENDS]; /* the learning loop's view of each backend */
	_Atomic uint32_t *sega;              /* [backend][POL_SEGA_CELLS] share of a segment's calls
	                                      * answered x 1e6, 0 = all (engine-learn.c); NULL: off */
	_Atomic uint32_t sega_live;          /* cells of sega not 0: decide skips them all at 0 */
	/* per account and class: the share of decisions the forecasts shed, in 2^-32 units
	 * (0 none, POL_SHED_ALL every one); control thread writes, decide reads relaxed */
	_Atomic uint32_t shed[POL_MAX_ACCOUNTS][POL_MAX_CLASSES];
	_Atomic uint64_t *route;             /* [worker][backend][class][verdict] decisions,
	                                      * per worker stride route_stride; owner-written */
	unsigned route_stride;
	_Atomic(struct srt_table *) srt_pub; /* posterior snapshot (QSBR, see engine-learn.c) */
	_Atomic uint64_t *demand;            /* [worker][account][class] decisions, per worker
	                                      * stride demand_stride; owner-written */
	unsigned demand_stride;
	uint32_t bcode[POL_MAX_BACKENDS];    /* srt_code of each backend's name */
	/* per backend, control thread writes, workers read relaxed: 0, or the srt code its
	 * answers are learned under while a rise of its own soft declines lasts (a fork of
	 * its posteriors, engine-learn.c pol_fork_update): decide lays a segment's outcomes
	 * there on top of the backend's own (pol_p_auth) */
	_Atomic uint32_t fork_code[POL_MAX_BACKENDS];
	/* control thread sets, workers read relaxed: bit i once backend i's own evidence (its
	 * backend-level discounted count) has reached min_n: its day-one prior has been
	 * tested, and `explore_untested` no longer applies (pol_p_auth). Set at each publish
	 * of the posteriors, and by a reload for what the carried posteriors hold. */
	_Atomic uint64_t tested;
	struct pol_unans_cell *unans;        /* [worker][backend][slot], NULL when disabled */
	unsigned unans_slots;                /* a power of two, > (largest grace + 3 ticks) / tick */
	uint64_t unans_grace_us;             /* the policy's grace_ms, the least grace */
	uint64_t unans_max_grace_us;         /* the largest grace a backend may get */
	/* per backend, control thread writes, workers read relaxed: the backend's own grace
	 * (grace_latency x its learned latency, engine-learn.c) and its last judged tick + 1
	 * (0: none yet). An answer is late once its tick is judged or its grace has passed. */
	_Atomic uint64_t unans_grace_b_us[POL_MAX_BACKENDS];
	_Atomic uint32_t unans_done[POL_MAX_BACKENDS];
	struct pol_learn *L;                 /* control thread only */
	_Atomic unsigned holds;              /* snapshots reading its pins (state.c): a
	                                      * retired view is freed only at 0 */
	uint64_t retired_epoch;              /* control thread only */
	struct pol_view *next_retired;
};

#define POL_OFFLINE UINT64_MAX
#define POL_SHED_ALL UINT32_MAX

struct pol_worker {
	_Atomic uint64_t seen;   /* epoch at the last quiescent point, or POL_OFFLINE */
	uint64_t seq;            /* decision sequence, owner thread only */
	uint32_t sample_n;       /* decisions since the last sample, owner thread only */
	uint64_t rng;            /* exploration PRNG state, owner thread only */
	struct pol_counters c;
} __attribute__((aligned(64)));

/* Affinity, at engine level: pins outlive views (no copy on reload). Entries name
 * backends by a stable id: an id stands for one (backend name, account) pair, interned
 * here and never reused or changed (at most PIN_MAX_IDS over the life of the process; a
 * reload that needs more is refused). The account is part of the id because it is what
 * a pin promises: a backend renamed onto another account is another backend. */

struct pol_pins {
	struct pin_table t[POL_PIN_TABLES];
	_Atomic unsigned nids;                    /* control thread writes (release, after the
	                                           * names); snapshot scans read (acquire) */
	char name[PIN_MAX_IDS][POL_NAME_MAX + 1]; /* id → backend name */
	char account[PIN_MAX_IDS][POL_NAME_MAX + 1]; /* ... and its account */
	_Atomic unsigned holds;                   /* snapshot captures scanning the tables
	                                           * (state.c): retired generations wait */
	/* Pins made here, for a fleet (pol_engine_journal): one ring per engine slot, its
	 * worker the only producer, the control thread the only consumer. NULL = off. */
	struct pol_journal *journal;
};

/* A worker's ring of sampled decisions (pol_engine_samples): a slot's seq is odd while its
 * owner rewrites it; the words are struct pol_sample, moved as relaxed atomics so that a
 * read racing a write is a torn copy the seq check rejects, not undefined behaviour. */
#define POL_SAMPLE_WORDS ((sizeof(struct pol_sample) + 7) / 8)
struct pol_sample_slot {
	_Atomic uint32_t seq;
	_Atomic uint64_t w[POL_SAMPLE_WORDS];
};
struct pol_sample_ring {
	_Atomic uint64_t n;      /* samples written (the next goes to n % POL_SAMPLE_RING) */
	struct pol_sample_slot slot[POL_SAMPLE_RING];
} __attribute__((aligned(64)));

struct pol_engine {
	struct pol_pins pins;
	_Atomic(struct pol_view *) view;
	bool lease;              /* budgets leased from a fleet (pol_engine_lease) */
	_Atomic uint64_t epoch;
	unsigned nworkers;
	uint16_t next_gen;       /* control thread only */
	uint64_t reloads;        /* control thread only */
	uint64_t verified_us;    /* control thread only: last pol_engine_verify of a tick (bug.h) */
	struct pol_worker *workers;
	struct pol_ring *rings;  /* one per worker */
	struct pol_sample_ring *samples; /* one per worker */
	_Atomic uint32_t sample_every;   /* 0: no sampling */
	struct pol_view *retired; /* control thread only */
	/* Once-only outcomes (both channels configured: pay-response and the log line). Per
	 * worker that decides, POL_SEEN_SLOTS marks indexed by the decision's sequence: slot
	 * seq % slots holds (seq / slots) + 1 of the last decision whose outcome was learned.
	 * The first channel to report raises it (CAS), the second finds it equal and is
	 * skipped. Allocated only with agent.outcome_socket; NULL = no check. */
	_Atomic uint32_t *outcome_seen;
	/* Learning shared with a fleet (engine-share.h): control thread only; NULL = off. */
	struct pol_share *share;
};

/* A pin this node made (claimed or rewritten), as the fleet publishes it. */
struct pol_pin_note {
	uint64_t key;
	uint64_t us;             /* when: the decision's or outcome's monotonic time */
	uint8_t table, id;
	bool force;              /* a rewrite to what HAProxy really used (else a claim) */
};

/* Single-producer single-consumer: head written by the worker (release), tail by the
 * control thread (release); mask + 1 entries (a power of two). A full ring drops the
 * note and counts journal_full (the fleet's resync re-publishes every live pin). */
struct pol_journal {
	_Atomic uint64_t head __attribute__((aligned(64)));
	_Atomic uint64_t tail __attribute__((aligned(64)));
	uint64_t mask;
	struct pol_pin_note *note;
};

/* 2^18 marks of 4 bytes per worker (1 MiB): at 20,000 decisions/s on one worker a slot
 * is reused after 13 s, longer than any answer HAProxy waits for (timeout server 30 s is
 * the exception: an answer older than the window is learned without the check and
 * counted in observe_stale). */
#define POL_SEEN_BITS  18u
#define POL_SEEN_SLOTS (1u << POL_SEEN_BITS)

#endif /* ENGINE_T_H */
