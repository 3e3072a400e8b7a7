/* spop.h: the SPOP 2.0 codec. Pure: no I/O, no allocation, no globals.
 *
 * Decoders take a cursor `*p` and an `end` pointer. They return 0 and advance *p past
 * what they consumed, or return -1 and leave *p untouched. They never read at or past
 * `end`, and never trust a length prefix: every length is checked as
 * `len > (size_t)(end - p)` before use.
 *
 * Encoders write through a struct spop_wbuf, which refuses (and flags) any write that
 * would pass its end; check w->overflow once after a sequence of writes. */
#ifndef SPOP_H
#define SPOP_H

#include "spop-t.h"

/* --- decoding ------------------------------------------------------------------ */
int spop_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v);
int spop_str_get(const uint8_t **p, const uint8_t *end, struct spop_str *s);
int spop_data_get(const uint8_t **p, const uint8_t *end, struct spop_data *d);
int spop_kv_get(const uint8_t **p, const uint8_t *end, struct spop_str *key, struct spop_data *val);
/* A NOTIFY message head: name and argument count; the nargs KV pairs follow at *p. */
int spop_msg_get(const uint8_t **p, const uint8_t *end, struct spop_str *name, unsigned *nargs);
/* An ACK action (client side: tests and bench). For unset-var, val->type is NULL. */
int spop_action_get(const uint8_t **p, const uint8_t *end, uint8_t *action, uint8_t *scope,
                    struct spop_str *name, struct spop_data *val);

/* Frame at the head of a stream buffer.
 * Returns >0: bytes the whole frame occupies (length prefix included), *f filled;
 *          0: need more bytes (no byte is consumed, whatever avail is);
 *         <0: -status (SPOP_ST_TOO_BIG when the length prefix exceeds max_frame,
 *             SPOP_ST_INVALID when it is below SPOP_FRAME_MIN or the header is bad).
 * The length prefix is judged as soon as its 4 bytes are there, before the body. */
int spop_frame_get(const uint8_t *buf, size_t avail, uint32_t max_frame, struct spop_frame *f);

/* Validate HAPROXY-HELLO's KV list. Returns 0, or the status code to disconnect with. */
int spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h);
/* DISCONNECT's KV list (either direction). Missing keys leave the defaults 99 / "". */
int spop_disconnect_parse(const uint8_t *payload, size_t len, uint32_t *status, struct spop_str *msg);

/* Does a comma-separated list (with optional blanks) contain `word` as an element? */
bool spop_list_has(const char *list, size_t len, const char *word);

/* --- encoding ------------------------------------------------------------------ */
static inline struct spop_wbuf spop_wbuf_init(void *buf, size_t size)
{
	struct spop_wbuf w = { (uint8_t *)buf, (uint8_t *)buf + size, false };
	return w;
}

size_t spop_varint_len(uint64_t v);
void spop_put_u8(struct spop_wbuf *w, uint8_t v);
void spop_put_varint(struct spop_wbuf *w, uint64_t v);
void spop_put_str(struct spop_wbuf *w, const void *s, size_t len);     /* varint len + bytes */
void spop_put_data_null(struct spop_wbuf *w);
void spop_put_data_bool(struct spop_wbuf *w, bool b);
void spop_put_data_int(struct spop_wbuf *w, int64_t v);                /* INT64 */
void spop_put_data_uint32(struct spop_wbuf *w, uint32_t v);
void spop_put_data_str(struct spop_wbuf *w, const void *s, size_t len);
void spop_put_data(struct spop_wbuf *w, const struct spop_data *d);    /* any type */

/* Frame framing: begin reserves the length prefix and writes the header; end patches
 * the length. end returns the frame's total bytes, or 0 when the buffer overflowed or
 * the length exceeds max_frame (the caller then drops what was written from `start`). */
uint8_t *spop_frame_begin(struct spop_wbuf *w, uint8_t type, uint32_t flags,
                          uint64_t stream_id, uint64_t frame_id);
size_t spop_frame_end(struct spop_wbuf *w, uint8_t *start, uint32_t max_frame);

/* ACK actions. */
void spop_put_set_var(struct spop_wbuf *w, uint8_t scope, const char *name, size_t nlen,
                      const struct spop_data *val);
void spop_put_set_var_str(struct spop_wbuf *w, uint8_t scope, const char *name,
                          const void *val, size_t vlen);
void spop_put_set_var_int(struct spop_wbuf *w, uint8_t scope, const char *name, int64_t v);
void spop_put_unset_var(struct spop_wbuf *w, uint8_t scope, const char *name);

/* Whole control frames. Return the frame's bytes or 0 (overflow / too big). */
size_t spop_agent_hello(struct spop_wbuf *w, uint32_t max_frame);
size_t spop_agent_disconnect(struct spop_wbuf *w, uint32_t status, const char *msg,
                             uint32_t max_frame);
/* HAProxy's side (tests and bench). caps may be "" ; engine_id may be NULL. */
size_t spop_haproxy_hello(struct spop_wbuf *w, const char *versions, uint32_t max_frame,
                          const char *caps, bool healthcheck, const char *engine_id);
size_t spop_haproxy_disconnect(struct spop_wbuf *w, uint32_t status, const char *msg);

const char *spop_status_str(int status);

#endif /* SPOP_H */
