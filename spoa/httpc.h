/* httpc.h: asynchronous HTTP(S) client for the control thread: one libcurl multi handle
 * driven by the control loop (socket and timer callbacks as libev watchers). Probes and
 * webhooks use it; nothing here ever runs on a worker or blocks the loop. */
#ifndef HTTPC_H
#define HTTPC_H

#include <curl/curl.h>
#include <ev.h>
#include <stdint.h>

struct httpc;
struct httpc_req;

/* Called on the control thread when a transfer ends (and is already out of the multi
 * handle): res is CURLE_OK or the transport/TLS error, status the HTTP status (0 without
 * an answer), seconds the transfer's total time, err libcurl's message ("" when none). */
typedef void httpc_done_fn(struct httpc_req *r, CURLcode res, long status, double seconds, const char *err);

/* A transfer: the caller embeds it, sets up easy (options, URL, body) with
 * httpc_req_init, then httpc_start. */
struct httpc_req {
	CURL *easy;
	httpc_done_fn *done;
	void *arg;
	int active;                  /* between httpc_start and done (or httpc_cancel) */
	char errbuf[CURL_ERROR_SIZE];
};

/* curl_global_init: once, before any thread starts (libcurl's rule). 0 or -1. */
int httpc_global_init(void);
struct httpc *httpc_new(struct ev_loop *loop, char *err, size_t errlen);
void httpc_free(struct httpc *h);   /* cancels what runs; accepts NULL */

/* Creates r's easy handle with the options every transfer shares: no signals, no
 * redirects, TLS peer and host verified, only http/https, a total time limit of
 * timeout_s, the error buffer. 0 or -1 (out of memory). */
int httpc_req_init(struct httpc_req *r, httpc_done_fn *done, void *arg, double timeout_s);
void httpc_req_free(struct httpc_req *r);   /* after httpc_cancel if active; accepts a freed one */
/* Starts r (not already active): 0, or -1 (the multi handle refused it). */
int httpc_start(struct httpc *h, struct httpc_req *r);
/* Stops an active transfer without calling done. */
void httpc_cancel(struct httpc *h, struct httpc_req *r);

#endif /* HTTPC_H */
