/* qn_cobs.c -- COBS encoder and decoder, see qn_cobs.h. */
#include "qn_cobs.h"

size_t qn_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t code_pos = 0;
    size_t out = 1;
    uint8_t code = 1;
    size_t i;

    if (cap == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (src[i] != 0) {
            if (out >= cap) {
                return 0;
            }
            dst[out++] = src[i];
            code++;
            if (code != 0xFFu) {
                continue;
            }
            if (i + 1 == n) { /* data ends with a full block: no trailing 0x01 */
                dst[code_pos] = code;
                return out;
            }
        }
        /* a zero byte, or a full block of 254 bytes: close this block, open the next */
        dst[code_pos] = code;
        if (out >= cap) {
            return 0;
        }
        code_pos = out++;
        code = 1;
    }
    dst[code_pos] = code;
    return out;
}

int qn_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_len)
{
    size_t pos = 0;
    size_t out = 0;

    while (pos < n) {
        uint8_t code = src[pos];
        uint8_t k;
        if (code == 0 || (size_t)code > n - pos) {
            return -1; /* zero inside the block, or the block runs past the end */
        }
        pos++;
        for (k = 1; k < code; k++) {
            uint8_t b = src[pos++];
            if (b == 0 || out >= cap) {
                return -1;
            }
            dst[out++] = b; /* out < pos always: safe when dst == src */
        }
        if (code != 0xFFu && pos < n) {
            if (out >= cap) {
                return -1;
            }
            dst[out++] = 0;
        }
    }
    *out_len = out;
    return 0;
}
