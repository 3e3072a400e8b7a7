/* breaker-t.h: types of the per-backend circuit breaker.
 * Types only: no functions, nothing beyond the C library. */
#ifndef BREAKER_T_H
#define BREAKER_T_H

#include <stdint.h>

#define BRK_MAX_BUCKETS 60

/* Effective states, in increasing order of ejection. */
enum brk_state {
	BRK_CLOSED = 0, /* healthy: requests flow */
	BRK_DEGRADED,   /* would be open, but the ejection cap refused: requests flow, and
	                 * the engine should score the backend down */
	BRK_HALF_OPEN,  /* open time over: a few probe requests are admitted */
	BRK_OPEN,       /* ejected: no request unless pinned there */
};

/* An operator's override (`set breaker <b> open|closed|auto`). */
enum brk_override {
	BRK_OVR_AUTO = 0,
	BRK_OVR_OPEN,
	BRK_OVR_CLOSED,
};

/* What a breaker learns from one call. The caller classifies (brk_event_of): declines,
 * 429s and client errors are BRK_EV_NONE and teach nothing. */
enum brk_event {
	BRK_EV_NONE = 0,
	BRK_EV_SUCCESS, /* answered in time, whatever the answer (a decline is a success) */
	BRK_EV_SLOW,    /* answered, but above the slow-call threshold */
	BRK_EV_FAILURE, /* PSP error: 5xx, timeout, no answer */
	BRK_EV_FAILURE_APART, /* a failure known not to follow the last call in a row: a missing
	                       * answer of a tick that also had answers, fed in bulk after the
	                       * grace; counts in the rates and in a probe batch, neither
	                       * extends nor breaks a run of consecutive failures */
};

/* Settings, from the policy; shared by all breakers of a backend group. Times are in
 * microseconds; rates in permille of the calls in the window. */
struct brk_cfg {
	uint64_t bucket_us;           /* width of one window bucket (default 1 s) */
	uint32_t buckets;             /* buckets in the window, 1..BRK_MAX_BUCKETS (10) */
	uint32_t min_calls;           /* rates are judged only over this many calls (20) */
	uint32_t failure_permille;    /* open at failures/calls >= this; 0 = off (500) */
	uint32_t slow_permille;       /* open at slow/calls >= this; 0 = off (800) */
	uint32_t consecutive;         /* open after this many failures in a row; 0 = off (5) */
	uint64_t open_base_us;        /* first open time (20 s); doubles on each failed probe batch */
	uint64_t open_max_us;         /* cap on the open time, jitter included (300 s) */
	uint32_t jitter_permille;     /* open time lengthened by up to this share (0) */
	uint32_t probes;              /* half-open: a batch of this many probes (3), >= 1;
	                               * judged by the rates above over the whole batch */
	uint64_t probe_timeout_us;    /* half-open probes unanswered this long: admit a
	                               * new batch (10 s) */
	uint64_t forget_us;           /* closed this long: the trip count starts over (600 s) */
	uint64_t reorder_us;          /* a failure that comes back this long after a call
	                               * sent after it came back well is not in a row with
	                               * the failures after it (1 s); 0 = off */
};

struct brk_bucket {
	uint32_t calls, failures, slow;
};

/* One backend's breaker. A plain value: copy it to publish it to readers. Written by
 * one thread (the control thread) only. */
struct brk {
	uint8_t state;         /* enum brk_state, automatic (before the override) */
	uint8_t override;      /* enum brk_override */
	uint8_t nbuckets;      /* the window's shape when last used (cfg may change) */
	uint8_t scoped;        /* set by the owner: the failures are some segments' own (the
	                        * engine moves those segments), others answer normally: a
	                        * closed or degraded breaker does not trip (0 or 1; in padding) */
	uint32_t consecutive;  /* failures in a row */
	uint32_t trips;        /* times opened since the last forget */
	uint32_t probes_sent;  /* half-open: admitted probes in the current batch */
	uint32_t probes_done;  /* half-open: probes answered */
	uint32_t probes_failed;/* half-open: of those, failures */
	uint32_t probes_slow;  /* half-open: of those, slow calls */
	uint32_t probe_closes; /* times a passed probe batch closed it, never reset (wraps): a
	                        * reader comparing it with its last look sees every such close,
	                        * also one that came and went between two looks */
	uint32_t batches_failed; /* probe batches failed in a row since it last closed: the
	                          * open time doubles with these, not with trips */
	uint32_t trip_permille;  /* open: the failure share it opened on (the window's, or
	                          * the failed probe batch's), permille: brk_exchange */
	uint64_t since_us;     /* when the current automatic state began */
	uint64_t open_until_us;/* with BRK_OPEN: when it turns half-open */
	uint64_t probe_batch_us; /* half-open: when the current probe batch began */
	uint64_t seed;         /* jitter seed (per backend, so breakers do not sync up) */
	uint64_t epoch;        /* absolute index (now / bucket_us) of the newest bucket */
	uint64_t ok_sent_us;   /* the latest send time of a call that came back well */
	uint64_t ok_at_us;     /* when that call came back */
	uint64_t fail_us;      /* when the last failure in a row was recorded: a run whose
	                        * last failure left the window is over */
	uint32_t calls, failures, slow; /* sums over the window's buckets */
	struct brk_bucket bucket[BRK_MAX_BUCKETS];
	uint32_t open_ok;      /* open: calls sent since it opened (pinned there) that came back
	                        * well, in a row. Last, in what was the tail padding: the layout
	                        * and size are unchanged, so an older snapshot still loads (its
	                        * value here is whatever its padding held: at worst one early
	                        * half-open, whose probes then decide) */
};

#endif /* BREAKER_T_H */
