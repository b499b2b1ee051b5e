/* qn_config.h -- compile-time sizes of the qnhw firmware core.
 *
 * Every buffer of the core is a fixed array sized here; nothing is allocated at run time.
 * Override any value with -DNAME=VALUE (or a port-specific header included before this one).
 * RAM of one qn_engine is roughly QN_RX_BUF + QN_RESULT_MAX + 256 (frame encoder)
 * + QN_MAX_STREAMS * QN_EVQ_LEN * (QN_EV_PAYLOAD_MAX + 24) bytes.
 */
#ifndef QN_CONFIG_H
#define QN_CONFIG_H

/* Largest message payload (msgpack bytes, before COBS and CRC) the device accepts. It is
 * announced to the host in welcome.limits.max_message; the host never sends more. */
#ifndef QN_MAX_PAYLOAD
#define QN_MAX_PAYLOAD 512u
#endif

/* Largest encoded result of one command handler (msgpack bytes). */
#ifndef QN_RESULT_MAX
#define QN_RESULT_MAX 256u
#endif

/* Most parameters one command may declare. */
#ifndef QN_MAX_PARAMS
#define QN_MAX_PARAMS 8u
#endif

/* Most streams one device may declare. */
#ifndef QN_MAX_STREAMS
#define QN_MAX_STREAMS 4u
#endif

/* Events held per lossless stream while the host has no credit; more are dropped (and show
 * up as a sequence gap at the host). */
#ifndef QN_EVQ_LEN
#define QN_EVQ_LEN 16u
#endif

/* Largest encoded payload of one queued event (msgpack bytes). */
#ifndef QN_EV_PAYLOAD_MAX
#define QN_EV_PAYLOAD_MAX 48u
#endif

/* Longest error message text (bytes, including the terminating NUL). */
#ifndef QN_ERR_MSG_MAX
#define QN_ERR_MSG_MAX 128u
#endif

/* Longest name (parameter, command, stream) echoed in error details (bytes, with NUL). */
#ifndef QN_NAME_MAX
#define QN_NAME_MAX 48u
#endif

/* Heartbeat period announced in the welcome, milliseconds. */
#ifndef QN_HEARTBEAT_MS
#define QN_HEARTBEAT_MS 1000
#endif

/* A session without any message from the host for this long is closed, milliseconds --
 * unless it has a stream subscription: a host that only listens may stay silent, and a new
 * hello replaces the session anyway. */
#ifndef QN_SESSION_TIMEOUT_MS
#define QN_SESSION_TIMEOUT_MS 5000
#endif

#endif /* QN_CONFIG_H */
