// The few libm functions the Swift overlay does not expose.
#ifndef ADJOINT_CMATH_SHIM_H
#define ADJOINT_CMATH_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>

/// sin(x) and cos(x) from one argument reduction (glibc's sincos).
static inline void adjoint_sincos(double x, double *s, double *c) { sincos(x, s, c); }

#endif
