/* qn_crc32.c -- nibble-table CRC-32 (IEEE 802.3), see qn_crc32.h. */
#include "qn_crc32.h"

static const uint32_t k_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t qn_crc32_update(uint32_t state, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        state = k_nibble[(state ^ data[i]) & 0x0Fu] ^ (state >> 4);
        state = k_nibble[(state ^ ((uint32_t)data[i] >> 4)) & 0x0Fu] ^ (state >> 4);
    }
    return state;
}

uint32_t qn_crc32_final(uint32_t state)
{
    return state ^ 0xFFFFFFFFu;
}

uint32_t qn_crc32(const uint8_t *data, size_t len)
{
    return qn_crc32_final(qn_crc32_update(QN_CRC32_INIT, data, len));
}
