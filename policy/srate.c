/* srate.c: time-discounted Beta success-rate posteriors per backend x segment in a
 * fixed open-addressed table, back-off lookup and bounded Thompson exploration.
 * Must not read clocks, do I/O, allocate, log or keep globals (randomness is the
 * caller's state). */
#include <math.h>
#include <string.h>

#include "bug.h"
#include "srate.h"

#define SRT_EVICT_SCAN 8 /* slots examined for a victim when full */

uint32_t srt_code(const char *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	if (!p || !len)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		h ^= (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
		h *= 16777619u;
	}
	return h ? h : 1;
}

/* splitmix64's finaliser (bijective). */
static uint64_t srt_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t srt_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return srt_mix(*state);
}

double srt_uniform(uint64_t *state)
{
	return (double)(srt_rand(state) >> 11) * 0x1p-53;
}

/* The key of one level of seg: the fields that level ignores are zeroed, then all are
 * mixed with the level. Two different segments colliding on 64 bits is taken as
 * impossible (~n^2 / 2^65 for n keys). */
static uint64_t srt_key(const struct srt_seg *s, enum srt_level lv)
{
	uint64_t cur = lv <= SRT_L_CURRENCY ? s->currency : 0;
	uint64_t cty = lv <= SRT_L_COUNTRY ? s->country : 0;
	uint64_t brd = lv <= SRT_L_BRAND ? s->brand : 0;
	uint64_t fnd = lv <= SRT_L_FULL ? s->funding : 0;
	uint64_t h;

	h = srt_mix(((uint64_t)lv << 32 | s->backend) + 0x9e3779b97f4a7c15ull);
	h = srt_mix(h ^ (cur << 32 | cty));
	h = srt_mix(h ^ (brd << 32 | fnd));
	return h ? h : 1;
}

const char *srt_cfg_check(const struct srt_cfg *c)
{
	if (!(c->half_life_s >= 0) || isinf(c->half_life_s))
		return "half-life must be >= 0 seconds";
	if (!(c->prior_a > 0) || !(c->prior_b > 0) || isinf(c->prior_a) || isinf(c->prior_b))
		return "prior must be > 0";
	if (!(c->min_n >= 0))
		return "minimum count must be >= 0";
	if (!(c->max_n == 0 || (c->max_n >= 2 && c->max_n >= c->min_n)) || isinf(c->max_n))
		return "evidence cap must be 0 (none) or >= 2 and >= the minimum count";
	if (!(c->thin_n >= 0) || isinf(c->thin_n))
		return "thin segments' parent weight must be >= 0";
	if (c->max_segments < 1 || c->max_segments > (1u << 28))
		return "max segments must be 1..2^28";
	return NULL;
}

/* Slots for max keys at a 3/4 load limit: the power of two >= max * 4 / 3, >= 8. */
static uint32_t srt_cap_for(uint32_t max)
{
	uint64_t need = ((uint64_t)max * 4 + 2) / 3;
	uint32_t cap = 8;

	while (cap < need)
		cap <<= 1;
	return cap;
}

static uint32_t srt_blocks(uint32_t cap)
{
	return (cap + SRT_BLOCK_SLOTS - 1) / SRT_BLOCK_SLOTS;
}

/* Entries first (aligned for uint64_t like the memory), then the block generations. */
size_t srt_mem_size(uint32_t max_segments)
{
	uint32_t cap;

	if (max_segments < 1 || max_segments > (1u << 28))
		return 0;
	cap = srt_cap_for(max_segments);
	return (size_t)cap * sizeof(struct srt_entry) + (size_t)srt_blocks(cap) * sizeof(uint64_t);
}

/* Slot i is about to be written. */
static inline void srt_touch(struct srt_table *t, uint32_t i)
{
	t->blk_gen[i / SRT_BLOCK_SLOTS] = ++t->gen;
}

int srt_init(struct srt_table *t, const struct srt_cfg *c, void *mem, size_t len)
{
	memset(t, 0, sizeof(*t));
	if (srt_cfg_check(c) || !mem || len < srt_mem_size(c->max_segments))
		return -1;
	t->e = mem;
	t->cap = srt_cap_for(c->max_segments);
	t->blk_gen = (uint64_t *)(void *)(t->e + t->cap);
	t->gen = 1;
	t->limit = c->max_segments < t->cap * 3 / 4 ? c->max_segments : t->cap * 3 / 4;
	t->cfg = *c;
	memset(t->e, 0, (size_t)t->cap * sizeof(*t->e));
	memset(t->blk_gen, 0, (size_t)srt_blocks(t->cap) * sizeof(*t->blk_gen));
	return 0;
}

int srt_copy(struct srt_table *dst, const struct srt_table *src)
{
	struct srt_entry *mem = dst->e;
	uint64_t *gens = dst->blk_gen;
	uint32_t b, nb = srt_blocks(src->cap);

	if (dst->cap != src->cap)
		return -1;
	if (dst->copied_from == src && dst->copied_gen && dst->copied_gen <= src->gen) {
		for (b = 0; b < nb; b++)
			if (src->blk_gen[b] > dst->copied_gen) {
				uint32_t n = src->cap - b * SRT_BLOCK_SLOTS;

				n = n < SRT_BLOCK_SLOTS ? n : SRT_BLOCK_SLOTS;
				memcpy(mem + (size_t)b * SRT_BLOCK_SLOTS, src->e + (size_t)b * SRT_BLOCK_SLOTS,
				       (size_t)n * sizeof(*mem));
			}
	} else {
		memcpy(mem, src->e, (size_t)src->cap * sizeof(*mem));
	}
	/* dst's own generations: as if every block were written now, so that a table copied
	 * from dst later (it is a source too, e.g. on reload) gets all of it */
	*dst = *src;
	dst->e = mem;
	dst->blk_gen = gens;
	dst->copied_from = src;
	dst->copied_gen = src->gen;
	dst->gen = src->gen + 1;
	for (b = 0; b < nb; b++)
		gens[b] = dst->gen;
	return 0;
}

/* 2^(-dt / half_life): the weight now of an observation made dt earlier. */
static double srt_decay(const struct srt_table *t, uint64_t then_us, uint64_t now_us)
{
	if (t->cfg.half_life_s <= 0 || now_us <= then_us)
		return 1.0;
	return exp2(-((double)(now_us - then_us) / 1e6) / t->cfg.half_life_s);
}

static double srt_weight(const struct srt_table *t, const struct srt_entry *e, uint64_t now_us)
{
	return (e->s + e->f) * srt_decay(t, e->t_us, now_us);
}

/* Slot holding key, or -1. */
static long srt_find(const struct srt_table *t, uint64_t key)
{
	uint32_t mask = t->cap - 1, i = (uint32_t)key & mask;

	while (t->e[i].key) {
		if (t->e[i].key == key)
			return (long)i;
		i = (i + 1) & mask;
	}
	return -1;
}

/* Remove slot i, shifting back the entries after it that would otherwise become
 * unreachable (linear probing's deletion without tombstones): an entry at j whose home
 * h is not cyclically within (i, j] may move into the hole at i. */
static void srt_remove(struct srt_table *t, uint32_t i)
{
	uint32_t mask = t->cap - 1, j = i;

	for (;;) {
		uint32_t h;

		j = (j + 1) & mask;
		if (!t->e[j].key)
			break;
		h = (uint32_t)t->e[j].key & mask;
		if (((j - h) & mask) >= ((j - i) & mask)) {
			srt_touch(t, i);
			t->e[i] = t->e[j];
			i = j;
		}
	}
	srt_touch(t, i);
	t->e[i] = (struct srt_entry){ 0, 0, 0, 0 };
	t->used--;
}

/* Evict the lightest (smallest discounted count, then oldest) of the first
 * SRT_EVICT_SCAN occupied slots from key's home on. */
static void srt_evict(struct srt_table *t, uint64_t key, uint64_t now_us)
{
	uint32_t mask = t->cap - 1, i = (uint32_t)key & mask, seen = 0, best = 0, k;
	double bw = 0;

	for (k = 0; k < t->cap && seen < SRT_EVICT_SCAN; k++, i = (i + 1) & mask) {
		double w;

		if (!t->e[i].key)
			continue;
		w = srt_weight(t, &t->e[i], now_us);
		if (!seen || w < bw || (w == bw && t->e[i].t_us < t->e[best].t_us)) {
			best = i;
			bw = w;
		}
		seen++;
	}
	srt_remove(t, best);
	t->evictions++;
}

static struct srt_entry *srt_get(struct srt_table *t, uint64_t key, uint64_t now_us)
{
	uint32_t mask = t->cap - 1, i;
	long at = srt_find(t, key);

	if (at >= 0)
		return &t->e[at];
	if (t->used >= t->limit)
		srt_evict(t, key, now_us);
	for (i = (uint32_t)key & mask; t->e[i].key; i = (i + 1) & mask)
		;
	srt_touch(t, i);
	t->e[i] = (struct srt_entry){ key, now_us, 0, 0 };
	t->used++;
	BUG_ON(t->used > t->limit);
	return &t->e[i];
}

int srt_put(struct srt_table *t, uint64_t key, uint64_t t_us, double s, double f)
{
	struct srt_entry *e;

	if (!key || !(s >= 0) || !(f >= 0) || isinf(s) || isinf(f))
		return -1;
	e = srt_get(t, key, t_us);
	srt_touch(t, (uint32_t)(e - t->e));
	e->t_us = t_us;
	e->s = s;
	e->f = f;
	return 0;
}

void srt_add(struct srt_table *t, const struct srt_seg *seg, double succ, double fail,
             uint64_t now_us)
{
	int lv;

	if (!(succ >= 0) || !(fail >= 0) || succ + fail <= 0)
		return;
	/* coarsest first: if a finer key's insertion evicts, it is not the key just
	 * updated at a level every request shares */
	for (lv = SRT_LEVELS - 1; lv >= 0; lv--) {
		struct srt_entry *e = srt_get(t, srt_key(seg, (enum srt_level)lv), now_us);
		double d = srt_decay(t, e->t_us, now_us), n = (e->s + e->f) * d;

		/* The evidence cap: a busy key's window is max_n outcomes, a quiet key's the
		 * half-life. Time alone lags a drift by ~half-life/ln 2 whatever the volume
		 * (auth-drift: a segment at 17 outcomes/s moved 240 s after the oracle). */
		if (t->cfg.max_n > 0 && n > 0 && n + succ + fail > t->cfg.max_n)
			d *= fmax(t->cfg.max_n - succ - fail, 0) / n;
		srt_touch(t, (uint32_t)(e - t->e));
		e->s = e->s * d + succ;
		e->f = e->f * d + fail;
		if (now_us > e->t_us)
			e->t_us = now_us;
	}
}

bool srt_add_outcome(struct srt_table *t, const struct srt_seg *seg, enum oc_kind k,
                     uint64_t now_us)
{
	switch (k) {
	case OC_SUCCESS:
		srt_add(t, seg, 1, 0, now_us);
		return true;
	case OC_DECLINE_SOFT:
	case OC_PSP_ERROR:
		srt_add(t, seg, 0, 1, now_us);
		return true;
	default:
		return false;
	}
}

double srt_count(const struct srt_table *t, const struct srt_seg *seg, enum srt_level lv,
                 uint64_t now_us)
{
	long at = srt_find(t, srt_key(seg, lv));

	return at < 0 ? 0 : srt_weight(t, &t->e[at], now_us);
}

void srt_lookup(const struct srt_table *t, const struct srt_seg *seg, uint64_t now_us,
                struct srt_post *out)
{
	const struct srt_entry *use = NULL, *thin = NULL;
	double use_n = 0, use_d = 1, thin_n = 0, thin_d = 1;
	int lv, use_lv = -1;

	for (lv = 0; lv < SRT_LEVELS; lv++) {
		long at = srt_find(t, srt_key(seg, (enum srt_level)lv));
		double d, n;

		if (at < 0)
			continue;
		d = srt_decay(t, t->e[at].t_us, now_us);
		n = (t->e[at].s + t->e[at].f) * d;
		if (!thin && n > 0 && n < t->cfg.min_n) {
			thin = &t->e[at];
			thin_n = n;
			thin_d = d;
		}
		if (n > use_n || (n >= t->cfg.min_n && n > 0)) {
			use = &t->e[at];
			use_n = n;
			use_d = d;
			use_lv = lv;
		}
		if (n >= t->cfg.min_n && n > 0)
			break; /* the most specific level with enough data */
	}
	/* else: the level with the most data, however thin (coarser keys usually) */
	out->a = t->cfg.prior_a;
	out->b = t->cfg.prior_b;
	out->n = use_n;
	out->level = use_lv;
	if (use && thin && use != thin && t->cfg.thin_n > 0) {
		/* The most specific level with data is thin: its own outcomes on top of the
		 * coarser level's mean worth at most thin_n, scaled back to the coarser level's
		 * weight (the mean moves, the certainty stays; a wider posterior explored a
		 * backend in a brownout more and tripped its breaker again). Issue 11, cause 2:
		 * policy/learning.md. */
		double w = fmin(t->cfg.thin_n, use_n) / use_n;
		double bs = use->s * use_d * w + thin->s * thin_d, bf = use->f * use_d * w + thin->f * thin_d;
		double k = use_n > bs + bf ? use_n / (bs + bf) : 1;

		out->a += bs * k;
		out->b += bf * k;
		out->n = use_n * w + thin_n;
	} else if (use) {
		out->a += use->s * use_d;
		out->b += use->f * use_d;
	}
}

void srt_level_post(const struct srt_table *t, const struct srt_seg *seg, enum srt_level lv, uint64_t now_us,
                    struct srt_post *out)
{
	long at = srt_find(t, srt_key(seg, lv));

	out->a = t->cfg.prior_a;
	out->b = t->cfg.prior_b;
	out->n = 0;
	out->level = -1;
	if (at >= 0) {
		double d = srt_decay(t, t->e[at].t_us, now_us);

		out->a += t->e[at].s * d;
		out->b += t->e[at].f * d;
		out->n = srt_weight(t, &t->e[at], now_us);
		out->level = (int)lv;
	}
}

double srt_mean(const struct srt_post *p)
{
	return p->a / (p->a + p->b);
}

double srt_sd(const struct srt_post *p)
{
	double s = p->a + p->b;

	return sqrt(p->a * p->b / (s * s * (s + 1)));
}

/* A standard normal draw (Marsaglia's polar method; the second value is dropped to
 * keep the state the only memory). */
static double srt_normal(uint64_t *st)
{
	double u, v, s;

	do {
		u = 2 * srt_uniform(st) - 1;
		v = 2 * srt_uniform(st) - 1;
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	return u * sqrt(-2 * log(s) / s);
}

/* A Gamma(a, 1) draw (Marsaglia & Tsang 2000). For a < 1: Gamma(a + 1) * U^(1/a).
 * The rejection loop accepts with probability > 0.95 per round for a >= 1; it is
 * bounded anyway, falling back on the mean. */
static double srt_gamma(uint64_t *st, double a)
{
	double d, c;
	int round;

	if (a < 1) {
		double u = srt_uniform(st);

		return srt_gamma(st, a + 1) * pow(u > 0 ? u : 0x1p-53, 1 / a);
	}
	d = a - 1.0 / 3;
	c = 1 / sqrt(9 * d);
	for (round = 0; round < 64; round++) {
		double x = srt_normal(st), v = 1 + c * x, u;

		if (v <= 0)
			continue;
		v = v * v * v;
		u = srt_uniform(st);
		if (u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)))
			return d * v;
	}
	return a;
}

double srt_beta(uint64_t *st, double a, double b)
{
	double x = srt_gamma(st, a), y = srt_gamma(st, b);

	return x + y > 0 ? x / (x + y) : a / (a + b);
}

size_t srt_argmax(const double *p, size_t n)
{
	size_t i, best = 0;

	for (i = 1; i < n; i++)
		if (p[i] > p[best])
			best = i;
	return best;
}

bool srt_scores(const struct srt_post *post, size_t n, double eps, double floor_k,
                uint64_t *rng, double *p)
{
	size_t i, best = 0;
	double floor;

	for (i = 0; i < n; i++) {
		p[i] = srt_mean(&post[i]);
		if (p[i] > p[best])
			best = i;
	}
	if (n < 2 || !(srt_uniform(rng) < eps))
		return false;
	floor = floor_k >= 0 ? p[best] - floor_k * srt_sd(&post[best]) : 0;
	for (i = 0; i < n; i++) {
		double a = post[i].a, b = post[i].b;

		if (p[i] < floor) {
			double cnt = a + b;

			a = floor * cnt;
			b = (1 - floor) * cnt;
		}
		p[i] = srt_beta(rng, a, b);
	}
	return true;
}

bool srt_scores_untested(const struct srt_post *post, size_t n, uint64_t untested, double share,
                         uint64_t *rng, double *p)
{
	size_t i;

	if (!(srt_uniform(rng) < share))
		return false;
	for (i = 0; i < n; i++)
		p[i] = untested >> i & 1 ? srt_beta(rng, post[i].a, post[i].b) : srt_mean(&post[i]);
	return true;
}

int srt_verify(const struct srt_table *t, char *err, size_t errlen)
{
	uint32_t mask = t->cap - 1, i, b, used = 0;

	if (!t->e || !t->cap || (t->cap & mask) || t->limit > t->cap * 3 / 4)
		return pol_verify_fail(err, errlen, "srate: %u slots, limit %u", t->cap, t->limit);
	for (i = 0; i < t->cap; i++) {
		const struct srt_entry *e = &t->e[i];
		uint32_t j;

		if (!e->key)
			continue;
		used++;
		for (j = (uint32_t)e->key & mask; j != i; j = (j + 1) & mask)
			if (!t->e[j].key)
				return pol_verify_fail(err, errlen, "srate: slot %u: key %#llx unreachable (hole at %u)",
				                       i, (unsigned long long)e->key, j);
		if (srt_find(t, e->key) != (long)i)
			return pol_verify_fail(err, errlen, "srate: key %#llx held twice", (unsigned long long)e->key);
		if (!(e->s >= 0) || !(e->f >= 0) || !isfinite(e->s) || !isfinite(e->f))
			return pol_verify_fail(err, errlen, "srate: slot %u: counts %g, %g", i, e->s, e->f);
	}
	if (used != t->used || used > t->limit)
		return pol_verify_fail(err, errlen, "srate: %u keys found, used %u, limit %u", used, t->used, t->limit);
	for (b = 0; b < srt_blocks(t->cap); b++)
		if (t->blk_gen[b] > t->gen)
			return pol_verify_fail(err, errlen, "srate: block %u written at %llu > generation %llu", b,
			                       (unsigned long long)t->blk_gen[b], (unsigned long long)t->gen);
	return 0;
}
