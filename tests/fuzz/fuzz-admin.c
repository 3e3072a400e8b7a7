/* fuzz-admin.c: the operations parsers on arbitrary bytes: the admin socket's command
 * splitter (spoa/admin.c: admin_next_command, admin_split) fed the input as one stream,
 * at EOF and not, and the metrics endpoint's request-head parser (spoa/metrics.c).
 * Invariants: progress or a stop, never past the input; a command fits its buffer and
 * holds no separator or NUL; words lie inside it, non-empty and blank-free; the head
 * parser answers one of its statuses, the same twice, and 0 only while incomplete. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "fuzz-check.h"
#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void commands(const char *in, size_t len, bool eof)
{
	static char line[ADMIN_LINE_MAX];
	size_t at = 0;

	while (at <= len) {
		size_t used = 0;
		int rc = admin_next_command(in + at, len - at, eof, line, &used);
		char *w[ADMIN_MAX_WORDS];
		int n;

		FUZZ_ASSERT(rc == 1 || rc == 0 || rc == ADMIN_ERR_LONG || rc == ADMIN_ERR_NUL);
		FUZZ_ASSERT(used <= len - at);
		if (rc == 0) {
			FUZZ_ASSERT(!eof && used == 0);
			return;
		}
		if (rc == ADMIN_ERR_LONG)
			return; /* the connection closes */
		if (rc == ADMIN_ERR_NUL) {
			FUZZ_ASSERT(used > 0);
			at += used;
			continue;
		}
		FUZZ_ASSERT(strlen(line) < ADMIN_LINE_MAX && !strpbrk(line, "\n;"));
		n = admin_split(line, w, ADMIN_MAX_WORDS);
		FUZZ_ASSERT(n >= -1 && n <= ADMIN_MAX_WORDS);
		for (int i = 0; i < n; i++) {
			FUZZ_ASSERT(w[i] >= line && w[i] < line + ADMIN_LINE_MAX && *w[i]);
			FUZZ_ASSERT(!strpbrk(w[i], " \t"));
		}
		if (used == 0) /* the last command at EOF */
			return;
		at += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a;
	int st, st2;

	if (size > 3 * ADMIN_LINE_MAX)
		return 0;
	a = malloc(size ? size : 1); /* exactly the input: ASan sees any read past it */
	FUZZ_ASSERT(a);
	memcpy(a, data, size);
	commands(a, size, false);
	commands(a, size, true);
	st = metrics_parse_head(a, size, 8192, false);
	st2 = metrics_parse_head(a, size, 8192, false);
	FUZZ_ASSERT(st == st2);
	FUZZ_ASSERT(st == 0 || st == 200 || st == 400 || st == 404 || st == 405 || st == 431);
	FUZZ_ASSERT(st != 0 || size < 8192);
	st = metrics_parse_head(a, size, 8192, true);
	FUZZ_ASSERT(st != 0);
	free(a);
	return 0;
}
