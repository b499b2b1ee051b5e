/* qn_frame.c -- serial frame receiver and streaming sender, see qn_frame.h. */
#include "qn_frame.h"

#include "qn_crc32.h"

void qn_frx_init(qn_frame_rx *rx, uint8_t *buf, size_t cap, size_t max_payload)
{
    rx->buf = buf;
    rx->cap = cap;
    rx->len = 0;
    rx->max_payload = max_payload;
    rx->overflow = 0;
    rx->frames = 0;
    rx->crc_errors = 0;
    rx->cobs_errors = 0;
    rx->oversized = 0;
    rx->short_frames = 0;
}

void qn_frx_reset(qn_frame_rx *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

qn_frx_result qn_frx_feed(qn_frame_rx *rx, uint8_t byte, const uint8_t **payload, size_t *len)
{
    size_t n = 0;
    size_t body;

    if (byte != 0) {
        if (rx->overflow) {
            return QN_FRX_NONE;
        }
        if (rx->len >= rx->cap) {
            rx->overflow = 1;
            rx->len = 0;
            return QN_FRX_NONE;
        }
        rx->buf[rx->len++] = byte;
        return QN_FRX_NONE;
    }
    /* delimiter: the frame (if any) is complete */
    if (rx->overflow) {
        rx->overflow = 0;
        rx->oversized++;
        return QN_FRX_ERR_OVERSIZE;
    }
    if (rx->len == 0) {
        return QN_FRX_NONE; /* idle line or a leading delimiter */
    }
    if (qn_cobs_decode(rx->buf, rx->len, rx->buf, rx->cap, &n) != 0) {
        rx->len = 0;
        rx->cobs_errors++;
        return QN_FRX_ERR_COBS;
    }
    rx->len = 0;
    if (n <= QN_FRAME_CRC_SIZE) {
        rx->short_frames++;
        return QN_FRX_ERR_SHORT;
    }
    body = n - QN_FRAME_CRC_SIZE;
    if (body > rx->max_payload) {
        rx->oversized++;
        return QN_FRX_ERR_OVERSIZE;
    }
    if (qn_crc32(rx->buf, body) != load_le32(rx->buf + body)) {
        rx->crc_errors++;
        return QN_FRX_ERR_CRC;
    }
    rx->frames++;
    *payload = rx->buf;
    *len = body;
    return QN_FRX_FRAME;
}

void qn_ftx_init(qn_frame_tx *tx, qn_write_fn write, void *ctx)
{
    tx->write = write;
    tx->ctx = ctx;
    tx->crc = QN_CRC32_INIT;
    tx->n = 0;
    tx->last_full = 0;
    tx->open = 0;
}

void qn_ftx_begin(qn_frame_tx *tx)
{
    static const uint8_t zero = 0;
    tx->crc = QN_CRC32_INIT;
    tx->n = 0;
    tx->last_full = 0;
    tx->open = 1;
    tx->write(tx->ctx, &zero, 1);
}

static void cobs_byte(qn_frame_tx *tx, uint8_t b)
{
    if (b == 0) {
        tx->block[0] = (uint8_t)(tx->n + 1);
        tx->write(tx->ctx, tx->block, tx->n + 1);
        tx->n = 0;
        tx->last_full = 0;
        return;
    }
    tx->block[++tx->n] = b;
    if (tx->n == 254) {
        tx->block[0] = 0xFFu;
        tx->write(tx->ctx, tx->block, 255);
        tx->n = 0;
        tx->last_full = 1;
    } else {
        tx->last_full = 0;
    }
}

void qn_ftx_put(qn_frame_tx *tx, const uint8_t *data, size_t len)
{
    size_t i;
    if (!tx->open) {
        return;
    }
    tx->crc = qn_crc32_update(tx->crc, data, len);
    for (i = 0; i < len; i++) {
        cobs_byte(tx, data[i]);
    }
}

void qn_ftx_end(qn_frame_tx *tx)
{
    static const uint8_t zero = 0;
    uint32_t crc = qn_crc32_final(tx->crc);
    uint8_t i;
    if (!tx->open) {
        return;
    }
    for (i = 0; i < 4; i++) {
        cobs_byte(tx, (uint8_t)(crc >> (8u * i)));
    }
    if (!(tx->n == 0 && tx->last_full)) {
        tx->block[0] = (uint8_t)(tx->n + 1);
        tx->write(tx->ctx, tx->block, tx->n + 1);
    }
    tx->n = 0;
    tx->open = 0;
    tx->write(tx->ctx, &zero, 1);
}

typedef struct {
    uint8_t *dst;
    size_t cap;
    size_t len;
    int overflow;
} buf_sink;

static void buf_write(void *ctx, const uint8_t *data, size_t len)
{
    buf_sink *s = (buf_sink *)ctx;
    size_t i;
    if (s->overflow || len > s->cap - s->len) {
        s->overflow = 1;
        return;
    }
    for (i = 0; i < len; i++) {
        s->dst[s->len++] = data[i];
    }
}

size_t qn_frame_encode(const uint8_t *payload, size_t n, uint8_t *dst, size_t cap)
{
    buf_sink sink;
    qn_frame_tx tx;
    sink.dst = dst;
    sink.cap = cap;
    sink.len = 0;
    sink.overflow = 0;
    qn_ftx_init(&tx, buf_write, &sink);
    qn_ftx_begin(&tx);
    qn_ftx_put(&tx, payload, n);
    qn_ftx_end(&tx);
    return sink.overflow ? 0 : sink.len;
}
