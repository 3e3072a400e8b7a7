/* merge.c: outcome deltas between nodes (merge.h). Pure, allocation-free after init. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "merge.h"

int mrg_init(struct mrg_delta *d, struct mrg_cell *mem, uint32_t cap)
{
	if (cap < 4 || (cap & (cap - 1)))
		return -1;
	d->cell = mem;
	d->cap = cap;
	d->dropped = 0;
	mrg_reset(d);
	return 0;
}

void mrg_reset(struct mrg_delta *d)
{
	memset(d->cell, 0, sizeof(*d->cell) * d->cap);
	d->n = 0;
}

static uint64_t mrg_hash(const struct mrg_key *k)
{
	uint64_t h = 1469598103934665603ull;
	const uint32_t v[4] = { k->cur, k->cty, k->brand, k->fund };

	for (const char *p = k->backend; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (int i = 0; i < 4; i++)
		h = (h ^ v[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

static bool mrg_same(const struct mrg_key *a, const struct mrg_key *b)
{
	return a->cur == b->cur && a->cty == b->cty && a->brand == b->brand && a->fund == b->fund &&
	       !strcmp(a->backend, b->backend);
}

/* The key's cell, or the empty one where it would go (NULL: absent and no room). */
static struct mrg_cell *mrg_slot(const struct mrg_delta *d, const struct mrg_key *k)
{
	uint32_t i = (uint32_t)mrg_hash(k) & (d->cap - 1);

	for (uint32_t probes = 0; probes < d->cap; probes++, i = (i + 1) & (d->cap - 1))
		if (!d->cell[i].used || mrg_same(&d->cell[i].k, k))
			return &d->cell[i];
	return NULL;
}

const struct mrg_cell *mrg_find(const struct mrg_delta *d, const struct mrg_key *k)
{
	const struct mrg_cell *c = mrg_slot(d, k);

	return c && c->used ? c : NULL;
}

int mrg_add(struct mrg_delta *d, const struct mrg_key *k, uint32_t s, uint32_t f)
{
	struct mrg_cell *c;

	if (!memchr(k->backend, 0, sizeof(k->backend)) || !k->backend[0])
		return -1;
	c = mrg_slot(d, k);
	if (c && !c->used) {
		if ((d->n + 1) * 4 > d->cap * 3) {
			c = NULL;
		} else {
			c->k = *k;
			c->used = true;
			d->n++;
		}
	}
	if (!c) {
		d->dropped += (uint64_t)s + f;
		return -1;
	}
	c->s = c->s + s < c->s ? UINT32_MAX : c->s + s;  /* saturate */
	c->f = c->f + f < c->f ? UINT32_MAX : c->f + f;
	return 0;
}

/* A name that can go on the line: 1..max-1 printable bytes, no blank, no ';'. */
static bool mrg_name_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n + 1 >= max || s[n] <= ' ' || s[n] > '~' || s[n] == ';')
			return false;
	return n > 0;
}

int mrg_encode(const struct mrg_delta *d, const char *node, uint64_t seq, char *out, size_t len)
{
	size_t o;
	int w;

	if (!mrg_name_ok(node, MRG_NODE_MAX))
		return -1;
	w = snprintf(out, len, "L %s %" PRIu64 " %" PRIu32, node, seq, d->n);
	if (w < 0 || (size_t)w >= len)
		return -1;
	o = (size_t)w;
	for (uint32_t i = 0; i < d->cap; i++) {
		const struct mrg_cell *c = &d->cell[i];

		if (!c->used)
			continue;
		if (!mrg_name_ok(c->k.backend, MRG_NAME_MAX))
			return -1;
		w = snprintf(out + o, len - o, ";%s %" PRIx32 " %" PRIx32 " %" PRIx32 " %" PRIx32 " %" PRIu32 " %" PRIu32,
		             c->k.backend, c->k.cur, c->k.cty, c->k.brand, c->k.fund, c->s, c->f);
		if (w < 0 || (size_t)w >= len - o)
			return -1;
		o += (size_t)w;
	}
	return (int)o;
}

int mrg_encode_breaker(const char *node, uint64_t seq, const char *backend, char *out, size_t len)
{
	int w;

	if (!mrg_name_ok(node, MRG_NODE_MAX) || !mrg_name_ok(backend, MRG_NAME_MAX))
		return -1;
	w = snprintf(out, len, "B %s %" PRIu64 " %s", node, seq, backend);
	return w < 0 || (size_t)w >= len ? -1 : w;
}

/* ---- parsing: a cursor over in[0, len) --------------------------------------------- */

struct mrg_cur {
	const char *p, *end;
};

/* A word up to ' ', ';' or the end: copied into buf (max bytes with its NUL). */
static int mrg_word(struct mrg_cur *c, char *buf, size_t max)
{
	size_t n = 0;

	while (c->p < c->end && *c->p != ' ' && *c->p != ';') {
		if (*c->p < '!' || *c->p > '~' || n + 1 >= max)
			return -1;
		buf[n++] = *c->p++;
	}
	buf[n] = 0;
	return n ? 0 : -1;
}

/* A number in base 10 or 16 without sign or leading zeros (0 itself allowed), at most max. */
static int mrg_num(struct mrg_cur *c, unsigned base, uint64_t max, uint64_t *v)
{
	const char *start = c->p;
	uint64_t x = 0;

	while (c->p < c->end) {
		char ch = *c->p;
		unsigned dgt = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
		               : base == 16 && ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) : 99;

		if (dgt >= base)
			break;
		if (x > (max - dgt) / base)
			return -1;
		x = x * base + dgt;
		c->p++;
	}
	if (c->p == start || (*start == '0' && c->p - start > 1))
		return -1;
	*v = x;
	return 0;
}

static int mrg_sep(struct mrg_cur *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -1;
	c->p++;
	return 0;
}

int mrg_parse(const char *in, size_t len, struct mrg_msg *m, struct mrg_delta *out)
{
	struct mrg_cur c = { in, in + len };
	uint64_t n, v[6];
	struct mrg_key k;

	memset(m, 0, sizeof(*m));
	if (len < 2 || (in[0] != MRG_LEARN && in[0] != MRG_BREAKER) || in[1] != ' ')
		return -1;
	m->kind = in[0];
	c.p += 2;
	if (mrg_word(&c, m->node, sizeof(m->node)) < 0 || mrg_sep(&c, ' ') < 0 ||
	    mrg_num(&c, 10, UINT64_MAX, &m->seq) < 0 || mrg_sep(&c, ' ') < 0)
		return -1;
	if (m->kind == MRG_BREAKER)
		return mrg_word(&c, m->backend, sizeof(m->backend)) < 0 || c.p != c.end ? -1 : 0;
	if (!out || mrg_num(&c, 10, UINT32_MAX, &n) < 0)
		return -1;
	mrg_reset(out);
	for (uint64_t i = 0; i < n; i++) {
		memset(&k, 0, sizeof(k));
		if (mrg_sep(&c, ';') < 0 || mrg_word(&c, k.backend, sizeof(k.backend)) < 0)
			return -1;
		for (int j = 0; j < 6; j++)
			if (mrg_sep(&c, ' ') < 0 || mrg_num(&c, j < 4 ? 16 : 10, UINT32_MAX, &v[j]) < 0)
				return -1;
		k.cur = (uint32_t)v[0];
		k.cty = (uint32_t)v[1];
		k.brand = (uint32_t)v[2];
		k.fund = (uint32_t)v[3];
		if (mrg_add(out, &k, (uint32_t)v[4], (uint32_t)v[5]) < 0)
			return -1;
	}
	return c.p == c.end ? 0 : -1;
}

enum mrg_verdict mrg_accept(struct mrg_peers *p, const char *self, const char *node, uint64_t seq)
{
	unsigned i;

	if (!strcmp(self, node))
		return MRG_OWN;
	for (i = 0; i < p->n; i++)
		if (!strcmp(p->p[i].node, node))
			break;
	if (i == p->n) {
		if (p->n == MRG_PEERS || strlen(node) >= MRG_NODE_MAX)
			return MRG_NO_ROOM;
		snprintf(p->p[i].node, sizeof(p->p[i].node), "%s", node);
		p->p[i].seq = 0;
		p->n++;
	} else if (seq <= p->p[i].seq) {
		return MRG_SEEN;
	}
	p->p[i].seq = seq;
	return MRG_APPLY;
}
