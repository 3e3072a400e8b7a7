/* control.c: the emulated payment API's control side: the /__payapi/ endpoints (mode,
 * stats, reset, health) and the fault modes they set (failing, slow, ratelimit, lock,
 * hangup), applied to API requests by pa_handle. Control requests themselves are never
 * counted in the stats and never failed on purpose. */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "payapi.h"

static const char *const pa_mode_names[] = {
	"healthy", "failing", "slow", "ratelimit", "lock", "hangup",
};

bool pa_is_control(const struct pa_req *rq)
{
	return rq->path_len >= 10 && memcmp(rq->path, "/__payapi/", 10) == 0;
}

static void pa_mode_json(struct pa_jw *w)
{
	const struct pa_behaviour *b = &pa.bhv;

	jw_fmt(w, "{\"instance\":\"%s\",\"mode\":\"%s\",\"error_rate\":%g,\"error_status\":%u,"
	       "\"latency_ms\":%u,\"rate_limit\":%u,\"lock_rate\":%g,\"hangup\":%s,"
	       "\"drop_first\":%g}",
	       pa.name, pa_mode_names[b->mode], b->error_rate, b->error_status, b->latency_ms,
	       b->rate_limit, b->lock_rate, b->hangup ? "true" : "false", b->drop_first);
}

static void pa_stats_json(struct pa_jw *w)
{
	const struct pa_stats *s = &pa.st;
	unsigned i;
	bool first = true;

	jw_fmt(w, "{\"instance\":\"%s\",\"mode\":\"%s\",\"requests\":%" PRIu64 ",\"by_status\":{",
	       pa.name, pa_mode_names[pa.bhv.mode], s->requests);
	for (i = 0; i < 600; i++) {
		if (!s->by_status[i])
			continue;
		jw_fmt(w, "%s\"%u\":%" PRIu64, first ? "" : ",", i, s->by_status[i]);
		first = false;
	}
	jw_fmt(w, "},\"replays\":%" PRIu64 ",\"injected_errors\":%" PRIu64 ",\"rate_limited\":%"
	       PRIu64 ",\"lock_timeouts\":%" PRIu64 ",\"hangups\":%" PRIu64 ",\"bad_requests\":%"
	       PRIu64 ",\"connections\":%" PRIu64 ",\"active_connections\":%u,\"objects\":%" PRIu64
	       ",\"dropped_first\":%" PRIu64 "}", s->replays, s->injected_errors, s->rate_limited,
	       s->lock_timeouts, s->hangups, s->bad_requests, s->connections, pa.nconn, s->objects,
	       s->dropped_first);
}

void pa_arrival(void)
{
	struct timespec ts;
	uint64_t slot;
	uint32_t i;

	clock_gettime(CLOCK_REALTIME, &ts);
	slot = (uint64_t)ts.tv_sec * 100 + (uint64_t)ts.tv_nsec / 10000000;
	i = (uint32_t)(slot % PA_ARR_SLOTS);
	if (pa.arr_slot[i] != slot) {
		pa.arr_slot[i] = slot;
		pa.arr_count[i] = 0;
	}
	pa.arr_count[i]++;
}

/* GET /__payapi/arrivals: API requests (hung-up and refused ones included) per 10 ms of
 * wall clock over the last 120 s, the slots with any: {"slot_ms":10,"slots":[[slot,n],...]}
 * with slot = wall ms / 10, so that several instances' counts line up. */
static void pa_arrivals_json(struct pa_jw *w)
{
	uint32_t i;
	bool first = true;

	jw_fmt(w, "{\"instance\":\"%s\",\"slot_ms\":10,\"slots\":[", pa.name);
	for (i = 0; i < PA_ARR_SLOTS && w->len + 64 < w->cap; i++) {
		if (!pa.arr_count[i])
			continue;
		jw_fmt(w, "%s[%" PRIu64 ",%" PRIu32 "]", first ? "" : ",", pa.arr_slot[i], pa.arr_count[i]);
		first = false;
	}
	jw_fmt(w, "]}");
}

/* GET /__payapi/keys[?prefix=P]: the key log (payapi.h), oldest first, only the keys that
 * start with P. Keys that would not fit in one answer are left out and "truncated" says so. */
static void pa_keys_json(struct pa_jw *w, const struct pa_req *rq)
{
	char prefix[PA_KEYLOG_LEN + 1];
	int plen = pa_param(rq->query, rq->query_len, "prefix", prefix, sizeof(prefix));
	size_t i, n, count = pa_keylog_count(), listed = 0;
	bool truncated = false;

	if (plen < 0)
		plen = 0;
	jw_fmt(w, "{\"instance\":\"%s\",\"keys\":[", pa.name);
	for (i = 0; i < count; i++) {
		const char *k = pa_keylog_get(i, &n);

		if (n < (size_t)plen || memcmp(k, prefix, (size_t)plen) != 0)
			continue;
		/* room for this key escaped (6 bytes a character at worst) and the tail */
		if (w->len + 6 * n + 64 > w->cap) {
			truncated = true;
			break;
		}
		if (listed++)
			jw_raw(w, ",", 1);
		jw_qstr(w, k, n);
	}
	jw_fmt(w, "],\"count\":%zu,\"truncated\":%s}", listed, truncated ? "true" : "false");
}

/* One knob of POST /__payapi/mode: an integer in [min, max] (ratio: a number in [0, 1])
 * stored into *u or *r when present. false: answered 400. */
static bool pa_knob(struct pa_resp *rs, const struct pa_req *rq, const char *name,
                    uint64_t min, uint64_t max, unsigned *u, double *r, bool *given)
{
	char v[32];
	uint64_t x = 0;
	int n = pa_param(rq->body, rq->body_len, name, v, sizeof(v));

	*given = n != -1;
	if (!*given)
		return true;
	if (r ? (n < 0 || !pa_parse_ratio(v, (size_t)n, r))
	      : (n < 0 || !pa_parse_u64(v, (size_t)n, max, &x) || x < min)) {
		pa_invalid(rs, name);
		return false;
	}
	if (u)
		*u = (unsigned)x;
	return true;
}

/* Applies POST /__payapi/mode parameters; all are checked before any is applied. */
static void pa_control_mode(struct pa_resp *rs, const struct pa_req *rq)
{
	struct pa_behaviour b = pa.bhv;
	char v[32];
	int n, m;
	bool err_rate_given, latency_given, rate_given, lock_given, status_given, drop_given;

	n = pa_param(rq->body, rq->body_len, "mode", v, sizeof(v));
	if (n >= 0) {
		for (m = 0; m <= PA_HANGUP; m++)
			if (pa_eq(v, (size_t)n, pa_mode_names[m]))
				break;
		if (m > PA_HANGUP) {
			pa_invalid(rs, "mode");
			return;
		}
		/* a mode replaces the previous behaviour; knobs given with it refine it */
		b = (struct pa_behaviour){ .mode = (enum pa_mode)m, .error_status = 500 };
	} else if (n == -2) {
		pa_invalid(rs, "mode");
		return;
	}
	if (!pa_knob(rs, rq, "error_rate", 0, 0, NULL, &b.error_rate, &err_rate_given) ||
	    !pa_knob(rs, rq, "error_status", 500, 599, &b.error_status, NULL, &status_given) ||
	    !pa_knob(rs, rq, "latency_ms", 0, 120000, &b.latency_ms, NULL, &latency_given) ||
	    !pa_knob(rs, rq, "rate_limit", 0, 1000000, &b.rate_limit, NULL, &rate_given) ||
	    !pa_knob(rs, rq, "lock_rate", 0, 0, NULL, &b.lock_rate, &lock_given) ||
	    !pa_knob(rs, rq, "drop_first", 0, 0, NULL, &b.drop_first, &drop_given))
		return;
	/* a mode without its knob gets a sensible one */
	if (b.mode == PA_FAILING && !err_rate_given)
		b.error_rate = 1.0;
	if (b.mode == PA_SLOW && !latency_given && !b.latency_ms)
		b.latency_ms = 1000;
	if (b.mode == PA_RATELIMIT && !rate_given && !b.rate_limit)
		b.rate_limit = 10;
	if (b.mode == PA_LOCK && !lock_given)
		b.lock_rate = 1.0;
	b.hangup = b.mode == PA_HANGUP;
	if (!b.error_status)
		b.error_status = 500;
	if (b.rate_limit != pa.bhv.rate_limit) {
		pa.rl_tokens = b.rate_limit;
		pa.rl_last = ev_now(pa.loop);
	}
	pa.bhv = b;
	pa_mode_json(&rs->body);
}

void pa_control(struct pa_resp *rs, const struct pa_req *rq)
{
	const char *p = rq->path + strlen("/__payapi/");
	size_t n = rq->path_len - strlen("/__payapi/");

	if (pa_eq(p, n, "mode") && rq->method == PA_POST) {
		pa_control_mode(rs, rq);
	} else if (pa_eq(p, n, "mode") && rq->method == PA_GET) {
		pa_mode_json(&rs->body);
	} else if (pa_eq(p, n, "stats") && rq->method == PA_GET) {
		pa_stats_json(&rs->body);
	} else if (pa_eq(p, n, "reset") && rq->method == PA_POST) {
		uint64_t conns = pa.st.connections;

		memset(&pa.st, 0, sizeof(pa.st));
		pa.st.connections = conns;
		pa_stats_json(&rs->body);
	} else if (pa_eq(p, n, "keys") && rq->method == PA_GET) {
		pa_keys_json(&rs->body, rq);
	} else if (pa_eq(p, n, "arrivals") && rq->method == PA_GET) {
		pa_arrivals_json(&rs->body);
	} else if (pa_eq(p, n, "health") && rq->method == PA_GET) {
		jw_fmt(&rs->body, "{\"status\":\"ok\",\"instance\":\"%s\"}", pa.name);
	} else {
		pa_unrecognized(rs);
	}
}

/* ---- fault modes, applied to API requests by pa_handle (see payapi.h) --------------- */

static bool pa_rate_limited(void)
{
	double now = ev_now(pa.loop);

	if (!pa.bhv.rate_limit)
		return false;
	pa.rl_tokens += (now - pa.rl_last) * pa.bhv.rate_limit;
	if (pa.rl_tokens > pa.bhv.rate_limit)
		pa.rl_tokens = pa.bhv.rate_limit;   /* burst: one second's worth */
	pa.rl_last = now;
	if (pa.rl_tokens < 1.0)
		return true;
	pa.rl_tokens -= 1.0;
	return false;
}

bool pa_fault_refuse(struct pa_resp *rs)
{
	if (pa.bhv.hangup) {
		pa.st.hangups++;
		rs->hangup = true;
		return true;
	}
	if (pa_rate_limited()) {
		pa.st.rate_limited++;
		pa_simple_error(rs, 429, "invalid_request_error", "rate_limit", NULL,
		                "Request rate limit exceeded. Learn more about rate limits here "
		                "https://stripe.com/docs/rate-limits.");
		rs->rl_reason = "global-rate";
		rs->should_retry = "true";
		return true;
	}
	return false;
}

bool pa_fault_lock(struct pa_resp *rs)
{
	if (!(pa.bhv.lock_rate > 0 && pa_rand01() < pa.bhv.lock_rate))
		return false;
	/* another request holds the object: not a rate limit, so no reason header */
	pa.st.lock_timeouts++;
	pa_simple_error(rs, 429, "invalid_request_error", "lock_timeout", NULL,
	                "This object cannot be accessed right now because another API "
	                "request or Stripe process is currently accessing it.");
	rs->should_retry = "true";
	return true;
}

static struct {
	uint64_t k1[PA_DROP_CAP], k2[PA_DROP_CAP];
	uint64_t seq;
} pa_dropped;

bool pa_fault_drop_first(struct pa_resp *rs, const struct pa_req *rq, uint64_t k1, uint64_t k2)
{
	size_t i, n = pa_dropped.seq < PA_DROP_CAP ? (size_t)pa_dropped.seq : PA_DROP_CAP;
	size_t mlen = strlen(PA_DROP_MAGIC);
	bool magic = false;

	for (i = 0; rq->idem_len >= mlen && i + mlen <= rq->idem_len && !magic; i++)
		magic = memcmp(rq->idem + i, PA_DROP_MAGIC, mlen) == 0;
	if (!magic && !(pa.bhv.drop_first > 0 && pa_rand01() < pa.bhv.drop_first))
		return false;
	for (i = 0; i < n; i++)
		if (pa_dropped.k1[i] == k1 && pa_dropped.k2[i] == k2)
			return false;   /* a retry: it goes through */
	i = (size_t)(pa_dropped.seq++ % PA_DROP_CAP);
	pa_dropped.k1[i] = k1;
	pa_dropped.k2[i] = k2;
	pa.st.dropped_first++;
	rs->hangup = true;
	return true;
}

bool pa_fault_error(struct pa_resp *rs)
{
	if (!(pa.bhv.error_rate > 0 && pa_rand01() < pa.bhv.error_rate))
		return false;
	pa.st.injected_errors++;
	pa_simple_error(rs, pa.bhv.error_status, "api_error", NULL, NULL,
	                "An unknown error occurred.");
	rs->should_retry = "true";
	return true;
}
