/* corpus-gen.c: writes the seed corpora of the SPOP fuzz targets from the same frames
 * the conformance tests send (tests/lib/spop-client.h). Not built by make; run:
 *   cc -D_GNU_SOURCE -Ispoa -Itests/lib -o /tmp/corpus-gen tests/fuzz/corpus-gen.c \
 *      tests/lib/spop-client.c spoa/spop.c
 *   /tmp/corpus-gen tests/fuzz/corpus
 * Seeds of fuzz-frame start with 3 bytes (chunking seed, largest chunk), those of
 * fuzz-notify with 1 byte (window size); fuzz-hello's are raw bytes. */
#include <sys/stat.h>

#include "spop-client.h"

static const char *root;

static void save(const char *dir, const char *name, const void *b, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static size_t put_payreq(uint8_t *b, size_t size, unsigned n, bool compact)
{
	struct spop_wbuf w = spop_wbuf_init(b, size);
	struct sc_payreq r;
	char id[32], idem[65];

	sc_payreq_sample(&r, n, id, idem);
	if (compact)
		r.idem = r.account = r.card_brand = r.card_funding = NULL;
	sc_put_pay_request(&w, &r);
	return (size_t)(w.p - b);
}

static size_t notify(uint8_t *b, size_t size, uint64_t sid, uint64_t fid, uint32_t flags,
                     const uint8_t *payload, size_t plen)
{
	struct spop_wbuf w = spop_wbuf_init(b, size);
	uint8_t *start = spop_frame_begin(&w, SPOP_FRM_NOTIFY, flags, sid, fid);

	if (plen <= (size_t)(w.end - w.p)) {
		memcpy(w.p, payload, plen);
		w.p += plen;
	}
	return spop_frame_end(&w, start, UINT32_MAX);
}

static size_t pay_response(uint8_t *b, size_t size)
{
	struct spop_wbuf w = spop_wbuf_init(b, size);

	spop_put_str(&w, "pay-response", 12);
	spop_put_u8(&w, 6);
	spop_put_str(&w, "id", 2); spop_put_data_str(&w, "req-00000001", 12);
	spop_put_str(&w, "decision", 8); spop_put_data_str(&w, "0000003ffff0001", 15);
	spop_put_str(&w, "backend", 7); spop_put_data_str(&w, "stripe_eu", 9);
	spop_put_str(&w, "status", 6); spop_put_data_int(&w, 402);
	spop_put_str(&w, "latency_ms", 10); spop_put_data_int(&w, 180);
	spop_put_str(&w, "decline", 7); spop_put_data_str(&w, "insufficient_funds", 18);
	return (size_t)(w.p - b);
}

static size_t every_type(uint8_t *b, size_t size)
{
	static const uint8_t ip[16] = { 10, 0, 0, 1 };
	struct spop_wbuf w = spop_wbuf_init(b, size);
	struct spop_data d;

	spop_put_str(&w, "pay-request", 11);
	spop_put_u8(&w, 10);
	for (uint8_t t = 0; t < 10; t++) {
		static const char *keys[] = { "id", "method", "path", "amount", "currency", "class",
		                              "account", "idem", "card_country", "x" };

		memset(&d, 0, sizeof(d));
		d.type = t;
		d.v.i = -2;
		if (t == SPOP_DATA_IPV4 || t == SPOP_DATA_IPV6)
			d.v.ip = ip;
		if (t == SPOP_DATA_STR || t == SPOP_DATA_BIN) {
			d.v.s.ptr = "2000";
			d.v.s.len = 4;
		}
		spop_put_str(&w, keys[t], strlen(keys[t]));
		spop_put_data(&w, &d);
	}
	return (size_t)(w.p - b);
}

int main(int argc, char **argv)
{
	static uint8_t b[65536], p[4096];
	struct spop_wbuf w;
	size_t n, pl;

	if (argc != 2) {
		fprintf(stderr, "usage: corpus-gen DIR\n");
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);

	/* --- frame: 3 prefix bytes, then a stream ---------------------------------- */
	{
		static const struct { const char *name; uint8_t chunk; uint32_t mfs; int kind; } s[] = {
			{ "session-big-chunks", 200, 16380, 0 }, { "session-bytewise", 0, 16380, 0 },
			{ "session-256", 150, 256, 1 }, { "healthcheck", 200, 16380, 2 },
			{ "abort-nofin", 140, 16380, 3 }, { "every-type", 180, 16380, 4 },
			{ "max-ids", 130, 16380, 5 }, { "pipeline-3x", 210, 16380, 6 },
			{ "pay-response", 160, 16380, 7 }, { "hello-no-caps", 200, 16380, 8 },
		};
		for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
			b[0] = (uint8_t)(i * 37);
			b[1] = (uint8_t)(i * 91 + 1);
			b[2] = s[i].chunk;
			n = 3;
			w = spop_wbuf_init(b + n, sizeof(b) - n);
			if (s[i].kind == 8) {
				struct sc_hello_opts o = { "2.0", s[i].mfs, NULL, false, NULL, false };

				n += sc_hello_custom(&w, &o);
			} else {
				n += spop_haproxy_hello(&w, "2.0", s[i].mfs, s[i].kind == 2 ? "" : "pipelining,async",
				                        s[i].kind == 2, s[i].kind == 2 ? NULL : "eng");
			}
			switch (s[i].kind) {
			case 0:
				for (unsigned k = 0; k < 3; k++) {
					pl = put_payreq(p, sizeof(p), k, false);
					n += notify(b + n, sizeof(b) - n, 1000 + k, k, SPOP_FL_FIN, p, pl);
				}
				break;
			case 1:
				pl = put_payreq(p, sizeof(p), 1, true);
				n += notify(b + n, sizeof(b) - n, 1, 1, SPOP_FL_FIN, p, pl);
				pl = 0;
				for (int k = 0; k < 8; k++) {
					w = spop_wbuf_init(p + pl, sizeof(p) - pl);
					spop_put_str(&w, "pay-request", 11);
					spop_put_u8(&w, 0);
					pl = (size_t)(w.p - p);
				}
				n += notify(b + n, sizeof(b) - n, 3, 1, SPOP_FL_FIN, p, pl);
				break;
			case 3:
				pl = put_payreq(p, sizeof(p), 2, false);
				n += notify(b + n, sizeof(b) - n, 5, 1, SPOP_FL_FIN | SPOP_FL_ABORT, p, pl);
				n += notify(b + n, sizeof(b) - n, 7, 1, SPOP_FL_FIN, p, pl);
				n += notify(b + n, sizeof(b) - n, 9, 1, 0, p, pl);
				break;
			case 4:
				pl = every_type(p, sizeof(p));
				n += notify(b + n, sizeof(b) - n, 1, 1, SPOP_FL_FIN, p, pl);
				break;
			case 5:
				pl = put_payreq(p, sizeof(p), 3, false);
				n += notify(b + n, sizeof(b) - n, UINT64_MAX, UINT64_MAX, SPOP_FL_FIN, p, pl);
				n += notify(b + n, sizeof(b) - n, 2288, 240, SPOP_FL_FIN, p, pl);
				break;
			case 6:
				for (unsigned k = 0; k < 20; k++) {
					pl = put_payreq(p, sizeof(p), k, false);
					n += notify(b + n, sizeof(b) - n, 2 * k + 1, 1, SPOP_FL_FIN, p, pl);
				}
				break;
			case 7:
				pl = pay_response(p, sizeof(p));
				n += notify(b + n, sizeof(b) - n, 1, 1, SPOP_FL_FIN, p, pl);
				n += notify(b + n, sizeof(b) - n, 3, 1, SPOP_FL_FIN, p, 0);
				break;
			default:
				break;
			}
			if (s[i].kind == 0 || s[i].kind == 7) {
				w = spop_wbuf_init(b + n, sizeof(b) - n);
				n += spop_haproxy_disconnect(&w, 0, "bye");
			}
			save("frame", s[i].name, b, n);
		}
	}

	/* --- notify: 1 window byte, then a payload --------------------------------- */
	b[0] = 200; n = 1 + put_payreq(b + 1, sizeof(b) - 1, 0, false); save("notify", "payreq", b, n);
	b[0] = 10;  n = 1 + put_payreq(b + 1, sizeof(b) - 1, 1, true); save("notify", "payreq-256", b, n);
	b[0] = 255; n = 1 + pay_response(b + 1, sizeof(b) - 1); save("notify", "payresp", b, n);
	b[0] = 200; n = 1 + every_type(b + 1, sizeof(b) - 1); save("notify", "every-type", b, n);
	b[0] = 200; save("notify", "empty", b, 1);
	b[0] = 5;
	n = 1;
	for (int k = 0; k < 8; k++) {
		w = spop_wbuf_init(b + n, sizeof(b) - n);
		spop_put_str(&w, "pay-request", 11);
		spop_put_u8(&w, 1);
		spop_put_str(&w, "class", 5);
		spop_put_data_str(&w, "batch", 5);
		n = (size_t)(w.p - b);
	}
	save("notify", "eight-requests-256", b, n);
	b[0] = 220;
	w = spop_wbuf_init(b + 1, sizeof(b) - 1);
	spop_put_str(&w, "other", 5);
	spop_put_u8(&w, 255);
	for (int k = 0; k < 255; k++) {
		spop_put_str(&w, "", 0);
		spop_put_data_int(&w, -k);
	}
	save("notify", "unknown-255-args", b, (size_t)(w.p - b));

	/* --- hello: raw KV lists, varints, typed data, lists ----------------------- */
	w = spop_wbuf_init(b, sizeof(b));
	n = spop_haproxy_hello(&w, " 2.0 , 1.5", 16380, "pipelining, async", true, "e");
	save("hello", "hello", b + 9 + 2, n - 11); /* the KV list after the header */
	w = spop_wbuf_init(b, sizeof(b));
	n = spop_haproxy_disconnect(&w, 3, "frame is too big");
	save("hello", "disconnect", b + 11, n - 11);
	{
		static const uint64_t v[] = { 239, 240, 2287, 2288, 16380, 0xffffffffull, UINT64_MAX };

		w = spop_wbuf_init(b, sizeof(b));
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			spop_put_varint(&w, v[i]);
		save("hello", "varints", b, (size_t)(w.p - b));
	}
	pl = every_type(p, sizeof(p));
	save("hello", "typed", p + 13, pl - 13);
	save("hello", "list", "1.0, 2.0 ,pipelining,\tasync", 27);
	return 0;
}
