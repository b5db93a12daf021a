// The few libm functions the Swift overlay does not expose, and array kernels that need instruction sets Swift
// cannot ask for one function at a time.
#ifndef ADJOINT_CMATH_SHIM_H
#define ADJOINT_CMATH_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__clang__)
#include <cpuid.h>
#define ADJOINT_X86_KERNELS 1
#endif

/// sin(x) and cos(x) from one argument reduction (glibc's sincos).
static inline void adjoint_sincos(double x, double *s, double *c) { sincos(x, s, c); }

// Every multiply and add below rounds on its own (no fused multiply-add), so that each kernel gives, bit for bit,
// what the engine's scalar Swift version of the same formula (Ops/Tanh.swift) gives.
#pragma clang fp contract(off)

/// tanh(x), branch-free: the formula of Ops/Tanh.swift, which explains it, operation for operation.
static inline __attribute__((always_inline)) double adjoint_tanh_kernel(double x) {
  double m = __builtin_fabs(x);
  double z = m * m;
  double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3;
  double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3;
  double y = 2 * (22.0 < m ? 22.0 : m);
  double shifted = y * 1.4426950408889634073599 + 0x1.8p52;
  double n = shifted - 0x1.8p52;
  double r = (y - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
  double rr = r * r;
  double rp = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
  double rq =
      ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr +
      2.00000000000000000009e0;
  uint64_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  bits = (bits + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  double d = rq - rp;
  int rational = m < 0.625;
  double a = rational ? m : 1;
  double b = rational ? m * (z * p) : -2 * d;
  double c = rational ? q : scale * (rq + rp) + d;
  double t = __builtin_copysign(a + b / c, x);
  return m < 0x1p-27 ? x : t;
}

#ifdef ADJOINT_X86_KERNELS
__attribute__((target("avx512f"))) static void adjoint_tanh_avx512(long n, const double *restrict x,
                                                                    double *restrict out) {
  for (long i = 0; i < n; i++) out[i] = adjoint_tanh_kernel(x[i]);
}

__attribute__((target("avx2"))) static void adjoint_tanh_avx2(long n, const double *restrict x,
                                                               double *restrict out) {
  for (long i = 0; i < n; i++) out[i] = adjoint_tanh_kernel(x[i]);
}
#endif

/// Whether none of `x[0..<n]` is an infinity or a NaN (an exponent field of all ones).
static inline __attribute__((always_inline)) int adjoint_all_finite_kernel(long n, const double *restrict x) {
  uint64_t bad = 0;
  for (long i = 0; i < n; i++) {
    uint64_t bits;
    memcpy(&bits, &x[i], sizeof bits);
    bad |= (bits & 0x7ff0000000000000u) == 0x7ff0000000000000u;
  }
  return bad == 0;
}

#ifdef ADJOINT_X86_KERNELS
__attribute__((target("avx512f"))) static int adjoint_all_finite_avx512(long n, const double *restrict x) {
  return adjoint_all_finite_kernel(n, x);
}

__attribute__((target("avx2"))) static int adjoint_all_finite_avx2(long n, const double *restrict x) {
  return adjoint_all_finite_kernel(n, x);
}
#endif

/// The widest vector kernels this processor and its operating system run: 2 for AVX-512, 1 for AVX2, 0 for none.
static inline int adjoint_vector_level(void) {
#ifdef ADJOINT_X86_KERNELS
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  if (!(ecx & (1u << 27)) || !(ecx & (1u << 28))) return 0;  // OSXSAVE and AVX
  unsigned xcr0_low, xcr0_high;
  __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  if ((xcr0_low & 0x6) != 0x6) return 0;  // the OS saves the SSE and AVX state
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
  int avx2 = (ebx >> 5) & 1;
  int avx512 = (ebx >> 16) & 1 && (xcr0_low & 0xe0) == 0xe0;  // AVX-512F, and the OS saves the ZMM state
  return avx512 ? 2 : avx2 ? 1 : 0;
#else
  return 0;
#endif
}

/// `out[i] = tanh(x[i])` for `i` in `0..<n` with the kernels of `level` (from ``adjoint_vector_level``), or 0 when
/// there are none: then the caller runs its own loop. `x` and `out` must not overlap.
static inline int adjoint_tanh_array(int level, long n, const double *restrict x, double *restrict out) {
#ifdef ADJOINT_X86_KERNELS
  if (level >= 2) {
    adjoint_tanh_avx512(n, x, out);
    return 1;
  }
  if (level == 1) {
    adjoint_tanh_avx2(n, x, out);
    return 1;
  }
#endif
  (void)level, (void)n, (void)x, (void)out;
  return 0;
}

/// Whether none of `x[0..<n]` is an infinity or a NaN, with the kernels of `level`: 1 if so, 0 if not, -1 when
/// `level` has no kernels (then the caller checks itself).
static inline int adjoint_all_finite(int level, long n, const double *restrict x) {
#ifdef ADJOINT_X86_KERNELS
  if (level >= 2) return adjoint_all_finite_avx512(n, x);
  if (level == 1) return adjoint_all_finite_avx2(n, x);
#endif
  (void)level, (void)n, (void)x;
  return -1;
}

#pragma clang fp contract(on)
#endif
