/* test.h: a tiny test harness. Each case runs in its own process with a time limit,
 * so a crash or a hang fails that case alone. ASSERT_* print both sides.
 *
 *   TEST(codec_varint) { ASSERT_EQ(spop_varint_len(240), 2); }
 *   int main(void) { RUN(codec_varint); return test_summary(); }
 *
 * Output: one "PASS name" / "FAIL name" / "SKIP name" line per case (tests/run counts
 * them). */
#ifndef TEST_H
#define TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name) static void name(void)

#define TEST_FAIL_(...) do { \
	fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

/* A case that cannot run here (say why): counted as skipped, never as passed. */
#define TEST_SKIP_STATUS 77
#define TEST_SKIP(...) do { fprintf(stderr, "  skipped: "); fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); exit(TEST_SKIP_STATUS); } while (0)

#define ASSERT(c) do { if (!(c)) TEST_FAIL_("assertion failed: %s", #c); } while (0)
#define ASSERT_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define ASSERT_NE(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ == b_) TEST_FAIL_("%s != %s: both %lld", #a, #b, a_); } while (0)
#define ASSERT_GE(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ < b_) TEST_FAIL_("%s >= %s: %lld < %lld", #a, #b, a_, b_); } while (0)
#define ASSERT_LE(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ > b_) TEST_FAIL_("%s <= %s: %lld > %lld", #a, #b, a_, b_); } while (0)
#define ASSERT_NEAR(a, b, eps) do { double a_ = (double)(a), b_ = (double)(b); \
	if (a_ - b_ > (eps) || b_ - a_ > (eps)) \
		TEST_FAIL_("%s ~ %s: %.9g vs %.9g (eps %g)", #a, #b, a_, b_, (double)(eps)); } while (0)
#define ASSERT_STREQ(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_)) TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, \
		a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define ASSERT_MEMEQ(a, b, n) do { if (memcmp((a), (b), (n))) { \
	const unsigned char *x_ = (const void *)(a), *y_ = (const void *)(b); size_t i_; \
	fprintf(stderr, "  got:"); for (i_ = 0; i_ < (size_t)(n); i_++) fprintf(stderr, " %02x", x_[i_]); \
	fprintf(stderr, "\n  exp:"); for (i_ = 0; i_ < (size_t)(n); i_++) fprintf(stderr, " %02x", y_[i_]); \
	fputc('\n', stderr); TEST_FAIL_("%s == %s (%zu bytes)", #a, #b, (size_t)(n)); } } while (0)

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 60
#endif

/* Run fn in a child process killed past timeout_s (SIGALRM), print its PASS/FAIL/SKIP
 * line and count it. A case passes by returning or exit(0). */
void test_run_(const char *name, void (*fn)(void), unsigned timeout_s);

/* The case's time limit is the including file's TEST_TIMEOUT_S (define it before
 * including test.h to change it). */
#define RUN(name) test_run_(#name, name, TEST_TIMEOUT_S)

/* A case that starts threads of its own (or the product's): with TEST_THREADED_ONLY=1 in
 * the environment (tests/run tsan, for the unit programs) only these run, silently
 * leaving the others out, since ThreadSanitizer finds nothing in one thread and slows a
 * case ~5-10x. */
#define RUN_THREADED(name) test_run_threaded_(#name, name, TEST_TIMEOUT_S)
void test_run_threaded_(const char *name, void (*fn)(void), unsigned timeout_s);

/* TEST_TIME_SCALE (environment; tests/run sets 5 for sanitizer builds, default 1): every
 * wait deadline of the test library is multiplied by it, and so is each case's time
 * limit. Scenario durations (send for 3 s) are never scaled: only how long a test waits
 * for something that must happen. test_scale_ms(ms) is ms times the scale. */
double test_time_scale(void);
int test_scale_ms(int ms);

/* The program's exit code: 1 if any case failed, else 0. */
int test_summary(void);

#endif /* TEST_H */
