/* tgen.h -- example device: the trigger/delay generator of a timing card.
 *
 * Contract "TriggerGenerator" version 1.0 (docs/serial.md, "The worked example"):
 * four output channels, each firing a pulse `delay` ps after every trigger, `width` ps long,
 * of either polarity; triggers come from an internal rate generator, the external trigger
 * input or software (fire, schedule). Every trigger is reported on the stream "triggers"
 * with its time in the device clock domain "tgen0" (ps since power-on).
 *
 * Portable C99 like the core: the port supplies the clock (through the engine) and calls
 * tgen_poll() from its main loop. On real hardware, tgen_poll is where the timer compare
 * registers would be programmed; here it only computes trigger times. */
#ifndef TGEN_H
#define TGEN_H

#include <stddef.h>
#include <stdint.h>

#include "qn_proto.h"

#define TGEN_CHANNELS 4
#define TGEN_SCHEDULE_DEPTH 8
#define TGEN_DELAY_RESOLUTION_PS 10
#define TGEN_MAX_RATE_HZ 1000.0
#define TGEN_MIN_RATE_HZ 0.1
#define TGEN_CLOCK_DOMAIN "tgen0"

typedef enum { TGEN_INTERNAL = 0, TGEN_EXTERNAL = 1, TGEN_SOFTWARE = 2 } tgen_source;

typedef struct {
    int64_t delay_ps;
    int64_t width_ps;
    int negative;
    int enabled;
} tgen_channel;

typedef struct {
    qn_engine *engine;
    tgen_channel ch[TGEN_CHANNELS];
    tgen_source source;
    int64_t period_ps;
    int armed;
    uint32_t limit;       /* triggers until auto-disarm; 0: unlimited */
    uint64_t fired;       /* triggers since arm */
    uint64_t total;       /* triggers since power-on */
    int64_t next_ps;      /* next internal trigger */
    int64_t sched[TGEN_SCHEDULE_DEPTH];
    size_t n_sched;
} tgen_device;

/* Power-on state: channels at delay 0, width 100 ns, positive, enabled; internal source at
 * 10 Hz; disarmed. */
void tgen_init(tgen_device *d, qn_engine *engine);

/* The qn_device description (command table, stream, capabilities) bound to d. */
void tgen_describe(tgen_device *d, qn_device *out);

/* Emit every trigger due at or before now_ps (at most 64 per call; call again at once when
 * the returned deadline is <= now). Returns the time of the next trigger, or INT64_MAX. */
int64_t tgen_poll(tgen_device *d, int64_t now_ps);

#endif /* TGEN_H */
