// The calling thread's CPU affinity (Linux's sched_getaffinity and sched_setaffinity, GNU extensions that Swift's
// Glibc module does not expose), as the raw system calls: the mask is a plain array of words of any length.
#ifndef ADJOINT_CSCHED_SHIM_H
#define ADJOINT_CSCHED_SHIM_H
#include <sys/syscall.h>
#include <unistd.h>

/// The calling thread's mask into `mask` (`size` bytes): the bytes written, or -1 with errno set.
static inline long adjoint_get_thread_affinity(unsigned long size, void *mask) {
  return syscall(SYS_sched_getaffinity, 0, size, mask);
}

/// Sets the calling thread's mask from `mask` (`size` bytes): 0, or -1 with errno set.
static inline long adjoint_set_thread_affinity(unsigned long size, const void *mask) {
  return syscall(SYS_sched_setaffinity, 0, size, mask);
}
#endif
