/* hist.h: lock-free latency histograms for the metrics endpoint: one writer thread per
 * histogram (relaxed loads and stores, no RMW), any reader; fixed bucket bounds, no
 * allocation. A reader sums several (one per worker) at scrape. */
#ifndef HIST_H
#define HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the buckets, microseconds (Prometheus `le`, in seconds at export); a
 * last, implicit bucket takes the rest (+Inf). */
#define HIST_BOUNDS_US { 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, \
	                 250000, 500000, 1000000, 2500000, 5000000, 10000000 }
#define HIST_NB 19

struct hist {
	_Atomic uint64_t b[HIST_NB + 1]; /* per bucket (not cumulative), + the +Inf one */
	_Atomic uint64_t sum_us;
};

extern const uint64_t hist_bounds_us[HIST_NB];

/* The writer: n observations of v_us each. */
static inline void hist_add(struct hist *h, uint64_t v_us, uint64_t n)
{
	unsigned i = 0;

	while (i < HIST_NB && v_us > hist_bounds_us[i])
		i++;
	atomic_store_explicit(&h->b[i], atomic_load_explicit(&h->b[i], memory_order_relaxed) + n,
	                      memory_order_relaxed);
	atomic_store_explicit(&h->sum_us, atomic_load_explicit(&h->sum_us, memory_order_relaxed) + v_us * n,
	                      memory_order_relaxed);
}

/* A reader's sum of histograms. */
struct hist_sum {
	uint64_t b[HIST_NB + 1];
	uint64_t sum_us;
};

static inline void hist_sum_add(struct hist_sum *s, const struct hist *h)
{
	for (unsigned i = 0; i <= HIST_NB; i++)
		s->b[i] += atomic_load_explicit(&h->b[i], memory_order_relaxed);
	s->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

#endif /* HIST_H */
