/* webhook.c: signed webhooks on the control thread. An event becomes one delivery per
 * URL in a queue sized at start (webhooks.queue; past it, deliveries are dropped and
 * counted); each attempt is an HTTP POST through httpc.c, signed anew
 * (Payspoa-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>, Stripe's scheme),
 * and a timeout, a transport error or a non-2xx answer is retried after
 * min(backoff_max_s, backoff_s x 2^(attempt-1)) x a jitter in [0.5, 1). Never on a worker. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "clock.h"
#include "log.h"
#include "policy-t.h"
#include "webhook.h"

#define WH_BODY_MAX    1024
#define WH_SECRET_MAX  4096
#define WH_EVICT_EVERY_US  (10 * 1000000ull) /* pin eviction events: one per table per 10 s */

struct wh_item {
	struct httpc_req req;        /* first: the transfer's callback finds the item */
	ev_timer retry;
	struct webhook *w;
	bool used;
	unsigned attempt;            /* attempts made */
	unsigned retries;            /* allowed after the first (the settings when queued) */
	double backoff_s, backoff_max_s;
	struct curl_slist *hdrs;
	size_t len;
	char url[POL_URL_MAX + 1];
	char body[WH_BODY_MAX];
};

struct webhook {
	struct ev_loop *loop;
	struct httpc *h;
	struct webhook_counts n;
	int nurls;
	char urls[POL_MAX_WEBHOOKS][POL_URL_MAX + 1];
	uint8_t secret[WH_SECRET_MAX];
	size_t secretlen;
	unsigned retries;
	double backoff_s, backoff_max_s, timeout_s;
	uint64_t rng;
	uint64_t seq;                /* event ids: evt_<start time><seq> */
	uint64_t start_s;
	uint64_t dropped_logged;     /* n.dropped at the last warning */
	/* what the engine showed at the last tick */
	bool based;
	int nb;
	char brk[POL_MAX_BACKENDS][12];
	char anom[POL_MAX_BACKENDS][12];
	int nfc;
	uint8_t shed[POL_MAX_ACCOUNTS * POL_MAX_CLASSES];
	uint64_t cuts, evicted[3], evict_at_us[3], evicted_told[3];
	unsigned nitems;
	struct wh_item items[];
};

static void wh_json_str(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			n += (size_t)snprintf(out + n, size - n, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f) /* names are ASCII; anything else is escaped as a byte */
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", ch);
		else
			out[n++] = (char)ch;
	}
	out[n] = 0;
}

int webhook_sign(const uint8_t *secret, size_t secretlen, long long t, const char *body, size_t len,
                 char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char ts[24];
	int n = snprintf(ts, sizeof(ts), "%lld.", t);
	size_t k, off;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end() };
	size_t outl = 0;
	int rc = -1;

	if (!ctx || !EVP_MAC_init(ctx, secret, secretlen, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)n) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body, len) || !EVP_MAC_final(ctx, mac, &outl, sizeof(mac)))
		goto out;
	maclen = (unsigned)outl;
	off = (size_t)snprintf(out, outlen, "t=%lld,v1=", t);
	if (off + 2 * maclen + 1 > outlen)
		goto out;
	for (k = 0; k < maclen; k++)
		snprintf(out + off + 2 * k, 3, "%02x", mac[k]);
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rc;
}

/* xorshift64*: the jitter needs no more */
static double wh_rand01(struct webhook *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return (double)((w->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void wh_item_release(struct wh_item *it)
{
	curl_slist_free_all(it->hdrs);
	it->hdrs = NULL;
	it->used = false;
}

static void wh_attempt(struct wh_item *it);

static void wh_on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	wh_attempt(t->data);
}

static void wh_failed_attempt(struct wh_item *it, const char *why)
{
	struct webhook *w = it->w;
	double d;
	char n[16], wait[32];

	if (it->attempt > it->retries) {
		w->n.failed++;
		snprintf(n, sizeof(n), "%u", it->attempt);
		log_json(LOG_LVL_WARNING, "webhook_failed", "url", it->url, "attempts", n, "reason", why,
		         "effect", "event given up", NULL);
		wh_item_release(it);
		return;
	}
	/* attempt k (1-based) failed: wait backoff x 2^(k-1), capped, times [0.5, 1) */
	d = it->backoff_s;
	for (unsigned k = 1; k < it->attempt && d < it->backoff_max_s; k++)
		d *= 2;
	if (d > it->backoff_max_s)
		d = it->backoff_max_s;
	d *= 0.5 + 0.5 * wh_rand01(w);
	snprintf(n, sizeof(n), "%u", it->attempt);
	snprintf(wait, sizeof(wait), "%.3f", d);
	log_json(LOG_LVL_DEBUG, "webhook_retry", "url", it->url, "attempt", n, "reason", why, "wait_s", wait, NULL);
	ev_timer_set(&it->retry, d, 0.);
	ev_timer_start(w->loop, &it->retry);
}

static void wh_done(struct httpc_req *r, CURLcode res, long status, double secs, const char *err)
{
	struct wh_item *it = (struct wh_item *)r;
	char why[CURL_ERROR_SIZE + 64];

	if (res == CURLE_OK && status >= 200 && status < 300) {
		it->w->n.sent++;
		wh_item_release(it);
		return;
	}
	if (res != CURLE_OK)
		snprintf(why, sizeof(why), "%s (curl error %d)", err, (int)res);
	else
		snprintf(why, sizeof(why), "HTTP status %ld", status);
	wh_failed_attempt(it, why);
}

/* One attempt, signed with the time it leaves. */
static void wh_attempt(struct wh_item *it)
{
	struct webhook *w = it->w;
	char sig[160], hdr[200];

	if (it->attempt > 0)
		w->n.retried++;
	it->attempt++;
	curl_slist_free_all(it->hdrs);
	it->hdrs = NULL;
	if (webhook_sign(w->secret, w->secretlen, (long long)(clock_wall_us() / 1000000), it->body, it->len, sig,
	                 sizeof(sig)) < 0) {
		wh_failed_attempt(it, "cannot sign (OpenSSL HMAC)");
		return;
	}
	snprintf(hdr, sizeof(hdr), "Payspoa-Signature: %s", sig);
	it->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!it->hdrs || !curl_slist_append(it->hdrs, hdr)) { /* appends in place, or fails */
		wh_failed_attempt(it, "out of memory");
		return;
	}
	curl_easy_setopt(it->req.easy, CURLOPT_HTTPHEADER, it->hdrs);
	if (httpc_start(w->h, &it->req) < 0)
		wh_failed_attempt(it, "the HTTP client refused the transfer");
}

void webhook_emit(struct webhook *w, const char *type, const char *data_json)
{
	char body[WH_BODY_MAX];
	int len, u;
	unsigned i = 0;

	if (!w || !w->nurls)
		return;
	w->n.events++;
	len = snprintf(body, sizeof(body), "{\"id\":\"evt_%llx%06llx\",\"type\":\"%s\",\"created\":%llu,\"data\":%s}",
	               (unsigned long long)w->start_s, (unsigned long long)++w->seq, type,
	               (unsigned long long)(clock_wall_us() / 1000000), data_json);
	if (len < 0 || (size_t)len >= sizeof(body))
		return; /* cannot happen with the events below (names are bounded) */
	for (u = 0; u < w->nurls; u++) {
		struct wh_item *it = NULL;

		for (; i < w->nitems; i++) {
			if (!w->items[i].used) {
				it = &w->items[i];
				break;
			}
		}
		if (it && !it->req.easy && httpc_req_init(&it->req, wh_done, it, w->timeout_s) < 0)
			it = NULL; /* out of memory: as good as full */
		if (!it) {
			w->n.dropped++;
			continue;
		}
		it->used = true;
		it->attempt = 0;
		it->retries = w->retries;
		it->backoff_s = w->backoff_s;
		it->backoff_max_s = w->backoff_max_s;
		snprintf(it->url, sizeof(it->url), "%s", w->urls[u]);
		memcpy(it->body, body, (size_t)len + 1);
		it->len = (size_t)len;
		curl_easy_setopt(it->req.easy, CURLOPT_URL, it->url);
		curl_easy_setopt(it->req.easy, CURLOPT_POSTFIELDS, it->body);
		curl_easy_setopt(it->req.easy, CURLOPT_POSTFIELDSIZE, (long)it->len);
		curl_easy_setopt(it->req.easy, CURLOPT_TIMEOUT_MS, (long)(w->timeout_s * 1000 + 0.5));
		curl_easy_setopt(it->req.easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(w->timeout_s * 1000 + 0.5));
		wh_attempt(it);
	}
	if (w->n.dropped != w->dropped_logged) {
		char n[24];

		snprintf(n, sizeof(n), "%llu", (unsigned long long)w->n.dropped);
		log_json(LOG_LVL_WARNING, "webhook_dropped", "type", type, "dropped_total", n,
		         "effect", "the webhook queue is full (webhooks.queue)", NULL);
		w->dropped_logged = w->n.dropped;
	}
}

/* The secret: the file's bytes (one trailing newline dropped) or the variable's. */
static int wh_secret(const struct policy *p, uint8_t *out, size_t *len, char *err, size_t errlen)
{
	ssize_t r;
	size_t n = 0;
	int fd;

	if (p->hook.secret_file[0]) {
		fd = open(p->hook.secret_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			snprintf(err, errlen, "webhooks.secret_file '%s': %s", p->hook.secret_file, strerror(errno));
			return -1;
		}
		while (n < WH_SECRET_MAX && (r = read(fd, out + n, WH_SECRET_MAX - n)) > 0)
			n += (size_t)r;
		close(fd);
		if (n == WH_SECRET_MAX) {
			snprintf(err, errlen, "webhooks.secret_file '%s': longer than %d bytes", p->hook.secret_file,
			         WH_SECRET_MAX - 1);
			return -1;
		}
		if (n && out[n - 1] == '\n')
			n--;
		if (n && out[n - 1] == '\r')
			n--;
	} else {
		const char *v = getenv(p->hook.secret_env);

		n = v ? strlen(v) : 0;
		if (n >= WH_SECRET_MAX) {
			snprintf(err, errlen, "webhooks.secret_env %s: longer than %d bytes", p->hook.secret_env, WH_SECRET_MAX - 1);
			return -1;
		}
		if (n)
			memcpy(out, v, n);
	}
	if (n == 0) {
		snprintf(err, errlen, "webhooks: the secret (%s %s) is missing or empty",
		         p->hook.secret_file[0] ? "file" : "environment variable",
		         p->hook.secret_file[0] ? p->hook.secret_file : p->hook.secret_env);
		return -1;
	}
	*len = n;
	return 0;
}

int webhook_reconfigure(struct webhook *w, const struct policy *p, char *err, size_t errlen)
{
	uint8_t secret[WH_SECRET_MAX];
	size_t len = 0;
	int i;

	if (p->hook.nurls && wh_secret(p, secret, &len, err, errlen) < 0)
		return -1;
	w->nurls = p->hook.nurls;
	for (i = 0; i < p->hook.nurls; i++)
		snprintf(w->urls[i], sizeof(w->urls[i]), "%s", p->hook.urls[i]);
	memcpy(w->secret, secret, len);
	w->secretlen = len;
	w->retries = p->hook.retries;
	w->backoff_s = p->hook.backoff_s;
	w->backoff_max_s = p->hook.backoff_max_s;
	w->timeout_s = p->hook.timeout_s;
	return 0;
}

struct webhook *webhook_new(struct ev_loop *loop, struct httpc *h, const struct policy *p, char *err,
                            size_t errlen)
{
	/* the queue exists even without URLs (a reload may add some); each item's libcurl
	 * handle is made at its first use */
	unsigned n = p->hook.queue, i;
	struct webhook *w = calloc(1, sizeof(*w) + n * sizeof(w->items[0]));

	if (!w) {
		snprintf(err, errlen, "webhooks: out of memory for a queue of %u", n);
		return NULL;
	}
	w->loop = loop;
	w->h = h;
	w->start_s = clock_wall_us() / 1000000;
	w->rng = clock_mono_us() ^ (uint64_t)getpid() << 32 ^ 0x9e3779b97f4a7c15ull;
	for (i = 0; i < n; i++) {
		struct wh_item *it = &w->items[i];

		w->nitems++;
		it->w = w;
		ev_timer_init(&it->retry, wh_on_retry, 0., 0.);
		it->retry.data = it;
	}
	if (webhook_reconfigure(w, p, err, errlen) < 0)
		goto fail;
	return w;
fail:
	webhook_free(w);
	return NULL;
}

void webhook_free(struct webhook *w)
{
	unsigned i;

	if (!w)
		return;
	for (i = 0; i < w->nitems; i++) {
		struct wh_item *it = &w->items[i];

		ev_timer_stop(w->loop, &it->retry);
		httpc_cancel(w->h, &it->req);
		httpc_req_free(&it->req);
		curl_slist_free_all(it->hdrs);
	}
	memset(w->secret, 0, sizeof(w->secret));
	free(w);
}

void webhook_get_counts(const struct webhook *w, struct webhook_counts *c)
{
	if (w)
		*c = w->n;
}

void webhook_rebase(struct webhook *w)
{
	if (w)
		w->based = false;
}

static const char *wh_breaker_event(const char *st)
{
	if (!strcmp(st, "open"))
		return "breaker.opened";
	if (!strcmp(st, "half-open"))
		return "breaker.half_opened";
	if (!strcmp(st, "degraded"))
		return "breaker.degraded";
	return "breaker.closed";
}

void webhook_watch(struct webhook *w, struct pol_engine *e, uint64_t now_us)
{
	static const char *const table[3] = { "idem", "object", "account" };
	struct pol_learn_info li;
	struct pol_forecast_info fi;
	struct pol_stats st;
	char data[WH_BODY_MAX / 2], a[2][2 * POL_NAME_MAX + 8];
	bool emit;
	unsigned i;
	int t;

	if (!w || !w->nurls)
		return;
	emit = w->based;
	for (i = 0; i < POL_MAX_BACKENDS && pol_engine_learn_info(e, i, now_us, &li) == 0; i++) {
		if (emit && strcmp(w->brk[i], li.breaker)) {
			wh_json_str(a[0], sizeof(a[0]), li.name);
			snprintf(data, sizeof(data), "{\"backend\":\"%s\",\"breaker\":\"%s\",\"previous\":\"%s\",\"trips\":%u}",
			         a[0], li.breaker, w->brk[i], li.trips);
			webhook_emit(w, wh_breaker_event(li.breaker), data);
		}
		if (emit && strcmp(w->anom[i], li.anomaly)) {
			wh_json_str(a[0], sizeof(a[0]), li.name);
			snprintf(data, sizeof(data), "{\"backend\":\"%s\",\"anomaly\":\"%s\"}", a[0], li.anomaly);
			webhook_emit(w, strcmp(li.anomaly, "normal") ? "anomaly.started" : "anomaly.ended", data);
		}
		snprintf(w->brk[i], sizeof(w->brk[i]), "%s", li.breaker);
		snprintf(w->anom[i], sizeof(w->anom[i]), "%s", li.anomaly);
	}
	w->nb = (int)i;
	for (i = 0; i < sizeof(w->shed) && pol_engine_forecast_info(e, i, now_us, &fi) == 0; i++) {
		if (emit && w->shed[i] != fi.shed) {
			wh_json_str(a[0], sizeof(a[0]), fi.account);
			wh_json_str(a[1], sizeof(a[1]), fi.class_name);
			snprintf(data, sizeof(data),
			         "{\"account\":\"%s\",\"class\":\"%s\",\"demand_rps\":%.2f,\"budget_rps\":%.2f}", a[0], a[1],
			         fi.next_rps, fi.budget_rps);
			webhook_emit(w, fi.shed ? "shedding.started" : "shedding.stopped", data);
		}
		w->shed[i] = fi.shed;
	}
	w->nfc = (int)i;
	pol_engine_stats(e, now_us, &st);
	if (emit && st.budget_cuts > w->cuts) {
		snprintf(data, sizeof(data), "{\"cuts\":%llu,\"cuts_total\":%llu}",
		         (unsigned long long)(st.budget_cuts - w->cuts), (unsigned long long)st.budget_cuts);
		webhook_emit(w, "budget.cut", data);
	}
	w->cuts = st.budget_cuts;
	for (t = 0; t < 3; t++) {
		if (!emit) {
			w->evicted[t] = w->evicted_told[t] = st.pin_evicted[t];
			continue;
		}
		w->evicted[t] = st.pin_evicted[t];
		/* evictions come in floods under load: one event per table per 10 s, with the count */
		if (w->evicted[t] > w->evicted_told[t] && now_us - w->evict_at_us[t] >= WH_EVICT_EVERY_US) {
			snprintf(data, sizeof(data), "{\"table\":\"%s\",\"evicted\":%llu,\"evicted_total\":%llu}", table[t],
			         (unsigned long long)(w->evicted[t] - w->evicted_told[t]), (unsigned long long)w->evicted[t]);
			webhook_emit(w, "pins.evicted", data);
			w->evicted_told[t] = w->evicted[t];
			w->evict_at_us[t] = now_us;
		}
	}
	w->based = true;
}
