/* thr-t.h: rate budgets (GCRA cells) per account and per account × endpoint. Types only. */
#ifndef THR_T_H
#define THR_T_H

#include <stdatomic.h>
#include <stdint.h>

/* A GCRA cell: `tat` is the theoretical arrival time of the next request (ns on the
 * caller's monotonic clock). A request is within budget when, after booking it,
 * tat - now <= tolerance; lower classes get a smaller tolerance (see thr_take). One cell
 * per cache line: cells are hammered by every worker. */
struct thr_cell {
	_Atomic uint64_t tat;
	_Atomic uint64_t interval_ns; /* 1 / rate; the control thread adapts it (thr_set_interval) */
	uint64_t tol_ns;       /* burst × interval */
} __attribute__((aligned(64)));

struct thr_state {
	struct thr_cell *cells; /* naccounts account cells, then naccounts × nendpoints */
	int naccounts, nendpoints;
};

#endif /* THR_T_H */
