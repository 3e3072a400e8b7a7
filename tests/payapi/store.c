/* store.c: the emulated payment API's memory: a seeded random generator, Stripe-like ids,
 * the objects an instance created (a ring with a chained hash, oldest forgotten first)
 * and the idempotency keys it saw (a ring too). Allocates only at start-up, and for the
 * bodies kept for replay. */
#include <stdlib.h>
#include <string.h>

#include "payapi.h"

const struct pa_type_info pa_types[PA_TYPE_N] = {
	[PA_PI]   = { "pi_",   "payment_intent", "payment_intents" },
	[PA_CH]   = { "ch_",   "charge",         "charges" },
	[PA_RE]   = { "re_",   "refund",         "refunds" },
	[PA_CUS]  = { "cus_",  "customer",       "customers" },
	[PA_SUB]  = { "sub_",  "subscription",   "subscriptions" },
	[PA_SETI] = { "seti_", "setup_intent",   "setup_intents" },
};

const char *const pa_status_names[] = {
	"requires_payment_method", "requires_confirmation", "requires_capture",
	"succeeded", "canceled", "failed", "active", "deleted",
};

static uint64_t pa_rng_state;

/* splitmix64: a bijection on 64-bit integers, so distinct inputs give distinct ids. */
static uint64_t pa_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t pa_rand64(void)
{
	pa_rng_state += 0x9e3779b97f4a7c15ULL;
	return pa_mix64(pa_rng_state);
}

/* Uniform in [0, 1). */
double pa_rand01(void)
{
	return (double)(pa_rand64() >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t pa_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

void pa_rand_seed(uint64_t seed)
{
	pa_rng_state = seed;
}

int pa_store_init(uint32_t obj_cap)
{
	pa.obj_cap = obj_cap;
	for (pa.obj_nbucket = 16; pa.obj_nbucket < pa.obj_cap * 2; pa.obj_nbucket <<= 1)
		;
	pa.objs = calloc(pa.obj_cap, sizeof(*pa.objs));
	pa.obj_bucket = calloc(pa.obj_nbucket, sizeof(*pa.obj_bucket));
	pa.idem = calloc(PA_IDEM_CAP, sizeof(*pa.idem));
	return pa.objs && pa.obj_bucket && pa.idem ? 0 : -1;
}

void pa_store_free(void)
{
	uint32_t i;

	for (i = 0; pa.idem && i < PA_IDEM_CAP; i++)
		free(pa.idem[i].body);
	free(pa.idem);
	free(pa.objs);
	free(pa.obj_bucket);
	pa.idem = NULL;
	pa.objs = NULL;
	pa.obj_bucket = NULL;
}

void pa_make_id(char *out, const char *prefix)
{
	static const char b62[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	uint64_t a = pa_mix64(pa.id_tag ^ ++pa.id_counter), b = pa_mix64(a);
	size_t p = strlen(prefix), i;

	memcpy(out, prefix, p);
	/* the even positions encode all of a (11 base-62 digits, distinct per counter), the
	 * odd ones are decoration */
	for (i = 0; i < PA_ID_LEN; i++) {
		if (i % 2 == 0 && i < 22) {
			out[p + i] = b62[a % 62];
			a /= 62;
		} else {
			out[p + i] = b62[b % 62];
			b = pa_mix64(b);
		}
	}
	out[p + PA_ID_LEN] = '\0';
}

static uint32_t pa_obj_hash(const char *id, size_t n)
{
	return (uint32_t)pa_fnv(PA_FNV_BASIS, id, n) & (pa.obj_nbucket - 1);
}

static void pa_obj_unlink(uint32_t slot)
{
	struct pa_obj *o = &pa.objs[slot];
	uint32_t *pp = &pa.obj_bucket[pa_obj_hash(o->id, strlen(o->id))];

	while (*pp) {
		if (*pp == slot + 1) {
			*pp = o->next;
			break;
		}
		pp = &pa.objs[*pp - 1].next;
	}
	o->flags = 0;
}

/* Looks up an object by id; it must also belong to the account. */
struct pa_obj *pa_obj_find(const char *id, size_t n, uint64_t acct)
{
	uint32_t i = pa.obj_bucket[pa_obj_hash(id, n)];

	while (i) {
		struct pa_obj *o = &pa.objs[i - 1];

		if (pa_eq(id, n, o->id))
			return o->acct == acct ? o : NULL;
		i = o->next;
	}
	return NULL;
}

/* Creates an object, evicting the oldest when the ring is full, but never `keep` (the
 * object the caller is working on). Never fails. */
struct pa_obj *pa_obj_new(enum pa_type type, uint64_t acct, const struct pa_obj *keep)
{
	uint32_t slot = (uint32_t)(pa.obj_seq++ % pa.obj_cap), h;
	struct pa_obj *o;

	if (keep && &pa.objs[slot] == keep)
		slot = (uint32_t)(pa.obj_seq++ % pa.obj_cap);
	o = &pa.objs[slot];
	if (o->flags & PA_OBJ_LIVE)
		pa_obj_unlink(slot);
	memset(o, 0, sizeof(*o));
	pa_make_id(o->id, pa_types[type].prefix);
	o->type = (uint8_t)type;
	o->acct = acct;
	o->flags = PA_OBJ_LIVE;
	o->created = (int64_t)ev_now(pa.loop);
	h = pa_obj_hash(o->id, strlen(o->id));
	o->next = pa.obj_bucket[h];
	pa.obj_bucket[h] = slot + 1;
	pa.st.objects++;
	return o;
}

static struct {
	char key[PA_KEYLOG_CAP][PA_KEYLOG_LEN];
	uint8_t len[PA_KEYLOG_CAP];
	uint64_t seq;                 /* keys ever added; next slot = seq % cap */
} pa_keylog;

void pa_keylog_add(const char *key, size_t n)
{
	size_t slot = (size_t)(pa_keylog.seq++ % PA_KEYLOG_CAP);

	if (n > PA_KEYLOG_LEN)
		n = PA_KEYLOG_LEN;
	memcpy(pa_keylog.key[slot], key, n);
	pa_keylog.len[slot] = (uint8_t)n;
}

size_t pa_keylog_count(void)
{
	return pa_keylog.seq < PA_KEYLOG_CAP ? (size_t)pa_keylog.seq : PA_KEYLOG_CAP;
}

const char *pa_keylog_get(size_t i, size_t *n)
{
	size_t slot = (size_t)((pa_keylog.seq - pa_keylog_count() + i) % PA_KEYLOG_CAP);

	*n = pa_keylog.len[slot];
	return pa_keylog.key[slot];
}

struct pa_idem *pa_idem_find(uint64_t k1, uint64_t k2)
{
	uint32_t i = pa.idem_bucket[k1 & (PA_IDEM_CAP * 2 - 1)];

	while (i) {
		struct pa_idem *e = &pa.idem[i - 1];

		if (e->k1 == k1 && e->k2 == k2)
			return e;
		i = e->next;
	}
	return NULL;
}

void pa_idem_store(uint64_t k1, uint64_t k2, uint64_t req, unsigned status,
                   uint8_t should_retry, const char *body, size_t len)
{
	uint32_t slot = (uint32_t)(pa.idem_seq++ % PA_IDEM_CAP);
	struct pa_idem *e = &pa.idem[slot];
	uint32_t *pp;
	char *copy;

	if (len > PA_IDEM_BODY || !(copy = malloc(len ? len : 1)))
		return;
	if (e->live) {
		pp = &pa.idem_bucket[e->k1 & (PA_IDEM_CAP * 2 - 1)];
		while (*pp) {
			if (*pp == slot + 1) {
				*pp = e->next;
				break;
			}
			pp = &pa.idem[*pp - 1].next;
		}
		free(e->body);
	}
	memcpy(copy, body, len);
	*e = (struct pa_idem){ .k1 = k1, .k2 = k2, .req = req, .status = (uint16_t)status,
	                       .should_retry = should_retry, .live = true,
	                       .body_len = (uint32_t)len, .body = copy };
	pp = &pa.idem_bucket[k1 & (PA_IDEM_CAP * 2 - 1)];
	e->next = *pp;
	*pp = slot + 1;
}
