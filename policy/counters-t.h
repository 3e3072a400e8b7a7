/* counters-t.h: every engine counter, declared once. Types only.
 *
 * Three lists, each X(name, type, ..., help): type is counter (only grows) or gauge,
 * as Prometheus says; help is one line for the metrics endpoint.
 *  POL_COUNTERS(X)            X(name, type, help): counted by each worker on the
 *                             decision path (struct pol_counters, engine-t.h) and summed
 *                             by pol_engine_stats.
 *  POL_COUNTER_VECS(X)        X(name, type, n, label, values, help): the same, n values
 *                             labelled `label` = each word of `values` in turn; the worker
 *                             row has POL_VEC_ROOM(n) cells (room for an index & 7).
 *  POL_ENGINE_COUNTERS(X)     X(name, type, help): the control thread's own figures.
 *  POL_ENGINE_VECS(X)         X(name, type, n, label, values, help): the same, labelled.
 * struct pol_stats (policy.h), struct pol_counters, the fold and the descriptions
 * (pol_stats_desc, engine.c) are generated from these lists. */
#ifndef COUNTERS_T_H
#define COUNTERS_T_H

#include <stddef.h>

#define POL_COUNTERS(X) \
	X(decisions,       counter, "decisions made (pay-request)") \
	X(allow,           counter, "decisions with verdict allow") \
	X(queue,           counter, "decisions with verdict queue") \
	X(reject,          counter, "decisions with verdict reject") \
	X(panic,           counter, "decisions with no healthy candidate (reason panic)") \
	X(pinned,          counter, "decisions routed by a pin") \
	X(pin_down,        counter, "pinned decisions whose account had no healthy backend") \
	X(spill,           counter, "decisions sent to another backend than the best one") \
	X(observed,        counter, "outcomes observed (pay-response)") \
	X(observe_bad,     counter, "outcomes with an unknown backend or a bad decision id") \
	X(observed_log,    counter, "outcomes reported by HAProxy's log line (agent.outcome_socket)") \
	X(observe_dup,     counter, "outcomes already learned from the other channel, skipped") \
	X(observe_stale,   counter, "outcomes of decisions older than the once-only window, learned unchecked") \
	X(observe_unrouted, counter, "log lines of requests that reached no backend (HAProxy's own 429 or 503), skipped") \
	X(observe_queue_timeout, counter, "requests HAProxy's queue timed out (sQ): answered, not a backend failure") \
	X(observe_client_gone, counter, "requests whose client left before any answer: answered, not a backend failure") \
	X(learned_objects, counter, "objects pinned to the account that created them") \
	X(dropped,         counter, "outcomes lost to a full worker ring") \
	X(shed,            counter, "decisions refused with shed:forecast") \
	X(probes,          counter, "half-open breaker probe requests sent") \
	X(explored,        counter, "decisions that explored (Thompson draws)") \
	X(breaker_avoided, counter, "decisions a breaker changed") \
	X(anomaly_avoided, counter, "decisions an anomaly or breaker penalty changed") \
	X(pin_followed,    counter, "idempotency claims lost to a simultaneous decision, which was followed") \
	X(pin_gone,        counter, "decisions refused because their pinned backend and account left the policy (pin:gone)") \
	X(pin_corrected,   counter, "idempotency pins rewritten to the backend HAProxy really used") \
	X(pin_full,        counter, "claims that found no room in the current pin generation") \
	X(journal_full,    counter, "pins not journaled for the fleet: the worker's journal was full (resync covers them)")

/* The reason tokens a verdict can carry (pay_verdict.reason), declared once: the engine
 * writes them by index (enum pol_reason_tok, engine.c) and counts each one it writes. */
#define POL_REASONS(X) \
	X(PIN_IDEM, "pin:idem") X(PIN_OBJECT, "pin:object") X(PIN_CONNECT, "pin:connect") \
	X(PIN_ACCOUNT, "pin:account") X(PIN_DOWN, "pin:down") X(PIN_GONE, "pin:gone") \
	X(PANIC, "panic") X(COST, "cost") X(ONLY, "only") X(EXPLORE, "explore") \
	X(BREAKER, "breaker") X(ANOMALY, "anomaly") X(PROBE, "probe") X(SPILL, "spill") \
	X(BUDGET, "budget") X(SHED, "shed")
#define POL_REASON_WORD(id, word) word " "
#define POL_NREASONS 16

#define POL_COUNTER_VECS(X) \
	X(outcomes, counter, 7, "kind", \
	  "success decline_customer decline_soft psp_error rate_limited lock_conflict client_error", \
	  "outcomes by class (enum oc_kind)") \
	X(pin_claims, counter, 3, "table", "idem object account", "pin claims and rewrites, by table") \
	X(reasons, counter, POL_NREASONS, "reason", POL_REASONS(POL_REASON_WORD), \
	  "reason tokens written into verdicts (a verdict may carry several)")

#define POL_ENGINE_COUNTERS(X) \
	X(reloads,          counter, "policy reloads applied") \
	X(breaker_opens,    counter, "breaker openings") \
	X(breaker_exchanges, counter, "ejected backends closed to make room under breaker.max_ejected for one failing well beyond them") \
	X(budget_cuts,      counter, "adaptive budget cuts (AIMD) after upstream 429s") \
	X(sheds,            counter, "forecast shedding episodes started") \
	X(decline_storms,   counter, "times the soft-decline storm guard engaged (declines rose on several backends at once, or on the busy one before the thinly used ones could tell; every answer weighs less in the estimates while it lasts)") \
	X(decline_forks,    counter, "episodes of one backend's own rise of soft declines (a peer calm): its answers learned apart, re-tested, until calm") \
	X(customer_storms,  counter, "episodes of one backend's own rise of customer declines (a peer calm): its excess counted as its failures") \
	X(unanswered,       counter, "decisions judged unanswered by pay-response") \
	X(unanswered_fed,   counter, "unanswered decisions fed to the breakers as failures") \
	X(unanswered_late,  counter, "answers that came after their tick was judged") \
	X(unanswered_forgiven, counter, "late successes that took back the failure their missing answer was fed as")

#define POL_ENGINE_VECS(X) \
	X(pin_live,    gauge,   3, "table", "idem object account", "live pins") \
	X(pin_stored,  counter, 3, "table", "idem object account", "pins stored") \
	X(pin_evicted, counter, 3, "table", "idem object account", "pins dropped before their TTL (table too small)") \
	X(pin_rotations, counter, 3, "table", "idem object account", "pin generations started (early ones for load too)")

/* Cells of a worker's vector row: a power of two at least n, so that an index masked
 * with (room - 1) stays inside. */
#define POL_VEC_ROOM(n) ((n) <= 1 ? 1 : (n) <= 2 ? 2 : (n) <= 4 ? 4 : (n) <= 8 ? 8 : 16)

/* One engine figure described for the metrics endpoint. */
struct pol_stats_desc {
	const char *name, *type, *help;
	const char *label, *values; /* NULL for a single value; else n values, labelled */
	unsigned n;
	size_t off;                 /* of the (first) value in struct pol_stats */
};

#endif /* COUNTERS_T_H */
