/* test-pol-alloc.h: counts heap calls made while `alloc_counting` is set, by
 * interposing malloc and friends over glibc's (__libc_*). For the zero-allocation test
 * and bench/policy-bench. Include from exactly one file of a program, and not under a
 * sanitizer (they interpose the same functions). */
#ifndef TEST_POL_ALLOC_H
#define TEST_POL_ALLOC_H

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_COUNT_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define ALLOC_COUNT_WORKS 0
#endif
#endif
#ifndef ALLOC_COUNT_WORKS
#define ALLOC_COUNT_WORKS 1
#endif

static volatile int alloc_counting;
static volatile unsigned long alloc_calls;

#if ALLOC_COUNT_WORKS
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

#define ALLOC_SEEN() do { if (alloc_counting) alloc_calls++; } while (0)
void *malloc(size_t n) { ALLOC_SEEN(); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { ALLOC_SEEN(); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { ALLOC_SEEN(); return __libc_realloc(p, n); }
void free(void *p) { if (p) ALLOC_SEEN(); __libc_free(p); }
void *aligned_alloc(size_t a, size_t n) { ALLOC_SEEN(); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { ALLOC_SEEN(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n)
{
	ALLOC_SEEN();
	*out = __libc_memalign(a, n);
	return *out ? 0 : ENOMEM;
}
#endif

#endif /* TEST_POL_ALLOC_H */
