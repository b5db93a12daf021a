// Sixteen ASCII digits at once with SSE2 (part of every x86-64 processor), for AdjointJSON's number reader. Inline,
// so that Swift inlines it where numbers are read; a plain loop elsewhere.
#ifndef ADJOINT_CDIGITS_SHIM_H
#define ADJOINT_CDIGITS_SHIM_H
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// Reads the run of ASCII digits at the start of the 16 bytes at `p` (all of which must be readable): returns its
/// length n (0...16) and stores in `*value` the number that its digits make followed by 16 - n zeros (so that the
/// first digit always weighs 10^15). No branch depends on the bytes.
static inline int adjoint_sixteen_digits(const uint8_t *p, uint64_t *value) {
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8('0'));
  // A byte is a digit when, less '0', it is at most 9 (unsigned).
  __m128i isDigit = _mm_cmpeq_epi8(_mm_subs_epu8(d, _mm_set1_epi8(9)), zero);
  unsigned nonDigits = (unsigned)_mm_movemask_epi8(isDigit) ^ 0xFFFFu;
  int n = __builtin_ctz(nonDigits | 0x10000u);
  // Bytes n... become zero digits.
  __m128i index = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  d = _mm_and_si128(d, _mm_cmpgt_epi8(_mm_set1_epi8((char)n), index));
  // Pairs (10a + b), fours (100a + b), eights (10000a + b): each step multiplies adjacent lanes and adds them.
  __m128i pairsLow = _mm_madd_epi16(_mm_unpacklo_epi8(d, zero), _mm_set1_epi32(0x0001000A));
  __m128i pairsHigh = _mm_madd_epi16(_mm_unpackhi_epi8(d, zero), _mm_set1_epi32(0x0001000A));
  __m128i fours = _mm_madd_epi16(_mm_packs_epi32(pairsLow, pairsHigh), _mm_set1_epi32(0x00010064));
  __m128i eights = _mm_madd_epi16(_mm_packs_epi32(fours, fours), _mm_set1_epi32(0x00012710));
  uint64_t high = (uint32_t)_mm_cvtsi128_si32(eights);
  uint64_t low = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(eights, 4));
  *value = high * 100000000u + low;
  return n;
#else
  uint64_t v = 0;
  int n = 0;
  while (n < 16 && (uint8_t)(p[n] - '0') < 10) {
    v = v * 10 + (uint64_t)(p[n] - '0');
    n += 1;
  }
  for (int i = n; i < 16; i++) v *= 10;
  *value = v;
  return n;
#endif
}
#endif
