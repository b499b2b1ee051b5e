/* qn_frame.h -- serial framing: 0x00 COBS(payload || CRC-32(payload), little-endian) 0x00.
 *
 * Byte-level specification: docs/serial.md, "Serial framing". A frame carries one protocol
 * message (a msgpack map). The receiver (qn_frame_rx) is fed one byte at a time -- from a
 * UART interrupt ring or a read() loop -- and resynchronises at every 0x00: noise, cut frames,
 * bad checksums and oversized frames are dropped and counted, and never touch memory beyond
 * the caller's buffer. The sender (qn_frame_tx) streams: it needs only a 255-byte block
 * buffer, whatever the message length, and hands encoded bytes to a write callback. */
#ifndef QN_FRAME_H
#define QN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "qn_cobs.h"

#define QN_FRAME_CRC_SIZE 4u

/* Receive buffer size that admits payloads of up to max_payload bytes. */
#define QN_FRAME_RX_BUF(max_payload) QN_COBS_MAX_ENCODED((max_payload) + QN_FRAME_CRC_SIZE)

/* Wire size of a frame with n payload bytes, both delimiters included (upper bound). */
#define QN_FRAME_WIRE_MAX(n) (QN_COBS_MAX_ENCODED((n) + QN_FRAME_CRC_SIZE) + 2u)

typedef enum {
    QN_FRX_NONE = 0,       /* byte consumed, no frame ended */
    QN_FRX_FRAME,          /* a good frame: *payload, *len valid until the next feed */
    QN_FRX_ERR_CRC,        /* frame dropped: checksum mismatch */
    QN_FRX_ERR_COBS,       /* frame dropped: malformed COBS */
    QN_FRX_ERR_OVERSIZE,   /* frame dropped: longer than the buffer or max_payload */
    QN_FRX_ERR_SHORT       /* frame dropped: too short to hold a checksum */
} qn_frx_result;

typedef struct {
    uint8_t *buf;          /* caller's buffer for one encoded frame */
    size_t cap;
    size_t len;
    size_t max_payload;
    int overflow;          /* discarding bytes until the next delimiter */
    uint32_t frames, crc_errors, cobs_errors, oversized, short_frames;
} qn_frame_rx;

/* Prepare a receiver using buf[0..cap) (see QN_FRAME_RX_BUF); payloads longer than
 * max_payload are dropped. */
void qn_frx_init(qn_frame_rx *rx, uint8_t *buf, size_t cap, size_t max_payload);

/* Forget a partial frame. */
void qn_frx_reset(qn_frame_rx *rx);

/* Consume one received byte. On QN_FRX_FRAME, *payload and *len describe the payload, which
 * stays valid (inside buf) until the next call. */
qn_frx_result qn_frx_feed(qn_frame_rx *rx, uint8_t byte, const uint8_t **payload, size_t *len);

/* Where encoded bytes go: a UART driver, a ring buffer, a file descriptor. */
typedef void (*qn_write_fn)(void *ctx, const uint8_t *data, size_t len);

typedef struct {
    qn_write_fn write;
    void *ctx;
    uint32_t crc;
    uint8_t block[255];    /* block[0]: code byte; block[1..254]: data */
    size_t n;
    int last_full;         /* the last block written was a full 0xFF block */
    int open;              /* between begin and end */
} qn_frame_tx;

void qn_ftx_init(qn_frame_tx *tx, qn_write_fn write, void *ctx);

/* Start a frame: writes the leading 0x00. */
void qn_ftx_begin(qn_frame_tx *tx);

/* Append payload bytes to the open frame. */
void qn_ftx_put(qn_frame_tx *tx, const uint8_t *data, size_t len);

/* Finish the frame: checksum, last COBS block, trailing 0x00. */
void qn_ftx_end(qn_frame_tx *tx);

/* One-shot: encode a whole frame (both delimiters) into dst[0..cap). Returns its length, or 0
 * when dst is too small (see QN_FRAME_WIRE_MAX). */
size_t qn_frame_encode(const uint8_t *payload, size_t n, uint8_t *dst, size_t cap);

#endif /* QN_FRAME_H */
