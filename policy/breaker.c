/* breaker.c: per-backend circuit breaker over a bucketed sliding window, with growing,
 * jittered open times, half-open probes, overrides and an ejection cap.
 * Must not read clocks, do I/O, allocate, log or keep globals. */
#include "breaker.h"
#include "bug.h"

void brk_cfg_default(struct brk_cfg *c)
{
	c->bucket_us = 1000000;
	c->buckets = 10;
	c->min_calls = 20;
	c->failure_permille = 500;
	c->slow_permille = 800;
	c->consecutive = 5;
	c->open_base_us = 20000000; /* not Envoy's 30 s: policy/learning.md, conf/README.md */
	c->open_max_us = 300000000;
	c->jitter_permille = 0;
	c->probes = 3;
	c->probe_timeout_us = 10000000;
	c->forget_us = 600000000;
	c->reorder_us = 1000000;
}

const char *brk_cfg_check(const struct brk_cfg *c)
{
	if (c->bucket_us == 0)
		return "bucket width must be > 0";
	if (c->buckets < 1 || c->buckets > BRK_MAX_BUCKETS)
		return "window buckets must be 1..60";
	if (c->failure_permille > 1000 || c->slow_permille > 1000)
		return "rates must be 0..1000 permille";
	if (c->jitter_permille > 1000)
		return "jitter must be 0..1000 permille";
	if (c->open_base_us == 0 || c->open_max_us < c->open_base_us)
		return "open time: base must be > 0 and <= max";
	if (c->probes < 1)
		return "half-open probes must be >= 1";
	if (c->probe_timeout_us == 0)
		return "probe timeout must be > 0";
	return NULL;
}

/* splitmix64's finaliser: a bijective 64-bit mix, so (seed, trips) -> jitter is
 * reproducible and uncorrelated across backends. */
static uint64_t brk_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void brk_window_clear(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	uint32_t i;

	for (i = 0; i < BRK_MAX_BUCKETS; i++)
		b->bucket[i] = (struct brk_bucket){ 0, 0, 0 };
	b->calls = b->failures = b->slow = 0;
	b->nbuckets = (uint8_t)c->buckets;
	b->epoch = now_us / c->bucket_us;
}

/* Advance the window to now: the buckets between the last one written and now's are
 * emptied (and their counts taken off the sums). Time never runs backwards here: an
 * earlier now writes into the newest bucket. At most `buckets` steps. */
static void brk_window_roll(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	uint64_t e = now_us / c->bucket_us;

	if (b->nbuckets != c->buckets) {
		brk_window_clear(b, c, now_us); /* reload changed the shape */
		return;
	}
	if (e <= b->epoch)
		return;
	if (e - b->epoch >= c->buckets) {
		brk_window_clear(b, c, now_us);
		return;
	}
	while (b->epoch < e) {
		struct brk_bucket *k = &b->bucket[++b->epoch % c->buckets];

		b->calls -= k->calls;
		b->failures -= k->failures;
		b->slow -= k->slow;
		*k = (struct brk_bucket){ 0, 0, 0 };
	}
}

void brk_init(struct brk *b, const struct brk_cfg *c, uint64_t seed, uint64_t now_us)
{
	*b = (struct brk){ .state = BRK_CLOSED, .override = BRK_OVR_AUTO, .seed = seed,
	                   .since_us = now_us };
	brk_window_clear(b, c, now_us);
}

uint64_t brk_open_time(const struct brk *b, const struct brk_cfg *c, uint32_t k)
{
	uint64_t d = c->open_base_us;
	uint32_t i;
	double frac;

	for (i = 1; i < k && d < c->open_max_us; i++)
		d = d > c->open_max_us / 2 ? c->open_max_us : d * 2;
	if (d > c->open_max_us)
		d = c->open_max_us;
	/* uniform in [0, 1) from the top 53 bits of the mixed (seed, k) */
	frac = (double)(brk_mix(b->seed ^ ((uint64_t)k << 32)) >> 11) * 0x1p-53;
	d += (uint64_t)((double)d * (double)c->jitter_permille / 1000.0 * frac);
	return d > c->open_max_us ? c->open_max_us : d;
}

static bool brk_tripping(const struct brk *b, const struct brk_cfg *c)
{
	if (b->scoped)
		return false;
	if (c->consecutive && b->consecutive >= c->consecutive)
		return true;
	if (b->calls == 0 || b->calls < c->min_calls)
		return false;
	if (c->failure_permille &&
	    (uint64_t)b->failures * 1000 >= (uint64_t)c->failure_permille * b->calls)
		return true;
	return c->slow_permille &&
	       (uint64_t)b->slow * 1000 >= (uint64_t)c->slow_permille * b->calls;
}

/* Pinned calls answered well in a row that turn an open breaker half-open early: as many
 * as the window needs to judge a rate (and at least a batch). Three were too few: in a
 * latency incident (latency-spike, median 4 s against a 5 s slow_ms) two calls in three
 * are neither slow nor failed, the runs came often, each batch that failed doubled the
 * open time, and traffic returned later, not sooner (policy/learning.md). */
static uint32_t brk_open_ok_needed(const struct brk_cfg *c)
{
	return c->min_calls > c->probes ? c->min_calls : c->probes;
}

static void brk_enter(struct brk *b, enum brk_state s, uint64_t now_us)
{
	b->state = (uint8_t)s;
	b->since_us = now_us;
}

/* The open time doubles with the probe batches failed in a row, not with trips: a
 * backend whose probes passed and that trips again later (a 30 % brownout closes on 3
 * probes, then meets 5 failures in a row within seconds) is out for open_base again, so
 * that traffic returns soon after the repair; a backend whose probes keep failing backs
 * off as before. (Doubling per trip kept brownout's stripe_us out 10-160 s after the
 * repair: policy/learning.md.) */
static void brk_open(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	/* the share it opens on, for brk_exchange: the window's when it holds min_calls (a
	 * failed probe batch, a few calls, keeps the share of the opening before it; a
	 * window too thin to judge reads as failing in full) */
	if (b->state != BRK_HALF_OPEN)
		b->trip_permille = b->calls && b->calls >= c->min_calls ?
		                   (uint32_t)((uint64_t)b->failures * 1000 / b->calls) : 1000;
	b->trips++;
	b->open_until_us = now_us + brk_open_time(b, c, b->batches_failed + 1);
	b->open_ok = 0;
	b->consecutive = 0;
	brk_window_clear(b, c, now_us);
	brk_enter(b, BRK_OPEN, now_us);
}

static void brk_batch_start(struct brk *b, uint64_t now_us)
{
	b->probes_sent = b->probes_done = b->probes_failed = b->probes_slow = 0;
	b->probe_batch_us = now_us;
}

/* The half-open batch is judged like the window (Resilience4j's half-open rule), over
 * all `probes` of it: it has failed once its failures (or slow calls) are at the rate
 * that trips a closed breaker, which can be known before the last answer. With the
 * failure rate off, one failure fails it. One failure in 3 no longer reopens: a backend
 * erring at 30 % would fail two batches in three and, with open times doubling, stay
 * out long after it recovered (brownout: up to 160 s). */
static bool brk_batch_failed(const struct brk *b, const struct brk_cfg *c)
{
	uint64_t fail = c->failure_permille ? c->failure_permille : 1;

	if ((uint64_t)b->probes_failed * 1000 >= fail * c->probes)
		return true;
	return c->slow_permille &&
	       (uint64_t)b->probes_slow * 1000 >= (uint64_t)c->slow_permille * c->probes;
}

static void brk_half_open(struct brk *b, uint64_t now_us)
{
	brk_batch_start(b, now_us);
	brk_enter(b, BRK_HALF_OPEN, now_us);
}

static void brk_close(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	b->consecutive = 0;
	b->batches_failed = 0;
	brk_window_clear(b, c, now_us);
	brk_enter(b, BRK_CLOSED, now_us);
}

/* A trip condition holds (closed or degraded): open, or stay/become degraded. */
static void brk_trip(struct brk *b, const struct brk_cfg *c, bool may_open, uint64_t now_us)
{
	if (may_open)
		brk_open(b, c, now_us);
	else if (b->state != BRK_DEGRADED)
		brk_enter(b, BRK_DEGRADED, now_us);
}

enum brk_remote brk_remote_open(struct brk *b, const struct brk_cfg *c, bool may_open, uint64_t now_us)
{
	brk_update(b, c, may_open, now_us);
	if (b->state != BRK_CLOSED && b->state != BRK_DEGRADED)
		return BRK_REMOTE_NONE;
	if (b->calls >= c->min_calls && b->calls > 0 && !brk_tripping(b, c))
		return BRK_REMOTE_KEPT;
	brk_trip(b, c, may_open, now_us);
	return b->state == BRK_OPEN ? BRK_REMOTE_OPENED : BRK_REMOTE_NONE;
}

static enum brk_state brk_effective(const struct brk *b, enum brk_state s)
{
	if (b->override == BRK_OVR_OPEN)
		return BRK_OPEN;
	if (b->override == BRK_OVR_CLOSED)
		return BRK_CLOSED;
	return s;
}

enum brk_state brk_update(struct brk *b, const struct brk_cfg *c, bool may_open,
                          uint64_t now_us)
{
	brk_window_roll(b, c, now_us);
	/* A run of failures in a row ends when its last one leaves the window: a degraded
	 * breaker that gets no traffic kept an outage's run and opened when the ejection cap
	 * let it, long after the backend had recovered. */
	if (b->consecutive && now_us >= b->fail_us && now_us - b->fail_us >= c->bucket_us * c->buckets)
		b->consecutive = 0;
	switch ((enum brk_state)b->state) {
	case BRK_OPEN:
		/* scoped: the segments that failed are scored away, so probes need not wait.
		 * Pinned calls that came back well (brk_record_sent) cut an open time longer
		 * than the first one short: the doubling is there to spare probes while the
		 * backend is still down, and those calls say it is up */
		if (now_us >= b->open_until_us || b->scoped ||
		    (b->open_ok >= brk_open_ok_needed(c) && now_us >= b->since_us &&
		     now_us - b->since_us >= c->open_base_us))
			brk_half_open(b, now_us);
		break;
	case BRK_HALF_OPEN:
		break;
	case BRK_DEGRADED:
		if (!brk_tripping(b, c))
			brk_enter(b, BRK_CLOSED, now_us);
		else if (may_open)
			brk_open(b, c, now_us);
		break;
	case BRK_CLOSED:
		/* a time before since_us (an event stamped earlier than the last tick) must not
		 * wrap around and forget the trips */
		if (b->trips && now_us >= b->since_us && now_us - b->since_us >= c->forget_us)
			b->trips = 0;
		break;
	}
	return brk_effective(b, (enum brk_state)b->state);
}

bool brk_record(struct brk *b, const struct brk_cfg *c, enum brk_event ev, bool may_open,
                uint64_t now_us)
{
	uint8_t before;
	struct brk_bucket *k;

	before = b->state;
	brk_update(b, c, may_open, now_us);
	if (ev == BRK_EV_NONE || b->state == BRK_OPEN)
		return b->state != before;

	if (b->state == BRK_HALF_OPEN) {
		b->probes_done++;
		b->probes_failed += ev == BRK_EV_FAILURE || ev == BRK_EV_FAILURE_APART;
		b->probes_slow += ev == BRK_EV_SLOW;
		if (brk_batch_failed(b, c)) {
			b->batches_failed++;
			brk_open(b, c, now_us); /* already ejected: the cap does not apply */
		} else if (b->probes_done >= c->probes) {
			brk_close(b, c, now_us);
			b->probe_closes++;
		}
		return b->state != before;
	}

	k = &b->bucket[b->epoch % c->buckets];
	k->calls++;
	b->calls++;
	if (ev == BRK_EV_FAILURE || ev == BRK_EV_FAILURE_APART) {
		k->failures++;
		b->failures++;
		if (ev == BRK_EV_FAILURE) {
			b->consecutive++;
			b->fail_us = now_us;
		}
	} else {
		b->consecutive = 0;
		if (ev == BRK_EV_SLOW) {
			k->slow++;
			b->slow++;
		}
	}
	BUG_ON(k->failures + k->slow > k->calls || b->failures + b->slow > b->calls);
	if (brk_tripping(b, c))
		brk_trip(b, c, may_open, now_us);
	else if (b->state == BRK_DEGRADED)
		brk_enter(b, BRK_CLOSED, now_us);
	return b->state != before;
}

/* Answers come back out of send order: a timeout arrives seconds after calls sent later
 * came back, so in answer order a healthy backend whose traffic just moved away ends on
 * a run of its slowest calls, timeouts and missing answers. A failure sent before the
 * latest call that came back well, and answered more than reorder_us after it, does not
 * follow it in a row (the backend answered after it had the failed call); within
 * reorder_us it is the usual jitter of answers (a brownout's fast errors keep their
 * runs). */
bool brk_record_sent(struct brk *b, const struct brk_cfg *c, enum brk_event ev, uint64_t sent_us,
                     bool may_open, uint64_t now_us)
{
	uint8_t before = b->state;

	if (sent_us > now_us)
		sent_us = now_us;
	/* half-open and scoped, a failure sent well before the probes could begin is no
	 * probe's (a hung segment's late errors, after the scope cut the open time short);
	 * within reorder_us of it, the usual error of a reported latency */
	if (b->scoped && (ev == BRK_EV_FAILURE || ev == BRK_EV_FAILURE_APART) &&
	    brk_update(b, c, may_open, now_us) == BRK_HALF_OPEN && b->override == BRK_OVR_AUTO &&
	    sent_us + c->reorder_us < (b->open_until_us < b->since_us ? b->open_until_us : b->since_us))
		ev = BRK_EV_NONE;
	if (ev == BRK_EV_FAILURE && c->reorder_us && sent_us < b->ok_sent_us && now_us >= b->ok_at_us &&
	    now_us - b->ok_at_us >= c->reorder_us)
		ev = BRK_EV_FAILURE_APART;
	else if ((ev == BRK_EV_SUCCESS || ev == BRK_EV_SLOW) && sent_us > b->ok_sent_us) {
		b->ok_sent_us = sent_us;
		b->ok_at_us = now_us;
	}
	/* open: a call sent since it opened went there because it had to (pinned: its
	 * account holds the object or the first attempt) and is a probe nobody risked */
	brk_update(b, c, may_open, now_us);
	if (b->state == BRK_OPEN && sent_us >= b->since_us && ev != BRK_EV_NONE) {
		b->open_ok = ev == BRK_EV_SUCCESS ? b->open_ok + 1 : 0;
		brk_update(b, c, may_open, now_us);
	} else {
		brk_record(b, c, ev, may_open, now_us);
	}
	return b->state != before;
}

bool brk_forgive(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	uint32_t i;

	brk_update(b, c, false, now_us);
	if (b->state == BRK_HALF_OPEN) {
		if (!b->probes_failed || !b->probes_done)
			return false;
		b->probes_failed--;
		b->probes_done--;
		return true;
	}
	if (b->state == BRK_OPEN || !b->failures)
		return false;
	for (i = 0; i < c->buckets && i <= b->epoch; i++) {
		struct brk_bucket *k = &b->bucket[(b->epoch - i) % c->buckets];

		if (!k->failures)
			continue;
		BUG_ON(!k->calls || !b->calls);
		k->failures--;
		k->calls--;
		b->failures--;
		b->calls--;
		if (b->consecutive)
			b->consecutive--;
		return true;
	}
	return false;
}

bool brk_allow(struct brk *b, const struct brk_cfg *c, uint64_t now_us)
{
	enum brk_state s = brk_update(b, c, false, now_us);

	if (b->override != BRK_OVR_AUTO || s != BRK_HALF_OPEN)
		return s != BRK_OPEN;
	if (b->probes_sent >= c->probes && now_us - b->probe_batch_us >= c->probe_timeout_us) {
		/* the batch never got its verdict (lost answers): try another */
		brk_batch_start(b, now_us);
	}
	if (b->probes_sent >= c->probes)
		return false;
	b->probes_sent++;
	return true;
}

enum brk_state brk_state_at(const struct brk *b, uint64_t now_us)
{
	enum brk_state s = (enum brk_state)b->state;

	if (s == BRK_OPEN && now_us >= b->open_until_us)
		s = BRK_HALF_OPEN;
	return brk_effective(b, s);
}

uint64_t brk_retry_in_us(const struct brk *b, uint64_t now_us)
{
	if (b->override == BRK_OVR_OPEN || b->override == BRK_OVR_CLOSED ||
	    b->state != BRK_OPEN || now_us >= b->open_until_us)
		return 0;
	return b->open_until_us - now_us;
}

void brk_set_override(struct brk *b, const struct brk_cfg *c, enum brk_override o,
                      uint64_t now_us)
{
	if (o == BRK_OVR_AUTO && b->override != BRK_OVR_AUTO)
		brk_close(b, c, now_us);
	b->override = (uint8_t)o;
}

bool brk_may_open(const struct brk *const *all, size_t n, uint32_t max_permille,
                  uint64_t now_us)
{
	size_t i, ejected = 0, allowed;

	if (max_permille == 0)
		return false;
	allowed = (size_t)((uint64_t)n * max_permille / 1000);
	if (allowed < 1)
		allowed = 1;
	for (i = 0; i < n; i++)
		if (brk_state_at(all[i], now_us) >= BRK_HALF_OPEN || all[i]->scoped)
			ejected++;
	return ejected < allowed;
}

int brk_exchange(struct brk *const *all, size_t n, const struct brk_cfg *c, uint32_t max_permille,
                 uint64_t now_us)
{
	size_t i, j;

	if (brk_may_open((const struct brk *const *)all, n, max_permille, now_us))
		return -1; /* room under the cap: the degraded ones open by themselves */
	for (i = 0; i < n; i++) {
		const struct brk *d = all[i];
		int best = -1;

		if (d->state != BRK_DEGRADED || d->override != BRK_OVR_AUTO || d->calls < c->min_calls ||
		    d->calls == 0 || (uint64_t)d->failures * 1000 < (uint64_t)BRK_EXCHANGE_DARK * d->calls)
			continue;
		for (j = 0; j < n; j++) {
			const struct brk *o = all[j];

			if (o->override != BRK_OVR_AUTO || o->scoped ||
			    (o->state != BRK_OPEN && o->state != BRK_HALF_OPEN) ||
			    (uint64_t)o->trip_permille * d->calls + (uint64_t)BRK_EXCHANGE_MARGIN * d->calls >
			            (uint64_t)d->failures * 1000)
				continue;
			if (best < 0 || o->trip_permille < all[best]->trip_permille)
				best = (int)j;
		}
		if (best >= 0) {
			brk_close(all[best], c, now_us);
			return best;
		}
	}
	return -1;
}

enum brk_event brk_event_of(const struct oc_class *oc)
{
	switch (oc->kind) {
	case OC_PSP_ERROR:
		return BRK_EV_FAILURE;
	case OC_SUCCESS:
	case OC_DECLINE_CUSTOMER:
	case OC_DECLINE_SOFT:
		return (oc->flags & OC_F_SLOW) ? BRK_EV_SLOW : BRK_EV_SUCCESS;
	default:
		return BRK_EV_NONE;
	}
}

const char *brk_state_name(enum brk_state s)
{
	switch (s) {
	case BRK_CLOSED:    return "closed";
	case BRK_DEGRADED:  return "degraded";
	case BRK_HALF_OPEN: return "half-open";
	case BRK_OPEN:      return "open";
	}
	return "unknown";
}

int brk_verify(const struct brk *b, char *err, size_t errlen)
{
	uint32_t calls = 0, failures = 0, slow = 0, i;

	if (b->state > BRK_OPEN || b->override > BRK_OVR_CLOSED || b->scoped > 1)
		return pol_verify_fail(err, errlen, "breaker: state %u, override %u, scoped %u", b->state, b->override,
		                       b->scoped);
	if (b->trip_permille > 1000)
		return pol_verify_fail(err, errlen, "breaker: opened on %u permille of failures", b->trip_permille);
	if (b->nbuckets < 1 || b->nbuckets > BRK_MAX_BUCKETS)
		return pol_verify_fail(err, errlen, "breaker: %u buckets", b->nbuckets);
	for (i = 0; i < BRK_MAX_BUCKETS; i++) {
		const struct brk_bucket *k = &b->bucket[i];

		if ((uint64_t)k->failures + k->slow > k->calls)
			return pol_verify_fail(err, errlen, "breaker: bucket %u: %u failures + %u slow > %u calls", i,
			                       k->failures, k->slow, k->calls);
		if (i >= b->nbuckets && k->calls)
			return pol_verify_fail(err, errlen, "breaker: bucket %u past the window holds %u calls", i,
			                       k->calls);
		calls += k->calls;
		failures += k->failures;
		slow += k->slow;
	}
	if (calls != b->calls || failures != b->failures || slow != b->slow)
		return pol_verify_fail(err, errlen, "breaker: window sums %u/%u/%u, buckets hold %u/%u/%u", b->calls,
		                       b->failures, b->slow, calls, failures, slow);
	if ((uint64_t)b->probes_failed + b->probes_slow > b->probes_done)
		return pol_verify_fail(err, errlen, "breaker: %u failed + %u slow probes > %u answered",
		                       b->probes_failed, b->probes_slow, b->probes_done);
	if (b->state == BRK_OPEN && b->open_until_us < b->since_us)
		return pol_verify_fail(err, errlen, "breaker: open until %llu, before it opened (%llu)",
		                       (unsigned long long)b->open_until_us, (unsigned long long)b->since_us);
	return 0;
}
