/* log.h: JSON log lines on stderr, one per event. Never on the decision path (count
 * there instead), and never with card data, raw identifiers or secrets. */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
int log_level_parse(const char *s, enum log_level *out); /* 0 or -1 */
int log_enabled(enum log_level lvl);

/* log_json(LOG_LVL_INFO, "listening", "addr", "127.0.0.1:12345", NULL):
 * {"ts":"2026-11-23T21:00:00.123Z","level":"info","event":"listening","addr":"127.0.0.1:12345"}
 * Arguments after the event are key/value string pairs, NULL-terminated; values are
 * JSON-escaped. Thread-safe: each line is one write(2). */
void log_json(enum log_level lvl, const char *event, ...)
	__attribute__((sentinel));
/* The same with npairs key/value pairs in kv[2 * npairs], for lines built in a loop.
 * log_json takes at most LOG_MAX_PAIRS pairs (the rest are left out). */
#define LOG_MAX_PAIRS 32
void log_json_kv(enum log_level lvl, const char *event, const char *const *kv, size_t npairs);

#endif /* LOG_H */
