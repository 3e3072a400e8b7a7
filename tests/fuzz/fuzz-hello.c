/* fuzz-hello.c: the codec's parsers on arbitrary bytes (spoa/spop.c): HELLO and
 * DISCONNECT KV lists, frame headers, varints and typed data, with round trips through
 * the encoders and spop_list_has checked against a plain reference.
 * The whole input goes to each parser. */
#include <stdint.h>
#include <string.h>

#include "fuzz-check.h"
#include "spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: split on ',', trim blanks, compare. */
static bool list_has_ref(const char *s, size_t len, const char *word)
{
	size_t b = 0;

	while (b <= len) {
		size_t e = b, x, y;

		while (e < len && s[e] != ',')
			e++;
		x = b;
		y = e;
		while (x < y && (s[x] == ' ' || s[x] == '\t'))
			x++;
		while (y > x && (s[y - 1] == ' ' || s[y - 1] == '\t'))
			y--;
		if (y - x == strlen(word) && memcmp(s + x, word, y - x) == 0)
			return true;
		b = e + 1;
	}
	return false;
}

static void check_data_round_trip(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *q = p;
	struct spop_data d, d2;
	uint8_t buf[64];
	struct spop_wbuf w;

	while (q < end) {
		const uint8_t *before = q;

		if (spop_data_get(&q, end, &d) < 0) {
			FUZZ_ASSERT(q == before); /* no advance on failure */
			return;
		}
		FUZZ_ASSERT(q > before && q <= end);
		if ((d.type == SPOP_DATA_STR || d.type == SPOP_DATA_BIN) && d.v.s.len > 32)
			continue;
		w = spop_wbuf_init(buf, sizeof(buf));
		spop_put_data(&w, &d);
		FUZZ_ASSERT(!w.overflow);
		{
			const uint8_t *r = buf;

			FUZZ_ASSERT(spop_data_get(&r, w.p, &d2) == 0 && r == w.p);
		}
		FUZZ_ASSERT(d2.type == d.type);
		switch (d.type) {
		case SPOP_DATA_BOOL: FUZZ_ASSERT(d2.v.b == d.v.b); break;
		case SPOP_DATA_INT32:
		case SPOP_DATA_INT64: FUZZ_ASSERT(d2.v.i == d.v.i); break;
		case SPOP_DATA_UINT32:
		case SPOP_DATA_UINT64: FUZZ_ASSERT(d2.v.u == d.v.u); break;
		case SPOP_DATA_IPV4: FUZZ_ASSERT(!memcmp(d2.v.ip, d.v.ip, 4)); break;
		case SPOP_DATA_IPV6: FUZZ_ASSERT(!memcmp(d2.v.ip, d.v.ip, 16)); break;
		case SPOP_DATA_STR:
		case SPOP_DATA_BIN:
			FUZZ_ASSERT(d2.v.s.len == d.v.s.len && !memcmp(d2.v.s.ptr, d.v.s.ptr, d.v.s.len));
			break;
		default: break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *p;
	struct spop_hello h;
	struct spop_str msg;
	struct spop_frame f;
	uint32_t st;
	int r;

	/* HELLO: a status in the table; on success, a usable frame size */
	r = spop_hello_parse(data, size, &h);
	FUZZ_ASSERT(r == 0 || r == SPOP_ST_INVALID || (r >= SPOP_ST_NO_VSN && r <= SPOP_ST_BAD_FRAME_SIZE));
	if (r == 0)
		FUZZ_ASSERT(h.max_frame_size >= SPOP_FRAME_SIZE_MIN);
	if (spop_disconnect_parse(data, size, &st, &msg) == 0)
		FUZZ_ASSERT(msg.len <= size && (msg.len == 0 || ((const uint8_t *)msg.ptr >= data &&
		            (const uint8_t *)msg.ptr + msg.len <= end)));

	/* frame header at every small max */
	for (uint32_t max = 0; max < 300; max += 37) {
		r = spop_frame_get(data, size, max, &f);
		if (r > 0) {
			FUZZ_ASSERT((size_t)r <= size && (uint32_t)r - 4 <= max && r >= 4 + SPOP_FRAME_MIN);
			FUZZ_ASSERT(f.payload >= data + 9 && f.payload + f.len == data + r);
		} else {
			FUZZ_ASSERT(r == 0 || r == -SPOP_ST_TOO_BIG || r == -SPOP_ST_INVALID);
		}
	}

	/* varints: canonical round trip, no advance on failure */
	for (p = data; p < end;) {
		const uint8_t *before = p;
		uint8_t buf[16];
		struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
		uint64_t v;

		if (spop_varint_get(&p, end, &v) < 0) {
			FUZZ_ASSERT(p == before);
			break;
		}
		FUZZ_ASSERT(p > before && p - before <= SPOP_VARINT_MAX);
		spop_put_varint(&w, v);
		FUZZ_ASSERT(!w.overflow && (size_t)(w.p - buf) == spop_varint_len(v));
		FUZZ_ASSERT((size_t)(w.p - buf) == (size_t)(p - before) && !memcmp(buf, before, (size_t)(p - before)));
	}

	check_data_round_trip(data, end);

	/* list matching against the reference */
	{
		static const char *const words[] = { "2.0", "pipelining", "async" };

		for (int i = 0; i < 3; i++)
			FUZZ_ASSERT(spop_list_has((const char *)data, size, words[i]) ==
			            list_has_ref((const char *)data, size, words[i]));
	}
	return 0;
}
