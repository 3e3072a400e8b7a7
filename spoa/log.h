/* log.h: JSON log lines, one per event, on stderr or syslog; and log_id, the one way an
 * identifier may appear in a log. Never on the decision path (count there instead), and
 * never with card data, raw identifiers or secrets. */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out); /* 0 or -1 */
int log_enabled(enum log_level lvl);

/* Lines go to syslog(3) with this facility name ("daemon", "user", "local0".."local7")
 * instead of stderr; NULL or "none": back to stderr. 0, or -1 for an unknown name. */
int log_set_syslog(const char *facility);

/* log_json(LOG_LVL_INFO, "listening", "addr", "127.0.0.1:12345", NULL):
 * {"ts":"2026-11-23T21:00:00.123Z","level":"info","event":"listening","addr":"127.0.0.1:12345"}
 * Arguments after the event are key/value string pairs, NULL-terminated. Thread-safe:
 * each line is one write(2) (or one syslog(3) call).
 * The line is always valid JSON, whatever the bytes: valid UTF-8 is kept, any other byte
 * becomes \u00XX (its Latin-1 reading, so nothing is lost), control characters are
 * escaped. A value is cut after LOG_VALUE_MAX bytes of output, a key after LOG_KEY_MAX,
 * on a character boundary, ending in LOG_CUT_MARK; the whole line is at most
 * LOG_LINE_MAX bytes with its newline: pairs that do not fit are left out and the line
 * ends with "truncated":"true". */
#define LOG_LINE_MAX  4096
#define LOG_VALUE_MAX 1024
#define LOG_KEY_MAX   64
#define LOG_CUT_MARK  "[...]"
void log_json(enum log_level lvl, const char *event, ...)
	__attribute__((sentinel));
/* The same with npairs key/value pairs in kv[2 * npairs], for lines built in a loop.
 * log_json takes at most LOG_MAX_PAIRS pairs (the rest are left out). */
#define LOG_MAX_PAIRS 32
void log_json_kv(enum log_level lvl, const char *event, const char *const *kv, size_t npairs);
/* The line log_json_kv would write, into buf (at least LOG_LINE_MAX bytes) without
 * the timestamp's variation for tests: returns its length, newline included. */
size_t log_format(char *buf, enum log_level lvl, const char *ts, const char *event, const char *const *kv,
                  size_t npairs);

/* Identifiers (an idempotency key, an object id, a pin): a log may name one only as
 * log_id's output, "h:" and the first 128 bits of HMAC-SHA256(key, id) in hex, so lines
 * about the same identifier can be matched while the identifier itself (and any
 * dictionary of hashes of likely values) cannot be recovered without the key. */
#define LOG_ID_LEN 34 /* "h:" + 32 hex digits */
void log_id(const void *id, size_t len, char out[LOG_ID_LEN + 1]);
/* The HMAC key: the file's bytes (key_file), else the environment variable key_env's
 * value, at least 16 bytes; neither set: a random key for this process (lines from two
 * runs then do not match), with a warning. Returns 0 (from the file or environment),
 * 1 (random) or -1 with err (set but unreadable or too short: an error, not a guess). */
int log_id_key_load(const char *key_file, const char *key_env, char *err, size_t errlen);

#endif /* LOG_H */
