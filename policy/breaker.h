/* breaker.h: per-backend circuit breaker (closed, degraded, open, half-open).
 * Pure: time is passed in, no clock, no I/O, no allocation, no globals. */
#ifndef BREAKER_H
#define BREAKER_H

#include <stdbool.h>
#include <stddef.h>

#include "breaker-t.h"
#include "outcome-t.h"

/* Fill c with the defaults noted in breaker-t.h. */
void brk_cfg_default(struct brk_cfg *c);

/* NULL if c is usable, else a static message naming the bad setting. */
const char *brk_cfg_check(const struct brk_cfg *c);

/* A closed breaker with an empty window. seed: any value, different per backend (e.g. a
 * hash of its name); it alone decides the jitter, so replays are reproducible. */
void brk_init(struct brk *b, const struct brk_cfg *c, uint64_t seed, uint64_t now_us);

/* Let time act: roll the window, open -> half-open when the open time is over (or, past
 * the first open time, once min_calls pinned calls came back well: brk_record_sent), degraded
 * -> open (if may_open) or -> closed (once the window no longer trips), forget old
 * trips. may_open: whether the ejection cap lets this breaker open (brk_may_open).
 * Returns the effective state (override applied). Call every tick. */
enum brk_state brk_update(struct brk *b, const struct brk_cfg *c, bool may_open,
                          uint64_t now_us);

/* Learn from one call that ended at now_us. Trips when, in closed or degraded state and
 * not b->scoped (the owner's verdict that the failures are some segments' own: then a
 * degraded breaker closes at the next update), `consecutive` failures came in a row (a
 * run ends once its last failure is older than the window), or the window holds >=
 * min_calls calls with a failure or slow-call share at its threshold. A trip opens the
 * breaker if may_open, else leaves it degraded. In half-open, the batch of `probes` is
 * judged by the same rates over the whole batch: it reopens (with a longer open time) as
 * soon as its failures or slow calls reach them (with failure_permille 0, at the first
 * failure), and closes once all `probes` answered without that. Events while open are
 * ignored here (late answers to requests sent before the trip; brk_record_sent knows
 * when a call was sent and learns from those sent since). Returns true if the automatic
 * state changed (by time or by this event). */
bool brk_record(struct brk *b, const struct brk_cfg *c, enum brk_event ev, bool may_open,
                uint64_t now_us);

/* brk_record for a call sent at sent_us (at most now_us; brk_record: sent now). A
 * success or slow call notes the latest send time of a call that came back well, and
 * when it came back; a FAILURE sent before that call and answered reorder_us or more
 * after it counts as BRK_EV_FAILURE_APART: in the rates, not in a row (in send order the
 * backend answered after it failed; a timeout comes back seconds after calls sent
 * later). Half-open and b->scoped, a failure sent more than reorder_us before the probes
 * could begin (the open time's end, or the half-open start if earlier) is no probe's:
 * ignored. An open breaker that is b->scoped turns half-open at the next update.
 * Open, a call sent since it opened (it went there because it had to: pinned to the
 * account that holds its object or its first attempt) is a probe nobody had to risk:
 * max(min_calls, probes) of them answered well in a row (a failure or a slow call starts
 * the run over) turn it half-open once open_base has passed, however long its open time
 * (the first open time stands: a brownout's hysteresis; the doubling spares probes while
 * the backend is down, and these calls say it is up). The probes then decide as usual.
 * Returns true if the automatic state changed (by time or by this event). */
bool brk_record_sent(struct brk *b, const struct brk_cfg *c, enum brk_event ev, uint64_t sent_us,
                     bool may_open, uint64_t now_us);

/* Takes back one failure recorded earlier (a call judged missing whose answer came after
 * all): closed or degraded, one failure (and its call) leaves the newest window bucket
 * that holds one, and the run of consecutive failures shortens by one; half-open, one
 * failed probe is no longer counted (the batch waits for its answer again). Never below
 * zero. Open: nothing, the open time stands (the window was cleared at the trip; the
 * trip was decided on what was known then). The caller then records the call as what
 * it was. Returns true when a failure was taken back. */
bool brk_forgive(struct brk *b, const struct brk_cfg *c, uint64_t now_us);

/* Another node's breaker for this backend opened (a fleet's B line, issue 10). Closed or
 * degraded: opens as a trip would (degraded when may_open is false), unless this node's
 * own window says healthy: at least min_calls calls that do not trip (BRK_REMOTE_KEPT).
 * Open or half-open: nothing (its own probes decide). Closing stays local. */
enum brk_remote { BRK_REMOTE_NONE = 0, BRK_REMOTE_OPENED, BRK_REMOTE_KEPT };
enum brk_remote brk_remote_open(struct brk *b, const struct brk_cfg *c, bool may_open, uint64_t now_us);
/* May a request be sent to this backend now? Closed/degraded: yes. Open: no. Half-open:
 * yes for the first `probes` calls of a batch (counted: this mutates b), no after, and a
 * new batch after probe_timeout_us without a verdict. Single writer: the engine's
 * workers should use brk_state_at() on a published copy and their own probe counter. */
bool brk_allow(struct brk *b, const struct brk_cfg *c, uint64_t now_us);

/* The effective state at now_us, without changing b (for readers of a published copy):
 * the override if one is set, and open seen as half-open once its time is over. */
enum brk_state brk_state_at(const struct brk *b, uint64_t now_us);

/* Microseconds until an open breaker turns half-open (0 if it is not open): the
 * Retry-After for a request that must go there. */
uint64_t brk_retry_in_us(const struct brk *b, uint64_t now_us);

/* Force the state (operator). Going back to auto restarts closed, with an empty window
 * and the trip count kept. */
void brk_set_override(struct brk *b, const struct brk_cfg *c, enum brk_override o,
                      uint64_t now_us);

/* The open time at step k >= 1 (k - 1 = probe batches failed in a row since the breaker
 * last closed): open_base_us * 2^(k-1), lengthened by the seeded jitter (a share in
 * [0, jitter_permille/1000) of it), capped at open_max_us. */
uint64_t brk_open_time(const struct brk *b, const struct brk_cfg *c, uint32_t k);

/* The ejection cap (Envoy's max_ejection_percent): may one more of the n breakers in
 * all[] open, given that open, half-open and forced-open ones count as ejected, and so
 * does a scoped one (its failing segments are out already)? At most
 * max(1, n * max_permille / 1000) may be ejected at once (none if max_permille is 0),
 * so with 2 to 9 backends and 10 % one may go, as in Envoy. */
bool brk_may_open(const struct brk *const *all, size_t n, uint32_t max_permille,
                  uint64_t now_us);

/* The ejection cap's exchange, when the cap is full: a degraded breaker (it tripped but
 * the cap refused) gone dark, its window of at least min_calls calls failing at least
 * BRK_EXCHANGE_DARK permille, takes the place of an automatically ejected one (open or
 * half-open, not forced, not scoped) that opened on a failure share BRK_EXCHANGE_MARGIN
 * lower: the ejected one closes (window empty, its trips kept) and the dark one opens at
 * its next brk_update. Without it, a backend that went dark stayed in use while one
 * ejected for a partial failure (a brownout) sat out its open time: with two backends,
 * every checkout timed out for two minutes (issue 11, random world 5000188,
 * policy/learning.md). At most one exchange per episode: the one that closed, dark too,
 * opens again on a full window's share, which no other can then exceed by the margin.
 * One exchange per call, the best placed ejected breaker (the lowest share at its
 * opening). Returns the index in all[] of the breaker that closed, or -1. */
#define BRK_EXCHANGE_DARK 900
#define BRK_EXCHANGE_MARGIN 200
int brk_exchange(struct brk *const *all, size_t n, const struct brk_cfg *c, uint32_t max_permille,
                 uint64_t now_us);

/* What an outcome teaches a breaker: PSP errors fail; successes and declines succeed
 * (slow if OC_F_SLOW); 429s and client errors teach nothing. */
enum brk_event brk_event_of(const struct oc_class *oc);

/* "closed", "degraded", "half-open", "open". */
const char *brk_state_name(enum brk_state s);

/* Checks the breaker's invariants: known state and override, the window's sums equal
 * its buckets' (buckets past nbuckets empty), failures and slow calls never more than
 * the calls, half-open probe counts consistent. Returns 0, or -1 with the first
 * violation in err. */
int brk_verify(const struct brk *b, char *err, size_t errlen);

#endif /* BREAKER_H */
