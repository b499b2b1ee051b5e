/* qn_mpack.c -- msgpack subset writer and reader, see qn_mpack.h. */
#include "qn_mpack.h"

#include <string.h>

/* --- writer ------------------------------------------------------------------------------ */

void qn_mpw_init_buf(qn_mpw *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
    w->tx = NULL;
}

void qn_mpw_init_tx(qn_mpw *w, qn_frame_tx *tx)
{
    w->buf = NULL;
    w->cap = 0;
    w->len = 0;
    w->overflow = 0;
    w->tx = tx;
}

void qn_mpw_raw(qn_mpw *w, const uint8_t *data, size_t len)
{
    if (len == 0) {
        return;
    }
    if (w->tx != NULL) {
        qn_ftx_put(w->tx, data, len);
        w->len += len;
        return;
    }
    if (w->overflow || len > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
}

static void put_be(qn_mpw *w, uint8_t tag, uint64_t v, unsigned nbytes)
{
    uint8_t b[9];
    unsigned k;
    b[0] = tag;
    for (k = 0; k < nbytes; k++) {
        b[1 + k] = (uint8_t)(v >> (8u * (nbytes - 1u - k)));
    }
    qn_mpw_raw(w, b, 1u + nbytes);
}

void qn_mpw_nil(qn_mpw *w)
{
    static const uint8_t b = 0xC0u;
    qn_mpw_raw(w, &b, 1);
}

void qn_mpw_bool(qn_mpw *w, int value)
{
    uint8_t b = value ? 0xC3u : 0xC2u;
    qn_mpw_raw(w, &b, 1);
}

void qn_mpw_uint(qn_mpw *w, uint64_t v)
{
    if (v < 128u) {
        uint8_t b = (uint8_t)v;
        qn_mpw_raw(w, &b, 1);
    } else if (v <= 0xFFu) {
        put_be(w, 0xCCu, v, 1);
    } else if (v <= 0xFFFFu) {
        put_be(w, 0xCDu, v, 2);
    } else if (v <= 0xFFFFFFFFu) {
        put_be(w, 0xCEu, v, 4);
    } else {
        put_be(w, 0xCFu, v, 8);
    }
}

void qn_mpw_int(qn_mpw *w, int64_t v)
{
    if (v >= 0) {
        qn_mpw_uint(w, (uint64_t)v);
    } else if (v >= -32) {
        uint8_t b = (uint8_t)(0xE0u | (uint8_t)(v + 32));
        qn_mpw_raw(w, &b, 1);
    } else if (v >= INT8_MIN) {
        put_be(w, 0xD0u, (uint64_t)v, 1);
    } else if (v >= INT16_MIN) {
        put_be(w, 0xD1u, (uint64_t)v, 2);
    } else if (v >= INT32_MIN) {
        put_be(w, 0xD2u, (uint64_t)v, 4);
    } else {
        put_be(w, 0xD3u, (uint64_t)v, 8);
    }
}

void qn_mpw_double(qn_mpw *w, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_be(w, 0xCBu, bits, 8);
}

static void len_header(qn_mpw *w, uint32_t n, uint8_t fix_base, uint32_t fix_max,
                       uint8_t tag8, uint8_t tag16, uint8_t tag32)
{
    if (fix_max != 0 && n <= fix_max) {
        uint8_t b = (uint8_t)(fix_base | n);
        qn_mpw_raw(w, &b, 1);
    } else if (tag8 != 0 && n <= 0xFFu) {
        put_be(w, tag8, n, 1);
    } else if (n <= 0xFFFFu) {
        put_be(w, tag16, n, 2);
    } else {
        put_be(w, tag32, n, 4);
    }
}

void qn_mpw_str(qn_mpw *w, const char *s, size_t len)
{
    if (len > 0xFFFFFFFFu) {
        w->overflow = 1;
        return;
    }
    len_header(w, (uint32_t)len, 0xA0u, 31u, 0xD9u, 0xDAu, 0xDBu);
    qn_mpw_raw(w, (const uint8_t *)s, len);
}

void qn_mpw_cstr(qn_mpw *w, const char *s)
{
    if (s == NULL) {
        qn_mpw_nil(w);
    } else {
        qn_mpw_str(w, s, strlen(s));
    }
}

void qn_mpw_bin(qn_mpw *w, const uint8_t *data, size_t len)
{
    if (len > 0xFFFFFFFFu) {
        w->overflow = 1;
        return;
    }
    len_header(w, (uint32_t)len, 0, 0, 0xC4u, 0xC5u, 0xC6u);
    qn_mpw_raw(w, data, len);
}

void qn_mpw_array(qn_mpw *w, uint32_t n)
{
    len_header(w, n, 0x90u, 15u, 0, 0xDCu, 0xDDu);
}

void qn_mpw_map(qn_mpw *w, uint32_t n)
{
    len_header(w, n, 0x80u, 15u, 0, 0xDEu, 0xDFu);
}

void qn_mpw_ext(qn_mpw *w, int8_t type, const uint8_t *data, size_t len)
{
    uint8_t t = (uint8_t)type;
    if (len > 0xFFFFFFFFu) {
        w->overflow = 1;
        return;
    }
    if (len == 1 || len == 2 || len == 4 || len == 8 || len == 16) {
        uint8_t tag = len == 1 ? 0xD4u : len == 2 ? 0xD5u : len == 4 ? 0xD6u
                      : len == 8 ? 0xD7u : 0xD8u;
        qn_mpw_raw(w, &tag, 1);
    } else {
        len_header(w, (uint32_t)len, 0, 0, 0xC7u, 0xC8u, 0xC9u);
    }
    qn_mpw_raw(w, &t, 1);
    qn_mpw_raw(w, data, len);
}

/* --- reader ------------------------------------------------------------------------------ */

void qn_mpr_init(qn_mpr *r, const uint8_t *data, size_t len)
{
    r->p = data;
    r->len = len;
    r->pos = 0;
}

size_t qn_mpr_left(const qn_mpr *r)
{
    return r->len - r->pos;
}

static int take(qn_mpr *r, size_t n, const uint8_t **out)
{
    if (n > r->len - r->pos) {
        r->pos = r->len;
        return -1;
    }
    *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

static int take_be(qn_mpr *r, unsigned n, uint64_t *out)
{
    const uint8_t *b;
    uint64_t v = 0;
    unsigned k;
    if (take(r, n, &b) != 0) {
        return -1;
    }
    for (k = 0; k < n; k++) {
        v = (v << 8) | b[k];
    }
    *out = v;
    return 0;
}

static int take_data(qn_mpr *r, qn_mp_obj *obj, qn_mp_type type, uint64_t n)
{
    obj->type = type;
    if (n > 0xFFFFFFFFu) {
        return -1;
    }
    obj->len = (uint32_t)n;
    return take(r, (size_t)n, &obj->data);
}

static void set_uint(qn_mp_obj *obj, uint64_t v)
{
    obj->type = QN_MP_UINT;
    obj->u = v;
    obj->i = v <= (uint64_t)INT64_MAX ? (int64_t)v : INT64_MAX;
}

static void set_int(qn_mp_obj *obj, int64_t v)
{
    if (v >= 0) {
        set_uint(obj, (uint64_t)v);
        return;
    }
    obj->type = QN_MP_INT;
    obj->i = v;
    obj->u = 0;
}

/* sign-extend the low nbytes of v */
static int64_t sext(uint64_t v, unsigned nbytes)
{
    unsigned bits = 8u * nbytes;
    uint64_t sign = (uint64_t)1 << (bits - 1u);
    if (bits == 64u) {
        return (v & sign) ? -(int64_t)(~v) - 1 : (int64_t)v;
    }
    v &= (sign << 1) - 1u;
    return (v & sign) ? (int64_t)v - (int64_t)(sign << 1) : (int64_t)v;
}

int qn_mpr_read(qn_mpr *r, qn_mp_obj *obj)
{
    const uint8_t *b;
    uint8_t tag;
    uint64_t v = 0;

    memset(obj, 0, sizeof *obj);
    if (take(r, 1, &b) != 0) {
        return -1;
    }
    tag = b[0];
    if (tag <= 0x7Fu) {
        set_uint(obj, tag);
        return 0;
    }
    if (tag >= 0xE0u) {
        set_int(obj, (int64_t)tag - 256);
        return 0;
    }
    if ((tag & 0xF0u) == 0x80u) {
        obj->type = QN_MP_MAP;
        obj->len = tag & 0x0Fu;
        return 0;
    }
    if ((tag & 0xF0u) == 0x90u) {
        obj->type = QN_MP_ARRAY;
        obj->len = tag & 0x0Fu;
        return 0;
    }
    if ((tag & 0xE0u) == 0xA0u) {
        return take_data(r, obj, QN_MP_STR, tag & 0x1Fu);
    }
    switch (tag) {
    case 0xC0u:
        obj->type = QN_MP_NIL;
        return 0;
    case 0xC2u:
    case 0xC3u:
        obj->type = QN_MP_BOOL;
        obj->boolean = tag == 0xC3u;
        return 0;
    case 0xC4u:
    case 0xC5u:
    case 0xC6u:
        if (take_be(r, 1u << (tag - 0xC4u), &v) != 0) {
            return -1;
        }
        return take_data(r, obj, QN_MP_BIN, v);
    case 0xC7u:
    case 0xC8u:
    case 0xC9u:
        if (take_be(r, 1u << (tag - 0xC7u), &v) != 0 || take(r, 1, &b) != 0) {
            return -1;
        }
        obj->ext = (int8_t)sext(b[0], 1);
        return take_data(r, obj, QN_MP_EXT, v);
    case 0xCAu: {
        float f;
        uint32_t bits;
        if (take_be(r, 4, &v) != 0) {
            return -1;
        }
        bits = (uint32_t)v;
        memcpy(&f, &bits, sizeof f);
        obj->type = QN_MP_FLOAT;
        obj->f = (double)f;
        return 0;
    }
    case 0xCBu:
        if (take_be(r, 8, &v) != 0) {
            return -1;
        }
        obj->type = QN_MP_FLOAT;
        memcpy(&obj->f, &v, sizeof obj->f);
        return 0;
    case 0xCCu:
    case 0xCDu:
    case 0xCEu:
    case 0xCFu:
        if (take_be(r, 1u << (tag - 0xCCu), &v) != 0) {
            return -1;
        }
        set_uint(obj, v);
        return 0;
    case 0xD0u:
    case 0xD1u:
    case 0xD2u:
    case 0xD3u: {
        unsigned n = 1u << (tag - 0xD0u);
        if (take_be(r, n, &v) != 0) {
            return -1;
        }
        set_int(obj, sext(v, n));
        return 0;
    }
    case 0xD4u:
    case 0xD5u:
    case 0xD6u:
    case 0xD7u:
    case 0xD8u:
        if (take(r, 1, &b) != 0) {
            return -1;
        }
        obj->ext = (int8_t)sext(b[0], 1);
        return take_data(r, obj, QN_MP_EXT, 1u << (tag - 0xD4u));
    case 0xD9u:
    case 0xDAu:
    case 0xDBu:
        if (take_be(r, 1u << (tag - 0xD9u), &v) != 0) {
            return -1;
        }
        return take_data(r, obj, QN_MP_STR, v);
    case 0xDCu:
    case 0xDDu:
        if (take_be(r, tag == 0xDCu ? 2u : 4u, &v) != 0) {
            return -1;
        }
        obj->type = QN_MP_ARRAY;
        obj->len = (uint32_t)v;
        return 0;
    case 0xDEu:
    case 0xDFu:
        if (take_be(r, tag == 0xDEu ? 2u : 4u, &v) != 0) {
            return -1;
        }
        obj->type = QN_MP_MAP;
        obj->len = (uint32_t)v;
        return 0;
    default: /* 0xC1: never used */
        r->pos = r->len;
        return -1;
    }
}

int qn_mpr_skip(qn_mpr *r)
{
    uint64_t remaining = 1;
    qn_mp_obj obj;
    while (remaining > 0) {
        if (qn_mpr_read(r, &obj) != 0) {
            return -1;
        }
        remaining--;
        if (obj.type == QN_MP_ARRAY || obj.type == QN_MP_MAP) {
            uint64_t more = obj.type == QN_MP_MAP ? 2u * (uint64_t)obj.len : obj.len;
            /* every element needs at least one byte: reject impossible counts early */
            if (more > qn_mpr_left(r) || remaining + more > qn_mpr_left(r)) {
                r->pos = r->len;
                return -1;
            }
            remaining += more;
        }
    }
    return 0;
}

int qn_mp_to_i64(const qn_mp_obj *obj, int64_t *out)
{
    if (obj->type == QN_MP_INT) {
        *out = obj->i;
        return 0;
    }
    if (obj->type == QN_MP_UINT && obj->u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)obj->u;
        return 0;
    }
    return -1;
}

int qn_mp_str_eq(const qn_mp_obj *obj, const char *s)
{
    size_t n = strlen(s);
    return obj->type == QN_MP_STR && obj->len == n && memcmp(obj->data, s, n) == 0;
}

const char *qn_mp_type_name(const qn_mp_obj *obj)
{
    switch (obj->type) {
    case QN_MP_NIL:
        return "NoneType";
    case QN_MP_BOOL:
        return "bool";
    case QN_MP_UINT:
    case QN_MP_INT:
        return "int";
    case QN_MP_FLOAT:
        return "float";
    case QN_MP_STR:
        return "str";
    case QN_MP_BIN:
        return "bytes";
    case QN_MP_ARRAY:
        return "list";
    case QN_MP_MAP:
        return "dict";
    case QN_MP_EXT:
        switch (obj->ext) {
        case 1:
        case 2:
            return "ndarray";
        case 3:
            return "complex";
        case 4:
            return "Timestamp";
        case 5:
            return "Quantity";
        default:
            return "ext";
        }
    }
    return "?";
}
