#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H

#include <stdbool.h>
#include <stdint.h>

/// True when this build counts allocations (Linux with glibc); elsewhere the counter stays 0.
bool malloc_counter_is_available(void);

/// The number of heap allocations (malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc) the
/// calling thread has made since it started. Subtract two readings to count the allocations of a stretch of code.
uint64_t malloc_counter_thread_allocations(void);

#endif
