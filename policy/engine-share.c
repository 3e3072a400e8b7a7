/* engine-share.c: learning shared across a fleet, engine side (engine-share.h). Control
 * thread only; allocation in pol_engine_learn_share only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-learn.h"
#include "engine-share.h"
#include "engine-t.h"
#include "srate-t.h"

int pol_engine_learn_share(struct pol_engine *e, uint32_t cells)
{
	struct pol_share *s;

	if (e->share)
		return 0;
	if (cells < 4 || (cells & (cells - 1)) || !(s = calloc(1, sizeof(*s))))
		return -1;
	if (!(s->mem = calloc(cells, sizeof(*s->mem))) || mrg_init(&s->d, s->mem, cells) < 0) {
		free(s->mem);
		free(s);
		return -1;
	}
	e->share = s;
	return 0;
}

void pol_share_free(struct pol_share *s)
{
	if (!s)
		return;
	free(s->mem);
	free(s);
}

void pol_share_add(struct pol_share *s, const char *backend, const struct srt_seg *seg, bool success)
{
	struct mrg_key k = { .cur = seg->currency, .cty = seg->country, .brand = seg->brand, .fund = seg->funding };

	snprintf(k.backend, sizeof(k.backend), "%s", backend);
	mrg_add(&s->d, &k, success, !success);
}

void pol_share_note_open(struct pol_share *s, const char *backend)
{
	unsigned i;

	for (i = 0; i < s->nopened; i++)
		if (strcmp(s->opened[i], backend) == 0)
			return;
	if (s->nopened >= POL_SHARE_MAX_OPENED) {
		s->opened_dropped++;
		return;
	}
	snprintf(s->opened[s->nopened++], MRG_NAME_MAX, "%s", backend);
}

uint64_t pol_engine_learn_export(struct pol_engine *e, struct mrg_delta *out)
{
	struct pol_share *s = e->share;
	uint64_t n = 0;
	uint32_t i;

	if (!s)
		return 0;
	for (i = 0; i < s->d.cap; i++) {
		const struct mrg_cell *c = &s->d.cell[i];

		if (!c->used)
			continue;
		if (mrg_add(out, &c->k, c->s, c->f) == 0)
			n += (uint64_t)c->s + c->f;
	}
	out->dropped += s->d.dropped;
	mrg_reset(&s->d);
	return n;
}

unsigned pol_engine_learn_opened(struct pol_engine *e, void (*fn)(void *arg, const char *backend), void *arg)
{
	struct pol_share *s = e->share;
	unsigned i, n;

	if (!s)
		return 0;
	n = s->nopened;
	for (i = 0; i < n; i++)
		fn(arg, s->opened[i]);
	s->nopened = 0;
	return n;
}

uint64_t pol_engine_learn_apply(struct pol_engine *e, const struct mrg_delta *d, uint64_t now_us)
{
	return pol_learn_apply(atomic_load(&e->view), d, now_us);
}

int pol_engine_learn_breaker(struct pol_engine *e, const char *backend, uint64_t now_us)
{
	return pol_learn_remote_open(atomic_load(&e->view), backend, now_us);
}
