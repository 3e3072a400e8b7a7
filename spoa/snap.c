/* snap.c: the snapshot file (snap.h): msgpack-c encoding of the engine's records, atomic
 * write, bounded and all-or-nothing load. Runs on the control thread or a snapshot
 * thread of its own, never on a worker. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap.h"

#define SNAP_WBUF      (256 * 1024)
#define SNAP_PIN_CHUNK 4096  /* pins per "p" array */
#define SNAP_SRT_CHUNK 4096  /* posterior entries per "s" array */
#define SNAP_MAX_BACKENDS 128

static uint64_t snap_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define SNAP_FNV0 0xcbf29ce484222325ULL

/* ---- writing ----------------------------------------------------------------------------- */

struct snap_out {
	int fd;
	int err;            /* errno of the first failed write */
	uint64_t hash, bytes;
	size_t n;
	char buf[SNAP_WBUF];
};

static void snap_flush(struct snap_out *o)
{
	size_t off = 0;

	while (off < o->n && !o->err) {
		ssize_t w = write(o->fd, o->buf + off, o->n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = w < 0 ? errno : EIO;
		else
			off += (size_t)w;
	}
	o->n = 0;
}

static int snap_put(void *data, const char *p, size_t len)
{
	struct snap_out *o = data;

	o->hash = snap_fnv(o->hash, p, len);
	o->bytes += len;
	while (len) {
		size_t k = SNAP_WBUF - o->n < len ? SNAP_WBUF - o->n : len;

		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		len -= k;
		if (o->n == SNAP_WBUF)
			snap_flush(o);
	}
	return o->err ? -1 : 0;
}

static void snap_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* Pins are gathered per kind in chunks: the backends of the capture are known, so a pin
 * names its backend by index into the header's list. */
struct snap_pins {
	msgpack_packer *pk;
	const char *names[SNAP_MAX_BACKENDS];
	const char *accts[SNAP_MAX_BACKENDS];
	unsigned nnames;
	int kind;
	unsigned n;
	uint64_t total;
	struct { uint8_t b; uint64_t key; uint32_t age; } chunk[SNAP_PIN_CHUNK];
};

static void snap_pins_flush(struct snap_pins *sp)
{
	unsigned i;

	if (!sp->n)
		return;
	msgpack_pack_array(sp->pk, 2 + 3 * sp->n);
	snap_str(sp->pk, "p");
	msgpack_pack_uint8(sp->pk, (uint8_t)sp->kind);
	for (i = 0; i < sp->n; i++) {
		msgpack_pack_uint8(sp->pk, sp->chunk[i].b);
		msgpack_pack_uint64(sp->pk, sp->chunk[i].key);
		msgpack_pack_uint32(sp->pk, sp->chunk[i].age);
	}
	sp->total += sp->n;
	sp->n = 0;
}

static unsigned snap_name_index(struct snap_pins *sp, const char *name, const char *acct)
{
	unsigned i;

	for (i = 0; i < sp->nnames; i++)
		if (sp->names[i] == name || strcmp(sp->names[i], name) == 0)
			return i;
	if (sp->nnames == SNAP_MAX_BACKENDS)
		return SNAP_MAX_BACKENDS;
	sp->names[sp->nnames] = name;
	sp->accts[sp->nnames] = acct;
	return sp->nnames++;
}

static int snap_pin_cb(void *arg, const struct pol_pin_rec *r)
{
	struct snap_pins *sp = arg;
	unsigned b = snap_name_index(sp, r->backend, r->account);

	if (b >= SNAP_MAX_BACKENDS)
		return 0;
	if (r->kind != sp->kind || sp->n == SNAP_PIN_CHUNK) {
		snap_pins_flush(sp);
		sp->kind = r->kind;
	}
	sp->chunk[sp->n].b = (uint8_t)b;
	sp->chunk[sp->n].key = r->key;
	sp->chunk[sp->n].age = r->age_s;
	sp->n++;
	return 0;
}

/* Backends are listed before the pins that refer to them: a first pass collects the
 * names (every backend of the capture appears in its learned records). */
static int snap_name_cb(void *arg, const struct pol_pin_rec *r)
{
	snap_name_index(arg, r->backend, r->account);
	return 0;
}

static int snap_fsync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = -1;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

int snap_write(const struct pol_state *st, uint64_t wall_us, const char *path, struct snap_result *res,
               char *err, size_t errlen)
{
	struct snap_out *o = NULL;
	struct snap_pins *sp = NULL;
	msgpack_packer pk;
	char tmp[4096];
	size_t i, j, n;
	uint64_t sum;

	memset(res, 0, sizeof(*res));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	o = malloc(sizeof(*o));
	sp = calloc(1, sizeof(*sp));
	if (!o || !sp) {
		snprintf(err, errlen, "out of memory");
		goto fail_mem;
	}
	o->err = 0;
	o->hash = SNAP_FNV0;
	o->bytes = 0;
	o->n = 0;
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o->fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail_mem;
	}
	msgpack_packer_init(&pk, o, snap_put);
	sp->pk = &pk;
	sp->kind = -1;
	msgpack_pack_array(&pk, 5);
	snap_str(&pk, SNAP_MAGIC);
	msgpack_pack_uint32(&pk, SNAP_VERSION);
	msgpack_pack_uint64(&pk, wall_us);
	msgpack_pack_uint64(&pk, pol_state_now_us(st));
	msgpack_pack_uint64(&pk, pol_state_fingerprint(st));
	/* the backend list first: pins name their backend by index into it */
	pol_state_foreach_pin(st, snap_name_cb, sp);
	msgpack_pack_array(&pk, sp->nnames);
	for (i = 0; i < sp->nnames; i++) {
		msgpack_pack_array(&pk, 2);
		snap_str(&pk, sp->names[i]);
		snap_str(&pk, sp->accts[i]);
	}
	pol_state_foreach_pin(st, snap_pin_cb, sp);
	snap_pins_flush(sp);
	n = pol_state_nrecs(st);
	for (i = 0; i < n; i++) {
		const struct pol_rec *r = pol_state_rec(st, i);

		msgpack_pack_array(&pk, 5);
		snap_str(&pk, "r");
		msgpack_pack_uint8(&pk, r->kind);
		snap_str(&pk, r->name);
		snap_str(&pk, r->name2);
		msgpack_pack_bin(&pk, r->len);
		msgpack_pack_bin_body(&pk, r->val, r->len);
	}
	n = pol_state_nsrt(st);
	for (i = 0; i < n; i += SNAP_SRT_CHUNK) {
		size_t k = n - i < SNAP_SRT_CHUNK ? n - i : SNAP_SRT_CHUNK;

		msgpack_pack_array(&pk, 1 + 4 * k);
		snap_str(&pk, "s");
		for (j = i; j < i + k; j++) {
			const struct srt_entry *e = pol_state_srt(st, j);

			msgpack_pack_uint64(&pk, e->key);
			msgpack_pack_uint64(&pk, e->t_us);
			msgpack_pack_double(&pk, e->s);
			msgpack_pack_double(&pk, e->f);
		}
	}
	sum = o->hash;
	msgpack_pack_array(&pk, 5);
	snap_str(&pk, "e");
	msgpack_pack_uint64(&pk, sp->total);
	msgpack_pack_uint64(&pk, pol_state_nrecs(st));
	msgpack_pack_uint64(&pk, n);
	msgpack_pack_uint64(&pk, sum);
	snap_flush(o);
	if (o->err) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(o->err));
		goto fail;
	}
	if (fsync(o->fd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(o->fd) < 0) {
		o->fd = -1;
		snprintf(err, errlen, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	o->fd = -1;
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (snap_fsync_dir(path) < 0) {
		snprintf(err, errlen, "fsync of the directory of %s: %s", path, strerror(errno));
		goto fail_mem; /* renamed: the file is whole, its name may not be durable yet */
	}
	res->pins = sp->total;
	res->recs = pol_state_nrecs(st);
	res->srt = n;
	res->bytes = o->bytes;
	free(sp);
	free(o);
	return 0;
fail:
	if (o->fd >= 0)
		close(o->fd);
	unlink(tmp);
fail_mem:
	free(sp);
	free(o);
	return -1;
}

/* ---- reading ----------------------------------------------------------------------------
 * Never trust a length: before msgpack-c unpacks a top-level object, snap_bound walks its
 * headers and checks that every container count and every string length fits in the
 * bytes that remain (an element takes at least one byte), so the unpacker's allocation
 * is bounded by a small multiple of the object's size, itself at most SNAP_MAX_OBJ. */

static int snap_be(const uint8_t *p, unsigned w, uint64_t *v)
{
	*v = 0;
	for (unsigned i = 0; i < w; i++)
		*v = *v << 8 | p[i];
	return 0;
}

/* The size of the top-level object at buf[0..len), or -1 when it is malformed, larger
 * than SNAP_MAX_OBJ or claims more than len holds. */
static long snap_bound(const uint8_t *buf, size_t len)
{
	size_t off = 0, pending = 1, lim = len < SNAP_MAX_OBJ ? len : SNAP_MAX_OBJ;

	while (pending) {
		uint8_t c;
		uint64_t n = 0, skip = 0, items = 0;

		if (off >= lim)
			return -1;
		c = buf[off++];
		pending--;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
			continue;
		} else if (c >= 0x80 && c <= 0x8f) {
			items = 2ULL * (c & 0x0f);
		} else if (c >= 0x90 && c <= 0x9f) {
			items = c & 0x0f;
		} else if (c >= 0xa0 && c <= 0xbf) {
			skip = c & 0x1f;
		} else {
			static const struct { uint8_t code, w, kind; } t[] = {
				/* kind: 0 fixed size w, 1 w-byte length of bytes, 2 ext (length + type),
				 * 3 array count, 4 map count */
				{ 0xc4, 1, 1 }, { 0xc5, 2, 1 }, { 0xc6, 4, 1 }, { 0xc7, 1, 2 }, { 0xc8, 2, 2 },
				{ 0xc9, 4, 2 }, { 0xca, 4, 0 }, { 0xcb, 8, 0 }, { 0xcc, 1, 0 }, { 0xcd, 2, 0 },
				{ 0xce, 4, 0 }, { 0xcf, 8, 0 }, { 0xd0, 1, 0 }, { 0xd1, 2, 0 }, { 0xd2, 4, 0 },
				{ 0xd3, 8, 0 }, { 0xd4, 2, 0 }, { 0xd5, 3, 0 }, { 0xd6, 5, 0 }, { 0xd7, 9, 0 },
				{ 0xd8, 17, 0 }, { 0xd9, 1, 1 }, { 0xda, 2, 1 }, { 0xdb, 4, 1 }, { 0xdc, 2, 3 },
				{ 0xdd, 4, 3 }, { 0xde, 2, 4 }, { 0xdf, 4, 4 },
			};
			unsigned i;

			for (i = 0; i < sizeof(t) / sizeof(t[0]) && t[i].code != c; i++)
				;
			if (i == sizeof(t) / sizeof(t[0]) || lim - off < t[i].w)
				return -1; /* 0xc1, or a header cut short */
			if (t[i].kind == 0) {
				skip = t[i].w;
			} else {
				snap_be(buf + off, t[i].w, &n);
				off += t[i].w;
				if (t[i].kind == 1)
					skip = n;
				else if (t[i].kind == 2)
					skip = n + 1;
				else
					items = t[i].kind == 3 ? n : 2 * n;
			}
		}
		if (skip > lim - off || items > lim - off)
			return -1;
		off += skip;
		pending += items;
	}
	return (long)off;
}

static bool snap_is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

static bool snap_u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

static bool snap_num(const msgpack_object *o, double *v)
{
	if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
		*v = o->via.f64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*v = (double)o->via.u64;
	else
		return false;
	return true;
}

/* A name into buf (NUL-terminated), or false when it is not a string that fits. */
static bool snap_name(const msgpack_object *o, char *buf, size_t size)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size || memchr(o->via.str.ptr, 0, o->via.str.size))
		return false;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = 0;
	return true;
}

struct snap_rd {
	struct pol_engine *e;
	bool import;            /* pass 2: restore; pass 1 only checks */
	bool learned;
	struct pol_state_import *im;
	char names[SNAP_MAX_BACKENDS][POL_REC_NAME];
	char accts[SNAP_MAX_BACKENDS][POL_REC_NAME];
	unsigned nnames;
	uint64_t pins, recs, srt;
};

/* One body object (after the header and the backend list): 1 = the end object, 0 =
 * another, -1 = malformed. */
static int snap_object(struct snap_rd *rd, const msgpack_object *o, uint64_t sum, char *err, size_t errlen)
{
	const msgpack_object *a;
	uint32_t n, i;
	uint64_t v[4];

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1) {
		snprintf(err, errlen, "corrupt: an entry is not a tagged array");
		return -1;
	}
	a = o->via.array.ptr;
	n = o->via.array.size;
	if (snap_is_str(&a[0], "p")) {
		uint64_t kind;

		if (n < 2 || (n - 2) % 3 || !snap_u64(&a[1], &kind) || kind >= POL_PIN_TABLES)
			goto bad;
		for (i = 2; i < n; i += 3) {
			struct pol_pin_rec r;

			if (!snap_u64(&a[i], &v[0]) || v[0] >= rd->nnames || !snap_u64(&a[i + 1], &v[1]) ||
			    !snap_u64(&a[i + 2], &v[2]) || v[2] > UINT32_MAX)
				goto bad;
			rd->pins++;
			if (!rd->import)
				continue;
			r = (struct pol_pin_rec){ (uint8_t)kind, rd->names[v[0]], rd->accts[v[0]], v[1], (uint32_t)v[2] };
			pol_state_restore_pin(rd->im, &r);
		}
		return 0;
	}
	if (snap_is_str(&a[0], "r")) {
		struct pol_rec r;

		memset(&r, 0, sizeof(r));
		if (n != 5 || !snap_u64(&a[1], &v[0]) || v[0] >= 256 || !snap_name(&a[2], r.name, sizeof(r.name)) ||
		    !snap_name(&a[3], r.name2, sizeof(r.name2)) || a[4].type != MSGPACK_OBJECT_BIN)
			goto bad;
		rd->recs++;
		r.kind = (uint8_t)v[0];
		r.len = a[4].via.bin.size;
		r.val = a[4].via.bin.ptr;
		if (rd->import)
			pol_state_restore_rec(rd->im, &r);
		return 0;
	}
	if (snap_is_str(&a[0], "s")) {
		if ((n - 1) % 4)
			goto bad;
		for (i = 1; i < n; i += 4) {
			struct srt_entry e;

			if (!snap_u64(&a[i], &e.key) || !snap_u64(&a[i + 1], &e.t_us) || !snap_num(&a[i + 2], &e.s) ||
			    !snap_num(&a[i + 3], &e.f))
				goto bad;
			rd->srt++;
			if (rd->import)
				pol_state_restore_srt(rd->im, &e);
		}
		return 0;
	}
	if (snap_is_str(&a[0], "e")) {
		if (n != 5 || !snap_u64(&a[1], &v[0]) || !snap_u64(&a[2], &v[1]) || !snap_u64(&a[3], &v[2]) ||
		    !snap_u64(&a[4], &v[3]))
			goto bad;
		if (v[0] != rd->pins || v[1] != rd->recs || v[2] != rd->srt) {
			snprintf(err, errlen, "corrupt: the end counts %llu pins, %llu records, %llu entries; "
			         "the file holds %llu, %llu, %llu", (unsigned long long)v[0], (unsigned long long)v[1],
			         (unsigned long long)v[2], (unsigned long long)rd->pins, (unsigned long long)rd->recs,
			         (unsigned long long)rd->srt);
			return -1;
		}
		/* Fuzz builds accept any checksum, so the fuzzer reaches what lies behind it
		 * (the records' checks) instead of stopping at the first changed byte. */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		if (v[3] != sum) {
			snprintf(err, errlen, "corrupt: checksum mismatch");
			return -1;
		}
#else
		(void)sum;
#endif
		return 1;
	}
bad:
	snprintf(err, errlen, "corrupt: a malformed entry");
	return -1;
}

/* One pass over the file: pass 1 checks everything (nothing is imported), pass 2
 * imports what pass 1 accepted. */
static int snap_pass(struct snap_rd *rd, const uint8_t *buf, size_t len, uint64_t *hdr, char *err, size_t errlen)
{
	msgpack_unpacked u;
	size_t off = 0, at;
	uint64_t sum = SNAP_FNV0; /* of every byte before the object at `at` */
	int idx = 0, rc = -1, r;

	msgpack_unpacked_init(&u);
	rd->pins = rd->recs = rd->srt = 0;
	for (;;) {
		long sz;
		size_t end;

		at = off;
		if (off == len) {
			snprintf(err, errlen, "truncated: no end marker after %zu bytes", len);
			break;
		}
		sz = snap_bound(buf + off, len - off);
		if (sz < 0) {
			snprintf(err, errlen, idx ? "truncated or corrupt at byte %zu" : "not a snapshot (no msgpack header)",
			         off);
			break;
		}
		end = off + (size_t)sz;
		if (msgpack_unpack_next(&u, (const char *)buf, end, &off) != MSGPACK_UNPACK_SUCCESS || off != end) {
			snprintf(err, errlen, "corrupt at byte %zu", at);
			break;
		}
		if (idx == 0) {
			const msgpack_object *a = u.data.via.array.ptr;

			if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 5 || !snap_is_str(&a[0], SNAP_MAGIC)) {
				snprintf(err, errlen, "foreign file (no %s header)", SNAP_MAGIC);
				break;
			}
			if (!snap_u64(&a[1], &hdr[0]) || !snap_u64(&a[2], &hdr[1]) || !snap_u64(&a[3], &hdr[2]) ||
			    !snap_u64(&a[4], &hdr[3])) {
				snprintf(err, errlen, "corrupt header");
				break;
			}
			if (hdr[0] != SNAP_VERSION) {
				snprintf(err, errlen, "format version %llu, this binary reads %u",
				         (unsigned long long)hdr[0], SNAP_VERSION);
				break;
			}
		} else if (idx == 1) {
			const msgpack_object *a = u.data.via.array.ptr;
			uint32_t i;

			if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size > SNAP_MAX_BACKENDS) {
				snprintf(err, errlen, "corrupt backend list");
				break;
			}
			for (i = 0; i < u.data.via.array.size; i++) {
				const msgpack_object *b = a[i].via.array.ptr;

				if (a[i].type != MSGPACK_OBJECT_ARRAY || a[i].via.array.size != 2 ||
				    !snap_name(&b[0], rd->names[i], POL_REC_NAME) || !snap_name(&b[1], rd->accts[i], POL_REC_NAME))
					break;
			}
			if (i < u.data.via.array.size) {
				snprintf(err, errlen, "corrupt backend list");
				break;
			}
			rd->nnames = i;
		} else {
			r = snap_object(rd, &u.data, sum, err, errlen);
			if (r < 0)
				break;
			if (r == 1) {
				rc = off == len ? 0 : -1;
				if (rc)
					snprintf(err, errlen, "corrupt: %zu bytes after the end marker", len - off);
				break;
			}
		}
		sum = snap_fnv(sum, buf + at, off - at);
		idx++;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

int snap_load_buf(struct pol_engine *e, const uint8_t *buf, size_t len, uint64_t now_us, uint64_t wall_us,
                  struct snap_result *res, char *err, size_t errlen)
{
	struct snap_rd *rd = calloc(1, sizeof(*rd));
	uint64_t hdr[4];
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (!rd) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rd->e = e;
	if (snap_pass(rd, buf, len, hdr, err, errlen) == 0) {
		res->learned = hdr[3] == pol_state_engine_fingerprint(e);
		pol_state_import_begin(&res->im, e, now_us, hdr[2], wall_us > hdr[1] ? wall_us - hdr[1] : 0, res->learned);
		rd->import = true;
		rd->im = &res->im;
		rc = snap_pass(rd, buf, len, hdr, err, errlen);
		pol_state_import_end(&res->im);
		res->pins = rd->pins;
		res->recs = rd->recs;
		res->srt = rd->srt;
		res->bytes = len;
	}
	free(rd);
	return rc;
}

int snap_load(struct pol_engine *e, const char *path, uint64_t now_us, uint64_t wall_us,
              struct snap_result *res, char *err, size_t errlen)
{
	struct stat sb;
	uint8_t *buf;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	memset(res, 0, sizeof(*res));
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SNAP_MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file of at most %llu bytes", path,
		         (unsigned long long)SNAP_MAX_FILE);
		close(fd);
		return -1;
	}
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory for %lld bytes", (long long)sb.st_size);
		close(fd);
		return -1;
	}
	while (off < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)sb.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	rc = snap_load_buf(e, buf, off, now_us, wall_us, res, err, errlen);
	free(buf);
	return rc;
}
