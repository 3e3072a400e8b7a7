/* logline.h: the parser of HAProxy's outcome log line (the log outcome channel).
 * Pure: no I/O, no allocation, no clock; decodes in place in the caller's buffer.
 *
 * The line is what haproxy.cfg's generated log-format prints (spoa/hapcfg.c), one JSON
 * object per datagram, every value a string built with HAProxy's json(utf8s) converter
 * (2.6 has it; the %{+json} log-format encoding it lacks is never used):
 *
 *   {"decision":"…","backend":"stripe_us","status":"402","latency_ms":"231",
 *    "term":"--","should_retry":"-","rl_reason":"-","err_type":"card_error",
 *    "err_code":"card_declined","decline":"insufficient_funds","object":"-",
 *    "idem":"9f86…","account":"-"}
 *
 * Keys may come in any order; unknown keys with a string or integer value are skipped
 * (a newer HAProxy file with an older payspoa); a repeated key keeps its last value.
 * "-" is HAProxy's mark of an absent sample and reads as absent. Anything else (nested
 * values, true/false, bad escapes, text after the object but blanks) is malformed. */
#ifndef LOGLINE_H
#define LOGLINE_H

#include <stddef.h>

#include "pay-t.h"

/* Longest line the reader accepts (bytes): the generated log-format's fixed part is
 * ~230 bytes, the 64-byte idempotency hash and Stripe's codes fill the rest. HAProxy's
 * `log ... len` is set to this too, so a longer line is cut by HAProxy, never silently
 * by the socket. */
#define LOGLINE_MAX 2048

enum {
	LOGLINE_MALFORMED = -1, /* not the shape above */
	LOGLINE_TRUNCATED = -2, /* ends inside the object (HAProxy's `len` cut it) */
};

/* Parses the line [p, p + len) into *o (zeroed first; strings point into p, which is
 * rewritten where escapes are decoded; o->channel = PAY_CH_LOG). Returns 1 with *o
 * filled, or LOGLINE_MALFORMED / LOGLINE_TRUNCATED with *o unspecified. Never reads
 * outside [p, p + len). */
int logline_parse(char *p, size_t len, struct pay_outcome *o);

#endif /* LOGLINE_H */
