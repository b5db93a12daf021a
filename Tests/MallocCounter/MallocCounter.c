// Counts heap allocations per thread by interposing the allocation functions of the C library.
//
// The test executable defines malloc and its siblings, so every call in the process (Swift runtime included) lands
// here first; each wrapper bumps a thread-local counter and forwards to glibc's own implementation (`__libc_malloc`
// and friends, which `malloc` itself is an alias of), so allocation behaves exactly as without the shim. `free` is not
// wrapped. The counter is initial-exec TLS, which never allocates, so reading or bumping it cannot recurse.
// Only glibc exports the `__libc_*` entry points; elsewhere the shim compiles to a counter that is never bumped. Under
// a sanitizer, which intercepts the allocation functions itself, the shim stays out of the way the same way.

#include "MallocCounter.h"

#ifndef __has_feature
#define __has_feature(feature) 0
#endif

#if defined(__linux__) && defined(__GLIBC__) && !__has_feature(thread_sanitizer) && !__has_feature(address_sanitizer)

#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static __thread uint64_t allocations __attribute__((tls_model("initial-exec")));

bool malloc_counter_is_available(void) { return true; }

uint64_t malloc_counter_thread_allocations(void) { return allocations; }

void *malloc(size_t size) {
  allocations += 1;
  return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
  allocations += 1;
  return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
  allocations += 1;
  return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
  allocations += 1;
  return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
  allocations += 1;
  return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
  allocations += 1;
  // glibc's checks: a power of two that is a multiple of sizeof(void *).
  if (alignment == 0 || alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) {
    return EINVAL;
  }
  void *pointer = __libc_memalign(alignment, size);
  if (pointer == NULL) {
    return ENOMEM;
  }
  *result = pointer;
  return 0;
}

#else

bool malloc_counter_is_available(void) { return false; }

uint64_t malloc_counter_thread_allocations(void) { return 0; }

#endif
