/* qn_proto.c -- the device side of the qnhw protocol, see qn_proto.h and docs/protocol.md. */
#include "qn_proto.h"

#include <string.h>

static const char *const k_features[] = {"lossless-streams", "cancel", "heartbeat", "describe"};
#define N_FEATURES (sizeof k_features / sizeof k_features[0])

#define MAX_METHOD 256u
#define MAX_CREDIT (1u << 20)
#define MAX_CREDIT_GRANT (1u << 30)

/* --- message keys ----------------------------------------------------------------------- */

enum { K_K, K_ID, K_M, K_P, K_DL, K_PV, K_FEAT, K_CLIENT, K_CONTRACT, K_N, K_S, K_COUNT };
static const char *const k_keys[K_COUNT] = {"k", "id", "m", "p", "dl", "pv", "feat", "client",
                                            "contract", "n", "s"};

typedef struct {
    const uint8_t *p; /* NULL: key absent */
    size_t len;
} span;

typedef struct {
    span v[K_COUNT];
} message;

/* --- small helpers ---------------------------------------------------------------------- */

static int mem_eq(const uint8_t *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && memcmp(a, b, blen) == 0;
}

static void key(qn_mpw *w, const char *k)
{
    qn_mpw_cstr(w, k);
}

static int span_read(const span *s, qn_mp_obj *obj)
{
    qn_mpr r;
    if (s->p == NULL) {
        return -1;
    }
    qn_mpr_init(&r, s->p, s->len);
    return qn_mpr_read(&r, obj);
}

static void err_clear(qn_error *err)
{
    err->code = 0;
    err->msg[0] = '\0';
    err->detail_key = NULL;
    err->detail[0] = '\0';
    err->peer_major = 0;
    err->peer_minor = 0;
}

static qn_sb err_begin(qn_error *err, uint16_t code)
{
    qn_sb sb;
    err_clear(err);
    err->code = code;
    qn_sb_init(&sb, err->msg, sizeof err->msg);
    return sb;
}

static void err_detail(qn_error *err, const char *k, const uint8_t *v, size_t len)
{
    qn_sb sb;
    err->detail_key = k;
    qn_sb_init(&sb, err->detail, sizeof err->detail);
    qn_sb_mem(&sb, v, len);
}

static void err_set(qn_error *err, uint16_t code, const char *msg)
{
    qn_sb sb = err_begin(err, code);
    qn_sb_str(&sb, msg);
}

int qn_fail(qn_call *call, uint16_t code, const char *msg)
{
    err_set(call->error, code, msg);
    return code;
}

int qn_fail_param(qn_call *call, uint16_t code, const char *param, const char *msg)
{
    err_set(call->error, code, msg);
    err_detail(call->error, "param", (const uint8_t *)param, strlen(param));
    return code;
}

qn_sb qn_fail_text(qn_call *call, uint16_t code, const char *param)
{
    qn_sb sb = err_begin(call->error, code);
    if (param != NULL) {
        err_detail(call->error, "param", (const uint8_t *)param, strlen(param));
    }
    return sb;
}

int64_t qn_engine_now(qn_engine *e)
{
    return e->plat.now_ps(e->plat.clock_ctx);
}

/* --- sending ---------------------------------------------------------------------------- */

static void frame_begin(qn_engine *e, qn_mpw *w)
{
    qn_ftx_begin(&e->tx);
    qn_mpw_init_tx(w, &e->tx);
    e->sending = 1;
}

static void frame_end(qn_engine *e)
{
    qn_ftx_end(&e->tx);
    e->sending = 0;
}

static void write_id(qn_mpw *w, int has_id, uint64_t id)
{
    key(w, "id");
    if (has_id) {
        qn_mpw_uint(w, id);
    } else {
        qn_mpw_nil(w);
    }
}

static void send_error(qn_engine *e, int has_id, uint64_t id, const qn_error *err)
{
    qn_mpw w;
    frame_begin(e, &w);
    qn_mpw_map(&w, 5);
    key(&w, "k");
    key(&w, "err");
    write_id(&w, has_id, id);
    key(&w, "code");
    qn_mpw_uint(&w, err->code);
    key(&w, "msg");
    qn_mpw_cstr(&w, err->msg);
    key(&w, "det");
    if (err->code == QN_E_VERSION) {
        qn_mpw_map(&w, 2);
        key(&w, "peer");
        qn_mpw_array(&w, 2);
        qn_mpw_int(&w, err->peer_major);
        qn_mpw_int(&w, err->peer_minor);
        key(&w, "local");
        qn_mpw_array(&w, 2);
        qn_mpw_int(&w, QN_PROTOCOL_MAJOR);
        qn_mpw_int(&w, QN_PROTOCOL_MINOR);
    } else if (err->detail_key != NULL) {
        qn_mpw_map(&w, 1);
        key(&w, err->detail_key);
        qn_mpw_cstr(&w, err->detail);
    } else {
        qn_mpw_map(&w, 0);
    }
    frame_end(e);
    e->stats.errors++;
}

static void fail(qn_engine *e, int has_id, uint64_t id, uint16_t code, const char *msg)
{
    err_set(&e->err, code, msg);
    send_error(e, has_id, id, &e->err);
}

static void reply_begin(qn_engine *e, qn_mpw *w, uint64_t id)
{
    frame_begin(e, w);
    qn_mpw_map(w, 3);
    key(w, "k");
    key(w, "rep");
    write_id(w, 1, id);
    key(w, "r");
}

static void reply_end(qn_engine *e)
{
    frame_end(e);
    e->stats.replies++;
}

static void send_event(qn_engine *e, size_t stream, uint64_t seq, int64_t ts,
                       const uint8_t *payload, size_t len)
{
    qn_mpw w;
    frame_begin(e, &w);
    qn_mpw_map(&w, 6);
    key(&w, "k");
    key(&w, "ev");
    key(&w, "s");
    qn_mpw_cstr(&w, e->dev->streams[stream].name);
    key(&w, "seq");
    qn_mpw_uint(&w, seq);
    key(&w, "ts");
    qn_mpw_int(&w, ts);
    key(&w, "cd");
    qn_mpw_cstr(&w, e->dev->clock_domain);
    key(&w, "p");
    if (len == 0) {
        qn_mpw_nil(&w);
    } else {
        qn_mpw_raw(&w, payload, len);
    }
    frame_end(e);
    e->stats.events++;
}

/* --- sessions and streams --------------------------------------------------------------- */

static void clear_subscription(qn_stream_state *st)
{
    st->subscribed = 0;
    st->lossless = 0;
    st->credit = 0;
    st->head = 0;
    st->count = 0;
}

static void drop_session(qn_engine *e)
{
    size_t i;
    e->session = 0;
    for (i = 0; i < QN_MAX_STREAMS; i++) {
        clear_subscription(&e->streams[i]);
    }
}

static void flush_stream(qn_engine *e, size_t stream)
{
    qn_stream_state *st = &e->streams[stream];
    while (st->credit > 0 && st->count > 0) {
        const qn_event_slot *ev = &st->queue[st->head];
        send_event(e, stream, ev->seq, ev->ts, ev->data, ev->len);
        st->head = (st->head + 1) % QN_EVQ_LEN;
        st->count--;
        st->credit--;
    }
}

int qn_engine_publish(qn_engine *e, size_t stream, int64_t ts_ps, const uint8_t *payload,
                      size_t len, uint64_t *seq_out)
{
    qn_stream_state *st;
    qn_event_slot *slot;
    uint64_t seq;

    if (stream >= e->dev->n_streams) {
        return -1;
    }
    st = &e->streams[stream];
    seq = st->next_seq++;
    if (seq_out != NULL) {
        *seq_out = seq;
    }
    if (!e->session || !st->subscribed) {
        return 0;
    }
    if (e->sending) { /* called from inside a frame (e.g. a capabilities writer) */
        st->dropped++;
        return -1;
    }
    if (!st->lossless || (st->credit > 0 && st->count == 0)) {
        send_event(e, stream, seq, ts_ps, payload, len);
        if (st->lossless) {
            st->credit--;
        }
        return 0;
    }
    if (st->count >= QN_EVQ_LEN || len > QN_EV_PAYLOAD_MAX) {
        st->dropped++;
        return -1;
    }
    slot = &st->queue[(st->head + st->count) % QN_EVQ_LEN];
    slot->seq = seq;
    slot->ts = ts_ps;
    slot->len = len;
    if (len > 0) {
        memcpy(slot->data, payload, len);
    }
    st->count++;
    return 0;
}

void qn_engine_skip(qn_engine *e, size_t stream, uint64_t n)
{
    if (stream < e->dev->n_streams) {
        e->streams[stream].next_seq += n;
        e->streams[stream].dropped += (uint32_t)(n > 0xFFFFFFFFu ? 0xFFFFFFFFu : n);
    }
}

/* --- describe --------------------------------------------------------------------------- */

static const char *type_name(qn_type t)
{
    switch (t) {
    case QN_T_INT:
        return "int";
    case QN_T_FLOAT:
        return "float";
    case QN_T_BOOL:
        return "bool";
    case QN_T_STR:
        return "str";
    case QN_T_TIMESTAMP:
        return "timestamp";
    }
    return "any";
}

static void write_bound(qn_mpw *w, const qn_param *p, int64_t i, double f)
{
    if (p->type == QN_T_FLOAT) {
        qn_mpw_double(w, f);
    } else {
        qn_mpw_int(w, i);
    }
}

static void write_param(qn_mpw *w, const qn_param *p)
{
    unsigned f = p->flags;
    int has_domain = p->type == QN_T_TIMESTAMP && p->domain != NULL;
    uint32_t n = 5u + ((f & QN_P_MIN) != 0) + ((f & QN_P_MAX) != 0) + (p->choices != NULL)
                 + ((f & QN_P_OPTIONAL) != 0) + ((f & QN_P_NULLABLE) != 0) + (has_domain != 0);
    qn_mpw_map(w, n);
    key(w, "name");
    qn_mpw_cstr(w, p->name);
    key(w, "type");
    qn_mpw_cstr(w, type_name(p->type));
    key(w, "unit");
    qn_mpw_cstr(w, p->unit != NULL ? p->unit : "");
    key(w, "doc");
    qn_mpw_cstr(w, p->doc != NULL ? p->doc : "");
    key(w, "required");
    qn_mpw_bool(w, (f & QN_P_OPTIONAL) == 0);
    if (f & QN_P_MIN) {
        key(w, "min");
        write_bound(w, p, p->imin, p->fmin);
    }
    if (f & QN_P_MAX) {
        key(w, "max");
        write_bound(w, p, p->imax, p->fmax);
    }
    if (p->choices != NULL) {
        uint32_t k = 0;
        while (p->choices[k] != NULL) {
            k++;
        }
        key(w, "choices");
        qn_mpw_array(w, k);
        for (k = 0; p->choices[k] != NULL; k++) {
            qn_mpw_cstr(w, p->choices[k]);
        }
    }
    if (f & QN_P_OPTIONAL) {
        key(w, "default");
        if (f & QN_P_NULLABLE) {
            qn_mpw_nil(w);
        } else if (p->type == QN_T_FLOAT) {
            qn_mpw_double(w, p->fdef);
        } else if (p->type == QN_T_BOOL) {
            qn_mpw_bool(w, p->bdef);
        } else if (p->type == QN_T_STR) {
            qn_mpw_cstr(w, p->sdef != NULL ? p->sdef : "");
        } else {
            qn_mpw_int(w, p->idef);
        }
    }
    if (f & QN_P_NULLABLE) {
        key(w, "nullable");
        qn_mpw_bool(w, 1);
    }
    if (has_domain) {
        key(w, "domain");
        qn_mpw_cstr(w, p->domain);
    }
}

static void write_fields(qn_mpw *w, const qn_field *fields, size_t n)
{
    size_t i;
    qn_mpw_array(w, (uint32_t)n);
    for (i = 0; i < n; i++) {
        qn_mpw_map(w, 5);
        key(w, "name");
        qn_mpw_cstr(w, fields[i].name);
        key(w, "type");
        qn_mpw_cstr(w, fields[i].type);
        key(w, "unit");
        qn_mpw_cstr(w, fields[i].unit != NULL ? fields[i].unit : "");
        key(w, "doc");
        qn_mpw_cstr(w, fields[i].doc != NULL ? fields[i].doc : "");
        key(w, "required");
        qn_mpw_bool(w, 1);
    }
}

static void write_contract(qn_mpw *w, const qn_device *d)
{
    if (d->contract == NULL) {
        qn_mpw_nil(w);
        return;
    }
    qn_mpw_map(w, 2);
    key(w, "name");
    qn_mpw_cstr(w, d->contract);
    key(w, "version");
    qn_mpw_cstr(w, d->contract_version != NULL ? d->contract_version : "1.0");
}

static void write_features(qn_mpw *w)
{
    size_t i;
    qn_mpw_array(w, (uint32_t)N_FEATURES);
    for (i = 0; i < N_FEATURES; i++) {
        qn_mpw_cstr(w, k_features[i]);
    }
}

static void send_describe(qn_engine *e, uint64_t id)
{
    const qn_device *d = e->dev;
    qn_mpw w;
    size_t i, k;

    reply_begin(e, &w, id);
    qn_mpw_map(&w, 8);
    key(&w, "device");
    qn_mpw_cstr(&w, d->name);
    key(&w, "protocol");
    qn_mpw_array(&w, 2);
    qn_mpw_int(&w, QN_PROTOCOL_MAJOR);
    qn_mpw_int(&w, QN_PROTOCOL_MINOR);
    key(&w, "features");
    write_features(&w);
    key(&w, "contract");
    write_contract(&w, d);
    key(&w, "commands");
    qn_mpw_array(&w, (uint32_t)d->n_commands);
    for (i = 0; i < d->n_commands; i++) {
        const qn_command *c = &d->commands[i];
        qn_mpw_map(&w, c->n_result > 0 ? 5u : 4u);
        key(&w, "name");
        qn_mpw_cstr(&w, c->name);
        key(&w, "doc");
        qn_mpw_cstr(&w, c->doc != NULL ? c->doc : "");
        key(&w, "returns");
        qn_mpw_cstr(&w, c->returns != NULL ? c->returns : "");
        key(&w, "params");
        qn_mpw_array(&w, (uint32_t)c->n_params);
        for (k = 0; k < c->n_params; k++) {
            write_param(&w, &c->params[k]);
        }
        if (c->n_result > 0) {
            key(&w, "result");
            write_fields(&w, c->result, c->n_result);
        }
    }
    key(&w, "streams");
    qn_mpw_array(&w, (uint32_t)d->n_streams);
    for (i = 0; i < d->n_streams; i++) {
        const qn_stream_spec *s = &d->streams[i];
        qn_mpw_map(&w, s->n_fields > 0 ? 5u : 4u);
        key(&w, "name");
        qn_mpw_cstr(&w, s->name);
        key(&w, "doc");
        qn_mpw_cstr(&w, s->doc != NULL ? s->doc : "");
        key(&w, "payload");
        qn_mpw_cstr(&w, s->payload != NULL ? s->payload : "");
        key(&w, "clock_domain");
        qn_mpw_cstr(&w, "device"); /* every event carries the device's own clock domain */
        if (s->n_fields > 0) {
            key(&w, "fields");
            write_fields(&w, s->fields, s->n_fields);
        }
    }
    key(&w, "capabilities");
    if (d->capabilities != NULL) {
        d->capabilities(d->device, &w);
    } else {
        qn_mpw_map(&w, 0);
    }
    key(&w, "clock_domain");
    qn_mpw_cstr(&w, d->clock_domain);
    reply_end(e);
}

/* --- units ------------------------------------------------------------------------------ */

typedef struct {
    const char *text;
    double scale;
} prefix;

static const prefix k_prefixes[] = {
    {"\xC2\xB5", 1e-6}, {"f", 1e-15}, {"p", 1e-12}, {"n", 1e-9}, {"u", 1e-6},
    {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
};
static const char *const k_base_units[] = {"s", "Hz", "m", "W", "V", "A", "K", "rad", "J", "T"};

static int is_base(const uint8_t *u, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof k_base_units / sizeof k_base_units[0]; i++) {
        if (mem_eq(u, len, k_base_units[i])) {
            return 1;
        }
    }
    return 0;
}

/* scale and base unit of u (as qnhw.contract.units._split) */
static void split_unit(const uint8_t *u, size_t len, double *scale, const uint8_t **base,
                       size_t *blen)
{
    size_t i;
    *scale = 1.0;
    *base = u;
    *blen = len;
    if (len == 0 || is_base(u, len)) {
        return;
    }
    for (i = 0; i < sizeof k_prefixes / sizeof k_prefixes[0]; i++) {
        size_t pl = strlen(k_prefixes[i].text);
        if (len > pl && memcmp(u, k_prefixes[i].text, pl) == 0 && is_base(u + pl, len - pl)) {
            *scale = k_prefixes[i].scale;
            *base = u + pl;
            *blen = len - pl;
            return;
        }
    }
}

static int is_finite(double v)
{
    return v == v && v - v == 0;
}

/* --- parameter validation --------------------------------------------------------------- */

static qn_sb bad_param(qn_engine *e, const qn_param *p)
{
    qn_sb sb = err_begin(&e->err, QN_E_BAD_PARAMS);
    err_detail(&e->err, "param", (const uint8_t *)p->name, strlen(p->name));
    qn_sb_str(&sb, "parameter '");
    qn_sb_str(&sb, p->name);
    qn_sb_str(&sb, "': ");
    return sb;
}

static int bad_type(qn_engine *e, const qn_param *p, const char *expected, const qn_mp_obj *o)
{
    qn_sb sb = bad_param(e, p);
    qn_sb_str(&sb, expected);
    qn_sb_str(&sb, ", got ");
    qn_sb_str(&sb, qn_mp_type_name(o));
    return -1;
}

static void unit_suffix(qn_sb *sb, const qn_param *p)
{
    if (p->type != QN_T_STR && p->unit != NULL && p->unit[0] != '\0') {
        qn_sb_char(sb, ' ');
        qn_sb_str(sb, p->unit);
    }
}

static int check_int_range(qn_engine *e, const qn_param *p, int64_t v)
{
    const char *what = p->type == QN_T_STR ? "length " : "value ";
    int low = (p->flags & QN_P_MIN) && v < p->imin;
    int high = (p->flags & QN_P_MAX) && v > p->imax;
    qn_sb sb;
    if (!low && !high) {
        return 0;
    }
    sb = bad_param(e, p);
    qn_sb_str(&sb, what);
    qn_sb_i64(&sb, v);
    unit_suffix(&sb, p);
    qn_sb_str(&sb, low ? " below minimum " : " above maximum ");
    qn_sb_i64(&sb, low ? p->imin : p->imax);
    unit_suffix(&sb, p);
    return -1;
}

static int check_float_range(qn_engine *e, const qn_param *p, double v)
{
    int low = (p->flags & QN_P_MIN) && v < p->fmin;
    int high = (p->flags & QN_P_MAX) && v > p->fmax;
    qn_sb sb;
    if (!low && !high) {
        return 0;
    }
    sb = bad_param(e, p);
    qn_sb_str(&sb, "value ");
    qn_sb_f64(&sb, v);
    unit_suffix(&sb, p);
    qn_sb_str(&sb, low ? " below minimum " : " above maximum ");
    qn_sb_f64(&sb, low ? p->fmin : p->fmax);
    unit_suffix(&sb, p);
    return -1;
}

/* Quantity ext payload [value, unit] converted to the parameter's unit: 0 and *out, or -1. */
static int quantity_value(qn_engine *e, const qn_param *p, const qn_mp_obj *o, double *out)
{
    qn_mpr r;
    qn_mp_obj arr, val, unit;
    double v, fs, ts;
    const uint8_t *fb, *tb;
    size_t fl, tl;
    const char *to = p->unit != NULL ? p->unit : "";
    qn_sb sb;

    qn_mpr_init(&r, o->data, o->len);
    if (qn_mpr_read(&r, &arr) != 0 || arr.type != QN_MP_ARRAY || arr.len != 2
        || qn_mpr_read(&r, &val) != 0 || qn_mpr_read(&r, &unit) != 0 || unit.type != QN_MP_STR
        || (val.type != QN_MP_INT && val.type != QN_MP_UINT && val.type != QN_MP_FLOAT)
        || qn_mpr_left(&r) != 0) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "malformed quantity");
        return -1;
    }
    v = val.type == QN_MP_FLOAT ? val.f : val.type == QN_MP_INT ? (double)val.i : (double)val.u;
    if (mem_eq(unit.data, unit.len, to)) {
        *out = v;
        return 0;
    }
    split_unit(unit.data, unit.len, &fs, &fb, &fl);
    split_unit((const uint8_t *)to, strlen(to), &ts, &tb, &tl);
    if (fl != tl || memcmp(fb, tb, fl) != 0) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "unit '");
        qn_sb_mem(&sb, unit.data, unit.len);
        qn_sb_str(&sb, "' cannot be converted to '");
        qn_sb_str(&sb, to);
        qn_sb_char(&sb, '\'');
        return -1;
    }
    v = v * (fs / ts);
    if (!is_finite(v)) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "quantity overflows in ");
        qn_sb_str(&sb, to);
        return -1;
    }
    *out = v;
    return 0;
}

static int whole_number(qn_engine *e, const qn_param *p, double v, int64_t *out)
{
    double r, diff, mag;
    qn_sb sb;
    if (!(v > -9.2e18 && v < 9.2e18)) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "value out of the 64-bit range");
        return -1;
    }
    r = (double)(int64_t)(v + (v >= 0 ? 0.5 : -0.5));
    diff = v > r ? v - r : r - v;
    mag = (v < 0 ? -v : v) > (r < 0 ? -r : r) ? (v < 0 ? -v : v) : (r < 0 ? -r : r);
    if (diff > 1e-9 * mag && diff > 1e-9) {
        sb = bad_param(e, p);
        qn_sb_f64(&sb, v);
        unit_suffix(&sb, p);
        qn_sb_str(&sb, " is not a whole number");
        return -1;
    }
    *out = (int64_t)r;
    return 0;
}

static int timestamp_value(qn_engine *e, const qn_param *p, const qn_mp_obj *o, int64_t *out)
{
    qn_mpr r;
    qn_mp_obj arr, ps, dom;
    qn_sb sb;
    qn_mpr_init(&r, o->data, o->len);
    if (qn_mpr_read(&r, &arr) != 0 || arr.type != QN_MP_ARRAY || arr.len != 2
        || qn_mpr_read(&r, &ps) != 0 || qn_mp_to_i64(&ps, out) != 0
        || qn_mpr_read(&r, &dom) != 0 || dom.type != QN_MP_STR || dom.len == 0
        || qn_mpr_left(&r) != 0) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "malformed timestamp");
        return -1;
    }
    if (p->domain != NULL && !mem_eq(dom.data, dom.len, p->domain)) {
        sb = bad_param(e, p);
        qn_sb_str(&sb, "timestamp in clock domain '");
        qn_sb_mem(&sb, dom.data, dom.len);
        qn_sb_str(&sb, "'; this device uses '");
        qn_sb_str(&sb, p->domain);
        qn_sb_char(&sb, '\'');
        return -1;
    }
    return 0;
}

static int convert_value(qn_engine *e, const qn_param *p, const qn_mp_obj *o, qn_value *out)
{
    double q;
    qn_sb sb;

    out->present = 1;
    if (o->type == QN_MP_NIL) {
        if (p->flags & QN_P_NULLABLE) {
            out->present = 0;
            return 0;
        }
    }
    if (o->type == QN_MP_EXT && o->ext == 5) { /* Quantity */
        if (p->type != QN_T_INT && p->type != QN_T_FLOAT && p->type != QN_T_TIMESTAMP) {
            sb = bad_param(e, p);
            qn_sb_str(&sb, "does not take a quantity with a unit");
            return -1;
        }
        if (quantity_value(e, p, o, &q) != 0) {
            return -1;
        }
        if (p->type == QN_T_FLOAT) {
            out->f = q;
            return check_float_range(e, p, q);
        }
        if (whole_number(e, p, q, &out->i) != 0) {
            return -1;
        }
        return check_int_range(e, p, out->i);
    }
    switch (p->type) {
    case QN_T_TIMESTAMP:
        if (o->type == QN_MP_EXT && o->ext == 4) {
            if (timestamp_value(e, p, o, &out->i) != 0) {
                return -1;
            }
            return check_int_range(e, p, out->i);
        }
        /* plain int picoseconds: same as int */
        /* fall through */
    case QN_T_INT:
        if (qn_mp_to_i64(o, &out->i) != 0) {
            if (o->type == QN_MP_UINT) {
                sb = bad_param(e, p);
                qn_sb_str(&sb, "value out of the 64-bit range");
                return -1;
            }
            return bad_type(e, p, p->type == QN_T_INT ? "expected int"
                            : "expected a Timestamp or int picoseconds", o);
        }
        return check_int_range(e, p, out->i);
    case QN_T_FLOAT:
        if (o->type == QN_MP_FLOAT) {
            out->f = o->f;
        } else if (o->type == QN_MP_INT) {
            out->f = (double)o->i;
        } else if (o->type == QN_MP_UINT) {
            out->f = (double)o->u;
        } else {
            return bad_type(e, p, "expected float", o);
        }
        if (!is_finite(out->f)) {
            sb = bad_param(e, p);
            qn_sb_str(&sb, "must be finite");
            return -1;
        }
        return check_float_range(e, p, out->f);
    case QN_T_BOOL:
        if (o->type != QN_MP_BOOL) {
            return bad_type(e, p, "expected bool", o);
        }
        out->b = o->boolean;
        return 0;
    case QN_T_STR:
        if (o->type != QN_MP_STR) {
            return bad_type(e, p, "expected str", o);
        }
        out->s = (const char *)o->data;
        out->slen = o->len;
        if (check_int_range(e, p, (int64_t)o->len) != 0) {
            return -1;
        }
        if (p->choices != NULL) {
            size_t k;
            for (k = 0; p->choices[k] != NULL; k++) {
                if (mem_eq(o->data, o->len, p->choices[k])) {
                    return 0;
                }
            }
            sb = bad_param(e, p);
            qn_sb_str(&sb, "must be one of [");
            for (k = 0; p->choices[k] != NULL; k++) {
                qn_sb_str(&sb, k ? ", '" : "'");
                qn_sb_str(&sb, p->choices[k]);
                qn_sb_char(&sb, '\'');
            }
            qn_sb_char(&sb, ']');
            return -1;
        }
        return 0;
    }
    return -1;
}

static void set_default(const qn_param *p, qn_value *v)
{
    memset(v, 0, sizeof *v);
    if (!(p->flags & QN_P_OPTIONAL) || (p->flags & QN_P_NULLABLE)) {
        return; /* required (checked later) or default nil */
    }
    v->present = 1;
    v->i = p->idef;
    v->f = p->fdef;
    v->b = p->bdef;
    v->s = p->sdef != NULL ? p->sdef : "";
    v->slen = strlen(v->s);
}

/* Validate the params map against cmd into e->args. 0, or -1 with e->err set. */
static int validate_params(qn_engine *e, const qn_command *cmd, const span *params)
{
    uint8_t seen[QN_MAX_PARAMS];
    qn_mpr r;
    qn_mp_obj m, k, v;
    uint32_t i;
    size_t j;
    qn_sb sb;

    for (j = 0; j < cmd->n_params; j++) {
        set_default(&cmd->params[j], &e->args[j]);
        seen[j] = 0;
    }
    qn_mpr_init(&r, params->p, params->len);
    if (qn_mpr_read(&r, &m) != 0 || m.type != QN_MP_MAP) {
        err_set(&e->err, QN_E_PROTOCOL, "req.p must be a map");
        return -1;
    }
    for (i = 0; i < m.len; i++) {
        if (qn_mpr_read(&r, &k) != 0 || k.type != QN_MP_STR) {
            err_set(&e->err, QN_E_PROTOCOL, "parameter names must be strings");
            return -1;
        }
        for (j = 0; j < cmd->n_params; j++) {
            if (mem_eq(k.data, k.len, cmd->params[j].name)) {
                break;
            }
        }
        if (j == cmd->n_params) {
            sb = err_begin(&e->err, QN_E_BAD_PARAMS);
            qn_sb_str(&sb, cmd->name);
            qn_sb_str(&sb, ": unknown parameter '");
            qn_sb_mem(&sb, k.data, k.len);
            qn_sb_char(&sb, '\'');
            err_detail(&e->err, "param", k.data, k.len);
            return -1;
        }
        if (qn_mpr_read(&r, &v) != 0) {
            err_set(&e->err, QN_E_PROTOCOL, "truncated parameter value");
            return -1;
        }
        if (convert_value(e, &cmd->params[j], &v, &e->args[j]) != 0) {
            return -1;
        }
        /* a container value never converts (no parameter type takes one), so the error
         * return above means its elements never need skipping */
        seen[j] = 1;
    }
    for (j = 0; j < cmd->n_params; j++) {
        if (!seen[j] && !(cmd->params[j].flags & QN_P_OPTIONAL)) {
            sb = err_begin(&e->err, QN_E_BAD_PARAMS);
            qn_sb_str(&sb, cmd->name);
            qn_sb_str(&sb, ": missing required parameter '");
            qn_sb_str(&sb, cmd->params[j].name);
            qn_sb_char(&sb, '\'');
            err_detail(&e->err, "param", (const uint8_t *)cmd->params[j].name,
                       strlen(cmd->params[j].name));
            return -1;
        }
    }
    return 0;
}

/* --- built-in methods ------------------------------------------------------------------- */

static int find_stream(const qn_engine *e, const uint8_t *name, size_t len, size_t *out)
{
    size_t i;
    for (i = 0; i < e->dev->n_streams; i++) {
        if (mem_eq(name, len, e->dev->streams[i].name)) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static void no_stream(qn_engine *e, uint64_t id, const qn_mp_obj *name)
{
    qn_sb sb = err_begin(&e->err, QN_E_BAD_PARAMS);
    qn_sb_str(&sb, "no stream named '");
    if (name != NULL && name->type == QN_MP_STR) {
        qn_sb_mem(&sb, name->data, name->len);
    }
    qn_sb_char(&sb, '\'');
    e->err.detail_key = "param";
    qn_sb_init(&sb, e->err.detail, sizeof e->err.detail);
    qn_sb_str(&sb, "stream");
    send_error(e, 1, id, &e->err);
}

static void builtin_subscribe(qn_engine *e, uint64_t id, const span *params, int subscribe)
{
    qn_mpr r;
    qn_mp_obj m, k, v, stream_name;
    uint32_t i;
    int64_t credit = 64;
    int lossless = 1;
    int have_stream = 0;
    size_t idx = 0;
    qn_stream_state *st;
    qn_mpw w;

    memset(&stream_name, 0, sizeof stream_name);
    qn_mpr_init(&r, params->p, params->len);
    if (qn_mpr_read(&r, &m) != 0 || m.type != QN_MP_MAP) {
        fail(e, 1, id, QN_E_PROTOCOL, "req.p must be a map");
        return;
    }
    for (i = 0; i < m.len; i++) {
        size_t start;
        qn_mpr vr;
        if (qn_mpr_read(&r, &k) != 0 || k.type != QN_MP_STR) {
            fail(e, 1, id, QN_E_PROTOCOL, "malformed parameters");
            return;
        }
        start = r.pos;
        if (qn_mpr_skip(&r) != 0) { /* the whole value, containers included */
            fail(e, 1, id, QN_E_PROTOCOL, "malformed parameters");
            return;
        }
        qn_mpr_init(&vr, r.p + start, r.pos - start);
        if (qn_mpr_read(&vr, &v) != 0) {
            fail(e, 1, id, QN_E_PROTOCOL, "malformed parameters");
            return;
        }
        if (mem_eq(k.data, k.len, "stream")) {
            stream_name = v;
            have_stream = 1;
        } else if (mem_eq(k.data, k.len, "credit")) {
            if (qn_mp_to_i64(&v, &credit) != 0 || credit < 1 || credit > (int64_t)MAX_CREDIT) {
                err_set(&e->err, QN_E_BAD_PARAMS, "credit must be an int in [1, 1048576]");
                err_detail(&e->err, "param", (const uint8_t *)"credit", 6);
                send_error(e, 1, id, &e->err);
                return;
            }
        } else if (mem_eq(k.data, k.len, "mode")) {
            if (qn_mp_str_eq(&v, "fanout")) {
                lossless = 0;
            } else if (!qn_mp_str_eq(&v, "lossless")) {
                err_set(&e->err, QN_E_BAD_PARAMS, "mode must be 'lossless' or 'fanout'");
                err_detail(&e->err, "param", (const uint8_t *)"mode", 4);
                send_error(e, 1, id, &e->err);
                return;
            }
        } /* other keys are ignored */
    }
    if (!have_stream || stream_name.type != QN_MP_STR
        || find_stream(e, stream_name.data, stream_name.len, &idx) != 0) {
        if (!subscribe) { /* unsubscribing from nothing is fine */
            reply_begin(e, &w, id);
            qn_mpw_nil(&w);
            reply_end(e);
            return;
        }
        no_stream(e, id, have_stream ? &stream_name : NULL);
        return;
    }
    st = &e->streams[idx];
    clear_subscription(st);
    reply_begin(e, &w, id);
    if (subscribe) {
        st->subscribed = 1;
        st->lossless = lossless;
        st->credit = (uint32_t)credit;
        qn_mpw_map(&w, 2);
        key(&w, "stream");
        qn_mpw_cstr(&w, e->dev->streams[idx].name);
        key(&w, "seq");
        qn_mpw_uint(&w, st->next_seq);
    } else {
        qn_mpw_nil(&w);
    }
    reply_end(e);
}

static void builtin(qn_engine *e, uint64_t id, const uint8_t *m, size_t mlen, const span *p)
{
    qn_mpw w;
    qn_sb sb;
    if (mem_eq(m, mlen, "qnhw.describe")) {
        send_describe(e, id);
    } else if (mem_eq(m, mlen, "qnhw.ping")) {
        reply_begin(e, &w, id);
        qn_mpw_map(&w, 2);
        key(&w, "time_ps");
        qn_mpw_int(&w, qn_engine_now(e));
        key(&w, "domain");
        qn_mpw_cstr(&w, e->dev->clock_domain);
        reply_end(e);
    } else if (mem_eq(m, mlen, "qnhw.subscribe")) {
        builtin_subscribe(e, id, p, 1);
    } else if (mem_eq(m, mlen, "qnhw.unsubscribe")) {
        builtin_subscribe(e, id, p, 0);
    } else {
        sb = err_begin(&e->err, QN_E_UNKNOWN_COMMAND);
        qn_sb_str(&sb, "no built-in method '");
        qn_sb_mem(&sb, m, mlen);
        qn_sb_char(&sb, '\'');
        err_detail(&e->err, "command", m, mlen);
        send_error(e, 1, id, &e->err);
    }
}

/* --- incoming messages ------------------------------------------------------------------ */

static int parse_message(const uint8_t *p, size_t n, message *msg, qn_error *err)
{
    qn_mpr r;
    qn_mp_obj m, k;
    uint32_t i;
    size_t j, start;

    memset(msg, 0, sizeof *msg);
    qn_mpr_init(&r, p, n);
    if (qn_mpr_read(&r, &m) != 0 || m.type != QN_MP_MAP) {
        err_set(err, QN_E_PROTOCOL, "a message must be a msgpack map");
        return -1;
    }
    for (i = 0; i < m.len; i++) {
        if (qn_mpr_read(&r, &k) != 0) {
            err_set(err, QN_E_PROTOCOL, "malformed msgpack: truncated map");
            return -1;
        }
        if (k.type != QN_MP_STR) {
            err_set(err, QN_E_PROTOCOL, "map keys must be strings");
            return -1;
        }
        start = r.pos;
        if (qn_mpr_skip(&r) != 0) {
            err_set(err, QN_E_PROTOCOL, "malformed msgpack value");
            return -1;
        }
        for (j = 0; j < K_COUNT; j++) {
            if (mem_eq(k.data, k.len, k_keys[j])) {
                msg->v[j].p = p + start;
                msg->v[j].len = r.pos - start;
                break;
            }
        }
    }
    if (qn_mpr_left(&r) != 0) {
        err_set(err, QN_E_PROTOCOL, "extra bytes after the message");
        return -1;
    }
    return 0;
}

static int get_uint(const message *msg, int k, uint64_t *out)
{
    qn_mp_obj o;
    if (span_read(&msg->v[k], &o) != 0 || o.type != QN_MP_UINT) {
        return -1;
    }
    *out = o.u;
    return 0;
}

static void on_hello(qn_engine *e, const message *msg)
{
    qn_mpr r;
    qn_mp_obj a, maj, min, o;
    qn_mpw w;
    qn_sb sb;
    uint32_t i;

    qn_mpr_init(&r, msg->v[K_PV].p, msg->v[K_PV].len);
    if (msg->v[K_PV].p == NULL || qn_mpr_read(&r, &a) != 0 || a.type != QN_MP_ARRAY
        || a.len != 2 || qn_mpr_read(&r, &maj) != 0 || qn_mpr_read(&r, &min) != 0
        || maj.type != QN_MP_UINT || min.type != QN_MP_UINT || maj.u > 65535u
        || min.u > 65535u) {
        fail(e, 0, 0, QN_E_PROTOCOL, "hello.pv must be [major, minor] integers");
        return;
    }
    if (msg->v[K_FEAT].p != NULL) {
        qn_mpr_init(&r, msg->v[K_FEAT].p, msg->v[K_FEAT].len);
        if (qn_mpr_read(&r, &a) != 0 || a.type != QN_MP_ARRAY) {
            fail(e, 0, 0, QN_E_PROTOCOL, "hello.feat must be a list of strings");
            return;
        }
        for (i = 0; i < a.len; i++) {
            if (qn_mpr_read(&r, &o) != 0 || o.type != QN_MP_STR) {
                fail(e, 0, 0, QN_E_PROTOCOL, "hello.feat must be a list of strings");
                return;
            }
        }
    }
    if (msg->v[K_CLIENT].p != NULL
        && (span_read(&msg->v[K_CLIENT], &o) != 0 || o.type != QN_MP_STR || o.len > 256)) {
        fail(e, 0, 0, QN_E_PROTOCOL, "hello.client must be a string of at most 256 characters");
        return;
    }
    if (msg->v[K_CONTRACT].p != NULL
        && (span_read(&msg->v[K_CONTRACT], &o) != 0
            || (o.type != QN_MP_NIL && o.type != QN_MP_MAP))) {
        fail(e, 0, 0, QN_E_PROTOCOL, "hello.contract must be {name: str, version: str}");
        return;
    }
    if (maj.u != QN_PROTOCOL_MAJOR) {
        sb = err_begin(&e->err, QN_E_VERSION);
        qn_sb_str(&sb, "peer speaks protocol ");
        qn_sb_u64(&sb, maj.u);
        qn_sb_char(&sb, '.');
        qn_sb_u64(&sb, min.u);
        qn_sb_str(&sb, ", this end speaks 1.0; major versions must match");
        e->err.peer_major = (int)maj.u;
        e->err.peer_minor = (int)min.u;
        send_error(e, 0, 0, &e->err);
        return;
    }
    drop_session(e);
    e->session = 1;
    e->last_rx_ps = qn_engine_now(e);
    frame_begin(e, &w);
    qn_mpw_map(&w, 9);
    key(&w, "k");
    key(&w, "welcome");
    key(&w, "pv");
    qn_mpw_array(&w, 2);
    qn_mpw_int(&w, QN_PROTOCOL_MAJOR);
    qn_mpw_int(&w, QN_PROTOCOL_MINOR);
    key(&w, "feat");
    write_features(&w);
    key(&w, "device");
    qn_mpw_cstr(&w, e->dev->name);
    key(&w, "epoch");
    qn_mpw_uint(&w, e->epoch);
    key(&w, "hb");
    qn_mpw_double(&w, (double)QN_HEARTBEAT_MS / 1000.0);
    key(&w, "contract");
    write_contract(&w, e->dev);
    key(&w, "pub");
    qn_mpw_nil(&w);
    key(&w, "limits");
    qn_mpw_map(&w, 2);
    key(&w, "max_message");
    qn_mpw_uint(&w, QN_MAX_PAYLOAD);
    key(&w, "max_frames");
    qn_mpw_uint(&w, 1);
    frame_end(e);
}

static void on_request(qn_engine *e, const message *msg)
{
    uint64_t id = 0;
    qn_mp_obj m, p, dl;
    const qn_command *cmd = NULL;
    qn_call call;
    qn_mpw result, w;
    qn_sb sb;
    size_t i;
    int rc;

    if (get_uint(msg, K_ID, &id) != 0 || id == 0) {
        fail(e, 0, 0, QN_E_PROTOCOL, "req.id must be an integer in [1, 18446744073709551615]");
        return;
    }
    if (span_read(&msg->v[K_M], &m) != 0 || m.type != QN_MP_STR || m.len == 0
        || m.len > MAX_METHOD) {
        fail(e, 1, id, QN_E_PROTOCOL, "req.m must be a non-empty string of at most 256 "
             "characters");
        return;
    }
    if (span_read(&msg->v[K_P], &p) != 0 || p.type != QN_MP_MAP) {
        fail(e, 1, id, QN_E_PROTOCOL, "req.p must be a map");
        return;
    }
    if (msg->v[K_DL].p != NULL && (span_read(&msg->v[K_DL], &dl) != 0
                                    || (dl.type != QN_MP_NIL && dl.type != QN_MP_UINT))) {
        fail(e, 1, id, QN_E_PROTOCOL, "req.dl must be an integer or nil");
        return;
    }
    if (!e->session) {
        fail(e, 1, id, QN_E_NO_SESSION, "no session: send hello first");
        return;
    }
    e->stats.requests++;
    if (m.len > 5 && memcmp(m.data, "qnhw.", 5) == 0) {
        builtin(e, id, m.data, m.len, &msg->v[K_P]);
        return;
    }
    for (i = 0; i < e->dev->n_commands; i++) {
        if (mem_eq(m.data, m.len, e->dev->commands[i].name)) {
            cmd = &e->dev->commands[i];
            break;
        }
    }
    if (cmd == NULL) {
        sb = err_begin(&e->err, QN_E_UNKNOWN_COMMAND);
        qn_sb_str(&sb, "no command named '");
        qn_sb_mem(&sb, m.data, m.len);
        qn_sb_char(&sb, '\'');
        err_detail(&e->err, "command", m.data, m.len);
        send_error(e, 1, id, &e->err);
        return;
    }
    if (validate_params(e, cmd, &msg->v[K_P]) != 0) {
        send_error(e, 1, id, &e->err);
        return;
    }
    err_clear(&e->err);
    qn_mpw_init_buf(&result, e->result_buf, sizeof e->result_buf);
    call.engine = e;
    call.device = e->dev->device;
    call.args = e->args;
    call.result = &result;
    call.error = &e->err;
    rc = cmd->handler(&call);
    if (rc != 0) {
        if (e->err.code == 0) {
            err_set(&e->err, QN_E_INTERNAL, "handler failed without an error code");
        }
        send_error(e, 1, id, &e->err);
        return;
    }
    if (result.overflow) {
        sb = err_begin(&e->err, QN_E_INTERNAL);
        qn_sb_str(&sb, cmd->name);
        qn_sb_str(&sb, ": result larger than QN_RESULT_MAX bytes");
        send_error(e, 1, id, &e->err);
        return;
    }
    reply_begin(e, &w, id);
    if (result.len == 0) {
        qn_mpw_nil(&w);
    } else {
        qn_mpw_raw(&w, e->result_buf, result.len);
    }
    reply_end(e);
}

static void on_credit(qn_engine *e, const message *msg)
{
    qn_mp_obj s;
    uint64_t n = 0;
    size_t idx;
    qn_stream_state *st;
    if (span_read(&msg->v[K_S], &s) != 0 || s.type != QN_MP_STR || s.len == 0
        || get_uint(msg, K_N, &n) != 0 || n < 1 || n > MAX_CREDIT_GRANT) {
        fail(e, 0, 0, QN_E_PROTOCOL, "credit needs s: stream name and n: int in [1, 2^30]");
        return;
    }
    if (!e->session || find_stream(e, s.data, s.len, &idx) != 0) {
        return;
    }
    st = &e->streams[idx];
    if (!st->subscribed || !st->lossless) {
        return;
    }
    st->credit = (uint32_t)((uint64_t)st->credit + n > MAX_CREDIT_GRANT
                            ? MAX_CREDIT_GRANT : st->credit + n);
    flush_stream(e, idx);
}

static void on_payload(qn_engine *e, const uint8_t *p, size_t n)
{
    message msg;
    qn_mp_obj k;
    qn_mpw w;
    qn_sb sb;
    uint64_t nonce = 0;

    if (parse_message(p, n, &msg, &e->err) != 0) {
        e->stats.bad_messages++;
        send_error(e, 0, 0, &e->err);
        return;
    }
    if (span_read(&msg.v[K_K], &k) != 0 || k.type != QN_MP_STR) {
        e->stats.bad_messages++;
        fail(e, 0, 0, QN_E_PROTOCOL, "message lacks its kind k");
        return;
    }
    if (e->session) {
        e->last_rx_ps = qn_engine_now(e);
    }
    if (qn_mp_str_eq(&k, "req")) {
        on_request(e, &msg);
    } else if (qn_mp_str_eq(&k, "hb")) {
        if (msg.v[K_N].p != NULL && get_uint(&msg, K_N, &nonce) != 0) {
            fail(e, 0, 0, QN_E_PROTOCOL, "hb.n must be an integer");
        } else if (!e->session) {
            fail(e, 0, 0, QN_E_NO_SESSION, "no session: send hello first");
        } else {
            frame_begin(e, &w);
            qn_mpw_map(&w, 2);
            key(&w, "k");
            key(&w, "hb");
            key(&w, "n");
            qn_mpw_uint(&w, nonce);
            frame_end(e);
        }
    } else if (qn_mp_str_eq(&k, "hello")) {
        on_hello(e, &msg);
    } else if (qn_mp_str_eq(&k, "bye")) {
        drop_session(e);
    } else if (qn_mp_str_eq(&k, "cancel")) {
        if (get_uint(&msg, K_ID, &nonce) != 0 || nonce == 0) {
            fail(e, 0, 0, QN_E_PROTOCOL, "cancel.id must be a positive integer");
        } /* handlers run to completion: nothing to cancel */
    } else if (qn_mp_str_eq(&k, "credit")) {
        on_credit(e, &msg);
    } else {
        e->stats.bad_messages++;
        sb = err_begin(&e->err, QN_E_PROTOCOL);
        if (qn_mp_str_eq(&k, "rep") || qn_mp_str_eq(&k, "ev") || qn_mp_str_eq(&k, "evs")
            || qn_mp_str_eq(&k, "err") || qn_mp_str_eq(&k, "welcome")) {
            qn_sb_str(&sb, "a device does not accept '");
            qn_sb_mem(&sb, k.data, k.len);
            qn_sb_str(&sb, "' messages");
        } else {
            qn_sb_str(&sb, "unknown message kind '");
            qn_sb_mem(&sb, k.data, k.len);
            qn_sb_char(&sb, '\'');
        }
        send_error(e, 0, 0, &e->err);
    }
}

/* --- public entry points ---------------------------------------------------------------- */

int qn_engine_init(qn_engine *e, const qn_device *dev, const qn_platform *plat,
                   uint64_t epoch)
{
    static const uint8_t zero = 0;
    size_t i;
    memset(e, 0, sizeof *e);
    if (dev->n_streams > QN_MAX_STREAMS) {
        return -1;
    }
    for (i = 0; i < dev->n_commands; i++) {
        if (dev->commands[i].n_params > QN_MAX_PARAMS || dev->commands[i].handler == NULL) {
            return -1;
        }
    }
    e->dev = dev;
    e->plat = *plat;
    qn_frx_init(&e->rx, e->rx_buf, sizeof e->rx_buf, QN_MAX_PAYLOAD);
    qn_ftx_init(&e->tx, plat->write, plat->write_ctx);
    qn_engine_reset(e, epoch);
    plat->write(plat->write_ctx, &zero, 1);
    return 0;
}

void qn_engine_reset(qn_engine *e, uint64_t epoch)
{
    size_t i;
    e->epoch = epoch & 0x7FFFFFFFFFFFFFFFu;
    drop_session(e);
    for (i = 0; i < QN_MAX_STREAMS; i++) {
        e->streams[i].next_seq = 0;
        e->streams[i].dropped = 0;
    }
    qn_frx_reset(&e->rx);
    e->sending = 0;
}

void qn_engine_rx(qn_engine *e, const uint8_t *data, size_t len)
{
    size_t i;
    const uint8_t *payload = NULL;
    size_t n = 0;
    qn_sb sb;
    for (i = 0; i < len; i++) {
        switch (qn_frx_feed(&e->rx, data[i], &payload, &n)) {
        case QN_FRX_FRAME:
            on_payload(e, payload, n);
            break;
        case QN_FRX_ERR_OVERSIZE:
            sb = err_begin(&e->err, QN_E_TOO_LARGE);
            qn_sb_str(&sb, "frame exceeds the device limit of ");
            qn_sb_u64(&sb, QN_MAX_PAYLOAD);
            qn_sb_str(&sb, " bytes");
            send_error(e, 0, 0, &e->err);
            break;
        default: /* noise, bad checksum, cut frame: dropped and counted in e->rx */
            break;
        }
    }
}

void qn_engine_poll(qn_engine *e)
{
    int64_t now;
    size_t i;
    if (!e->session) {
        return;
    }
    for (i = 0; i < e->dev->n_streams; i++) {
        if (e->streams[i].subscribed) {
            return; /* a host that only listens to a stream may stay silent */
        }
    }
    now = qn_engine_now(e);
    if (now - e->last_rx_ps > (int64_t)QN_SESSION_TIMEOUT_MS * 1000000000) {
        drop_session(e);
    }
}
