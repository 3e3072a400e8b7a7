/* test-log.c: the JSON log lines (spoa/log.c) stay valid JSON whatever the bytes (checked
 * by python3's json parser), long values are cut on a character boundary, the whole line
 * is bounded; log_id is HMAC-SHA256 (RFC 4231 vector) under the loaded key. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

/* Lines the JSON parser must accept: python3 reads each, checks it is one object of
 * strings within LOG_LINE_MAX bytes, and prints one line per input line:
 * the number of keys, then key=len(value) for the keys asked for in CHECK. */
static const char checker[] =
	"import json, sys\n"
	"for raw in open(sys.argv[1], 'rb').read().split(b'\\n')[:-1]:\n"
	"    assert len(raw) + 1 <= 4096, len(raw)\n"
	"    o = json.loads(raw.decode('utf-8'))\n"
	"    assert all(isinstance(v, str) for v in o.values())\n"
	"    print(len(o), o.get('backend', ''), len(o.get('long', '')), o.get('truncated', '-'),\n"
	"          o['event'], sep='|')\n";

/* Runs the checker over path; its output into out. */
static void check_json(const char *path, char *out, size_t size)
{
	char cmd[512], script[] = "/tmp/test-log-py-XXXXXX";
	int fd = mkstemp(script);
	FILE *p;
	size_t n;

	ASSERT(fd >= 0);
	ASSERT_EQ(write(fd, checker, sizeof(checker) - 1), (long long)sizeof(checker) - 1);
	close(fd);
	snprintf(cmd, sizeof(cmd), "python3 %s %s", script, path);
	p = popen(cmd, "r");
	ASSERT(p != NULL);
	n = fread(out, 1, size - 1, p);
	out[n] = 0;
	ASSERT_EQ(pclose(p), 0);
	unlink(script);
}

/* Through log_json itself (stderr redirected to a file): a backend name that is not
 * UTF-8, control characters, a 3000-byte value, a line of 40 long pairs, valid
 * multi-byte UTF-8 and a value cut in the middle of multi-byte characters. */
TEST(lines_are_valid_json)
{
	char path[] = "/tmp/test-log-XXXXXX", out[4096], big[3001], cjk[2000];
	const char *kv[2 * 40];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);

	ASSERT(fd >= 0 && saved >= 0);
	memset(big, 'a', 3000);
	big[3000] = 0;
	for (size_t i = 0; i + 3 < sizeof(cjk); i += 3)
		memcpy(cjk + i, "\xe6\x97\xa5", 3), cjk[i + 3] = 0; /* U+65E5, again and again */
	for (int i = 0; i < 40; i++) {
		kv[2 * i] = "long";
		kv[2 * i + 1] = big;
	}
	log_set_level(LOG_LVL_DEBUG);
	ASSERT(dup2(fd, STDERR_FILENO) >= 0);
	log_json(LOG_LVL_INFO, "bad_utf8", "backend", "stripe\xff\xfe_\xc3(\x80", NULL);
	log_json(LOG_LVL_INFO, "controls", "backend", "a\"b\\c\n\t\x01\x7f", NULL);
	log_json(LOG_LVL_INFO, "long", "long", big, NULL);
	log_json_kv(LOG_LVL_INFO, "many", kv, 40);
	log_json(LOG_LVL_INFO, "utf8", "backend", "z\xc3\xbcrich_\xe6\x97\xa5\xf0\x9f\x92\xb3", NULL);
	log_json(LOG_LVL_INFO, "cjk", "long", cjk, NULL);
	log_json(LOG_LVL_INFO, "surrogate\xed\xa0\x80", "backend", "\xf4\x90\x80\x80\xc0\xaf", NULL);
	log_json(LOG_LVL_DEBUG, "debug_shown", NULL);
	log_set_level(LOG_LVL_WARNING);
	log_json(LOG_LVL_INFO, "info_hidden", NULL);
	ASSERT(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fd);
	check_json(path, out, sizeof(out));
	/* invalid bytes read as Latin-1, one character each: nothing lost, nothing merged */
	ASSERT(strstr(out, "4|stripe\xc3\xbf\xc3\xbe_\xc3\x83(\xc2\x80|0|-|bad_utf8\n") != NULL);
	ASSERT(strstr(out, "4|a\"b\\c\n\t\x01\x7f|0|-|controls\n") != NULL);
	/* 1024 bytes of output at most: 1019 a's and the 5-byte mark */
	ASSERT(strstr(out, "4||1024|-|long\n") != NULL);
	ASSERT(strstr(out, "|truncated\n") == NULL);
	ASSERT(strstr(out, "|true|many\n") != NULL);
	ASSERT(strstr(out, "4|z\xc3\xbcrich_\xe6\x97\xa5\xf0\x9f\x92\xb3|0|-|utf8\n") != NULL);
	/* 1024 bytes: 339 whole characters (1017 bytes, 3 each) and the mark: 344 characters */
	ASSERT(strstr(out, "4||344|-|cjk\n") != NULL);
	ASSERT(strstr(out, "surrogate\xc3\xad\xc2\xa0\xc2\x80\n") != NULL);
	ASSERT(strstr(out, "debug_shown") != NULL);
	ASSERT(strstr(out, "info_hidden") == NULL);
	unlink(path);
}

/* Every cut ends on a character boundary with the mark, however the characters fall:
 * `shift` ASCII bytes, then 2-byte é's. */
TEST(cut_on_boundary)
{
	char buf[LOG_LINE_MAX + 1], val[LOG_VALUE_MAX * 2];
	const char *kv[2] = { "v", val };

	for (size_t shift = 0; shift < 8; shift++) {
		char *start, *mark;

		memset(val, 'a', shift);
		for (size_t i = shift; i + 2 < sizeof(val); i += 2)
			memcpy(val + i, "\xc3\xa9", 2), val[i + 2] = 0;
		size_t n = log_format(buf, LOG_LVL_INFO, "t", "e", kv, 1);

		ASSERT(n <= LOG_LINE_MAX);
		buf[n] = 0;
		start = strstr(buf, "\"v\":\"") + 5;
		mark = strstr(buf, LOG_CUT_MARK);
		ASSERT(mark != NULL);
		ASSERT_LE(mark - start + 5, LOG_VALUE_MAX);
		ASSERT_GE(mark - start + 5, LOG_VALUE_MAX - 1);
		ASSERT_EQ((size_t)(mark - start - (ptrdiff_t)shift) % 2, 0); /* whole é's before it */
		ASSERT_STREQ(mark, LOG_CUT_MARK "\"}\n");
	}
}

/* RFC 4231 test case 2 (key "Jefe"): but the key must be 16 bytes at least, so case 1:
 * key = 20 bytes of 0x0b, data "Hi There". From a file, and from the environment. */
TEST(id_is_hmac_sha256)
{
	char path[] = "/tmp/test-log-key-XXXXXX", id[LOG_ID_LEN + 1], id2[LOG_ID_LEN + 1], err[256];
	unsigned char key[20];
	int fd = mkstemp(path);

	memset(key, 0x0b, sizeof(key));
	ASSERT(fd >= 0);
	ASSERT_EQ(write(fd, key, sizeof(key)), 20);
	close(fd);
	ASSERT_EQ(log_id_key_load(path, NULL, err, sizeof(err)), 0);
	log_id("Hi There", 8, id);
	ASSERT_STREQ(id, "h:b0344c61d8db38535ca8afceaf0bf12b");
	/* the same key from the environment gives the same identifier */
	ASSERT_EQ(setenv("TEST_LOG_KEY", "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 1), 0);
	ASSERT_EQ(log_id_key_load(NULL, "TEST_LOG_KEY", err, sizeof(err)), 0);
	log_id("Hi There", 8, id2);
	ASSERT_STREQ(id2, id);
	/* a short key, a missing variable, a missing file: errors, not guesses */
	ASSERT_EQ(setenv("TEST_LOG_KEY", "short", 1), 0);
	ASSERT_EQ(log_id_key_load(NULL, "TEST_LOG_KEY", err, sizeof(err)), -1);
	ASSERT(strstr(err, "shorter than 16") != NULL);
	ASSERT_EQ(log_id_key_load(NULL, "TEST_LOG_KEY_UNSET", err, sizeof(err)), -1);
	ASSERT_EQ(log_id_key_load("/nonexistent/key", NULL, err, sizeof(err)), -1);
	/* no key: a random one, so two runs give different identifiers */
	ASSERT_EQ(log_id_key_load(NULL, NULL, err, sizeof(err)), 1);
	log_id("Hi There", 8, id2);
	ASSERT(strcmp(id2, id) != 0);
	ASSERT_EQ(strlen(id2), LOG_ID_LEN);
	unlink(path);
}

int main(void)
{
	RUN(lines_are_valid_json);
	RUN(cut_on_boundary);
	RUN(id_is_hmac_sha256);
	return test_summary();
}
