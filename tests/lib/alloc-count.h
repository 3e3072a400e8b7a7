/* alloc-count.h: counts the heap calls a program makes while `alloc_counting` is set,
 * by interposing malloc and friends over glibc's (__libc_*). For the zero-allocation
 * test and bench/policy-bench.
 *
 * The interposer lives in alloc-count.c, a member of libtest.a. The linker takes it
 * only into programs that name alloc_counting or alloc_calls (the Makefile links the
 * C library ahead of libtest.a, so no program pulls it in just by calling malloc), and
 * it compiles to counters alone under a sanitizer, which interposes the same functions:
 * there ALLOC_COUNT_WORKS is 0 and nothing is counted. */
#ifndef ALLOC_COUNT_H
#define ALLOC_COUNT_H

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

/* Set to count; heap calls (malloc, calloc, realloc, free of non-NULL, the aligned
 * allocators) made meanwhile, from any thread, add to alloc_calls. */
extern volatile int alloc_counting;
extern volatile unsigned long alloc_calls;

/* One malloc and one free, counted (alloc_calls is reset first): returns the number of
 * heap calls seen, 2 when the counter works. Called through pointers the compiler
 * cannot see through, so that it cannot drop the pair as it may drop free(malloc(n))
 * written in a test. */
unsigned long alloc_count_probe(void);

#endif /* ALLOC_COUNT_H */
