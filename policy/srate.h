/* srate.h: time-discounted Beta success-rate posteriors per backend and segment, with
 * back-off to coarser segments and bounded Thompson exploration.
 * Pure: time and randomness are passed in; no allocation after init, no globals. */
#ifndef SRATE_H
#define SRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "outcome-t.h"
#include "srate-t.h"

/* A segment field's code: FNV-1a of the ASCII-lower-cased bytes, 0 for absent or
 * empty ("USD" and "usd" give the same code). */
uint32_t srt_code(const char *p, size_t len);

/* NULL if c is usable, else a static message. */
const char *srt_cfg_check(const struct srt_cfg *c);

/* Bytes of caller memory a table for max_segments keys needs (0 if too many). */
size_t srt_mem_size(uint32_t max_segments);

/* Set t up over mem (at least srt_mem_size(c->max_segments) bytes, aligned for
 * uint64_t, owned by the caller and outliving t), empty. Returns 0, or -1 if c is
 * invalid or mem too small (t unusable). */
int srt_init(struct srt_table *t, const struct srt_cfg *c, void *mem, size_t len);

/* Copy src's contents into dst (publishing a snapshot). Both must have the same cap.
 * When dst's last copy came from this same src (same object, not re-initialised since:
 * its generation has not gone back), only the blocks src wrote since are copied; else
 * all of it. A caller that frees a source and builds another at the same address while
 * keeping the copy must srt_init the copy first. Returns 0, or -1 (dst unchanged). */
int srt_copy(struct srt_table *dst, const struct srt_table *src);

/* Add `succ` successes and `fail` failures (counts, >= 0; the control thread merges a
 * tick's worth at once) at now_us to every back-off level of seg. Existing counts are
 * first discounted by 2^(-dt / half_life). When the table is full, the key with the
 * smallest discounted count among the few slots after the new key's home is evicted
 * (old and thin go first) and t->evictions counts it. */
void srt_add(struct srt_table *t, const struct srt_seg *seg, double succ, double fail,
             uint64_t now_us);

/* What an outcome teaches: success -> success; soft decline and PSP error -> failure
 * (the payment did not go through there); customer declines, 429s, client errors ->
 * nothing. Returns whether it recorded anything. */
bool srt_add_outcome(struct srt_table *t, const struct srt_seg *seg, enum oc_kind k,
                     uint64_t now_us);

/* Restores one saved entry (snapshots): key's discounted counts become s and f as of
 * t_us, replacing what the table held for it (a full table evicts as srt_add does).
 * Returns 0, or -1 when key is 0 or a count is negative or not finite (nothing done). */
int srt_put(struct srt_table *t, uint64_t key, uint64_t t_us, double s, double f);

/* The posterior for seg at now_us: the most specific level whose discounted count is
 * at least min_n; if none, the level with the most data; if no level has any, the prior
 * alone (level -1). Read-only: safe on a published copy from any thread. */
void srt_lookup(const struct srt_table *t, const struct srt_seg *seg, uint64_t now_us,
                struct srt_post *out);

/* Discounted counts of one level of seg (0 if absent). For tests and `show`. */
double srt_count(const struct srt_table *t, const struct srt_seg *seg, enum srt_level lv,
                 uint64_t now_us);

/* The posterior of exactly one level of seg (the prior alone, level -1, when that level
 * has no entry). Read-only. For `show learning`. */
void srt_level_post(const struct srt_table *t, const struct srt_seg *seg, enum srt_level lv, uint64_t now_us,
                    struct srt_post *out);

/* Posterior mean a/(a+b) and standard deviation sqrt(ab / ((a+b)^2 (a+b+1))). */
double srt_mean(const struct srt_post *p);
double srt_sd(const struct srt_post *p);

/* Pseudo-random numbers from caller state (splitmix64; any seed, state advances). */
uint64_t srt_rand(uint64_t *state);
double srt_uniform(uint64_t *state); /* [0, 1) */

/* A draw from Beta(a, b), a, b > 0 (via two Marsaglia-Tsang gamma draws). */
double srt_beta(uint64_t *state, double a, double b);

/* Scores for n candidate arms, into p[0..n-1] (probabilities of authorisation for the
 * engine's expected-value scoring). With probability 1 - eps the decision exploits:
 * p[i] = posterior mean. Otherwise it explores (so at most a share eps of decisions,
 * per class, deviates from the means): p[i] is a Thompson draw, and an arm whose mean
 * is below m* - floor_k * sd* is drawn as if its mean were that, where sd* is the sd of
 * the best arm's posterior (Juspay's p_max - 3 sigma floor): a backend that was bad
 * and has recovered keeps being re-tested, at a rate bounded by eps. The lifted draw
 * keeps the arm's own count (Beta(mu n, (1 - mu) n), n = a + b), so a thin arm is
 * drawn wide. floor_k < 0 disables the floor. Returns true if it explored. */
bool srt_scores(const struct srt_post *post, size_t n, double eps, double floor_k,
                uint64_t *rng, double *p);

/* Exploration of untested arms: with probability `share`, p[i] is a Thompson draw for
 * each arm i whose bit is set in `untested` and the posterior mean for every other arm, so
 * the decision can only deviate from the means toward an untested arm whose draw beats them.
 * Returns true if it drew (p[] then filled). Consumes one uniform, plus the draws when
 * it explores. */
bool srt_scores_untested(const struct srt_post *post, size_t n, uint64_t untested, double share,
                         uint64_t *rng, double *p);

/* Index of the largest of p[0..n-1] (first one on ties); n >= 1. */
size_t srt_argmax(const double *p, size_t n);

/* Checks the table's invariants: `used` keys, at most `limit`; every key reachable from
 * its home slot without crossing an empty one (linear probing's rule) and held once;
 * counts finite and >= 0; no block newer than the table. Returns 0, or -1 with the
 * first violation in err. */
int srt_verify(const struct srt_table *t, char *err, size_t errlen);

#endif /* SRATE_H */
