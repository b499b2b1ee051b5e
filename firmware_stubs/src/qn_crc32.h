/* qn_crc32.h -- IEEE 802.3 CRC-32 (zlib's crc32): reflected polynomial 0xEDB88320, initial
 * value and final XOR 0xFFFFFFFF. Check value: qn_crc32("123456789", 9) == 0xCBF43926.
 * A 16-entry table (64 bytes of flash); no state outside the caller's variable. */
#ifndef QN_CRC32_H
#define QN_CRC32_H

#include <stddef.h>
#include <stdint.h>

#define QN_CRC32_INIT 0xFFFFFFFFu

/* Feed len bytes into a running CRC state (start from QN_CRC32_INIT). */
uint32_t qn_crc32_update(uint32_t state, const uint8_t *data, size_t len);

/* The CRC of a finished state. */
uint32_t qn_crc32_final(uint32_t state);

/* One-shot CRC-32 of data[0..len). */
uint32_t qn_crc32(const uint8_t *data, size_t len);

#endif /* QN_CRC32_H */
