"""The conformance kit against the C firmware: TriggerGenerator 1.0, written down in Python.

The contract below is the Python side of ``firmware_stubs/examples/trigger_gen``: the kit
checks that the firmware's handshake and ``describe`` reply match it exactly, that every bad
parameter it can derive from it gets BAD_PARAMS naming the parameter, and that unknown commands
get UNKNOWN_COMMAND -- directly on the serial line and through the ZeroMQ bridge. The
scenario checks (``exercise``, ``streams``) need a typed driver in
``qnhw.devices`` and are not run here.
"""

from __future__ import annotations

import pytest
from serial_fw_support import Firmware

from qnhw.bridge import SerialBridge
from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices.base import Driver
from qnhw.testing.conformance import CHECKS, Context

_NIL = "; nil leaves it unchanged"
CHANNEL = Param("channel", "int", "output channel, 0 to 3", min=0, max=3)
CHANNEL_RESULT = (
    Field("channel", "int", "output channel"),
    Field("delay", "int", "pulse delay after the trigger", "ps"),
    Field("width", "int", "pulse width", "ps"),
    Field("polarity", "str", "positive or negative"),
    Field("enabled", "bool", "output enabled"),
)

TRIGGER_GENERATOR = Contract(
    "TriggerGenerator", "1.0",
    commands=(
        Command("configure_channel", (
            CHANNEL,
            Param("delay", "int", "pulse delay after the trigger, rounded to 10 ps" + _NIL, "ps",
                  min=0, max=10_000_000_000, default=None, nullable=True),
            Param("width", "int", "pulse width" + _NIL, "ps", min=1000, max=1_000_000_000,
                  default=None, nullable=True),
            Param("polarity", "str", "pulse polarity" + _NIL, choices=("positive", "negative"),
                  default=None, nullable=True),
            Param("enabled", "bool", "output enabled" + _NIL, default=None, nullable=True),
        ), "Set the delay, width, polarity and enable of one output channel.",
            "the channel's settings", result=CHANNEL_RESULT),
        Command("get_channel", (CHANNEL,), "The settings of one output channel.",
                "the channel's settings", result=CHANNEL_RESULT),
        Command("set_source", (
            Param("source", "str", "trigger source: internal rate generator, external input, "
                  "or software only", choices=("internal", "external", "software")),
        ), "Choose where triggers come from (only while disarmed).", "the source",
            result=(Field("source", "str", "the trigger source now"),)),
        Command("set_rate", (
            Param("rate", "float", "internal trigger rate; the period is rounded to whole "
                  "picoseconds", "Hz", min=0.1, max=1000.0),
        ), "Set the internal trigger rate.", "rate and period applied",
            result=(Field("rate", "float", "the rate applied", "Hz"),
                    Field("period", "int", "the trigger period applied", "ps"))),
        Command("arm", (
            Param("count", "int", "triggers until the generator disarms itself; 0 for no limit",
                  min=0, max=1_000_000, default=0),
        ), "Start accepting triggers; internal triggers start one period later. Busy if armed "
           "already; device fault if the external input has no signal.", "arm time",
            result=(Field("armed", "bool", "true"),
                    Field("start", "timestamp", "device time of arming; internal triggers "
                          "follow every period", "ps"))),
        Command("disarm", (), "Stop triggering and clear scheduled triggers.",
                "triggers since arm", result=(Field("fired", "int", "triggers since arm"),)),
        Command("fire", (), "One software trigger now (armed only).", "trigger number and time",
                result=(Field("count", "int", "number of this trigger since arm"),
                        Field("time", "timestamp", "trigger time, device clock", "ps"))),
        Command("schedule", (
            Param("at", "timestamp", "device time of a one-shot trigger (Timestamp in domain "
                  "tgen0, or int ps)", "ps", min=0),
        ), "One trigger at an absolute device time (armed only; at most 8 pending).",
            "pending count", result=(Field("pending", "int", "scheduled triggers waiting"),)),
        Command("status", (), "Armed state, source, rate and counters.", "status map", result=(
            Field("armed", "bool", "waiting for or producing triggers"),
            Field("source", "str", "trigger source"),
            Field("rate", "float", "internal trigger rate", "Hz"),
            Field("period", "int", "internal trigger period", "ps"),
            Field("fired", "int", "triggers since arm"),
            Field("total", "int", "triggers since power-on"),
            Field("pending", "int", "scheduled triggers waiting"),
            Field("dropped", "int", "trigger events the stream could not deliver"),
        )),
    ),
    streams=(
        StreamSpec("triggers", "One event per trigger; ts is the trigger time. Channel c pulses "
                   "at ts + delay(c).", "map", "tgen0", (
                       Field("count", "int", "number of this trigger since arm (1-based)"),
                       Field("source", "str", "internal, software or scheduled"),
                       Field("mask", "int", "bit mask of the channels that pulsed"),
                   )),
    ),
)

CHECKED = ("handshake", "describe", "capabilities", "bad_params", "unknown_command")


@pytest.mark.parametrize("check", CHECKED)
async def test_firmware_conforms(check: str, bare_firmware: Firmware) -> None:
    ctx = Context(f"serial://{bare_firmware.pty}?baudrate=115200", TRIGGER_GENERATOR, Driver,
                  {"timeout": 3.0})
    await CHECKS[check](ctx)


@pytest.mark.parametrize("check", CHECKED)
async def test_bridged_firmware_conforms(check: str, bare_firmware: Firmware) -> None:
    async with SerialBridge(bare_firmware.pty, "tcp://127.0.0.1:0", timeout=3) as bridge:
        await CHECKS[check](Context(bridge.address, TRIGGER_GENERATOR, Driver, {"timeout": 3.0}))
