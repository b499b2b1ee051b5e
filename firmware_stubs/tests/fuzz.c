/* fuzz.c -- random input for the firmware core, meant to run under
 * -fsanitize=address,undefined (make fuzz): any out-of-bounds access, overflow or undefined
 * behaviour aborts the run.
 *
 *   fuzz SECONDS [SEED]
 *
 * Each round picks one of: random bytes on the line; random payloads in valid frames (they
 * reach the msgpack parser); structured random messages (they reach validation, the
 * built-ins and the handlers); valid frames with random byte errors; random bytes into the
 * msgpack reader; COBS and frame round trips (checked). All of it goes through frame
 * decoders with a small and a normal buffer and through a full engine with the
 * TriggerGenerator device, whose clock jumps around. Everything the engine sends is decoded
 * again and must be a well-formed frame holding exactly one msgpack map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qn_cobs.h"
#include "qn_frame.h"
#include "qn_mpack.h"
#include "qn_proto.h"
#include "tgen.h"

static uint64_t g_rng;
static int64_t g_now;
static unsigned long g_out_frames, g_out_bytes;
static qn_frame_rx g_out_rx;
static uint8_t g_out_buf[QN_FRAME_RX_BUF(16384)];

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static uint64_t below(uint64_t n)
{
    return n == 0 ? 0 : rnd() % n;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz: invariant violated: %s (seed state %llu)\n", what,
            (unsigned long long)g_rng);
    abort();
}

/* the engine's output must always decode */
static void out_write(void *ctx, const uint8_t *data, size_t len)
{
    size_t i;
    (void)ctx;
    g_out_bytes += len;
    for (i = 0; i < len; i++) {
        const uint8_t *p;
        size_t n;
        qn_frx_result r = qn_frx_feed(&g_out_rx, data[i], &p, &n);
        if (r == QN_FRX_FRAME) {
            qn_mpr mr;
            qn_mp_obj o;
            qn_mpr_init(&mr, p, n);
            if (qn_mpr_read(&mr, &o) != 0 || o.type != QN_MP_MAP) {
                die("engine sent a frame that is not a msgpack map");
            }
            qn_mpr_init(&mr, p, n);
            if (qn_mpr_skip(&mr) != 0 || qn_mpr_left(&mr) != 0) {
                die("engine sent malformed msgpack");
            }
            g_out_frames++;
        } else if (r != QN_FRX_NONE) {
            die("engine sent a corrupt frame");
        }
    }
}

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return g_now;
}

/* --- structured random messages --------------------------------------------------------- */

static const char *const k_methods[] = {
    "qnhw.describe", "qnhw.ping", "qnhw.subscribe", "qnhw.unsubscribe", "qnhw.bogus",
    "configure_channel", "get_channel", "set_source", "set_rate", "arm", "disarm", "fire",
    "schedule", "status", "nope", ""};
static const char *const k_params[] = {"channel", "delay", "width", "polarity", "enabled",
                                       "source", "rate", "count", "at", "stream", "credit",
                                       "mode", "junk"};
static const char *const k_strings[] = {"internal", "external", "software", "positive",
                                        "negative", "triggers", "lossless", "fanout", "tgen0",
                                        "", "x"};
static const char *const k_units[] = {"ps", "ns", "s", "Hz", "kHz", "V", "\xC2\xB5s", "Ts",
                                      "", "m", "ms", "dB"};
static const char *const k_kinds[] = {"req", "req", "req", "hello", "hb", "bye", "cancel",
                                      "credit", "rep", "ev", "err", "welcome", "zz"};

#define PICK(a) (a)[below(sizeof(a) / sizeof((a)[0]))]

static void random_value(qn_mpw *w, int depth)
{
    uint8_t inner[64];
    qn_mpw iw;
    uint32_t i, n;
    switch (below(depth > 2 ? 9 : 11)) {
    case 0:
        qn_mpw_nil(w);
        break;
    case 1:
        qn_mpw_bool(w, (int)below(2));
        break;
    case 2:
        qn_mpw_int(w, (int64_t)rnd() >> below(64));
        break;
    case 3:
        qn_mpw_uint(w, below(20));
        break;
    case 4: {
        static const double specials[] = {0.0, -1.0, 1e300, -1e-300, 0.1, 999.9, 1000.0};
        double v = below(3) == 0 ? (double)(int64_t)rnd() / 1e6 : PICK(specials);
        if (below(20) == 0) {
            v = v * 1e308 * 1e308; /* inf */
        }
        if (below(40) == 0) {
            v = v - v; /* nan for inf, else 0 */
        }
        qn_mpw_double(w, v);
        break;
    }
    case 5:
        qn_mpw_cstr(w, PICK(k_strings));
        break;
    case 6: /* Quantity [value, unit] */
        qn_mpw_init_buf(&iw, inner, sizeof inner);
        qn_mpw_array(&iw, below(4) == 0 ? (uint32_t)below(4) : 2u);
        if (below(2)) {
            qn_mpw_int(&iw, (int64_t)below(2000000) - 1000);
        } else {
            qn_mpw_double(&iw, (double)below(100000) / 7.0);
        }
        qn_mpw_cstr(&iw, PICK(k_units));
        qn_mpw_ext(w, 5, inner, iw.len);
        break;
    case 7: /* Timestamp [ps, domain] */
        qn_mpw_init_buf(&iw, inner, sizeof inner);
        qn_mpw_array(&iw, 2);
        qn_mpw_int(&iw, g_now + (int64_t)below(4000000000000) - 1000000000000);
        qn_mpw_cstr(&iw, below(4) ? "tgen0" : "host");
        qn_mpw_ext(w, below(8) ? 4 : (int8_t)below(256), inner,
                   below(10) ? iw.len : below(iw.len + 1));
        break;
    case 8:
        qn_mpw_str(w, "\xFF\xFE\x00 junk", below(9));
        break;
    case 9:
        n = (uint32_t)below(4);
        qn_mpw_array(w, n);
        for (i = 0; i < n; i++) {
            random_value(w, depth + 1);
        }
        break;
    default:
        n = (uint32_t)below(3);
        qn_mpw_map(w, n);
        for (i = 0; i < n; i++) {
            qn_mpw_cstr(w, PICK(k_params));
            random_value(w, depth + 1);
        }
        break;
    }
}

static qn_device g_def;

/* a parameter name: mostly one the method really takes */
static const char *param_name(const char *method)
{
    size_t i;
    for (i = 0; i < g_def.n_commands; i++) {
        const qn_command *c = &g_def.commands[i];
        if (strcmp(c->name, method) == 0 && c->n_params > 0 && below(4) != 0) {
            return c->params[below(c->n_params)].name;
        }
    }
    return PICK(k_params);
}

static size_t random_message(uint8_t *buf, size_t cap)
{
    qn_mpw w;
    const char *kind = PICK(k_kinds);
    const char *method;
    uint32_t i, n;
    qn_mpw_init_buf(&w, buf, cap);
    if (strcmp(kind, "req") == 0) {
        int drop = (int)below(12); /* sometimes leave out or break a field */
        qn_mpw_map(&w, drop == 0 ? 3u : 5u);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, kind);
        if (drop != 1) {
            qn_mpw_cstr(&w, "id");
            if (drop == 2) {
                random_value(&w, 0);
            } else {
                qn_mpw_uint(&w, below(5) ? 1 + below(1000) : rnd());
            }
        } else {
            qn_mpw_cstr(&w, "zz");
            qn_mpw_nil(&w);
        }
        qn_mpw_cstr(&w, "m");
        method = PICK(k_methods);
        if (drop == 3) {
            random_value(&w, 0);
        } else {
            qn_mpw_cstr(&w, method);
        }
        if (drop != 0) {
            qn_mpw_cstr(&w, "p");
            if (drop == 4) {
                random_value(&w, 0);
            } else {
                n = (uint32_t)below(4);
                qn_mpw_map(&w, n);
                for (i = 0; i < n; i++) {
                    qn_mpw_cstr(&w, param_name(method));
                    random_value(&w, 1);
                }
            }
            qn_mpw_cstr(&w, "dl");
            if (below(2)) {
                qn_mpw_uint(&w, below(10000000));
            } else {
                random_value(&w, 0);
            }
        }
    } else if (strcmp(kind, "hello") == 0) {
        qn_mpw_map(&w, 3);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, kind);
        qn_mpw_cstr(&w, "pv");
        if (below(6)) {
            qn_mpw_array(&w, 2);
            qn_mpw_int(&w, below(8) ? 1 : (int64_t)below(70000));
            qn_mpw_int(&w, (int64_t)below(3));
        } else {
            random_value(&w, 0);
        }
        qn_mpw_cstr(&w, below(2) ? "feat" : "contract");
        random_value(&w, 0);
    } else {
        n = (uint32_t)below(4);
        qn_mpw_map(&w, n + 1);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, kind);
        for (i = 0; i < n; i++) {
            static const char *const keys[] = {"n", "s", "id", "why", "x"};
            const char *k = PICK(keys);
            qn_mpw_cstr(&w, k);
            if (strcmp(k, "s") == 0 && below(2)) {
                qn_mpw_cstr(&w, "triggers");
            } else if (below(2)) {
                qn_mpw_uint(&w, below(100));
            } else {
                random_value(&w, 0);
            }
        }
    }
    return w.overflow ? 0 : w.len;
}

/* a well-formed message that moves the device along: hello, subscribe, arm, fire, credit */
static size_t good_message(uint8_t *buf, size_t cap)
{
    static const char *const methods[] = {"arm", "fire", "fire", "set_rate", "disarm",
                                          "qnhw.subscribe", "qnhw.ping", "status"};
    qn_mpw w;
    const char *m;
    qn_mpw_init_buf(&w, buf, cap);
    switch (below(6)) {
    case 0:
        qn_mpw_map(&w, 2);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, "hello");
        qn_mpw_cstr(&w, "pv");
        qn_mpw_array(&w, 2);
        qn_mpw_int(&w, 1);
        qn_mpw_int(&w, 0);
        break;
    case 1:
        qn_mpw_map(&w, 3);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, "credit");
        qn_mpw_cstr(&w, "s");
        qn_mpw_cstr(&w, "triggers");
        qn_mpw_cstr(&w, "n");
        qn_mpw_uint(&w, 1 + below(20));
        break;
    default:
        m = PICK(methods);
        qn_mpw_map(&w, 4);
        qn_mpw_cstr(&w, "k");
        qn_mpw_cstr(&w, "req");
        qn_mpw_cstr(&w, "id");
        qn_mpw_uint(&w, 1 + below(1000));
        qn_mpw_cstr(&w, "m");
        qn_mpw_cstr(&w, m);
        qn_mpw_cstr(&w, "p");
        if (strcmp(m, "set_rate") == 0) {
            qn_mpw_map(&w, 1);
            qn_mpw_cstr(&w, "rate");
            qn_mpw_double(&w, 1000.0);
        } else if (strcmp(m, "qnhw.subscribe") == 0) {
            qn_mpw_map(&w, 3);
            qn_mpw_cstr(&w, "stream");
            qn_mpw_cstr(&w, "triggers");
            qn_mpw_cstr(&w, "mode");
            qn_mpw_cstr(&w, below(2) ? "lossless" : "fanout");
            qn_mpw_cstr(&w, "credit");
            qn_mpw_uint(&w, 1 + below(4));
        } else {
            qn_mpw_map(&w, 0);
        }
        break;
    }
    return w.overflow ? 0 : w.len;
}

/* --- rounds ----------------------------------------------------------------------------- */

static qn_engine g_engine;
static tgen_device g_dev;
static qn_frame_rx g_small, g_normal;
static uint8_t g_small_buf[16], g_normal_buf[QN_FRAME_RX_BUF(QN_MAX_PAYLOAD)];

static void line(const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        if (qn_frx_feed(&g_small, data[i], &p, &len) == QN_FRX_FRAME
            && (len > g_small.max_payload || p != g_small_buf)) {
            die("small decoder returned a bad payload");
        }
        if (qn_frx_feed(&g_normal, data[i], &p, &len) == QN_FRX_FRAME
            && len > g_normal.max_payload) {
            die("decoder returned an oversized payload");
        }
    }
    /* the engine gets the bytes in random chunks */
    i = 0;
    while (i < n) {
        size_t k = 1 + below(n - i);
        qn_engine_rx(&g_engine, data + i, k);
        i += k;
    }
}

static void round_once(void)
{
    static uint8_t buf[4096], wire[QN_FRAME_WIRE_MAX(4096)], back[4096];
    size_t n, w, i, dlen;
    qn_mpr r;
    qn_mp_obj o;

    switch (below(8)) {
    case 7: /* a well-formed message */
        n = good_message(buf, sizeof buf);
        w = qn_frame_encode(buf, n, wire, sizeof wire);
        line(wire, w);
        break;
    case 0: /* random bytes, biased towards zeros and 0xFF */
        n = below(below(8) == 0 ? sizeof buf : 64);
        for (i = 0; i < n; i++) {
            uint64_t x = rnd();
            buf[i] = (x & 0x300) == 0 ? 0 : (x & 0xC00) == 0 ? 0xFF : (uint8_t)x;
        }
        line(buf, n);
        break;
    case 1: /* random payload in a valid frame */
        n = below(QN_MAX_PAYLOAD + 64);
        for (i = 0; i < n; i++) {
            buf[i] = (uint8_t)rnd();
        }
        if (n > 0 && below(2)) {
            buf[0] = (uint8_t)(0x80 | below(16)); /* start like a map */
        }
        w = qn_frame_encode(buf, n, wire, sizeof wire);
        line(wire, w);
        break;
    case 2:
    case 3: /* structured random message */
        n = random_message(buf, sizeof buf);
        w = qn_frame_encode(buf, n, wire, sizeof wire);
        line(wire, w);
        break;
    case 4: /* a message with byte errors on the line */
        n = random_message(buf, sizeof buf);
        w = qn_frame_encode(buf, n, wire, sizeof wire);
        for (i = 0; i < 1 + below(3) && w > 0; i++) {
            wire[below(w)] ^= (uint8_t)(1 + below(255));
        }
        line(wire, below(4) ? w : below(w + 1));
        break;
    case 5: /* msgpack reader on random bytes */
        n = below(64);
        for (i = 0; i < n; i++) {
            buf[i] = (uint8_t)rnd();
        }
        qn_mpr_init(&r, buf, n);
        for (i = 0; i < 64 && qn_mpr_read(&r, &o) == 0; i++) {
        }
        qn_mpr_init(&r, buf, n);
        while (qn_mpr_skip(&r) == 0 && qn_mpr_left(&r) > 0) {
        }
        break;
    default: /* round trips must be exact */
        n = below(1200);
        for (i = 0; i < n; i++) {
            buf[i] = below(4) ? (uint8_t)(1 + below(255)) : 0;
        }
        w = qn_cobs_encode(buf, n, wire, sizeof wire);
        if (w == 0 || w > QN_COBS_MAX_ENCODED(n) || memchr(wire, 0, w) != NULL) {
            die("COBS encoding");
        }
        if (qn_cobs_decode(wire, w, back, sizeof back, &dlen) != 0 || dlen != n
            || memcmp(back, buf, n) != 0) {
            die("COBS round trip");
        }
        break;
    }
    /* the device keeps running: time moves (sometimes a lot), triggers fire, events flow */
    switch (below(8)) {
    case 0:
        g_now += (int64_t)below(2000000000000);
        break;
    case 1:
        g_now += (int64_t)below(100000000);
        break;
    default:
        break;
    }
    (void)tgen_poll(&g_dev, g_now);
    qn_engine_poll(&g_engine);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    unsigned long rounds = 0;
    clock_t start = clock();
    qn_platform plat;

    g_rng = (argc > 2 ? strtoull(argv[2], NULL, 0) : 1u) * 0x9E3779B97F4A7C15u + 1u;
    qn_frx_init(&g_out_rx, g_out_buf, sizeof g_out_buf, 16384);
    qn_frx_init(&g_small, g_small_buf, sizeof g_small_buf, 8);
    qn_frx_init(&g_normal, g_normal_buf, sizeof g_normal_buf, QN_MAX_PAYLOAD);
    plat.write = out_write;
    plat.write_ctx = NULL;
    plat.now_ps = fake_now;
    plat.clock_ctx = NULL;
    g_now = 0;
    tgen_init(&g_dev, &g_engine);
    tgen_describe(&g_dev, &g_def);
    if (qn_engine_init(&g_engine, &g_def, &plat, 7) != 0) {
        die("engine init");
    }
    while ((double)(clock() - start) < seconds * CLOCKS_PER_SEC) {
        unsigned k;
        for (k = 0; k < 64; k++) {
            round_once();
            rounds++;
        }
        if (below(64) == 0) {
            qn_engine_reset(&g_engine, rnd());
            tgen_init(&g_dev, &g_engine);
        }
    }
    printf("fuzz: %lu rounds in %.1f s; line frames ok %lu, crc %lu, cobs %lu, oversized %lu, "
           "short %lu; engine requests %lu, errors %lu, events %lu; output frames %lu "
           "(%lu bytes), all well-formed\n",
           rounds, seconds, (unsigned long)g_engine.rx.frames,
           (unsigned long)g_engine.rx.crc_errors, (unsigned long)g_engine.rx.cobs_errors,
           (unsigned long)g_engine.rx.oversized, (unsigned long)g_engine.rx.short_frames,
           (unsigned long)g_engine.stats.requests, (unsigned long)g_engine.stats.errors,
           (unsigned long)g_engine.stats.events, g_out_frames, g_out_bytes);
    return 0;
}
