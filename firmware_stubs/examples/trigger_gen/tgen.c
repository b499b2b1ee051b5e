/* tgen.c -- TriggerGenerator 1.0 on the qnhw firmware core, see tgen.h. */
#include "tgen.h"

#include <string.h>

#define PS_PER_S 1000000000000.0
#define MAX_DELAY_PS 10000000000 /* 10 ms */
#define STREAM_TRIGGERS 0u

static const char *const k_polarities[] = {"positive", "negative", NULL};
static const char *const k_sources[] = {"internal", "external", "software", NULL};

/* --- helpers ---------------------------------------------------------------------------- */

static tgen_device *dev_of(qn_call *call)
{
    return (tgen_device *)call->device;
}

static int str_is(const qn_value *v, const char *s)
{
    size_t n = strlen(s);
    return v->present && v->slen == n && memcmp(v->s, s, n) == 0;
}

static void kv_int(qn_mpw *w, const char *k, int64_t v)
{
    qn_mpw_cstr(w, k);
    qn_mpw_int(w, v);
}

static void write_channel(qn_mpw *w, const tgen_device *d, int64_t c)
{
    const tgen_channel *ch = &d->ch[c];
    qn_mpw_map(w, 5);
    kv_int(w, "channel", c);
    kv_int(w, "delay", ch->delay_ps);
    kv_int(w, "width", ch->width_ps);
    qn_mpw_cstr(w, "polarity");
    qn_mpw_cstr(w, ch->negative ? "negative" : "positive");
    qn_mpw_cstr(w, "enabled");
    qn_mpw_bool(w, ch->enabled);
}

static unsigned enabled_mask(const tgen_device *d)
{
    unsigned m = 0;
    int c;
    for (c = 0; c < TGEN_CHANNELS; c++) {
        if (d->ch[c].enabled) {
            m |= 1u << c;
        }
    }
    return m;
}

static void disarm(tgen_device *d)
{
    d->armed = 0;
    d->n_sched = 0;
}

/* Report one trigger at ts on the "triggers" stream. */
static void trigger(tgen_device *d, int64_t ts, const char *source)
{
    uint8_t buf[QN_EV_PAYLOAD_MAX];
    qn_mpw w;
    d->fired++;
    d->total++;
    qn_mpw_init_buf(&w, buf, sizeof buf);
    qn_mpw_map(&w, 3);
    kv_int(&w, "count", (int64_t)d->fired);
    qn_mpw_cstr(&w, "source");
    qn_mpw_cstr(&w, source);
    kv_int(&w, "mask", enabled_mask(d));
    if (!w.overflow) {
        (void)qn_engine_publish(d->engine, STREAM_TRIGGERS, ts, buf, w.len, NULL);
    }
    if (d->limit != 0 && d->fired >= d->limit) {
        disarm(d);
    }
}

static int not_armed(qn_call *call)
{
    return qn_fail(call, QN_E_BUSY, "not armed: call arm first");
}

/* --- commands --------------------------------------------------------------------------- */

static const qn_param p_channel_only[] = {
    {.name = "channel", .type = QN_T_INT, .unit = "", .doc = "output channel, 0 to 3",
     .flags = QN_P_MIN | QN_P_MAX, .imin = 0, .imax = TGEN_CHANNELS - 1},
};

static const qn_param p_configure[] = {
    {.name = "channel", .type = QN_T_INT, .unit = "", .doc = "output channel, 0 to 3",
     .flags = QN_P_MIN | QN_P_MAX, .imin = 0, .imax = TGEN_CHANNELS - 1},
    {.name = "delay", .type = QN_T_INT, .unit = "ps",
     .doc = "pulse delay after the trigger, rounded to 10 ps; nil leaves it unchanged",
     .flags = QN_P_OPTIONAL | QN_P_NULLABLE | QN_P_MIN | QN_P_MAX, .imin = 0,
     .imax = MAX_DELAY_PS},
    {.name = "width", .type = QN_T_INT, .unit = "ps",
     .doc = "pulse width; nil leaves it unchanged",
     .flags = QN_P_OPTIONAL | QN_P_NULLABLE | QN_P_MIN | QN_P_MAX, .imin = 1000,
     .imax = 1000000000},
    {.name = "polarity", .type = QN_T_STR, .unit = "",
     .doc = "pulse polarity; nil leaves it unchanged",
     .flags = QN_P_OPTIONAL | QN_P_NULLABLE, .choices = k_polarities},
    {.name = "enabled", .type = QN_T_BOOL, .unit = "",
     .doc = "output enabled; nil leaves it unchanged", .flags = QN_P_OPTIONAL | QN_P_NULLABLE},
};

static const qn_field f_channel[] = {
    {"channel", "int", "", "output channel"},
    {"delay", "int", "ps", "pulse delay after the trigger"},
    {"width", "int", "ps", "pulse width"},
    {"polarity", "str", "", "positive or negative"},
    {"enabled", "bool", "", "output enabled"},
};

static int cmd_configure_channel(qn_call *call)
{
    tgen_device *d = dev_of(call);
    const qn_value *a = call->args;
    tgen_channel *ch = &d->ch[a[0].i];
    if (a[1].present) {
        ch->delay_ps = (a[1].i + TGEN_DELAY_RESOLUTION_PS / 2) / TGEN_DELAY_RESOLUTION_PS
                       * TGEN_DELAY_RESOLUTION_PS;
        if (ch->delay_ps > MAX_DELAY_PS) {
            ch->delay_ps = MAX_DELAY_PS;
        }
    }
    if (a[2].present) {
        ch->width_ps = a[2].i;
    }
    if (a[3].present) {
        ch->negative = str_is(&a[3], "negative");
    }
    if (a[4].present) {
        ch->enabled = a[4].b;
    }
    write_channel(call->result, d, a[0].i);
    return 0;
}

static int cmd_get_channel(qn_call *call)
{
    write_channel(call->result, dev_of(call), call->args[0].i);
    return 0;
}

static const qn_param p_source[] = {
    {.name = "source", .type = QN_T_STR, .unit = "",
     .doc = "trigger source: internal rate generator, external input, or software only",
     .choices = k_sources},
};

static const qn_field f_source[] = {{"source", "str", "", "the trigger source now"}};

static int cmd_set_source(qn_call *call)
{
    tgen_device *d = dev_of(call);
    const qn_value *s = &call->args[0];
    if (d->armed) {
        return qn_fail(call, QN_E_BUSY, "armed: disarm before changing the source");
    }
    d->source = str_is(s, "internal") ? TGEN_INTERNAL
                : str_is(s, "external") ? TGEN_EXTERNAL : TGEN_SOFTWARE;
    qn_mpw_map(call->result, 1);
    qn_mpw_cstr(call->result, "source");
    qn_mpw_cstr(call->result, k_sources[d->source]);
    return 0;
}

static const qn_param p_rate[] = {
    {.name = "rate", .type = QN_T_FLOAT, .unit = "Hz",
     .doc = "internal trigger rate; the period is rounded to whole picoseconds",
     .flags = QN_P_MIN | QN_P_MAX, .fmin = TGEN_MIN_RATE_HZ, .fmax = TGEN_MAX_RATE_HZ},
};

static const qn_field f_rate[] = {
    {"rate", "float", "Hz", "the rate applied"},
    {"period", "int", "ps", "the trigger period applied"},
};

static void write_rate(qn_mpw *w, const tgen_device *d)
{
    qn_mpw_cstr(w, "rate");
    qn_mpw_double(w, PS_PER_S / (double)d->period_ps);
    kv_int(w, "period", d->period_ps);
}

static int cmd_set_rate(qn_call *call)
{
    tgen_device *d = dev_of(call);
    d->period_ps = (int64_t)(PS_PER_S / call->args[0].f + 0.5);
    if (d->armed && d->source == TGEN_INTERNAL) {
        d->next_ps = qn_engine_now(call->engine) + d->period_ps;
    }
    qn_mpw_map(call->result, 2);
    write_rate(call->result, d);
    return 0;
}

static const qn_param p_arm[] = {
    {.name = "count", .type = QN_T_INT, .unit = "",
     .doc = "triggers until the generator disarms itself; 0 for no limit",
     .flags = QN_P_OPTIONAL | QN_P_MIN | QN_P_MAX, .imin = 0, .imax = 1000000, .idef = 0},
};

static const qn_field f_arm[] = {
    {"armed", "bool", "", "true"},
    {"start", "timestamp", "ps", "device time of arming; internal triggers follow every period"},
};

static int cmd_arm(qn_call *call)
{
    tgen_device *d = dev_of(call);
    int64_t now = qn_engine_now(call->engine);
    if (d->armed) {
        return qn_fail(call, QN_E_BUSY, "already armed: disarm first");
    }
    if (d->source == TGEN_EXTERNAL) {
        return qn_fail(call, QN_E_DEVICE_FAULT,
                       "no signal on the external trigger input (check the cable)");
    }
    d->armed = 1;
    d->fired = 0;
    d->limit = (uint32_t)call->args[0].i;
    d->next_ps = now + d->period_ps;
    d->n_sched = 0;
    qn_mpw_map(call->result, 2);
    qn_mpw_cstr(call->result, "armed");
    qn_mpw_bool(call->result, 1);
    kv_int(call->result, "start", now);
    return 0;
}

static const qn_field f_disarm[] = {{"fired", "int", "", "triggers since arm"}};

static int cmd_disarm(qn_call *call)
{
    tgen_device *d = dev_of(call);
    disarm(d);
    qn_mpw_map(call->result, 1);
    kv_int(call->result, "fired", (int64_t)d->fired);
    return 0;
}

static const qn_field f_fire[] = {
    {"count", "int", "", "number of this trigger since arm"},
    {"time", "timestamp", "ps", "trigger time, device clock"},
};

static int cmd_fire(qn_call *call)
{
    tgen_device *d = dev_of(call);
    int64_t now = qn_engine_now(call->engine);
    uint64_t count;
    if (!d->armed) {
        return not_armed(call);
    }
    trigger(d, now, "software");
    count = d->fired;
    qn_mpw_map(call->result, 2);
    kv_int(call->result, "count", (int64_t)count);
    kv_int(call->result, "time", now);
    return 0;
}

static const qn_param p_schedule[] = {
    {.name = "at", .type = QN_T_TIMESTAMP, .unit = "ps",
     .doc = "device time of a one-shot trigger (a Timestamp in the device's clock domain, "
            "or int ps)",
     .flags = QN_P_MIN, .imin = 0, .domain = TGEN_CLOCK_DOMAIN},
};

static const qn_field f_schedule[] = {{"pending", "int", "", "scheduled triggers waiting"}};

static int cmd_schedule(qn_call *call)
{
    tgen_device *d = dev_of(call);
    int64_t at = call->args[0].i;
    int64_t now = qn_engine_now(call->engine);
    qn_sb sb;
    if (!d->armed) {
        return not_armed(call);
    }
    if (at < now) {
        sb = qn_fail_text(call, QN_E_BAD_PARAMS, "at");
        qn_sb_str(&sb, "parameter 'at': ");
        qn_sb_i64(&sb, at);
        qn_sb_str(&sb, " ps is in the past (device time ");
        qn_sb_i64(&sb, now);
        qn_sb_str(&sb, " ps)");
        return call->error->code;
    }
    if (d->n_sched >= TGEN_SCHEDULE_DEPTH) {
        return qn_fail(call, QN_E_BUSY, "schedule full: 8 triggers pending");
    }
    d->sched[d->n_sched++] = at;
    qn_mpw_map(call->result, 1);
    kv_int(call->result, "pending", (int64_t)d->n_sched);
    return 0;
}

static const qn_field f_status[] = {
    {"armed", "bool", "", "waiting for or producing triggers"},
    {"source", "str", "", "trigger source"},
    {"rate", "float", "Hz", "internal trigger rate"},
    {"period", "int", "ps", "internal trigger period"},
    {"fired", "int", "", "triggers since arm"},
    {"total", "int", "", "triggers since power-on"},
    {"pending", "int", "", "scheduled triggers waiting"},
    {"dropped", "int", "", "trigger events the stream could not deliver"},
};

static int cmd_status(qn_call *call)
{
    tgen_device *d = dev_of(call);
    qn_mpw *w = call->result;
    qn_mpw_map(w, 8);
    qn_mpw_cstr(w, "armed");
    qn_mpw_bool(w, d->armed);
    qn_mpw_cstr(w, "source");
    qn_mpw_cstr(w, k_sources[d->source]);
    write_rate(w, d);
    kv_int(w, "fired", (int64_t)d->fired);
    kv_int(w, "total", (int64_t)d->total);
    kv_int(w, "pending", (int64_t)d->n_sched);
    kv_int(w, "dropped", (int64_t)call->engine->streams[STREAM_TRIGGERS].dropped);
    return 0;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const qn_command k_commands[] = {
    {"configure_channel", "Set the delay, width, polarity and enable of one output channel.",
     "the channel's settings", p_configure, N(p_configure), f_channel, N(f_channel),
     cmd_configure_channel},
    {"get_channel", "The settings of one output channel.", "the channel's settings",
     p_channel_only, N(p_channel_only), f_channel, N(f_channel), cmd_get_channel},
    {"set_source", "Choose where triggers come from (only while disarmed).", "the source",
     p_source, N(p_source), f_source, N(f_source), cmd_set_source},
    {"set_rate", "Set the internal trigger rate.", "rate and period applied", p_rate,
     N(p_rate), f_rate, N(f_rate), cmd_set_rate},
    {"arm", "Start accepting triggers; internal triggers start one period later. Busy if "
     "armed already; device fault if the external input has no signal.", "arm time",
     p_arm, N(p_arm), f_arm, N(f_arm), cmd_arm},
    {"disarm", "Stop triggering and clear scheduled triggers.", "triggers since arm", NULL, 0,
     f_disarm, N(f_disarm), cmd_disarm},
    {"fire", "One software trigger now (armed only).", "trigger number and time", NULL, 0,
     f_fire, N(f_fire), cmd_fire},
    {"schedule", "One trigger at an absolute device time (armed only; at most 8 pending).",
     "pending count", p_schedule, N(p_schedule), f_schedule, N(f_schedule), cmd_schedule},
    {"status", "Armed state, source, rate and counters.", "status map", NULL, 0, f_status,
     N(f_status), cmd_status},
};

static const qn_field f_trigger[] = {
    {"count", "int", "", "number of this trigger since arm (1-based)"},
    {"source", "str", "", "internal, software or scheduled"},
    {"mask", "int", "", "bit mask of the channels that pulsed"},
};

static const qn_stream_spec k_streams[] = {
    {"triggers", "One event per trigger; ts is the trigger time. Channel c pulses at "
     "ts + delay(c).", "map", f_trigger, N(f_trigger)},
};

static void capabilities(void *device, qn_mpw *w)
{
    (void)device;
    qn_mpw_map(w, 5);
    kv_int(w, "channels", TGEN_CHANNELS);
    kv_int(w, "delay_resolution", TGEN_DELAY_RESOLUTION_PS); /* ps */
    qn_mpw_cstr(w, "max_rate");                              /* Hz */
    qn_mpw_double(w, TGEN_MAX_RATE_HZ);
    kv_int(w, "schedule_depth", TGEN_SCHEDULE_DEPTH);
    qn_mpw_cstr(w, "features"); /* the optional contract features offered: none */
    qn_mpw_array(w, 0);
}

/* --- public ----------------------------------------------------------------------------- */

void tgen_init(tgen_device *d, qn_engine *engine)
{
    int c;
    memset(d, 0, sizeof *d);
    d->engine = engine;
    for (c = 0; c < TGEN_CHANNELS; c++) {
        d->ch[c].delay_ps = 0;
        d->ch[c].width_ps = 100000;
        d->ch[c].negative = 0;
        d->ch[c].enabled = 1;
    }
    d->source = TGEN_INTERNAL;
    d->period_ps = 100000000000; /* 10 Hz */
}

void tgen_describe(tgen_device *d, qn_device *out)
{
    out->name = "tgen0";
    out->contract = "TriggerGenerator";
    out->contract_version = "1.0";
    out->clock_domain = TGEN_CLOCK_DOMAIN;
    out->commands = k_commands;
    out->n_commands = N(k_commands);
    out->streams = k_streams;
    out->n_streams = N(k_streams);
    out->capabilities = capabilities;
    out->device = d;
}

/* Far behind (the main loop stalled): the outputs fired, but reporting thousands of old
 * triggers would only flood the line. Count all but the last 64 as fired and lost. */
static void catch_up(tgen_device *d, int64_t now_ps)
{
    int64_t behind;
    if (!d->armed || d->source != TGEN_INTERNAL || now_ps - d->next_ps < 1000 * d->period_ps) {
        return;
    }
    behind = (now_ps - d->next_ps) / d->period_ps + 1 - 64; /* due triggers minus 64 */
    if (d->limit != 0 && (uint64_t)behind >= d->limit - d->fired) {
        behind = (int64_t)(d->limit - d->fired) - 1; /* keep the last one to report */
    }
    if (behind <= 0) {
        return;
    }
    d->next_ps += behind * d->period_ps;
    d->fired += (uint64_t)behind;
    d->total += (uint64_t)behind;
    qn_engine_skip(d->engine, STREAM_TRIGGERS, (uint64_t)behind);
}

int64_t tgen_poll(tgen_device *d, int64_t now_ps)
{
    int budget = 64;
    catch_up(d, now_ps);
    for (;;) {
        int64_t t_int = (d->armed && d->source == TGEN_INTERNAL) ? d->next_ps : INT64_MAX;
        int64_t t_sched = INT64_MAX;
        size_t i, first = 0;
        for (i = 0; i < d->n_sched; i++) {
            if (d->sched[i] < t_sched) {
                t_sched = d->sched[i];
                first = i;
            }
        }
        if (!d->armed) {
            return INT64_MAX;
        }
        if ((t_int > now_ps && t_sched > now_ps) || budget-- <= 0) {
            return t_int < t_sched ? t_int : t_sched;
        }
        if (t_sched <= t_int) {
            d->sched[first] = d->sched[--d->n_sched];
            trigger(d, t_sched, "scheduled");
        } else {
            d->next_ps += d->period_ps;
            trigger(d, t_int, "internal");
        }
    }
}
