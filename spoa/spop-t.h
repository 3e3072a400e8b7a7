/* spop-t.h: SPOP 2.0 wire types (frames, typed data, status codes). Types only. */
#ifndef SPOP_T_H
#define SPOP_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOP_VERSION          "2.0"
#define SPOP_FRAME_MIN        7      /* type(1) + flags(4) + stream-id(1) + frame-id(1) */
#define SPOP_FRAME_SIZE_MIN   256    /* smallest max-frame-size we accept from HAProxy */
#define SPOP_FRAME_SIZE_MAX   65532  /* largest we ever announce (HAProxy's own bound) */
#define SPOP_VARINT_MAX       10     /* bytes of the largest varint (2^64-1) */

enum spop_frame_type {
	SPOP_FRM_HAPROXY_HELLO      = 1,
	SPOP_FRM_HAPROXY_DISCONNECT = 2,
	SPOP_FRM_NOTIFY             = 3,
	SPOP_FRM_AGENT_HELLO        = 101,
	SPOP_FRM_AGENT_DISCONNECT   = 102,
	SPOP_FRM_ACK                = 103,
};

#define SPOP_FL_FIN   0x00000001u
#define SPOP_FL_ABORT 0x00000002u

/* DISCONNECT status codes (SPOE.txt §3.5). */
enum spop_status {
	SPOP_ST_NORMAL         = 0,
	SPOP_ST_IO             = 1,
	SPOP_ST_TIMEOUT        = 2,
	SPOP_ST_TOO_BIG        = 3,
	SPOP_ST_INVALID        = 4,
	SPOP_ST_NO_VSN         = 5,
	SPOP_ST_NO_FRAME_SIZE  = 6,
	SPOP_ST_NO_CAP         = 7,
	SPOP_ST_BAD_VSN        = 8,
	SPOP_ST_BAD_FRAME_SIZE = 9,
	SPOP_ST_FRAG_NOT_SUP   = 10,
	SPOP_ST_INTERLACED     = 11,
	SPOP_ST_FRAMEID_NOTFND = 12,
	SPOP_ST_RES            = 13,
	SPOP_ST_UNKNOWN        = 99,
};

/* Typed data: type in the low nibble, flags in the high nibble. */
enum spop_data_type {
	SPOP_DATA_NULL   = 0,
	SPOP_DATA_BOOL   = 1,
	SPOP_DATA_INT32  = 2,
	SPOP_DATA_UINT32 = 3,
	SPOP_DATA_INT64  = 4,
	SPOP_DATA_UINT64 = 5,
	SPOP_DATA_IPV4   = 6,
	SPOP_DATA_IPV6   = 7,
	SPOP_DATA_STR    = 8,
	SPOP_DATA_BIN    = 9,
};
#define SPOP_DATA_FL_TRUE 0x10

/* Variable scopes of set-var / unset-var. */
enum spop_scope {
	SPOP_SCOPE_PROC = 0,
	SPOP_SCOPE_SESS = 1,
	SPOP_SCOPE_TXN  = 2,
	SPOP_SCOPE_REQ  = 3,
	SPOP_SCOPE_RES  = 4,
};

enum spop_action {
	SPOP_ACT_SET_VAR   = 1,
	SPOP_ACT_UNSET_VAR = 2,
};

/* A borrowed byte range inside a frame being decoded. */
struct spop_str {
	const char *ptr;
	size_t len;
};

/* One decoded typed value; pointers borrow from the frame. */
struct spop_data {
	uint8_t type;                 /* enum spop_data_type */
	union {
		bool b;
		int64_t i;            /* INT32, INT64 */
		uint64_t u;           /* UINT32, UINT64 */
		const uint8_t *ip;    /* IPV4 (4 bytes), IPV6 (16 bytes) */
		struct spop_str s;    /* STR, BIN */
	} v;
};

/* A frame header as decoded from the stream; payload borrows from the read buffer. */
struct spop_frame {
	uint8_t type;
	uint32_t flags;
	uint64_t stream_id;
	uint64_t frame_id;
	const uint8_t *payload;
	size_t len;                   /* payload bytes */
};

/* What HAProxy's HELLO said, once validated. */
struct spop_hello {
	uint32_t max_frame_size;
	bool healthcheck;
	bool pipelining;              /* HAProxy announced it (informational) */
	struct spop_str engine_id;    /* may be empty */
};

/* An output cursor: writes never pass `end`; a write that does not fit sets
 * `overflow` and writes nothing further, so callers check once at the end. */
struct spop_wbuf {
	uint8_t *p;
	uint8_t *end;
	bool overflow;
};

#endif /* SPOP_T_H */
