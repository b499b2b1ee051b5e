/* test_units.c -- host unit tests of the firmware core: CRC, COBS, framing, msgpack, text,
 * and the protocol engine with the TriggerGenerator device. Prints one line per failed
 * check and a summary; exits non-zero on any failure. */
#include <stdio.h>
#include <string.h>

#include "qn_cobs.h"
#include "qn_crc32.h"
#include "qn_frame.h"
#include "qn_mpack.h"
#include "qn_proto.h"
#include "qn_text.h"
#include "tgen.h"

static int g_checks, g_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        g_checks++;                                                                        \
        if (!(cond)) {                                                                     \
            g_failed++;                                                                    \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                         \
        }                                                                                  \
    } while (0)

/* --- CRC -------------------------------------------------------------------------------- */

static void test_crc32(void)
{
    const uint8_t check[] = "123456789";
    uint32_t st;
    CHECK(qn_crc32(check, 9) == 0xCBF43926u);
    CHECK(qn_crc32(check, 0) == 0u);
    st = qn_crc32_update(QN_CRC32_INIT, check, 4);
    st = qn_crc32_update(st, check + 4, 5);
    CHECK(qn_crc32_final(st) == 0xCBF43926u);
}

/* --- COBS ------------------------------------------------------------------------------- */

static int cobs_case(const uint8_t *raw, size_t n, const uint8_t *enc, size_t m)
{
    uint8_t out[600], back[600];
    size_t len = qn_cobs_encode(raw, n, out, sizeof out);
    size_t dlen = 0;
    if (len != m || memcmp(out, enc, m) != 0) {
        return 0;
    }
    if (qn_cobs_decode(out, len, back, sizeof back, &dlen) != 0 || dlen != n) {
        return 0;
    }
    return memcmp(back, raw, n) == 0;
}

static void test_cobs(void)
{
    uint8_t raw[300], enc[300], buf[300];
    size_t i, n = 0;

    CHECK(cobs_case((const uint8_t *)"", 0, (const uint8_t *)"\x01", 1));
    CHECK(cobs_case((const uint8_t *)"\x00", 1, (const uint8_t *)"\x01\x01", 2));
    CHECK(cobs_case((const uint8_t *)"\x00\x00", 2, (const uint8_t *)"\x01\x01\x01", 3));
    CHECK(cobs_case((const uint8_t *)"\x00\x11\x00", 3, (const uint8_t *)"\x01\x02\x11\x01", 4));
    CHECK(cobs_case((const uint8_t *)"\x11\x22\x00\x33", 4,
                    (const uint8_t *)"\x03\x11\x22\x02\x33", 5));
    CHECK(cobs_case((const uint8_t *)"\x11\x22\x33\x44", 4,
                    (const uint8_t *)"\x05\x11\x22\x33\x44", 5));
    CHECK(cobs_case((const uint8_t *)"\x11\x00\x00\x00", 4,
                    (const uint8_t *)"\x02\x11\x01\x01\x01", 5));

    /* 01..FE (254 bytes) -> FF 01..FE, no trailing 01 */
    for (i = 0; i < 254; i++) {
        raw[i] = (uint8_t)(i + 1);
        enc[i + 1] = (uint8_t)(i + 1);
    }
    enc[0] = 0xFF;
    CHECK(cobs_case(raw, 254, enc, 255));
    /* the non-shortest form with a trailing 01 decodes to the same bytes */
    enc[255] = 0x01;
    CHECK(qn_cobs_decode(enc, 256, buf, sizeof buf, &n) == 0 && n == 254
          && memcmp(buf, raw, 254) == 0);
    /* 00 01..FE (255 bytes) -> 01 FF 01..FE */
    raw[0] = 0;
    for (i = 0; i < 254; i++) {
        raw[i + 1] = (uint8_t)(i + 1);
        enc[i + 2] = (uint8_t)(i + 1);
    }
    enc[0] = 0x01;
    enc[1] = 0xFF;
    CHECK(cobs_case(raw, 255, enc, 256));
    /* 01..FF (255 bytes) -> FF 01..FE 02 FF */
    for (i = 0; i < 255; i++) {
        raw[i] = (uint8_t)(i + 1);
    }
    enc[0] = 0xFF;
    for (i = 0; i < 254; i++) {
        enc[i + 1] = (uint8_t)(i + 1);
    }
    enc[255] = 0x02;
    enc[256] = 0xFF;
    CHECK(cobs_case(raw, 255, enc, 257));

    /* malformed input and small buffers */
    CHECK(qn_cobs_decode((const uint8_t *)"\x05\x11\x22", 3, buf, sizeof buf, &n) == -1);
    CHECK(qn_cobs_decode((const uint8_t *)"\x03\x11\x00", 3, buf, sizeof buf, &n) == -1);
    CHECK(qn_cobs_decode((const uint8_t *)"\x00", 1, buf, sizeof buf, &n) == -1);
    CHECK(qn_cobs_decode((const uint8_t *)"\x05\x11\x22\x33\x44", 5, buf, 3, &n) == -1);
    CHECK(qn_cobs_encode((const uint8_t *)"\x11\x22\x33\x44", 4, buf, 4) == 0);
    CHECK(qn_cobs_encode((const uint8_t *)"\x11", 1, buf, 0) == 0);
    /* in place */
    memcpy(buf, "\x03\x11\x22\x02\x33", 5);
    CHECK(qn_cobs_decode(buf, 5, buf, 5, &n) == 0 && n == 4
          && memcmp(buf, "\x11\x22\x00\x33", 4) == 0);
}

/* --- framing ---------------------------------------------------------------------------- */

static qn_frx_result feed_all(qn_frame_rx *rx, const uint8_t *data, size_t n,
                              const uint8_t **p, size_t *len, int *frames)
{
    size_t i;
    qn_frx_result last = QN_FRX_NONE;
    *frames = 0;
    for (i = 0; i < n; i++) {
        qn_frx_result r = qn_frx_feed(rx, data[i], p, len);
        if (r != QN_FRX_NONE) {
            last = r;
        }
        if (r == QN_FRX_FRAME) {
            (*frames)++;
        }
    }
    return last;
}

static void test_frame(void)
{
    /* the Python encoder's bytes for the payload 81 A1 6B A2 68 62 ({"k": "hb"}) */
    static const uint8_t py_frame[] = {0x00, 0x0B, 0x81, 0xA1, 0x6B, 0xA2, 0x68, 0x62,
                                       0x2F, 0xC8, 0x2A, 0x11, 0x00};
    static const uint8_t payload[] = {0x81, 0xA1, 0x6B, 0xA2, 0x68, 0x62};
    uint8_t wire[1200], rxbuf[QN_FRAME_RX_BUF(64)], big[600];
    qn_frame_rx rx;
    const uint8_t *p = NULL;
    size_t len = 0, n, i;
    int frames;

    n = qn_frame_encode(payload, sizeof payload, wire, sizeof wire);
    CHECK(n == sizeof py_frame && memcmp(wire, py_frame, n) == 0);
    CHECK(qn_frame_encode(payload, sizeof payload, wire, 5) == 0);

    qn_frx_init(&rx, rxbuf, sizeof rxbuf, 64);
    CHECK(feed_all(&rx, py_frame, sizeof py_frame, &p, &len, &frames) == QN_FRX_FRAME);
    CHECK(frames == 1 && len == sizeof payload && memcmp(p, payload, len) == 0);

    /* garbage, then a frame: the frame survives thanks to its leading delimiter */
    CHECK(feed_all(&rx, (const uint8_t *)"\x13\x37\xFF\x42", 4, &p, &len, &frames)
          == QN_FRX_NONE);
    CHECK(feed_all(&rx, py_frame, sizeof py_frame, &p, &len, &frames) == QN_FRX_FRAME
          && frames == 1);
    CHECK(rx.cobs_errors + rx.crc_errors + rx.short_frames == 1);

    /* a cut frame, then a whole one */
    feed_all(&rx, py_frame, 7, &p, &len, &frames);
    CHECK(feed_all(&rx, py_frame, sizeof py_frame, &p, &len, &frames) == QN_FRX_FRAME
          && frames == 1);

    /* every single-bit flip of the body is caught */
    for (i = 1; i + 1 < sizeof py_frame; i++) {
        unsigned bit;
        for (bit = 0; bit < 8; bit++) {
            uint8_t bad[sizeof py_frame];
            memcpy(bad, py_frame, sizeof bad);
            bad[i] ^= (uint8_t)(1u << bit);
            qn_frx_reset(&rx);
            feed_all(&rx, bad, sizeof bad, &p, &len, &frames);
            CHECK(frames == 0);
        }
    }

    /* oversized: a 100-byte payload into a 64-byte receiver, then a good frame */
    memset(big, 0x55, 100);
    n = qn_frame_encode(big, 100, wire, sizeof wire);
    qn_frx_reset(&rx);
    CHECK(feed_all(&rx, wire, n, &p, &len, &frames) == QN_FRX_ERR_OVERSIZE && frames == 0);
    CHECK(feed_all(&rx, py_frame, sizeof py_frame, &p, &len, &frames) == QN_FRX_FRAME);
    /* payload over max_payload whose encoding still fits the buffer */
    n = qn_frame_encode(big, 66, wire, sizeof wire);
    CHECK(feed_all(&rx, wire, n, &p, &len, &frames) == QN_FRX_ERR_OVERSIZE);
    /* exactly max_payload passes */
    n = qn_frame_encode(big, 64, wire, sizeof wire);
    CHECK(feed_all(&rx, wire, n, &p, &len, &frames) == QN_FRX_FRAME && len == 64);
    /* too short to hold a CRC */
    CHECK(feed_all(&rx, (const uint8_t *)"\x00\x03\x11\x22\x00", 5, &p, &len, &frames)
          == QN_FRX_ERR_SHORT);

    /* long payloads with zeros and 254-byte runs round-trip */
    for (i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i % 300 < 260 ? (i % 255) + 1 : 0);
    }
    {
        uint8_t rb2[QN_FRAME_RX_BUF(600)];
        qn_frame_rx rx2;
        qn_frx_init(&rx2, rb2, sizeof rb2, 600);
        for (n = 250; n <= 600; n += 7) {
            size_t w = qn_frame_encode(big, n, wire, sizeof wire);
            CHECK(w > 0 && w <= QN_FRAME_WIRE_MAX(n));
            CHECK(feed_all(&rx2, wire, w, &p, &len, &frames) == QN_FRX_FRAME && len == n
                  && memcmp(p, big, n) == 0);
        }
    }
}

/* --- msgpack ---------------------------------------------------------------------------- */

static void test_mpack(void)
{
    static const int64_t ints[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295,
                                   4294967296, INT64_MAX, -1, -32, -33, -128, -129, -32768,
                                   -32769, (int64_t)INT32_MIN - 1, INT64_MIN};
    uint8_t buf[256];
    char s[40];
    qn_mpw w;
    qn_mpr r;
    qn_mp_obj o;
    size_t i;
    int64_t v;

    for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        qn_mpw_init_buf(&w, buf, sizeof buf);
        qn_mpw_int(&w, ints[i]);
        qn_mpr_init(&r, buf, w.len);
        CHECK(qn_mpr_read(&r, &o) == 0 && qn_mp_to_i64(&o, &v) == 0 && v == ints[i]
              && qn_mpr_left(&r) == 0);
    }
    /* canonical sizes */
    qn_mpw_init_buf(&w, buf, sizeof buf);
    qn_mpw_int(&w, 127);
    CHECK(w.len == 1);
    qn_mpw_int(&w, -32);
    CHECK(w.len == 2);
    qn_mpw_uint(&w, UINT64_MAX);
    CHECK(w.len == 11 && buf[2] == 0xCF);
    qn_mpr_init(&r, buf + 2, 9);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_UINT && o.u == UINT64_MAX
          && qn_mp_to_i64(&o, &v) == -1);

    /* strings, doubles, containers */
    memset(s, 'x', sizeof s);
    qn_mpw_init_buf(&w, buf, sizeof buf);
    qn_mpw_map(&w, 2);
    qn_mpw_str(&w, s, 31);
    qn_mpw_double(&w, -2.5);
    qn_mpw_str(&w, s, 32);
    qn_mpw_array(&w, 3);
    qn_mpw_nil(&w);
    qn_mpw_bool(&w, 1);
    qn_mpw_bin(&w, (const uint8_t *)s, 3);
    CHECK(!w.overflow);
    qn_mpr_init(&r, buf, w.len);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_MAP && o.len == 2);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_STR && o.len == 31);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_FLOAT && o.f == -2.5);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_STR && o.len == 32 && buf[42] == 0xD9);
    CHECK(qn_mpr_skip(&r) == 0 && qn_mpr_left(&r) == 0);
    qn_mpr_init(&r, buf, w.len);
    CHECK(qn_mpr_skip(&r) == 0 && qn_mpr_left(&r) == 0);

    /* truncation anywhere is an error, never a read past the end */
    for (i = 0; i < w.len; i++) {
        qn_mpr_init(&r, buf, i);
        CHECK(qn_mpr_skip(&r) == -1);
    }
    /* reserved byte, impossible counts */
    qn_mpr_init(&r, (const uint8_t *)"\xC1", 1);
    CHECK(qn_mpr_read(&r, &o) == -1);
    qn_mpr_init(&r, (const uint8_t *)"\xDD\xFF\xFF\xFF\xFF\x01", 6);
    CHECK(qn_mpr_skip(&r) == -1);
    qn_mpr_init(&r, (const uint8_t *)"\xDB\xFF\xFF\xFF\xF0", 5);
    CHECK(qn_mpr_read(&r, &o) == -1);

    /* writer overflow is sticky */
    qn_mpw_init_buf(&w, buf, 4);
    qn_mpw_str(&w, s, 10);
    qn_mpw_nil(&w);
    CHECK(w.overflow && w.len <= 4);

    /* float32 and ext */
    qn_mpr_init(&r, (const uint8_t *)"\xCA\x3F\xC0\x00\x00", 5);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_FLOAT && o.f == 1.5);
    qn_mpw_init_buf(&w, buf, sizeof buf);
    qn_mpw_ext(&w, 4, (const uint8_t *)"\x92\x05\xA1x", 4);
    qn_mpr_init(&r, buf, w.len);
    CHECK(qn_mpr_read(&r, &o) == 0 && o.type == QN_MP_EXT && o.ext == 4 && o.len == 4);
}

/* --- text ------------------------------------------------------------------------------- */

static int fmt_is(double v, const char *want)
{
    char b[40];
    qn_sb sb;
    qn_sb_init(&sb, b, sizeof b);
    qn_sb_f64(&sb, v);
    if (strcmp(b, want) != 0) {
        printf("  f64 %s != %s\n", b, want);
        return 0;
    }
    return 1;
}

static void test_text(void)
{
    char b[8];
    qn_sb sb;
    CHECK(fmt_is(1e-06, "1e-06"));
    CHECK(fmt_is(1000.0, "1000"));
    CHECK(fmt_is(0.1, "0.1"));
    CHECK(fmt_is(2.5, "2.5"));
    CHECK(fmt_is(-0.0001, "-0.0001"));
    CHECK(fmt_is(123456789.0, "1.23457e+08"));
    CHECK(fmt_is(1e300 * 1e300, "inf"));
    CHECK(fmt_is(0.0, "0"));
    qn_sb_init(&sb, b, sizeof b);
    qn_sb_i64(&sb, INT64_MIN);
    CHECK(strcmp(b, "-922337") == 0 && sb.len == 7); /* cut to the buffer, NUL-terminated */
}

/* --- engine ----------------------------------------------------------------------------- */

static uint8_t g_out[16384];
static size_t g_out_len;
static int64_t g_now;

static void cap_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (len <= sizeof g_out - g_out_len) {
        memcpy(g_out + g_out_len, data, len);
        g_out_len += len;
    }
}

static int64_t cap_now(void *ctx)
{
    (void)ctx;
    return g_now;
}

/* decoded frames of the engine's output */
static uint8_t g_frames[32][16384];
static size_t g_frame_len[32];
static int g_nframes;

static void collect(void)
{
    static uint8_t rb[QN_FRAME_RX_BUF(16384)];
    qn_frame_rx rx;
    size_t i;
    const uint8_t *p;
    size_t len;
    qn_frx_init(&rx, rb, sizeof rb, 16384);
    g_nframes = 0;
    for (i = 0; i < g_out_len; i++) {
        if (qn_frx_feed(&rx, g_out[i], &p, &len) == QN_FRX_FRAME && g_nframes < 32) {
            memcpy(g_frames[g_nframes], p, len);
            g_frame_len[g_nframes++] = len;
        }
    }
    CHECK(rx.crc_errors == 0 && rx.cobs_errors == 0 && rx.oversized == 0);
    g_out_len = 0;
}

/* value of key in the top-level map of frame f */
static int get(int f, const char *key, qn_mp_obj *out)
{
    qn_mpr r;
    qn_mp_obj m, k;
    uint32_t i;
    if (f >= g_nframes) {
        return -1;
    }
    qn_mpr_init(&r, g_frames[f], g_frame_len[f]);
    if (qn_mpr_read(&r, &m) != 0 || m.type != QN_MP_MAP) {
        return -1;
    }
    for (i = 0; i < m.len; i++) {
        size_t start;
        if (qn_mpr_read(&r, &k) != 0) {
            return -1;
        }
        start = r.pos;
        if (qn_mp_str_eq(&k, key)) {
            qn_mpr vr;
            qn_mpr_init(&vr, r.p + start, r.len - start);
            return qn_mpr_read(&vr, out);
        }
        if (qn_mpr_skip(&r) != 0) {
            return -1;
        }
    }
    return -1;
}

static int kind_is(int f, const char *kind)
{
    qn_mp_obj o;
    return get(f, "k", &o) == 0 && qn_mp_str_eq(&o, kind);
}

static int err_code(int f)
{
    qn_mp_obj o;
    if (!kind_is(f, "err") || get(f, "code", &o) != 0) {
        return -1;
    }
    return (int)o.u;
}

/* send a message built by the caller's writer as a frame into the engine */
static void send(qn_engine *e, const uint8_t *payload, size_t n)
{
    uint8_t wire[2048];
    size_t w = qn_frame_encode(payload, n, wire, sizeof wire);
    qn_engine_rx(e, wire, w);
    collect();
}

static void hello(qn_engine *e, int major)
{
    uint8_t b[64];
    qn_mpw w;
    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 2);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "hello");
    qn_mpw_cstr(&w, "pv");
    qn_mpw_array(&w, 2);
    qn_mpw_int(&w, major);
    qn_mpw_int(&w, 0);
    send(e, b, w.len);
}

/* req with one optional int param (name NULL: no params) */
static void request(qn_engine *e, uint64_t id, const char *method, const char *pname,
                    int64_t pvalue)
{
    uint8_t b[256];
    qn_mpw w;
    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 4);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "req");
    qn_mpw_cstr(&w, "id");
    qn_mpw_uint(&w, id);
    qn_mpw_cstr(&w, "m");
    qn_mpw_cstr(&w, method);
    qn_mpw_cstr(&w, "p");
    if (pname == NULL) {
        qn_mpw_map(&w, 0);
    } else {
        qn_mpw_map(&w, 1);
        qn_mpw_cstr(&w, pname);
        qn_mpw_int(&w, pvalue);
    }
    send(e, b, w.len);
}

static void test_engine(void)
{
    static qn_engine e;
    static tgen_device d;
    qn_device def;
    qn_platform plat = {cap_write, NULL, cap_now, NULL};
    qn_mp_obj o;
    uint8_t b[128];
    qn_mpw w;

    g_now = 1000;
    tgen_init(&d, &e);
    tgen_describe(&d, &def);
    CHECK(qn_engine_init(&e, &def, &plat, 42) == 0);
    CHECK(g_out_len == 1 && g_out[0] == 0);
    g_out_len = 0;

    request(&e, 1, "status", NULL, 0);
    CHECK(g_nframes == 1 && err_code(0) == QN_E_NO_SESSION);
    CHECK(get(0, "id", &o) == 0 && o.u == 1);

    hello(&e, 2);
    CHECK(g_nframes == 1 && err_code(0) == QN_E_VERSION);
    hello(&e, 1);
    CHECK(g_nframes == 1 && kind_is(0, "welcome"));
    CHECK(get(0, "epoch", &o) == 0 && o.u == 42);
    CHECK(get(0, "device", &o) == 0 && qn_mp_str_eq(&o, "tgen0"));

    request(&e, 2, "qnhw.describe", NULL, 0);
    CHECK(g_nframes == 1 && kind_is(0, "rep") && g_frame_len[0] > 1000);
    request(&e, 3, "qnhw.ping", NULL, 0);
    CHECK(kind_is(0, "rep"));
    request(&e, 4, "nope", NULL, 0);
    CHECK(err_code(0) == QN_E_UNKNOWN_COMMAND);
    request(&e, 5, "get_channel", "channel", 7);
    CHECK(err_code(0) == QN_E_BAD_PARAMS);
    request(&e, 6, "get_channel", "chanel", 1);
    CHECK(err_code(0) == QN_E_BAD_PARAMS);
    request(&e, 7, "get_channel", NULL, 0);
    CHECK(err_code(0) == QN_E_BAD_PARAMS);
    request(&e, 8, "get_channel", "channel", 3);
    CHECK(kind_is(0, "rep"));
    request(&e, 9, "fire", NULL, 0);
    CHECK(err_code(0) == QN_E_BUSY);

    /* lossless subscription with credit 1: the second event waits for credit */
    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 4);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "req");
    qn_mpw_cstr(&w, "id");
    qn_mpw_uint(&w, 10);
    qn_mpw_cstr(&w, "m");
    qn_mpw_cstr(&w, "qnhw.subscribe");
    qn_mpw_cstr(&w, "p");
    qn_mpw_map(&w, 2);
    qn_mpw_cstr(&w, "stream");
    qn_mpw_cstr(&w, "triggers");
    qn_mpw_cstr(&w, "credit");
    qn_mpw_int(&w, 1);
    send(&e, b, w.len);
    CHECK(kind_is(0, "rep") && get(0, "r", &o) == 0 && o.type == QN_MP_MAP);

    request(&e, 11, "arm", "count", 0);
    CHECK(kind_is(0, "rep"));
    request(&e, 12, "fire", NULL, 0);
    CHECK(g_nframes == 2 && kind_is(0, "ev") && kind_is(1, "rep"));
    CHECK(get(0, "seq", &o) == 0 && o.u == 0 && get(0, "ts", &o) == 0 && o.u == 1000);
    request(&e, 13, "fire", NULL, 0);
    CHECK(g_nframes == 1 && kind_is(0, "rep")); /* event queued: no credit */

    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 3);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "credit");
    qn_mpw_cstr(&w, "s");
    qn_mpw_cstr(&w, "triggers");
    qn_mpw_cstr(&w, "n");
    qn_mpw_int(&w, 5);
    send(&e, b, w.len);
    CHECK(g_nframes == 1 && kind_is(0, "ev") && get(0, "seq", &o) == 0 && o.u == 1);

    /* internal triggers: 10 Hz, first one period after arm */
    g_now += 250000000000; /* +0.25 s */
    CHECK(tgen_poll(&d, g_now) == 1000 + 300000000000);
    collect();
    CHECK(g_nframes == 2 && kind_is(0, "ev") && kind_is(1, "ev"));

    /* a stalled main loop: old triggers are skipped (a visible gap), the last 64 reported */
    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 3);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "credit");
    qn_mpw_cstr(&w, "s");
    qn_mpw_cstr(&w, "triggers");
    qn_mpw_cstr(&w, "n");
    qn_mpw_int(&w, 100000);
    send(&e, b, w.len);
    g_now += 10 * 100000000000; /* +1 s at 10 Hz: 10 triggers due, nothing skipped */
    tgen_poll(&d, g_now);
    collect();
    CHECK(g_nframes == 10);
    g_now += 20000 * 100000000000; /* 2000 s: 20000 triggers due */
    tgen_poll(&d, g_now);
    collect();
    CHECK(g_nframes == 32); /* the collector keeps 32; 64 were sent */
    CHECK(get(0, "seq", &o) == 0 && o.u > 19000);
    CHECK(e.streams[0].dropped > 19000 && d.fired == 20014 && d.total == 20014);

    /* malformed: not a map, wrong kind, extra bytes */
    send(&e, (const uint8_t *)"\x93\x01\x02\x03", 4);
    CHECK(err_code(0) == QN_E_PROTOCOL);
    send(&e, (const uint8_t *)"\x81\xA1k\xA3rep", 6);
    CHECK(err_code(0) == QN_E_PROTOCOL);
    send(&e, (const uint8_t *)"\x81\xA1k\xA2hb\x00", 7);
    CHECK(err_code(0) == QN_E_PROTOCOL);

    /* a silent host that listens to a stream keeps its session */
    request(&e, 14, "disarm", NULL, 0);
    g_now += (int64_t)QN_SESSION_TIMEOUT_MS * 1000000000 + 1;
    qn_engine_poll(&e);
    request(&e, 15, "status", NULL, 0);
    CHECK(kind_is(0, "rep"));

    /* without subscriptions, silence ends the session; requests then need a new hello */
    request(&e, 16, "qnhw.unsubscribe", NULL, 0);
    CHECK(kind_is(0, "rep"));
    qn_mpw_init_buf(&w, b, sizeof b);
    qn_mpw_map(&w, 4);
    qn_mpw_cstr(&w, "k");
    qn_mpw_cstr(&w, "req");
    qn_mpw_cstr(&w, "id");
    qn_mpw_uint(&w, 17);
    qn_mpw_cstr(&w, "m");
    qn_mpw_cstr(&w, "qnhw.unsubscribe");
    qn_mpw_cstr(&w, "p");
    qn_mpw_map(&w, 1);
    qn_mpw_cstr(&w, "stream");
    qn_mpw_cstr(&w, "triggers");
    send(&e, b, w.len);
    CHECK(kind_is(0, "rep"));
    g_now += (int64_t)QN_SESSION_TIMEOUT_MS * 1000000000 + 1;
    qn_engine_poll(&e);
    request(&e, 18, "status", NULL, 0);
    CHECK(err_code(0) == QN_E_NO_SESSION);
}

int main(void)
{
    test_crc32();
    test_cobs();
    test_frame();
    test_mpack();
    test_text();
    test_engine();
    printf("test_units: %d checks, %d passed, %d failed\n", g_checks, g_checks - g_failed,
           g_failed);
    return g_failed == 0 ? 0 : 1;
}
