/* alloc-count.c: the malloc interposer behind alloc-count.h. Must never be linked into
 * the daemon; under a sanitizer it defines the counters only. */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#include "alloc-count.h"

volatile int alloc_counting;
volatile unsigned long alloc_calls;

unsigned long alloc_count_probe(void)
{
	void *(*volatile get)(size_t) = malloc;
	void (*volatile put)(void *) = free;

	alloc_calls = 0;
	alloc_counting = 1;
	put(get(32));
	alloc_counting = 0;
	return alloc_calls;
}

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
