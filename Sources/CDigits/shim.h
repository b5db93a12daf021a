// Up to 32 ASCII digits at once with SSE2 (part of every x86-64 processor), for AdjointJSON's number reader. Inline,
// so that Swift inlines it where numbers are read; a plain loop elsewhere.
#ifndef ADJOINT_CDIGITS_SHIM_H
#define ADJOINT_CDIGITS_SHIM_H
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// Reads the run of ASCII digits at the start of the 32 bytes at `p` (all of which must be readable): returns its
/// length m (0...32) and stores in `*value` the number that its first min(m, 16) digits make followed by zeros up to
/// 16 digits (so that the first digit always weighs 10^15). No branch depends on the bytes, and the length depends
/// on the loads and one comparison only (not on the conversion).
static inline int adjoint_leading_digits(const uint8_t *p, uint64_t *value) {
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  const __m128i nine = _mm_set1_epi8(9);
  __m128i d = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8('0'));
  __m128i e = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), _mm_set1_epi8('0'));
  // A byte is a digit when, less '0', it is at most 9 (unsigned).
  uint64_t digits = (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_subs_epu8(d, nine), zero));
  digits |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_subs_epu8(e, nine), zero)) << 16;
  int m = __builtin_ctzll(~digits);
  int n = m < 16 ? m : 16;
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
  return m;
#else
  int m = 0;
  while (m < 32 && (uint8_t)(p[m] - '0') < 10) m += 1;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) v = v * 10 + (i < m ? (uint64_t)(p[i] - '0') : 0);
  *value = v;
  return m;
#endif
}
#endif
