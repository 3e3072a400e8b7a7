/* httpc.c: libcurl's multi interface on the control thread's libev loop
 * (CURLMOPT_SOCKETFUNCTION -> one ev_io per socket, CURLMOPT_TIMERFUNCTION -> one
 * ev_timer). No call here blocks: name resolution is libcurl's threaded resolver, and
 * curl_multi_socket_action only does the work that is ready. Never used by a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "log.h"

struct httpc {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer timer;
};

/* One socket libcurl wants watched: created at its first CURL_POLL_*, freed at
 * CURL_POLL_REMOVE (libcurl's per-socket pointer holds it meanwhile). */
struct httpc_sock {
	ev_io io;
	struct httpc *h;
};

int httpc_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Every finished transfer: out of the multi handle, then its callback (which may start
 * the transfer again or free it). */
static void httpc_reap(struct httpc *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct httpc_req *r = NULL;
		long status = 0;
		double secs = 0;
		CURLcode res;

		if (m->msg != CURLMSG_DONE)
			continue;
		res = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(m->easy_handle, CURLINFO_TOTAL_TIME, &secs);
		curl_multi_remove_handle(h->multi, m->easy_handle);
		if (!r)
			continue;
		r->active = 0;
		if (res != CURLE_OK && !r->errbuf[0])
			strncpy(r->errbuf, curl_easy_strerror(res), sizeof(r->errbuf) - 1);
		r->done(r, res, status, secs, r->errbuf);
	}
}

static void httpc_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	/* the action may remove the socket, and free s with it (httpc_socket_cb): h first */
	struct httpc *h = ((struct httpc_sock *)w)->h;
	int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(h->multi, w->fd, flags, &running);
	httpc_reap(h);
}

static void httpc_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct httpc *h = t->data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_reap(h);
}

static int httpc_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct httpc *h = userp;
	struct httpc_sock *s = sockp;
	int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			ev_io_stop(h->loop, &s->io);
			free(s);
		}
		curl_multi_assign(h->multi, fd, NULL);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1; /* libcurl fails the transfer */
		s->h = h;
		curl_multi_assign(h->multi, fd, s);
	} else {
		ev_io_stop(h->loop, &s->io);
	}
	ev_io_init(&s->io, httpc_on_io, fd, ev);
	ev_io_start(h->loop, &s->io);
	return 0;
}

/* libcurl asks for one timeout at a time; -1 removes it. A timeout of 0 is served from
 * the loop, not from here (libcurl must not be re-entered from its own callback). */
static int httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *h = userp;

	ev_timer_stop(h->loop, &h->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&h->timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(h->loop, &h->timer);
	}
	return 0;
}

struct httpc *httpc_new(struct ev_loop *loop, char *err, size_t errlen)
{
	struct httpc *h = calloc(1, sizeof(*h));

	if (!h)
		goto fail;
	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi)
		goto fail;
	ev_timer_init(&h->timer, httpc_on_timer, 0., 0.);
	h->timer.data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
fail:
	snprintf(err, errlen, "cannot start the HTTP client (libcurl multi): out of memory");
	free(h);
	return NULL;
}

void httpc_free(struct httpc *h)
{
	if (!h)
		return;
	ev_timer_stop(h->loop, &h->timer);
	/* the requests' owners cancel theirs first (httpc_req_free); what remains is libcurl's
	 * connection cache, whose sockets it reports removed during cleanup */
	curl_multi_cleanup(h->multi);
	free(h);
}

int httpc_req_init(struct httpc_req *r, httpc_done_fn *done, void *arg, double timeout_s)
{
	memset(r, 0, sizeof(*r));
	r->done = done;
	r->arg = arg;
	r->easy = curl_easy_init();
	if (!r->easy)
		return -1;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000 + 0.5));
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_s * 1000 + 0.5));
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "payspoa");
	return 0;
}

void httpc_req_free(struct httpc_req *r)
{
	if (!r->easy)
		return;
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
}

int httpc_start(struct httpc *h, struct httpc_req *r)
{
	r->errbuf[0] = 0;
	if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
		return -1;
	r->active = 1;
	return 0;
}

void httpc_cancel(struct httpc *h, struct httpc_req *r)
{
	if (!r->active)
		return;
	curl_multi_remove_handle(h->multi, r->easy);
	r->active = 0;
}
