/* qn_mpack.h -- the msgpack subset the protocol needs, with fixed buffers only.
 *
 * Writer: nil, bool, integers (smallest encoding), float64, str, bin, array and map headers,
 * raw pre-encoded bytes. It writes into a caller buffer (overflow is sticky and reported) or
 * streams straight into an open serial frame (qn_frame_tx), so a long reply such as the
 * describe map needs no buffer at all.
 *
 * Reader: decodes one item header at a time from a bounded buffer (str/bin/ext data are
 * returned as pointers into it), and skips whole values iteratively (no recursion, no depth
 * limit needed: every element costs at least one input byte). Every read is bounds-checked;
 * truncated input and the reserved byte 0xc1 are errors. */
#ifndef QN_MPACK_H
#define QN_MPACK_H

#include <stddef.h>
#include <stdint.h>

#include "qn_frame.h"

typedef struct {
    uint8_t *buf;          /* buffer mode: destination */
    size_t cap;
    size_t len;
    int overflow;          /* set when a write did not fit; the buffer is then unusable */
    qn_frame_tx *tx;       /* frame mode: bytes go into this open frame */
} qn_mpw;

void qn_mpw_init_buf(qn_mpw *w, uint8_t *buf, size_t cap);
void qn_mpw_init_tx(qn_mpw *w, qn_frame_tx *tx);
void qn_mpw_raw(qn_mpw *w, const uint8_t *data, size_t len);
void qn_mpw_nil(qn_mpw *w);
void qn_mpw_bool(qn_mpw *w, int value);
void qn_mpw_int(qn_mpw *w, int64_t value);
void qn_mpw_uint(qn_mpw *w, uint64_t value);
void qn_mpw_double(qn_mpw *w, double value);
void qn_mpw_str(qn_mpw *w, const char *s, size_t len);
void qn_mpw_cstr(qn_mpw *w, const char *s); /* NULL writes nil */
void qn_mpw_bin(qn_mpw *w, const uint8_t *data, size_t len);
void qn_mpw_array(qn_mpw *w, uint32_t n);
void qn_mpw_map(qn_mpw *w, uint32_t n);
void qn_mpw_ext(qn_mpw *w, int8_t type, const uint8_t *data, size_t len);

typedef enum {
    QN_MP_NIL, QN_MP_BOOL, QN_MP_UINT, QN_MP_INT, QN_MP_FLOAT, QN_MP_STR, QN_MP_BIN,
    QN_MP_ARRAY, QN_MP_MAP, QN_MP_EXT
} qn_mp_type;

typedef struct {
    qn_mp_type type;
    int boolean;           /* BOOL */
    uint64_t u;            /* UINT: values >= 0 */
    int64_t i;             /* INT: values < 0; UINT values <= INT64_MAX are copied here too */
    double f;              /* FLOAT (float32 widened) */
    const uint8_t *data;   /* STR, BIN, EXT: the bytes, inside the reader's buffer */
    uint32_t len;          /* STR, BIN, EXT: byte count; ARRAY: elements; MAP: pairs */
    int8_t ext;            /* EXT: type code */
} qn_mp_obj;

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
} qn_mpr;

void qn_mpr_init(qn_mpr *r, const uint8_t *data, size_t len);

/* Read one item header (and the bytes of str/bin/ext). Returns 0, or -1 on malformed or
 * truncated input (the reader is then unusable). */
int qn_mpr_read(qn_mpr *r, qn_mp_obj *obj);

/* Skip one complete value, nested arrays and maps included. Returns 0 or -1. */
int qn_mpr_skip(qn_mpr *r);

/* Bytes not consumed yet. */
size_t qn_mpr_left(const qn_mpr *r);

/* An INT or UINT that fits int64_t: 0 and *out; else -1. */
int qn_mp_to_i64(const qn_mp_obj *obj, int64_t *out);

/* STR equal to the NUL-terminated s? */
int qn_mp_str_eq(const qn_mp_obj *obj, const char *s);

/* The Python-side type name of an item, for error messages ("int", "str", "NoneType"...). */
const char *qn_mp_type_name(const qn_mp_obj *obj);

#endif /* QN_MPACK_H */
