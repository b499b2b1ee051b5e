/* qn_proto.h -- the device side of the qnhw protocol for microcontrollers.
 *
 * One qn_engine serves one serial line (one host session at a time). The port provides
 * three things (qn_platform): a write callback that queues bytes for the UART, a clock in
 * picoseconds of the device's clock domain, and a random-ish 63-bit epoch per boot. The
 * device provides a static description (qn_device): name, contract, clock domain, a command
 * table with typed, unit-carrying, range-checked parameters, streams and a capability writer.
 *
 * The engine then does everything the protocol asks of an endpoint: framing and checksums,
 * the hello/welcome handshake (refusing another major version), NO_SESSION before hello,
 * heartbeats, session timeout, the built-ins qnhw.describe / ping / subscribe / unsubscribe,
 * parameter validation with typed errors (BAD_PARAMS naming the parameter, UNKNOWN_COMMAND,
 * PROTOCOL, TOO_LARGE), dispatch to the handlers, and stream events with per-stream sequence
 * numbers, fan-out or lossless (credit-based) delivery.
 *
 * No malloc, no OS calls, no printf, no libm: all memory is inside qn_engine (see
 * qn_config.h for the sizes). Not reentrant: call qn_engine_rx, qn_engine_poll and
 * qn_engine_publish from one context (the main loop), never from an interrupt handler, and
 * never from inside the write callback. */
#ifndef QN_PROTO_H
#define QN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "qn_config.h"
#include "qn_frame.h"
#include "qn_mpack.h"
#include "qn_text.h"

#define QN_PROTOCOL_MAJOR 1
#define QN_PROTOCOL_MINOR 0

/* Stable error codes of the wire protocol (qnhw/errors.py, ErrorCode). */
enum {
    QN_E_BAD_PARAMS = 1,
    QN_E_UNKNOWN_COMMAND = 2,
    QN_E_BUSY = 3,
    QN_E_DEVICE_FAULT = 4,
    QN_E_TIMEOUT = 5,
    QN_E_UNAUTHORIZED = 6,
    QN_E_VERSION = 7,
    QN_E_PROTOCOL = 8,
    QN_E_TOO_LARGE = 9,
    QN_E_INTERNAL = 10,
    QN_E_CANCELLED = 11,
    QN_E_NO_SESSION = 12
};

/* Parameter types (the "type" of a describe entry). */
typedef enum { QN_T_INT, QN_T_FLOAT, QN_T_BOOL, QN_T_STR, QN_T_TIMESTAMP } qn_type;

/* qn_param.flags */
#define QN_P_OPTIONAL 0x1u /* may be omitted: the default (idef/fdef/bdef/sdef) is used */
#define QN_P_NULLABLE 0x2u /* nil accepted; with QN_P_OPTIONAL the default is nil */
#define QN_P_MIN 0x4u      /* imin (int, timestamp, str length) or fmin (float) applies */
#define QN_P_MAX 0x8u      /* imax or fmax applies */

/* One command parameter, as in qnhw.contract.Param. Bounds are inclusive; for str they bound
 * the length. unit is the SI unit of the value the handler receives ("" if none): a
 * Quantity(value, unit) from the host is converted to it (SI prefixes only). choices: a
 * NULL-terminated list of allowed strings (str only). domain: the clock domain a Timestamp
 * must carry (timestamp only; NULL accepts any). */
typedef struct {
    const char *name;
    qn_type type;
    const char *unit;
    const char *doc;
    unsigned flags;
    int64_t imin, imax;
    double fmin, fmax;
    const char *const *choices;
    int64_t idef;
    double fdef;
    int bdef;
    const char *sdef;
    const char *domain;
} qn_param;

/* A validated argument, in the order of the command's params. present == 0 means nil (a
 * nullable parameter left out or passed as nil). s is NOT NUL-terminated and points into the
 * receive buffer: valid only during the handler call. */
typedef struct {
    int present;
    int64_t i;   /* int; timestamp in ps */
    double f;    /* float */
    int b;       /* bool */
    const char *s;
    size_t slen;
} qn_value;

/* One key of a result map or event payload, for describe (type: "int", "float", "bool",
 * "str", "timestamp", "list", "dict"). */
typedef struct {
    const char *name;
    const char *type;
    const char *unit;
    const char *doc;
} qn_field;

typedef struct qn_engine qn_engine;

typedef struct {
    uint16_t code;                 /* 0: no error */
    char msg[QN_ERR_MSG_MAX];
    const char *detail_key;        /* one string detail, e.g. "param", or NULL */
    char detail[QN_NAME_MAX];
    int peer_major, peer_minor;    /* VERSION errors */
} qn_error;

/* What a handler gets: the engine, the device pointer, the validated arguments, a writer for
 * its result (write exactly one value, or nothing for nil; at most QN_RESULT_MAX bytes) and
 * the error to fill through qn_fail*(). */
typedef struct {
    qn_engine *engine;
    void *device;
    const qn_value *args;
    qn_mpw *result;
    qn_error *error;
} qn_call;

/* Returns 0 on success, or the value of qn_fail*() on failure. Runs to completion on the
 * caller's stack: keep it short (it blocks the main loop). It may call qn_engine_publish. */
typedef int (*qn_handler)(qn_call *call);

typedef struct {
    const char *name;
    const char *doc;
    const char *returns;
    const qn_param *params;
    size_t n_params;
    const qn_field *result;
    size_t n_result;
    qn_handler handler;
} qn_command;

/* A stream. Its events carry the device's clock domain: describe reports its clock_domain
 * as "device" (docs/protocol.md, stream entry). */
typedef struct {
    const char *name;
    const char *doc;
    const char *payload;
    const qn_field *fields;
    size_t n_fields;
} qn_stream_spec;

typedef struct {
    const char *name;              /* device name (welcome.device, describe.device) */
    const char *contract;          /* contract name, or NULL */
    const char *contract_version;  /* "MAJOR.MINOR" */
    const char *clock_domain;      /* domain of ping, event timestamps */
    const qn_command *commands;
    size_t n_commands;
    const qn_stream_spec *streams;
    size_t n_streams;
    void (*capabilities)(void *device, qn_mpw *w); /* writes one map; NULL for {} */
    void *device;
} qn_device;

typedef struct {
    qn_write_fn write;             /* queue bytes for the serial line; must not block long */
    void *write_ctx;
    int64_t (*now_ps)(void *ctx);  /* device clock, ps since its epoch */
    void *clock_ctx;
} qn_platform;

typedef struct {
    uint64_t seq;
    int64_t ts;
    size_t len;
    uint8_t data[QN_EV_PAYLOAD_MAX];
} qn_event_slot;

typedef struct {
    uint64_t next_seq;
    int subscribed;
    int lossless;
    uint32_t credit;
    qn_event_slot queue[QN_EVQ_LEN];
    size_t head, count;
    uint32_t dropped;              /* events lost because the lossless queue was full */
} qn_stream_state;

typedef struct {
    uint32_t requests, replies, errors, events, bad_messages;
} qn_engine_stats;

struct qn_engine {
    const qn_device *dev;
    qn_platform plat;
    uint64_t epoch;
    int session;
    int64_t last_rx_ps;
    qn_frame_rx rx;
    uint8_t rx_buf[QN_FRAME_RX_BUF(QN_MAX_PAYLOAD)];
    qn_frame_tx tx;
    int sending;
    uint8_t result_buf[QN_RESULT_MAX];
    qn_value args[QN_MAX_PARAMS];
    qn_error err;
    qn_stream_state streams[QN_MAX_STREAMS];
    qn_engine_stats stats;
};

/* Set up e for dev. Sends one 0x00 so that the host's receiver drops any partial frame.
 * Returns 0, or -1 when dev exceeds the compile-time limits (QN_MAX_STREAMS, QN_MAX_PARAMS). */
int qn_engine_init(qn_engine *e, const qn_device *dev, const qn_platform *plat,
                   uint64_t epoch);

/* The state after a reboot: no session, no subscriptions, sequences from 0, new epoch. */
void qn_engine_reset(qn_engine *e, uint64_t epoch);

/* Feed bytes received from the serial line; replies are written before this returns. */
void qn_engine_rx(qn_engine *e, const uint8_t *data, size_t len);

/* Housekeeping: closes a session silent for QN_SESSION_TIMEOUT_MS that has no stream
 * subscription. Call at least every few hundred milliseconds. */
void qn_engine_poll(qn_engine *e);

/* Publish one event of stream index `stream` with timestamp ts_ps (device domain) and the
 * pre-encoded msgpack payload[0..len). *seq (if not NULL) gets its sequence number. Returns 0
 * when sent, queued, or nobody is subscribed; -1 when it had to be dropped (lossless queue
 * full, payload larger than QN_EV_PAYLOAD_MAX while queueing, bad index, or called while a
 * frame is being written) -- the host then sees a sequence gap. */
int qn_engine_publish(qn_engine *e, size_t stream, int64_t ts_ps, const uint8_t *payload,
                      size_t len, uint64_t *seq);

/* Count n events of `stream` as lost without sending them (an overrun the device could not
 * report): their sequence numbers are consumed, so the host sees the gap. */
void qn_engine_skip(qn_engine *e, size_t stream, uint64_t n);

/* The device clock (platform now_ps). */
int64_t qn_engine_now(qn_engine *e);

/* Fail the current call with `code` and message `msg`; returns code (non-zero). */
int qn_fail(qn_call *call, uint16_t code, const char *msg);

/* As qn_fail, naming the parameter at fault in the error details. */
int qn_fail_param(qn_call *call, uint16_t code, const char *param, const char *msg);

/* Start an error whose message the caller builds with qn_sb_*; finish with
 * `return call->error->code;`. */
qn_sb qn_fail_text(qn_call *call, uint16_t code, const char *param);

#endif /* QN_PROTO_H */
