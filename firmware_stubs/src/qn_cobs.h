/* qn_cobs.h -- Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).
 *
 * The encoding of n bytes contains no zero byte and is at most QN_COBS_MAX_ENCODED(n) long.
 * A trailing full block of 254 non-zero bytes is not followed by an extra 0x01 code byte;
 * the decoder accepts both forms. Both functions check every index against the buffer sizes
 * they are given and never write outside them. */
#ifndef QN_COBS_H
#define QN_COBS_H

#include <stddef.h>
#include <stdint.h>

#define QN_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encode src[0..n) into dst[0..cap). Returns the encoded length (>= 1), or 0 when dst is
 * too small. No delimiter is appended. */
size_t qn_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* Decode the block src[0..n) (without delimiters) into dst[0..cap); dst may equal src
 * (in-place decoding). Returns 0 and sets *out_len, or -1 when the block is malformed (a zero
 * byte inside, a code byte pointing past the end) or does not fit in dst. */
int qn_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len);

#endif /* QN_COBS_H */
