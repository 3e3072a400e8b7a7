/* http.c: the emulated payment API's HTTP/1.1 on buffers: parsing one request (request
 * line, the few headers it reads, Content-Length or chunked bodies) and writing one
 * response. No I/O (conn.c moves the bytes); bounded by PA_HDR_MAX, PA_IN_MAX, PA_OUT_MAX.
 * Ambiguous framing (Content-Length with chunked, two different lengths) is refused. */
#include <stdbool.h>
#include <string.h>

#include "payapi.h"

static char pa_body_buf[PA_BODY_MAX];

const char *pa_reason_phrase(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 402: return "Payment Required";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return status < 500 ? "Client Error" : "Server Error";
	}
}

void pa_resp_init(struct pa_resp *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->status = 200;
	rs->body.buf = pa_body_buf;
	rs->body.cap = sizeof(pa_body_buf);
}

/* The status line, the headers and the body of rs, appended to w (w->full if they do
 * not all fit: the caller then closes rather than send half a response). */
void pa_http_respond(struct pa_jw *w, const struct pa_resp *rs, bool keep_alive)
{
	char rid[8 + PA_ID_LEN];

	pa_make_id(rid, "req_");
	jw_fmt(w, "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	       "Request-Id: %s\r\nX-Payapi-Instance: %s\r\n",
	       rs->status, pa_reason_phrase(rs->status), rs->body.len, rid, pa.name);
	if (rs->replayed)
		jw_cstr(w, "Idempotent-Replayed: true\r\n");
	if (rs->should_retry)
		jw_fmt(w, "Stripe-Should-Retry: %s\r\n", rs->should_retry);
	if (rs->rl_reason)
		jw_fmt(w, "Stripe-Rate-Limited-Reason: %s\r\n", rs->rl_reason);
	if (!keep_alive)
		jw_cstr(w, "Connection: close\r\n");
	jw_cstr(w, "\r\n");
	jw_raw(w, rs->body.buf, rs->body.len);
}

static bool pa_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Walks a chunked body at b[0..avail). With decode false it only measures and writes
 * nothing, so it can run again on the same bytes when more arrive; with decode true
 * (only once the body is known to be complete) it also moves the chunk data together at
 * b[0..*out_len). Returns the bytes the body uses (including trailers), 0 if incomplete,
 * -1 if malformed. */
static long pa_chunked(char *b, size_t avail, bool decode, size_t *out_len)
{
	size_t pos = 0, w = 0;

	for (;;) {
		uint64_t size = 0;
		size_t digits = 0, eol;

		while (pos < avail && pa_hexval(b[pos]) >= 0) {
			if (++digits > 8)
				return -1;
			size = size * 16 + (uint64_t)pa_hexval(b[pos++]);
		}
		if (pos == avail)
			return 0;
		if (!digits)
			return -1;
		eol = pos;
		while (eol < avail && b[eol] != '\n')   /* skip chunk extensions */
			eol++;
		if (eol == avail)
			return 0;
		if (b[eol - 1] != '\r')
			return -1;
		pos = eol + 1;
		if (size == 0)
			break;
		if (size > avail - pos)
			return size > PA_IN_MAX ? -1 : 0;
		if (avail - pos - size < 2)
			return 0;
		if (b[pos + size] != '\r' || b[pos + size + 1] != '\n')
			return -1;
		if (decode)
			memmove(b + w, b + pos, size);
		w += size;
		pos += size + 2;
	}
	/* trailers, up to an empty line */
	for (;;) {
		size_t eol = pos;

		while (eol < avail && b[eol] != '\n')
			eol++;
		if (eol == avail)
			return 0;
		if (eol == pos || b[eol - 1] != '\r')
			return -1;
		if (eol == pos + 1) {
			*out_len = w;
			return (long)(eol + 1);
		}
		pos = eol + 1;
	}
}

/* See payapi.h. */
long pa_http_parse(char *b, size_t avail, struct pa_req *rq)
{
	char *hend, *line, *eol;
	size_t hlen, i, mlen, tlen;
	uint64_t clen = 0;
	bool has_clen = false, chunked = false, http10;

	memset(rq, 0, sizeof(*rq));
	hend = memmem(b, avail, "\r\n\r\n", 4);
	if (!hend)
		return avail >= PA_HDR_MAX ? -431 : 0;
	hlen = (size_t)(hend - b) + 4;
	if (hlen > PA_HDR_MAX)
		return -431;

	/* request line: METHOD SP target SP HTTP/1.x */
	eol = memmem(b, hlen, "\r\n", 2);
	for (mlen = 0; mlen < (size_t)(eol - b) && pa_tchar(b[mlen]); mlen++)
		;
	if (mlen == 0 || mlen > 16 || b[mlen] != ' ')
		return -400;
	if (pa_eq(b, mlen, "GET"))
		rq->method = PA_GET;
	else if (pa_eq(b, mlen, "POST"))
		rq->method = PA_POST;
	else if (pa_eq(b, mlen, "DELETE"))
		rq->method = PA_DELETE;
	else
		rq->method = PA_OTHER;
	line = b + mlen + 1;
	for (tlen = 0; line + tlen < eol && line[tlen] != ' '; tlen++)
		if ((unsigned char)line[tlen] <= ' ' || (unsigned char)line[tlen] >= 0x7f)
			return -400;
	if (tlen > PA_TARGET_MAX)
		return -414;
	if (tlen == 0 || eol - (line + tlen) != 9)
		return -400;
	if (memcmp(line + tlen + 1, "HTTP/1.1", 8) == 0)
		http10 = false;
	else if (memcmp(line + tlen + 1, "HTTP/1.0", 8) == 0)
		http10 = true;
	else
		return -400;
	if (line[0] != '/')
		return -400;
	rq->path = line;
	rq->path_len = tlen;
	for (i = 0; i < tlen; i++) {
		if (line[i] == '?') {
			rq->path_len = i;
			rq->query = line + i + 1;
			rq->query_len = tlen - i - 1;
			break;
		}
	}
	rq->keep_alive = !http10;

	/* header fields */
	line = eol + 2;
	while (line < hend + 2) {
		char *colon, *v, *ve;
		size_t nlen;

		eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
		if (!eol)
			return -400;
		for (nlen = 0; line + nlen < eol && pa_tchar(line[nlen]); nlen++)
			;
		colon = line + nlen;
		if (nlen == 0 || colon >= eol || *colon != ':')
			return -400;   /* includes obsolete line folding */
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (i = 0; v + i < ve; i++)
			if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
				return -400;
		if (pa_ieq(line, nlen, "content-length")) {
			uint64_t n;

			if (!pa_parse_u64(v, (size_t)(ve - v), UINT64_MAX, &n) || (has_clen && n != clen))
				return -400;
			has_clen = true;
			clen = n;
		} else if (pa_ieq(line, nlen, "transfer-encoding")) {
			if (!pa_ieq(v, (size_t)(ve - v), "chunked") || chunked)
				return -501;
			chunked = true;
		} else if (pa_ieq(line, nlen, "connection")) {
			/* a token list; close wins */
			const char *t = v;

			while (t < ve) {
				const char *te = t;

				while (te < ve && *te != ',')
					te++;
				while (t < te && (*t == ' ' || *t == '\t'))
					t++;
				{
					const char *tt = te;

					while (tt > t && (tt[-1] == ' ' || tt[-1] == '\t'))
						tt--;
					if (pa_ieq(t, (size_t)(tt - t), "close"))
						rq->keep_alive = false;
					else if (pa_ieq(t, (size_t)(tt - t), "keep-alive") && http10)
						rq->keep_alive = true;
				}
				t = te + 1;
			}
		} else if (pa_ieq(line, nlen, "expect")) {
			if (pa_ieq(v, (size_t)(ve - v), "100-continue"))
				rq->expect_continue = true;
		} else if (pa_ieq(line, nlen, "idempotency-key")) {
			if (ve - v > 255)
				return -400;
			rq->idem = v;
			rq->idem_len = (size_t)(ve - v);
		} else if (pa_ieq(line, nlen, "stripe-account")) {
			rq->acct = v;
			rq->acct_len = (size_t)(ve - v);
		} else if (pa_ieq(line, nlen, "x-payapi-decline")) {
			rq->decline = v;
			rq->decline_len = (size_t)(ve - v);
		}
		line = eol + 2;
	}
	if (has_clen && chunked)
		return -400;   /* both framings: a smuggling attempt, refuse */

	if (chunked) {
		size_t blen = 0;
		long used = pa_chunked(b + hlen, avail - hlen, false, &blen);

		if (used < 0)
			return -400;
		if (used == 0)
			return avail >= PA_IN_MAX ? -413 : 0;
		pa_chunked(b + hlen, avail - hlen, true, &blen);
		rq->body = b + hlen;
		rq->body_len = blen;
		return (long)hlen + used;
	}
	if (clen > PA_IN_MAX - hlen)
		return -413;
	if (avail - hlen < clen)
		return 0;
	rq->body = b + hlen;
	rq->body_len = (size_t)clen;
	return (long)(hlen + clen);
}
