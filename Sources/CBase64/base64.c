// Base64 decoding with AVX2, after W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding using AVX2
// Instructions" (ACM TOW 2018): 32 characters are classified by their high and low nibbles with two byte shuffles
// (a character is valid when the two class masks share no bit), turned into their 6-bit values by adding an offset
// chosen by the high nibble, then packed from 32 six-bit fields into 24 bytes with two multiply-adds, a byte
// shuffle and a dword permutation.
#include "CBase64.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define ADJOINT_AVX2 __attribute__((target("avx2")))

// Class bits by low nibble and by high nibble; a byte is in the alphabet exactly when its two entries share no bit.
//   high nibble 2: '+' (0x2B) and '/' (0x2F) only; 3: '0'-'9'; 4: 'A'-'O' (not 0x40); 5: 'P'-'Z'; 6: 'a'-'o'
//   (not 0x60); 7: 'p'-'z'; anything else (below 0x20, or 0x80 and up) is invalid.
ADJOINT_AVX2 static inline __m256i repeat128(char b0, char b1, char b2, char b3, char b4, char b5, char b6,
                                             char b7, char b8, char b9, char b10, char b11, char b12, char b13,
                                             char b14, char b15) {
  return _mm256_setr_epi8(b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b0, b1, b2, b3, b4,
                          b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15);
}

ADJOINT_AVX2 static size_t decode_avx2(const uint8_t *text, size_t count, uint8_t *output, size_t capacity) {
  const __m256i lut_lo = repeat128(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B,
                                   0x1B, 0x1B, 0x1A);
  const __m256i lut_hi = repeat128(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10,
                                   0x10, 0x10, 0x10);
  // The value to add by high nibble ('/' takes index 1 through the -1 of its equality mask).
  const __m256i lut_roll = repeat128(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i mask_2f = _mm256_set1_epi8(0x2F);
  // [a b c d] (6 bits each) → a<<6|b, c<<6|d → (a<<6|b)<<12 | (c<<6|d): 24 bits per dword, first byte highest.
  const __m256i merge_pairs = _mm256_set1_epi32(0x01400140);
  const __m256i merge_quads = _mm256_set1_epi32(0x00011000);
  const __m256i order = repeat128(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i compact = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  size_t i = 0;
  size_t o = 0;
  while (i + 32 <= count && o + 32 <= capacity) {
    const __m256i str = _mm256_loadu_si256((const __m256i *)(text + i));
    const __m256i hi_nibbles = _mm256_and_si256(_mm256_srli_epi32(str, 4), mask_2f);
    const __m256i lo_nibbles = _mm256_and_si256(str, mask_2f);
    const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nibbles);
    const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nibbles);
    if (!_mm256_testz_si256(lo, hi)) break;
    const __m256i eq_2f = _mm256_cmpeq_epi8(str, mask_2f);
    const __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nibbles));
    const __m256i values = _mm256_add_epi8(str, roll);
    const __m256i pairs = _mm256_maddubs_epi16(values, merge_pairs);
    const __m256i quads = _mm256_madd_epi16(pairs, merge_quads);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(quads, order), compact);
    _mm256_storeu_si256((__m256i *)(output + o), bytes);
    i += 32;
    o += 24;
  }
  return i;
}

int adjoint_base64_has_vector(void) { return __builtin_cpu_supports("avx2") ? 1 : 0; }

size_t adjoint_base64_decode_prefix(const uint8_t *text, size_t count, void *output, size_t capacity) {
  if (count < 32 || !__builtin_cpu_supports("avx2")) return 0;
  return decode_avx2(text, count, output, capacity);
}

#else

int adjoint_base64_has_vector(void) { return 0; }

size_t adjoint_base64_decode_prefix(const uint8_t *text, size_t count, void *output, size_t capacity) {
  (void)text;
  (void)count;
  (void)output;
  (void)capacity;
  return 0;
}

#endif
