/* test-spop.c: unit tests of the SPOP codec (spoa/spop.c): varints, typed data, frames,
 * HELLO / DISCONNECT parsing, the write buffer, the control frame builders.
 * Vectors come from SPOP.md and SPOE.txt §3.1. */
#include <stdint.h>

#include "spop.h"
#include "test.h"

/* Decode a varint from a byte vector; returns the decoder's result, *used the bytes
 * consumed (0 on failure, which also proves the cursor did not move). */
static int varint_from(const uint8_t *b, size_t n, uint64_t *v, size_t *used)
{
	const uint8_t *p = b;
	int r = spop_varint_get(&p, b + n, v);

	*used = (size_t)(p - b);
	return r;
}

/* Encode v; returns the bytes written. */
static size_t varint_to(uint64_t v, uint8_t *out, size_t size)
{
	struct spop_wbuf w = spop_wbuf_init(out, size);

	spop_put_varint(&w, v);
	return w.overflow ? 0 : (size_t)(w.p - out);
}

TEST(varint_vectors)
{
	static const struct { uint64_t v; size_t n; uint8_t b[10]; } vec[] = {
		{ 0, 1, { 0x00 } },
		{ 239, 1, { 0xef } },
		{ 240, 2, { 0xf0, 0x00 } },
		{ 2287, 2, { 0xff, 0x7f } },
		{ 2288, 3, { 0xf0, 0x80, 0x00 } },
		{ 16380, 3, { 0xfc, 0xf0, 0x06 } },
	};
	uint8_t buf[16];

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		uint64_t v = 0;
		size_t used;

		ASSERT_EQ(varint_to(vec[i].v, buf, sizeof(buf)), vec[i].n);
		ASSERT_MEMEQ(buf, vec[i].b, vec[i].n);
		ASSERT_EQ(spop_varint_len(vec[i].v), vec[i].n);
		ASSERT_EQ(varint_from(vec[i].b, vec[i].n, &v, &used), 0);
		ASSERT_EQ(used, vec[i].n);
		ASSERT_EQ(v, vec[i].v);
	}
}

TEST(varint_boundaries_round_trip)
{
	static const uint64_t vals[] = {
		0, 1, 127, 128, 239, 240, 241, 2287, 2288, 2289, 264431, 264432,
		33818863, 33818864, 0x7fffffffull, 0xffffffffull, 0x100000000ull,
		(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX,
	};
	uint8_t buf[16];

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint64_t v = 0;
		size_t n = varint_to(vals[i], buf, sizeof(buf)), used;

		ASSERT_GE(n, 1);
		ASSERT_EQ(n, spop_varint_len(vals[i]));
		ASSERT_EQ(varint_from(buf, n, &v, &used), 0);
		ASSERT_EQ(used, n);
		if (v != vals[i])
			TEST_FAIL_("round trip of %llu gave %llu", (unsigned long long)vals[i],
			           (unsigned long long)v);
		/* One byte short is truncated. */
		if (n > 1)
			ASSERT_EQ(varint_from(buf, n - 1, &v, &used), -1);
	}
	ASSERT_EQ(spop_varint_len(239), 1);
	ASSERT_EQ(spop_varint_len(240), 2);
	ASSERT_EQ(spop_varint_len(2287), 2);
	ASSERT_EQ(spop_varint_len(2288), 3);
	ASSERT_EQ(spop_varint_len(0xffffffffull), 5);
	ASSERT_EQ(spop_varint_len(UINT64_MAX), 10);
}

TEST(varint_rejects_truncated_and_overlong)
{
	static const uint8_t trunc1[] = { 0xf0 };
	static const uint8_t trunc2[] = { 0xf0, 0x80 };
	static const uint8_t trunc3[] = { 0xff, 0xff, 0xff, 0xff };
	/* 11 bytes: continuation past the 10th byte. */
	static const uint8_t over11[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                  0xff, 0x00 };
	/* 10 bytes whose value passes 2^64. */
	static const uint8_t overflow[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                    0x7f };
	static const uint8_t vmax[] = { 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e };
	uint8_t max[16];
	uint64_t v = 42;
	size_t used, n;

	ASSERT_EQ(varint_from(trunc1, 0, &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(varint_from(trunc1, sizeof(trunc1), &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(varint_from(trunc2, sizeof(trunc2), &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(varint_from(trunc3, sizeof(trunc3), &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(varint_from(over11, sizeof(over11), &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(varint_from(overflow, sizeof(overflow), &v, &used), -1);
	ASSERT_EQ(used, 0);
	ASSERT_EQ(v, 42); /* untouched on failure */
	/* 2^64-1's encoding with its last byte one higher overflows. */
	n = varint_to(UINT64_MAX, max, sizeof(max));
	ASSERT_EQ(n, 10);
	ASSERT_MEMEQ(max, vmax, 10);
	max[9]++;
	ASSERT_EQ(varint_from(max, n, &v, &used), -1);
	ASSERT_EQ(used, 0);
}

TEST(varint_write_overflow)
{
	uint8_t buf[4];
	struct spop_wbuf w = spop_wbuf_init(buf, 2);

	spop_put_varint(&w, 2288); /* 3 bytes into 2 */
	ASSERT(w.overflow);
	ASSERT(w.p == buf);
	spop_put_u8(&w, 1); /* after an overflow nothing more is written */
	ASSERT(w.p == buf);
}

/* Encode d, decode it back, compare. */
static void data_round_trip(const struct spop_data *d, size_t expect_len)
{
	uint8_t buf[64];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	const uint8_t *p = buf;
	struct spop_data o;
	size_t n;

	spop_put_data(&w, d);
	ASSERT(!w.overflow);
	n = (size_t)(w.p - buf);
	if (expect_len)
		ASSERT_EQ(n, expect_len);
	ASSERT_EQ(buf[0] & 0x0f, d->type);
	ASSERT_EQ(spop_data_get(&p, buf + n, &o), 0);
	ASSERT(p == buf + n);
	ASSERT_EQ(o.type, d->type);
	switch (d->type) {
	case SPOP_DATA_BOOL: ASSERT_EQ(o.v.b, d->v.b); break;
	case SPOP_DATA_INT32:
	case SPOP_DATA_INT64: ASSERT_EQ(o.v.i, d->v.i); break;
	case SPOP_DATA_UINT32:
	case SPOP_DATA_UINT64: ASSERT(o.v.u == d->v.u); break;
	case SPOP_DATA_IPV4: ASSERT_MEMEQ(o.v.ip, d->v.ip, 4); break;
	case SPOP_DATA_IPV6: ASSERT_MEMEQ(o.v.ip, d->v.ip, 16); break;
	case SPOP_DATA_STR:
	case SPOP_DATA_BIN:
		ASSERT_EQ(o.v.s.len, d->v.s.len);
		ASSERT_MEMEQ(o.v.s.ptr, d->v.s.ptr, d->v.s.len);
		break;
	default: break;
	}
	/* Every strict prefix is rejected without moving the cursor. */
	for (size_t k = 0; k < n; k++) {
		p = buf;
		if (spop_data_get(&p, buf + k, &o) == 0)
			TEST_FAIL_("type %u: prefix of %zu/%zu bytes accepted", d->type, k, n);
		ASSERT(p == buf);
	}
}

TEST(data_every_type_round_trip)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct spop_data d;

	d.type = SPOP_DATA_NULL; data_round_trip(&d, 1);
	d.type = SPOP_DATA_BOOL; d.v.b = true; data_round_trip(&d, 1);
	d.type = SPOP_DATA_BOOL; d.v.b = false; data_round_trip(&d, 1);
	d.type = SPOP_DATA_INT32; d.v.i = -1; data_round_trip(&d, 0);
	d.type = SPOP_DATA_INT32; d.v.i = INT32_MIN; data_round_trip(&d, 0);
	d.type = SPOP_DATA_INT32; d.v.i = INT32_MAX; data_round_trip(&d, 0);
	d.type = SPOP_DATA_UINT32; d.v.u = UINT32_MAX; data_round_trip(&d, 6);
	d.type = SPOP_DATA_INT64; d.v.i = 0; data_round_trip(&d, 2);
	d.type = SPOP_DATA_INT64; d.v.i = 2000; data_round_trip(&d, 3);
	/* Negative INT64 travels as its two's complement: 10 bytes of varint. */
	d.type = SPOP_DATA_INT64; d.v.i = -1; data_round_trip(&d, 11);
	d.type = SPOP_DATA_INT64; d.v.i = INT64_MIN; data_round_trip(&d, 11);
	d.type = SPOP_DATA_INT64; d.v.i = INT64_MAX; data_round_trip(&d, 0);
	d.type = SPOP_DATA_UINT64; d.v.u = UINT64_MAX; data_round_trip(&d, 11);
	d.type = SPOP_DATA_IPV4; d.v.ip = v4; data_round_trip(&d, 5);
	d.type = SPOP_DATA_IPV6; d.v.ip = v6; data_round_trip(&d, 17);
	d.type = SPOP_DATA_STR; d.v.s.ptr = "eur"; d.v.s.len = 3; data_round_trip(&d, 5);
	d.type = SPOP_DATA_STR; d.v.s.ptr = ""; d.v.s.len = 0; data_round_trip(&d, 2);
	d.type = SPOP_DATA_BIN; d.v.s.ptr = "\0\1\2"; d.v.s.len = 3; data_round_trip(&d, 5);
}

TEST(data_typed_helpers)
{
	uint8_t buf[64];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	const uint8_t *p = buf;
	struct spop_data d;

	spop_put_data_null(&w);
	spop_put_data_bool(&w, true);
	spop_put_data_int(&w, -2);
	spop_put_data_uint32(&w, 240);
	spop_put_data_str(&w, "ab", 2);
	ASSERT(!w.overflow);
	ASSERT_EQ(buf[0], 0x00);
	ASSERT_EQ(buf[1], 0x11); /* BOOL with the TRUE flag */
	ASSERT_EQ(spop_data_get(&p, w.p, &d), 0); ASSERT_EQ(d.type, SPOP_DATA_NULL);
	ASSERT_EQ(spop_data_get(&p, w.p, &d), 0); ASSERT_EQ(d.type, SPOP_DATA_BOOL); ASSERT(d.v.b);
	ASSERT_EQ(spop_data_get(&p, w.p, &d), 0); ASSERT_EQ(d.type, SPOP_DATA_INT64); ASSERT_EQ(d.v.i, -2);
	ASSERT_EQ(spop_data_get(&p, w.p, &d), 0); ASSERT_EQ(d.type, SPOP_DATA_UINT32); ASSERT_EQ(d.v.u, 240);
	ASSERT_EQ(spop_data_get(&p, w.p, &d), 0); ASSERT_EQ(d.type, SPOP_DATA_STR); ASSERT_EQ(d.v.s.len, 2);
	ASSERT(p == w.p);
}

TEST(data_rejects_unknown_types)
{
	for (unsigned t = 10; t < 16; t++) {
		uint8_t b[4] = { (uint8_t)t, 0, 0, 0 };
		const uint8_t *p = b;
		struct spop_data d;

		ASSERT_EQ(spop_data_get(&p, b + sizeof(b), &d), -1);
		ASSERT(p == b);
	}
}

TEST(string_length_beyond_remaining)
{
	/* len 5 with 4 bytes left; len 2^64-1 (would wrap p + len). */
	static const uint8_t s1[] = { 0x05, 'a', 'b', 'c', 'd' };
	static const uint8_t s2[] = { 0xff, 0xf0, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0x0e, 'x' };
	static const uint8_t d1[] = { SPOP_DATA_STR, 0x03, 'a', 'b' };
	static const uint8_t ip[] = { SPOP_DATA_IPV6, 1, 2, 3 };
	static const uint8_t s3[] = { 0x04, 'a', 'b', 'c', 'd' };
	const uint8_t *p;
	struct spop_str s;
	struct spop_data d;
	uint64_t v;
	size_t used;

	ASSERT_EQ(varint_from(s2, 10, &v, &used), 0);
	ASSERT(v == UINT64_MAX);
	p = s1;
	ASSERT_EQ(spop_str_get(&p, s1 + sizeof(s1), &s), -1);
	ASSERT(p == s1);
	p = s2;
	ASSERT_EQ(spop_str_get(&p, s2 + sizeof(s2), &s), -1);
	ASSERT(p == s2);
	p = d1;
	ASSERT_EQ(spop_data_get(&p, d1 + sizeof(d1), &d), -1);
	ASSERT(p == d1);
	p = ip;
	ASSERT_EQ(spop_data_get(&p, ip + sizeof(ip), &d), -1);
	ASSERT(p == ip);
	p = s3;
	ASSERT_EQ(spop_str_get(&p, s3 + sizeof(s3), &s), 0);
	ASSERT_EQ(s.len, 4);
	ASSERT(p == s3 + sizeof(s3));
}

TEST(kv_msg_action_no_advance_on_failure)
{
	uint8_t buf[128];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_data val = { .type = SPOP_DATA_STR, .v.s = { "allow", 5 } };
	struct spop_str k, name;
	struct spop_data d;
	unsigned nargs;
	uint8_t act, scope;
	const uint8_t *p;
	size_t n;

	/* A message head: name + 1-byte arg count. */
	spop_put_str(&w, "pay-request", 11);
	spop_put_u8(&w, 2);
	n = (size_t)(w.p - buf);
	p = buf;
	ASSERT_EQ(spop_msg_get(&p, buf + n, &name, &nargs), 0);
	ASSERT_EQ(nargs, 2);
	ASSERT(p == buf + n);
	p = buf;
	ASSERT_EQ(spop_msg_get(&p, buf + n - 1, &name, &nargs), -1); /* count missing */
	ASSERT(p == buf);

	/* KV */
	w = spop_wbuf_init(buf, sizeof(buf));
	spop_put_str(&w, "amount", 6);
	spop_put_data_int(&w, 2000);
	n = (size_t)(w.p - buf);
	for (size_t cut = 0; cut < n; cut++) {
		p = buf;
		ASSERT_EQ(spop_kv_get(&p, buf + cut, &k, &d), -1);
		ASSERT(p == buf);
	}
	p = buf;
	ASSERT_EQ(spop_kv_get(&p, buf + n, &k, &d), 0);
	ASSERT_EQ(d.v.i, 2000);

	/* set-var and unset-var actions */
	w = spop_wbuf_init(buf, sizeof(buf));
	spop_put_set_var(&w, SPOP_SCOPE_TXN, "verdict", 7, &val);
	spop_put_set_var_int(&w, SPOP_SCOPE_REQ, "prio", -3);
	spop_put_unset_var(&w, SPOP_SCOPE_SESS, "old");
	ASSERT(!w.overflow);
	ASSERT_EQ(buf[0], SPOP_ACT_SET_VAR);
	ASSERT_EQ(buf[1], 3);
	ASSERT_EQ(buf[2], SPOP_SCOPE_TXN);
	n = (size_t)(w.p - buf);
	p = buf;
	ASSERT_EQ(spop_action_get(&p, buf + n, &act, &scope, &name, &d), 0);
	ASSERT_EQ(act, SPOP_ACT_SET_VAR); ASSERT_EQ(scope, SPOP_SCOPE_TXN);
	ASSERT_EQ(name.len, 7); ASSERT_EQ(d.type, SPOP_DATA_STR);
	ASSERT_EQ(spop_action_get(&p, buf + n, &act, &scope, &name, &d), 0);
	ASSERT_EQ(scope, SPOP_SCOPE_REQ); ASSERT_EQ(d.v.i, -3);
	ASSERT_EQ(spop_action_get(&p, buf + n, &act, &scope, &name, &d), 0);
	ASSERT_EQ(act, SPOP_ACT_UNSET_VAR); ASSERT_EQ(scope, SPOP_SCOPE_SESS);
	ASSERT_EQ(d.type, SPOP_DATA_NULL);
	ASSERT(p == buf + n);
	/* Wrong nb-args and unknown action types are rejected. */
	buf[1] = 2;
	p = buf;
	ASSERT_EQ(spop_action_get(&p, buf + n, &act, &scope, &name, &d), -1);
	ASSERT(p == buf);
	buf[1] = 3;
	buf[0] = 7;
	ASSERT_EQ(spop_action_get(&p, buf + n, &act, &scope, &name, &d), -1);
	ASSERT(p == buf);
}

/* A frame: 4-byte length then `body`. */
static size_t mkframe(uint8_t *out, uint32_t len, const uint8_t *body, size_t blen)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	memcpy(out + 4, body, blen);
	return 4 + blen;
}

TEST(frame_get_lengths)
{
	static const uint8_t body[16] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0x01, 0x02, 0xaa };
	uint8_t buf[70000];
	struct spop_frame f;

	memset(buf, 0, sizeof(buf));
	/* 0..6: below the smallest legal frame. */
	for (uint32_t len = 0; len < SPOP_FRAME_MIN; len++) {
		size_t n = mkframe(buf, len, body, len);

		ASSERT_EQ(spop_frame_get(buf, n, 16380, &f), -SPOP_ST_INVALID);
		/* judged on the length prefix alone, before the body */
		ASSERT_EQ(spop_frame_get(buf, 4, 16380, &f), -SPOP_ST_INVALID);
	}
	/* 7: the smallest legal frame. */
	mkframe(buf, 7, body, 7);
	ASSERT_EQ(spop_frame_get(buf, 11, 16380, &f), 11);
	ASSERT_EQ(f.type, SPOP_FRM_NOTIFY);
	ASSERT_EQ(f.flags, SPOP_FL_FIN);
	ASSERT_EQ(f.stream_id, 1);
	ASSERT_EQ(f.frame_id, 2);
	ASSERT_EQ(f.len, 0);
	/* exactly max, max+1 */
	mkframe(buf, 16380, body, 8);
	ASSERT_EQ(spop_frame_get(buf, 16384, 16380, &f), 16384);
	ASSERT_EQ(f.len, 16380 - 7);
	ASSERT_EQ(spop_frame_get(buf, 16383, 16380, &f), 0); /* one byte short */
	mkframe(buf, 16381, body, 8);
	ASSERT_EQ(spop_frame_get(buf, 4, 16380, &f), -SPOP_ST_TOO_BIG);
	ASSERT_EQ(spop_frame_get(buf, 16385, 16380, &f), -SPOP_ST_TOO_BIG);
	/* 2^31 and 2^32-1: too big, judged before any body byte. */
	mkframe(buf, 0x80000000u, body, 8);
	ASSERT_EQ(spop_frame_get(buf, 4, 65532, &f), -SPOP_ST_TOO_BIG);
	mkframe(buf, 0xffffffffu, body, 8);
	ASSERT_EQ(spop_frame_get(buf, 12, UINT32_MAX - 1, &f), -SPOP_ST_TOO_BIG);
	/* partial headers need more bytes */
	mkframe(buf, 7, body, 7);
	for (size_t avail = 0; avail < 4; avail++)
		ASSERT_EQ(spop_frame_get(buf, avail, 16380, &f), 0);
	for (size_t avail = 4; avail < 11; avail++)
		ASSERT_EQ(spop_frame_get(buf, avail, 16380, &f), 0);
}

TEST(frame_get_header_varints)
{
	uint8_t buf[64], body[40];
	struct spop_frame f;
	size_t n;
	/* truncated stream-id varint inside a 7-byte frame */
	static const uint8_t trunc[] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1, 0xf0, 0xf0 };
	/* an over-long (11-byte) stream-id */
	uint8_t over[5 + 12] = { SPOP_FRM_NOTIFY, 0, 0, 0, 1 };

	n = mkframe(buf, sizeof(trunc), trunc, sizeof(trunc));
	ASSERT_EQ(spop_frame_get(buf, n, 16380, &f), -SPOP_ST_INVALID);
	memset(over + 5, 0xff, 10);
	over[15] = 0x00; /* 11th byte */
	over[16] = 0x00; /* frame-id */
	n = mkframe(buf, sizeof(over), over, sizeof(over));
	ASSERT_EQ(spop_frame_get(buf, n, 16380, &f), -SPOP_ST_INVALID);

	/* ids at the boundaries survive begin/end and decode back */
	{
		static const uint64_t ids[][2] = {
			{ 239, 240 }, { 2287, 2288 }, { 0xffffffffull, 1 }, { UINT64_MAX, UINT64_MAX },
		};
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			struct spop_wbuf w = spop_wbuf_init(body, sizeof(body));
			uint8_t *start = spop_frame_begin(&w, SPOP_FRM_ACK, SPOP_FL_FIN, ids[i][0], ids[i][1]);
			size_t total = spop_frame_end(&w, start, 16380);

			ASSERT_EQ(total, 9 + spop_varint_len(ids[i][0]) + spop_varint_len(ids[i][1]));
			ASSERT_EQ(spop_frame_get(body, total, 16380, &f), (int)total);
			ASSERT_EQ(f.type, SPOP_FRM_ACK);
			ASSERT(f.stream_id == ids[i][0]);
			ASSERT(f.frame_id == ids[i][1]);
			ASSERT_EQ(f.len, 0);
		}
	}
}

TEST(frame_end_bounds)
{
	uint8_t buf[600];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_ACK, SPOP_FL_FIN, 1, 1);
	char big[300];

	memset(big, 'x', sizeof(big));
	spop_put_set_var_str(&w, SPOP_SCOPE_TXN, "reason", big, sizeof(big));
	ASSERT(!w.overflow);
	ASSERT_EQ(spop_frame_end(&w, start, 256), 0); /* longer than the negotiated max */
	ASSERT(spop_frame_end(&w, start, 400) > 256);
	/* too small a buffer: begin itself overflows, end says 0 */
	w = spop_wbuf_init(buf, 8);
	start = spop_frame_begin(&w, SPOP_FRM_ACK, SPOP_FL_FIN, 1, 1);
	ASSERT(w.overflow);
	ASSERT_EQ(spop_frame_end(&w, start, 256), 0);
}

TEST(list_has)
{
	ASSERT(spop_list_has(" 2.0 , 1.5", 10, "2.0"));
	ASSERT(spop_list_has(" 2.0 , 1.5", 10, "1.5"));
	ASSERT(spop_list_has("2.0", 3, "2.0"));
	ASSERT(spop_list_has("1.0,2.0", 7, "2.0"));
	ASSERT(spop_list_has("pipelining, async", 17, "pipelining"));
	ASSERT(spop_list_has("pipelining, async", 17, "async"));
	ASSERT(!spop_list_has("12.0", 4, "2.0"));
	ASSERT(!spop_list_has("2.01", 4, "2.0"));
	ASSERT(!spop_list_has("2.0.1, 3.0", 10, "2.0"));
	ASSERT(!spop_list_has("", 0, "2.0"));
	ASSERT(!spop_list_has(",,", 2, "2.0"));
	ASSERT(!spop_list_has("2.", 2, "2.0"));
	/* the length bounds the search: "2.0" beyond len is not seen */
	ASSERT(!spop_list_has("1.5,2.0", 3, "2.0"));
}

/* Build a HELLO payload with chosen keys and parse it. */
static int hello_status(const char *versions, int64_t mfs, const char *caps, bool hc,
                        struct spop_hello *h)
{
	uint8_t buf[256];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));

	spop_put_str(&w, "x-unknown", 9);
	spop_put_data_int(&w, 7);
	if (versions) {
		spop_put_str(&w, "supported-versions", 18);
		spop_put_data_str(&w, versions, strlen(versions));
	}
	if (mfs >= 0) {
		spop_put_str(&w, "max-frame-size", 14);
		spop_put_data_int(&w, mfs);
	}
	if (caps) {
		spop_put_str(&w, "capabilities", 12);
		spop_put_data_str(&w, caps, strlen(caps));
	}
	if (hc) {
		spop_put_str(&w, "healthcheck", 11);
		spop_put_data_bool(&w, true);
	}
	ASSERT(!w.overflow);
	return spop_hello_parse(buf, (size_t)(w.p - buf), h);
}

TEST(hello_parse_status)
{
	struct spop_hello h;

	ASSERT_EQ(hello_status("2.0", 16380, "pipelining", false, &h), 0);
	ASSERT_EQ(h.max_frame_size, 16380);
	ASSERT(h.pipelining);
	ASSERT(!h.healthcheck);
	ASSERT_EQ(hello_status(" 2.0 , 1.5", 256, "", false, &h), 0);
	ASSERT_EQ(h.max_frame_size, 256);
	ASSERT(!h.pipelining);
	ASSERT_EQ(hello_status("2.0", 16380, "pipelining, async", false, &h), 0);
	ASSERT(h.pipelining);
	ASSERT_EQ(hello_status("2.0", 16380, "", true, &h), 0);
	ASSERT(h.healthcheck);
	ASSERT_EQ(hello_status("2.0", 0xffffffffffll, "", false, &h), 0);
	ASSERT_EQ(h.max_frame_size, UINT32_MAX);
	ASSERT_EQ(hello_status(NULL, 16380, "", false, &h), SPOP_ST_NO_VSN);
	ASSERT_EQ(hello_status("1.0", 16380, "", false, &h), SPOP_ST_BAD_VSN);
	ASSERT_EQ(hello_status("12.0", 16380, "", false, &h), SPOP_ST_BAD_VSN);
	ASSERT_EQ(hello_status("2.0", -1, "", false, &h), SPOP_ST_NO_FRAME_SIZE);
	ASSERT_EQ(hello_status("2.0", 255, "", false, &h), SPOP_ST_BAD_FRAME_SIZE);
	ASSERT_EQ(hello_status("2.0", 0, "", false, &h), SPOP_ST_BAD_FRAME_SIZE);
	ASSERT_EQ(hello_status("2.0", 16380, NULL, false, &h), SPOP_ST_NO_CAP);
	/* an empty payload misses everything; the version is reported first */
	ASSERT_EQ(spop_hello_parse((const uint8_t *)"", 0, &h), SPOP_ST_NO_VSN);
	/* a malformed KV list is invalid */
	ASSERT_EQ(spop_hello_parse((const uint8_t *)"\x05" "ab", 3, &h), SPOP_ST_INVALID);
}

TEST(hello_parse_wrong_types)
{
	uint8_t buf[128];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_hello h;

	spop_put_str(&w, "supported-versions", 18);
	spop_put_data_int(&w, 2);
	ASSERT_EQ(spop_hello_parse(buf, (size_t)(w.p - buf), &h), SPOP_ST_INVALID);
	w = spop_wbuf_init(buf, sizeof(buf));
	spop_put_str(&w, "max-frame-size", 14);
	spop_put_data_int(&w, -300);
	ASSERT_EQ(spop_hello_parse(buf, (size_t)(w.p - buf), &h), SPOP_ST_INVALID);
}

TEST(control_frames_redecode)
{
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	struct spop_hello h;
	struct spop_str msg;
	uint32_t st;
	size_t n;
	const uint8_t *p, *end;
	bool saw_vsn = false, saw_mfs = false, saw_caps = false;

	/* AGENT-HELLO: version "2.0", max-frame-size, capabilities "pipelining". */
	n = spop_agent_hello(&w, 300);
	ASSERT(n > 0);
	ASSERT_EQ(spop_frame_get(buf, n, 300, &f), (int)n);
	ASSERT_EQ(f.type, SPOP_FRM_AGENT_HELLO);
	ASSERT_EQ(f.flags, SPOP_FL_FIN);
	ASSERT_EQ(f.stream_id, 0);
	ASSERT_EQ(f.frame_id, 0);
	p = f.payload;
	end = f.payload + f.len;
	while (p < end) {
		struct spop_str k;
		struct spop_data d;

		ASSERT_EQ(spop_kv_get(&p, end, &k, &d), 0);
		if (k.len == 7 && !memcmp(k.ptr, "version", 7)) {
			saw_vsn = true;
			ASSERT_EQ(d.type, SPOP_DATA_STR);
			ASSERT_EQ(d.v.s.len, 3);
			ASSERT_MEMEQ(d.v.s.ptr, "2.0", 3);
		} else if (k.len == 14 && !memcmp(k.ptr, "max-frame-size", 14)) {
			saw_mfs = true;
			ASSERT_EQ(d.type, SPOP_DATA_UINT32);
			ASSERT_EQ(d.v.u, 300);
		} else if (k.len == 12 && !memcmp(k.ptr, "capabilities", 12)) {
			saw_caps = true;
			ASSERT_EQ(d.type, SPOP_DATA_STR);
			ASSERT(spop_list_has(d.v.s.ptr, d.v.s.len, "pipelining"));
			ASSERT(!spop_list_has(d.v.s.ptr, d.v.s.len, "async"));
		}
	}
	ASSERT(saw_vsn && saw_mfs && saw_caps);

	/* AGENT-DISCONNECT */
	w = spop_wbuf_init(buf, sizeof(buf));
	n = spop_agent_disconnect(&w, SPOP_ST_TOO_BIG, "frame is too big", 256);
	ASSERT(n >= 4 + SPOP_FRAME_MIN);
	ASSERT_EQ(spop_frame_get(buf, n, 256, &f), (int)n);
	ASSERT_EQ(f.type, SPOP_FRM_AGENT_DISCONNECT);
	ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &st, &msg), 0);
	ASSERT_EQ(st, SPOP_ST_TOO_BIG);
	ASSERT_EQ(msg.len, 16);
	ASSERT_MEMEQ(msg.ptr, "frame is too big", 16);

	/* HAProxy's HELLO parses with our own parser */
	w = spop_wbuf_init(buf, sizeof(buf));
	n = spop_haproxy_hello(&w, "2.0", 16380, "pipelining,async", true, "eng-1");
	ASSERT(n > 0);
	ASSERT_EQ(spop_frame_get(buf, n, 16380, &f), (int)n);
	ASSERT_EQ(f.type, SPOP_FRM_HAPROXY_HELLO);
	ASSERT_EQ(spop_hello_parse(f.payload, f.len, &h), 0);
	ASSERT(h.healthcheck);
	ASSERT_EQ(h.engine_id.len, 5);
	ASSERT_EQ(h.max_frame_size, 16380);

	/* HAPROXY-DISCONNECT */
	w = spop_wbuf_init(buf, sizeof(buf));
	n = spop_haproxy_disconnect(&w, 0, "bye");
	ASSERT_EQ(spop_frame_get(buf, n, 16380, &f), (int)n);
	ASSERT_EQ(f.type, SPOP_FRM_HAPROXY_DISCONNECT);
	ASSERT_EQ(spop_disconnect_parse(f.payload, f.len, &st, &msg), 0);
	ASSERT_EQ(st, 0);

	/* a DISCONNECT without keys: 99 and "" */
	ASSERT_EQ(spop_disconnect_parse(buf, 0, &st, &msg), 0);
	ASSERT_EQ(st, SPOP_ST_UNKNOWN);
	ASSERT_EQ(msg.len, 0);
	ASSERT_EQ(spop_disconnect_parse((const uint8_t *)"\x09", 1, &st, &msg), -1);
}

TEST(control_frames_overflow)
{
	uint8_t buf[512];
	struct spop_wbuf w;

	for (size_t size = 0; size < 40; size++) {
		w = spop_wbuf_init(buf, size);
		ASSERT_EQ(spop_agent_hello(&w, 16380), 0);
		ASSERT(w.overflow);
		ASSERT(w.p <= buf + size);
	}
	w = spop_wbuf_init(buf, sizeof(buf));
	ASSERT(spop_agent_disconnect(&w, SPOP_ST_INVALID, "x", 16380) > 0);
}

TEST(wbuf_overflow_is_sticky)
{
	uint8_t buf[16];
	struct spop_wbuf w = spop_wbuf_init(buf, 10);

	spop_put_str(&w, "abcdefgh", 8); /* 9 bytes */
	ASSERT(!w.overflow);
	ASSERT(w.p == buf + 9);
	spop_put_str(&w, "a", 1);        /* 2 bytes into 1: refused whole */
	ASSERT(w.overflow);
	ASSERT(w.p == buf + 9);
	spop_put_u8(&w, 0);              /* 1 byte would fit, but overflow is sticky */
	ASSERT(w.p == buf + 9);
	spop_put_data_int(&w, 1);
	spop_put_data_str(&w, "", 0);
	ASSERT(w.p == buf + 9);
	ASSERT(w.overflow);
	/* a zero-size buffer */
	w = spop_wbuf_init(buf, 0);
	spop_put_data_null(&w);
	ASSERT(w.overflow);
	ASSERT(w.p == buf);
}

TEST(status_strings)
{
	for (int st = 0; st <= 13; st++)
		ASSERT(spop_status_str(st) && *spop_status_str(st));
	ASSERT_STREQ(spop_status_str(SPOP_ST_FRAG_NOT_SUP), "payload fragmentation is not supported");
	ASSERT_STREQ(spop_status_str(1234), "an unknown error occurred");
}

int main(void)
{
	RUN(varint_vectors);
	RUN(varint_boundaries_round_trip);
	RUN(varint_rejects_truncated_and_overlong);
	RUN(varint_write_overflow);
	RUN(data_every_type_round_trip);
	RUN(data_typed_helpers);
	RUN(data_rejects_unknown_types);
	RUN(string_length_beyond_remaining);
	RUN(kv_msg_action_no_advance_on_failure);
	RUN(frame_get_lengths);
	RUN(frame_get_header_varints);
	RUN(frame_end_bounds);
	RUN(list_has);
	RUN(hello_parse_status);
	RUN(hello_parse_wrong_types);
	RUN(control_frames_redecode);
	RUN(control_frames_overflow);
	RUN(wbuf_overflow_is_sticky);
	RUN(status_strings);
	return test_summary();
}
