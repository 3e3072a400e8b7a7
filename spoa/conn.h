/* conn.h: the SPOP connection state machine. No I/O: the worker moves bytes between the
 * socket and c->in / c->out; these functions turn input frames into output frames. */
#ifndef CONN_H
#define CONN_H

#include "conn-t.h"

struct agent;

/* Smallest free room `out` must have before another frame is answered: the largest
 * answer we write (an ACK, a HELLO or a DISCONNECT) fits in it. */
#define CONN_ANSWER_ROOM 2048

void conn_init(struct conn *c, uint8_t *in, size_t in_size, uint8_t *out, size_t out_size,
               uint32_t our_max_frame);

/* Decode and answer every complete frame in c->in while c->out has room; consumed input
 * is dropped from c->in. On a protocol error an AGENT-DISCONNECT with the right status
 * is queued and the state becomes CONN_ST_CLOSING (nothing more is read). Returns the
 * number of frames handled. `a` is the decision context (may be NULL for HELLO-only
 * use; a NOTIFY then answers a protocol error). */
unsigned conn_process(struct conn *c, struct agent *a);

/* Room left at the end of `in` for the next read (conn_process keeps `in` compact). */
size_t conn_in_room(struct conn *c);
/* Does `out` have room to answer one more frame? */
int conn_out_has_room(const struct conn *c);
/* Queue an AGENT-DISCONNECT (e.g. on shutdown or idle timeout) and enter CLOSING. */
void conn_disconnect(struct conn *c, int status, const char *msg);
/* Queue an ACK carrying verdict v for frame (stream_id, frame_id): an answer held for
 * the fleet's claim (fleet-claim.c). Returns 0, or -1 (not READY, or no room in `out`). */
struct pay_verdict;
int conn_ack(struct conn *c, uint64_t stream_id, uint64_t frame_id, const struct pay_verdict *v);
/* Mark n bytes of `out` written. */
void conn_out_written(struct conn *c, size_t n);

#endif /* CONN_H */
