// Vectorised decoding of standard base64 (RFC 4648 §4), the bulk of the work only: AdjointJSON's Base64 calls it
// and finishes the text (the last block, padding and error reporting) itself.
#ifndef ADJOINT_CBASE64_H
#define ADJOINT_CBASE64_H

#include <stddef.h>
#include <stdint.h>

/// Whether `adjoint_base64_decode_prefix` has a vector implementation on this processor (AVX2).
int adjoint_base64_has_vector(void);

/// Decodes whole 32-character blocks of `text` from its start into `output`, 24 bytes per block, and stops before
/// the first block that holds a character outside `A–Z a–z 0–9 + /` (including `=`), before a block that would
/// end past `count` characters, and before a block whose 32-byte store would end past `capacity` output bytes.
/// Returns the number of characters decoded (a multiple of 32; the output bytes written are 3/4 of it). Returns 0
/// when the processor lacks AVX2.
size_t adjoint_base64_decode_prefix(const uint8_t *text, size_t count, void *output, size_t capacity);

#endif
