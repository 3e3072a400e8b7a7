/* spop.c: the SPOP 2.0 codec (see spop.h for the cursor contract).
 * Must not do I/O, allocate, or keep state between calls. */
#include <string.h>

#include "spop.h"

/* --- decoding ------------------------------------------------------------------ */

/* Varint (SPOE.txt §3.1): x < 240 is one byte; otherwise the first byte carries the low
 * 4 bits above 240 (b | 0xf0) and each following byte 7 bits, the last one < 128.
 * Decoding adds byte << shift with shift = 4, 11, 18, ... A well-formed 2^64-1 takes 10
 * bytes; an 11th byte, or bits pushed out of 64, is an over-long varint: an error. */
int spop_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;
	uint64_t x, add;
	unsigned shift = 4;

	if (q >= end)
		return -1;
	x = *q++;
	if (x >= 240) {
		for (;;) {
			if (q >= end || shift > 60)
				return -1;
			add = (uint64_t)*q << shift;
			if ((add >> shift) != *q || __builtin_add_overflow(x, add, &x))
				return -1;
			shift += 7;
			if (*q++ < 128)
				break;
		}
	}
	*v = x;
	*p = q;
	return 0;
}

int spop_str_get(const uint8_t **p, const uint8_t *end, struct spop_str *s)
{
	const uint8_t *q = *p;
	uint64_t len;

	if (spop_varint_get(&q, end, &len) < 0 || len > (uint64_t)(end - q))
		return -1;
	s->ptr = (const char *)q;
	s->len = (size_t)len;
	*p = q + len;
	return 0;
}

int spop_data_get(const uint8_t **p, const uint8_t *end, struct spop_data *d)
{
	const uint8_t *q = *p;
	uint64_t u;
	uint8_t t;

	if (q >= end)
		return -1;
	t = *q++;
	d->type = t & 0x0f;
	switch (d->type) {
	case SPOP_DATA_NULL:
		break;
	case SPOP_DATA_BOOL:
		d->v.b = (t & SPOP_DATA_FL_TRUE) != 0;
		break;
	case SPOP_DATA_INT32:
	case SPOP_DATA_INT64:
		/* Signed values travel as their two's complement bit pattern. */
		if (spop_varint_get(&q, end, &u) < 0)
			return -1;
		if (d->type == SPOP_DATA_INT32)
			d->v.i = (int32_t)(uint32_t)u;
		else
			memcpy(&d->v.i, &u, sizeof(u));
		break;
	case SPOP_DATA_UINT32:
	case SPOP_DATA_UINT64:
		if (spop_varint_get(&q, end, &u) < 0)
			return -1;
		d->v.u = d->type == SPOP_DATA_UINT32 ? (uint32_t)u : u;
		break;
	case SPOP_DATA_IPV4:
	case SPOP_DATA_IPV6: {
		size_t n = d->type == SPOP_DATA_IPV4 ? 4 : 16;

		if (n > (size_t)(end - q))
			return -1;
		d->v.ip = q;
		q += n;
		break;
	}
	case SPOP_DATA_STR:
	case SPOP_DATA_BIN:
		if (spop_str_get(&q, end, &d->v.s) < 0)
			return -1;
		break;
	default:
		return -1;
	}
	*p = q;
	return 0;
}

int spop_kv_get(const uint8_t **p, const uint8_t *end, struct spop_str *key, struct spop_data *val)
{
	const uint8_t *q = *p;

	if (spop_str_get(&q, end, key) < 0 || spop_data_get(&q, end, val) < 0)
		return -1;
	*p = q;
	return 0;
}

int spop_msg_get(const uint8_t **p, const uint8_t *end, struct spop_str *name, unsigned *nargs)
{
	const uint8_t *q = *p;

	if (spop_str_get(&q, end, name) < 0 || q >= end)
		return -1;
	*nargs = *q++;
	*p = q;
	return 0;
}

int spop_action_get(const uint8_t **p, const uint8_t *end, uint8_t *action, uint8_t *scope,
                    struct spop_str *name, struct spop_data *val)
{
	const uint8_t *q = *p;

	if (end - q < 3)
		return -1;
	*action = q[0];
	*scope = q[2];
	if ((*action == SPOP_ACT_SET_VAR && q[1] != 3) || (*action == SPOP_ACT_UNSET_VAR && q[1] != 2) ||
	    (*action != SPOP_ACT_SET_VAR && *action != SPOP_ACT_UNSET_VAR))
		return -1;
	q += 3;
	if (spop_str_get(&q, end, name) < 0)
		return -1;
	val->type = SPOP_DATA_NULL;
	if (*action == SPOP_ACT_SET_VAR && spop_data_get(&q, end, val) < 0)
		return -1;
	*p = q;
	return 0;
}

static uint32_t get_u32be(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int spop_frame_get(const uint8_t *buf, size_t avail, uint32_t max_frame, struct spop_frame *f)
{
	const uint8_t *q, *end;
	uint32_t len;

	if (avail < 4)
		return 0;
	len = get_u32be(buf);
	if (len > max_frame)
		return -SPOP_ST_TOO_BIG;
	if (len < SPOP_FRAME_MIN)
		return -SPOP_ST_INVALID;
	if (len > avail - 4)
		return 0;
	q = buf + 4;
	end = q + len;
	f->type = q[0];
	f->flags = get_u32be(q + 1);
	q += 5;
	if (spop_varint_get(&q, end, &f->stream_id) < 0 || spop_varint_get(&q, end, &f->frame_id) < 0)
		return -SPOP_ST_INVALID;
	f->payload = q;
	f->len = (size_t)(end - q);
	return (int)(len + 4);
}

bool spop_list_has(const char *list, size_t len, const char *word)
{
	size_t wlen = strlen(word), i = 0;

	while (i < len) {
		size_t b, e;

		while (i < len && (list[i] == ' ' || list[i] == '\t'))
			i++;
		b = i;
		while (i < len && list[i] != ',')
			i++;
		e = i;
		while (e > b && (list[e - 1] == ' ' || list[e - 1] == '\t'))
			e--;
		if (e - b == wlen && memcmp(list + b, word, wlen) == 0)
			return true;
		i++; /* skip the comma */
	}
	return false;
}

static bool key_is(const struct spop_str *k, const char *name)
{
	size_t n = strlen(name);

	return k->len == n && memcmp(k->ptr, name, n) == 0;
}

static bool data_uint(const struct spop_data *d, uint64_t *out)
{
	switch (d->type) {
	case SPOP_DATA_UINT32:
	case SPOP_DATA_UINT64:
		*out = d->v.u;
		return true;
	case SPOP_DATA_INT32:
	case SPOP_DATA_INT64:
		if (d->v.i < 0)
			return false;
		*out = (uint64_t)d->v.i;
		return true;
	default:
		return false;
	}
}

/* HELLO checks follow SPOE.txt §3.2.5: each mandatory key missing has its own status;
 * a version list without "2.0" is 8; a max-frame-size below 256 is 9. Unknown keys are
 * ignored so that newer HAProxy versions can add some. */
int spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h)
{
	const uint8_t *p = payload, *end = payload + len;
	bool has_vsn = false, vsn_ok = false, has_mfs = false, has_caps = false;
	uint64_t mfs = 0;

	memset(h, 0, sizeof(*h));
	while (p < end) {
		struct spop_str k;
		struct spop_data d;

		if (spop_kv_get(&p, end, &k, &d) < 0)
			return SPOP_ST_INVALID;
		if (key_is(&k, "supported-versions")) {
			if (d.type != SPOP_DATA_STR)
				return SPOP_ST_INVALID;
			has_vsn = true;
			vsn_ok = spop_list_has(d.v.s.ptr, d.v.s.len, SPOP_VERSION);
		} else if (key_is(&k, "max-frame-size")) {
			if (!data_uint(&d, &mfs))
				return SPOP_ST_INVALID;
			has_mfs = true;
		} else if (key_is(&k, "capabilities")) {
			if (d.type != SPOP_DATA_STR)
				return SPOP_ST_INVALID;
			has_caps = true;
			h->pipelining = spop_list_has(d.v.s.ptr, d.v.s.len, "pipelining");
		} else if (key_is(&k, "healthcheck")) {
			if (d.type != SPOP_DATA_BOOL)
				return SPOP_ST_INVALID;
			h->healthcheck = d.v.b;
		} else if (key_is(&k, "engine-id")) {
			if (d.type == SPOP_DATA_STR)
				h->engine_id = d.v.s;
		}
	}
	if (!has_vsn)
		return SPOP_ST_NO_VSN;
	if (!vsn_ok)
		return SPOP_ST_BAD_VSN;
	if (!has_mfs)
		return SPOP_ST_NO_FRAME_SIZE;
	if (mfs < SPOP_FRAME_SIZE_MIN)
		return SPOP_ST_BAD_FRAME_SIZE;
	if (!has_caps)
		return SPOP_ST_NO_CAP;
	h->max_frame_size = mfs > UINT32_MAX ? UINT32_MAX : (uint32_t)mfs;
	return 0;
}

int spop_disconnect_parse(const uint8_t *payload, size_t len, uint32_t *status, struct spop_str *msg)
{
	const uint8_t *p = payload, *end = payload + len;

	*status = SPOP_ST_UNKNOWN;
	msg->ptr = "";
	msg->len = 0;
	while (p < end) {
		struct spop_str k;
		struct spop_data d;
		uint64_t u;

		if (spop_kv_get(&p, end, &k, &d) < 0)
			return -1;
		if (key_is(&k, "status-code") && data_uint(&d, &u))
			*status = u > UINT32_MAX ? SPOP_ST_UNKNOWN : (uint32_t)u;
		else if (key_is(&k, "message") && d.type == SPOP_DATA_STR)
			*msg = d.v.s;
	}
	return 0;
}

/* --- encoding ------------------------------------------------------------------ */

static inline bool wbuf_room(struct spop_wbuf *w, size_t n)
{
	if (w->overflow || n > (size_t)(w->end - w->p)) {
		w->overflow = true;
		return false;
	}
	return true;
}

size_t spop_varint_len(uint64_t v)
{
	size_t n = 1;

	if (v < 240)
		return 1;
	v = (v - 240) >> 4;
	while (v >= 128) {
		v = (v - 128) >> 7;
		n++;
	}
	return n + 1;
}

void spop_put_u8(struct spop_wbuf *w, uint8_t v)
{
	if (wbuf_room(w, 1))
		*w->p++ = v;
}

void spop_put_varint(struct spop_wbuf *w, uint64_t v)
{
	uint8_t *q;

	if (!wbuf_room(w, spop_varint_len(v)))
		return;
	q = w->p;
	if (v < 240) {
		*q++ = (uint8_t)v;
	} else {
		*q++ = (uint8_t)v | 0xf0;
		v = (v - 240) >> 4;
		while (v >= 128) {
			*q++ = (uint8_t)v | 0x80;
			v = (v - 128) >> 7;
		}
		*q++ = (uint8_t)v;
	}
	w->p = q;
}

void spop_put_str(struct spop_wbuf *w, const void *s, size_t len)
{
	if (!wbuf_room(w, spop_varint_len(len) + len))
		return;
	spop_put_varint(w, len);
	if (len)
		memcpy(w->p, s, len);
	w->p += len;
}

void spop_put_data_null(struct spop_wbuf *w)
{
	spop_put_u8(w, SPOP_DATA_NULL);
}

void spop_put_data_bool(struct spop_wbuf *w, bool b)
{
	spop_put_u8(w, SPOP_DATA_BOOL | (b ? SPOP_DATA_FL_TRUE : 0));
}

void spop_put_data_int(struct spop_wbuf *w, int64_t v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	if (!wbuf_room(w, 1 + spop_varint_len(u)))
		return;
	*w->p++ = SPOP_DATA_INT64;
	spop_put_varint(w, u);
}

void spop_put_data_uint32(struct spop_wbuf *w, uint32_t v)
{
	if (!wbuf_room(w, 1 + spop_varint_len(v)))
		return;
	*w->p++ = SPOP_DATA_UINT32;
	spop_put_varint(w, v);
}

void spop_put_data_str(struct spop_wbuf *w, const void *s, size_t len)
{
	if (!wbuf_room(w, 1 + spop_varint_len(len) + len))
		return;
	*w->p++ = SPOP_DATA_STR;
	spop_put_str(w, s, len);
}

void spop_put_data(struct spop_wbuf *w, const struct spop_data *d)
{
	uint64_t u;

	switch (d->type) {
	case SPOP_DATA_BOOL:
		spop_put_data_bool(w, d->v.b);
		return;
	case SPOP_DATA_INT32:
	case SPOP_DATA_INT64:
		memcpy(&u, &d->v.i, sizeof(u));
		if (d->type == SPOP_DATA_INT32)
			u = (uint32_t)(int32_t)d->v.i;
		break;
	case SPOP_DATA_UINT32:
	case SPOP_DATA_UINT64:
		u = d->v.u;
		break;
	case SPOP_DATA_IPV4:
	case SPOP_DATA_IPV6: {
		size_t n = d->type == SPOP_DATA_IPV4 ? 4 : 16;

		if (wbuf_room(w, 1 + n)) {
			*w->p++ = d->type;
			memcpy(w->p, d->v.ip, n);
			w->p += n;
		}
		return;
	}
	case SPOP_DATA_STR:
	case SPOP_DATA_BIN:
		if (wbuf_room(w, 1)) {
			*w->p++ = d->type;
			spop_put_str(w, d->v.s.ptr, d->v.s.len);
		}
		return;
	default:
		spop_put_data_null(w);
		return;
	}
	if (wbuf_room(w, 1 + spop_varint_len(u))) {
		*w->p++ = d->type;
		spop_put_varint(w, u);
	}
}

static void put_u32be(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

uint8_t *spop_frame_begin(struct spop_wbuf *w, uint8_t type, uint32_t flags,
                          uint64_t stream_id, uint64_t frame_id)
{
	uint8_t *start = w->p;

	if (!wbuf_room(w, 9))
		return start;
	w->p[4] = type;
	put_u32be(w->p + 5, flags);
	w->p += 9;
	spop_put_varint(w, stream_id);
	spop_put_varint(w, frame_id);
	return start;
}

size_t spop_frame_end(struct spop_wbuf *w, uint8_t *start, uint32_t max_frame)
{
	size_t len;

	if (w->overflow)
		return 0;
	len = (size_t)(w->p - start) - 4;
	if (len > max_frame)
		return 0;
	put_u32be(start, (uint32_t)len);
	return len + 4;
}

static void put_action_head(struct spop_wbuf *w, uint8_t action, uint8_t nargs, uint8_t scope,
                            const char *name, size_t nlen)
{
	if (!wbuf_room(w, 3))
		return;
	w->p[0] = action;
	w->p[1] = nargs;
	w->p[2] = scope;
	w->p += 3;
	spop_put_str(w, name, nlen);
}

void spop_put_set_var(struct spop_wbuf *w, uint8_t scope, const char *name, size_t nlen,
                      const struct spop_data *val)
{
	put_action_head(w, SPOP_ACT_SET_VAR, 3, scope, name, nlen);
	spop_put_data(w, val);
}

void spop_put_set_var_str(struct spop_wbuf *w, uint8_t scope, const char *name,
                          const void *val, size_t vlen)
{
	put_action_head(w, SPOP_ACT_SET_VAR, 3, scope, name, strlen(name));
	spop_put_data_str(w, val, vlen);
}

void spop_put_set_var_int(struct spop_wbuf *w, uint8_t scope, const char *name, int64_t v)
{
	put_action_head(w, SPOP_ACT_SET_VAR, 3, scope, name, strlen(name));
	spop_put_data_int(w, v);
}

void spop_put_unset_var(struct spop_wbuf *w, uint8_t scope, const char *name)
{
	put_action_head(w, SPOP_ACT_UNSET_VAR, 2, scope, name, strlen(name));
}

static void put_kv_str(struct spop_wbuf *w, const char *key, const char *val)
{
	spop_put_str(w, key, strlen(key));
	spop_put_data_str(w, val, strlen(val));
}

static void put_kv_uint32(struct spop_wbuf *w, const char *key, uint32_t val)
{
	spop_put_str(w, key, strlen(key));
	spop_put_data_uint32(w, val);
}

size_t spop_agent_hello(struct spop_wbuf *w, uint32_t max_frame)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_AGENT_HELLO, SPOP_FL_FIN, 0, 0);

	put_kv_str(w, "version", SPOP_VERSION);
	put_kv_uint32(w, "max-frame-size", max_frame);
	/* pipelining only: 3.1+ removed async and fragmentation (SPOP.md). */
	put_kv_str(w, "capabilities", "pipelining");
	return spop_frame_end(w, start, max_frame);
}

size_t spop_agent_disconnect(struct spop_wbuf *w, uint32_t status, const char *msg,
                             uint32_t max_frame)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_AGENT_DISCONNECT, SPOP_FL_FIN, 0, 0);

	put_kv_uint32(w, "status-code", status);
	put_kv_str(w, "message", msg);
	return spop_frame_end(w, start, max_frame);
}

size_t spop_haproxy_hello(struct spop_wbuf *w, const char *versions, uint32_t max_frame,
                          const char *caps, bool healthcheck, const char *engine_id)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_HAPROXY_HELLO, SPOP_FL_FIN, 0, 0);

	put_kv_str(w, "supported-versions", versions);
	put_kv_uint32(w, "max-frame-size", max_frame);
	put_kv_str(w, "capabilities", caps);
	if (healthcheck) {
		spop_put_str(w, "healthcheck", 11);
		spop_put_data_bool(w, true);
	}
	if (engine_id)
		put_kv_str(w, "engine-id", engine_id);
	return spop_frame_end(w, start, UINT32_MAX);
}

size_t spop_haproxy_disconnect(struct spop_wbuf *w, uint32_t status, const char *msg)
{
	uint8_t *start = spop_frame_begin(w, SPOP_FRM_HAPROXY_DISCONNECT, SPOP_FL_FIN, 0, 0);

	put_kv_uint32(w, "status-code", status);
	put_kv_str(w, "message", msg);
	return spop_frame_end(w, start, UINT32_MAX);
}

const char *spop_status_str(int status)
{
	switch (status) {
	case SPOP_ST_NORMAL:         return "normal";
	case SPOP_ST_IO:             return "I/O error";
	case SPOP_ST_TIMEOUT:        return "a timeout occurred";
	case SPOP_ST_TOO_BIG:        return "frame is too big";
	case SPOP_ST_INVALID:        return "invalid frame received";
	case SPOP_ST_NO_VSN:         return "version value not found";
	case SPOP_ST_NO_FRAME_SIZE:  return "max-frame-size value not found";
	case SPOP_ST_NO_CAP:         return "capabilities value not found";
	case SPOP_ST_BAD_VSN:        return "unsupported version";
	case SPOP_ST_BAD_FRAME_SIZE: return "max-frame-size too big or too small";
	case SPOP_ST_FRAG_NOT_SUP:   return "payload fragmentation is not supported";
	case SPOP_ST_INTERLACED:     return "invalid interlaced frames";
	case SPOP_ST_FRAMEID_NOTFND: return "frame-id not found";
	case SPOP_ST_RES:            return "resource allocation error";
	default:                     return "an unknown error occurred";
	}
}
