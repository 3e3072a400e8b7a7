/* clock.h: the daemon's one source of time. policy/ never reads a clock: the daemon and
 * the workers read it here and pass `now` in. */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>

/* Monotonic time in microseconds (CLOCK_MONOTONIC, a vDSO call: no syscall, safe on the
 * decision path). Its origin is arbitrary; only differences mean anything. */
uint64_t clock_mono_us(void);

/* Wall-clock time in microseconds since the epoch (CLOCK_REALTIME): only for what must
 * survive a restart (snapshots store when they were written), never for intervals. */
uint64_t clock_wall_us(void);

#endif /* CLOCK_H */
