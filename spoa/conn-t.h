/* conn-t.h: one SPOP connection's protocol state and buffers. Types only. */
#ifndef CONN_T_H
#define CONN_T_H

#include <stddef.h>
#include <stdint.h>

#include "stats-t.h"

enum conn_state {
	CONN_ST_HELLO = 0, /* waiting for HAPROXY-HELLO */
	CONN_ST_READY,     /* NOTIFY / ACK */
	CONN_ST_CLOSING,   /* a DISCONNECT (or the health-check HELLO) is queued: flush, then close */
};

/* struct conn_counts (per-connection counters the worker adds into its own statistics)
 * is generated from the counter list in stats-t.h. */

/* Buffers are owned by the slot that holds the connection and sized at boot:
 * `in` holds at least one whole frame of our maximum size, `out` at least one answer. */
struct conn {
	uint8_t state;          /* enum conn_state */
	uint8_t close_status;   /* status we sent in our AGENT-DISCONNECT, or 0 */
	uint8_t peer_status;    /* status HAProxy sent in its DISCONNECT (SPOP_ST_UNKNOWN if none) */
	uint32_t max_frame;     /* ours until HELLO, then min(ours, HAProxy's) */
	uint32_t our_max_frame;
	uint8_t *in;
	size_t in_len, in_size;
	uint8_t *out;
	size_t out_off, out_len, out_size; /* bytes [out_off, out_len) wait to be written */
	struct conn_counts counts;
};

#endif /* CONN_T_H */
