"""qnhw describe / call / monitor, in-process against reference devices (and one subprocess)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from qnhw import Quantity
from qnhw.cli import build_parser, call, describe, monitor
from qnhw.contract import Param
from qnhw.runtime import DeviceServer
from qnhw.testing.reference import reference_server

ROOT = Path(__file__).resolve().parents[2]


async def _run(module: object, argv: list[str]) -> tuple[int, str, str]:
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = await module.run(args, out, err)  # type: ignore[attr-defined]
    return code, out.getvalue(), err.getvalue()


async def test_describe_table_and_json() -> None:
    async with reference_server("TimeTagger") as server:
        code, out, err = await _run(describe, ["describe", server.address])
        assert code == 0, err
        assert "contract      TimeTagger 1.0" in out
        assert "optional      test_signal coincidences histogram bias_control" in out
        line = next(x for x in out.splitlines() if x.strip().startswith("threshold"))
        assert "float|null" in line and " V " in line and "[-5, 5]" in line
        assert "tags  @host  map of arrays" in out
        assert "max_rate: 1e+06" in out
        code, out, _ = await _run(describe, ["describe", server.address, "--json"])
        data = json.loads(out)
        assert data["contract"] == {"name": "TimeTagger", "version": "1.0"}
        assert {c["name"] for c in data["commands"]} >= {"configure_channel", "count"}


async def test_describe_any_endpoint_and_unreachable() -> None:
    server = DeviceServer("bare", "inproc://cli-bare")

    @server.command(params=[Param("x", "int", min=0)])
    def echo(x: int) -> int:
        return x

    async with server:
        code, out, _ = await _run(describe, ["describe", server.address])
        assert code == 0 and "contract      (none)" in out and "echo(x)" in out
        code, out, _ = await _run(call, ["call", server.address, "echo", "x=0x10"])
        assert (code, out) == (0, "16\n")
    code, out, err = await _run(describe, ["describe", "inproc://cli-nobody", "--timeout",
                                           "0.2"])
    assert code == 1 and err.startswith("error: connection (13):")


async def test_call_parses_by_contract_types() -> None:
    async with reference_server("TimeTagger") as server:
        a = server.address
        code, out, err = await _run(call, ["call", a, "configure_channel", "channel=2",
                                           "threshold=80mV", "dead_time=20 ns", "enabled=yes",
                                           "edge=null"])
        assert code == 0, err
        assert "threshold: 0.08" in out and "dead_time: 2e-08" in out
        code, out, _ = await _run(call, ["call", a, "count", "channels=1,2", "duration=5ms",
                                         "--json"])
        assert code == 0 and json.loads(out)["duration"] == pytest.approx(5e-3)
        code, out, _ = await _run(call, ["call", a, "start", "channels=[1]"])
        assert (code, out) == (0, "ok\n")
        code, out, _ = await _run(call, ["call", a, "qnhw.ping"])
        assert code == 0 and "domain: host" in out
        # errors keep their code; the device stays usable
        code, _, err = await _run(call, ["call", a, "configure_channel", "channel=1",
                                         "threshold=80s"])
        assert code == 1 and err.startswith("error: bad_params (1): parameter 'threshold'")
        assert '"param": "threshold"' in err
        code, _, err = await _run(call, ["call", a, "configure_channel", "channel=99"])
        assert code == 1 and "bad_params (1)" in err
        code, _, err = await _run(call, ["call", a, "calibrate"])
        assert code == 1 and err.startswith("error: unknown_command (2)")
        code, _, err = await _run(call, ["call", a, "count", "channels=1", "duration=fast"])
        assert code == 2 and "duration" in err
        code, _, err = await _run(call, ["call", a, "stop", "novalue"])
        assert code == 2 and "key=value" in err
        code, out, _ = await _run(call, ["call", a, "stop"])
        assert code == 0 and "tags:" in out


def test_parse_value() -> None:
    assert call.parse_value("5us", {"type": "float"}) == Quantity(5.0, "us")
    assert call.parse_value("1.5s", {"type": "timestamp"}) == Quantity(1.5, "s")
    assert call.parse_value("1e3", {"type": "int"}) == 1000
    assert call.parse_value("off", {"type": "bool"}) is False
    assert call.parse_value("NULL", {"type": "int"}) is None
    assert call.parse_value("0,1", {"type": "list", "items": {"type": "int"}}) == [0, 1]
    assert call.parse_value("[[1, 2]]", {"type": "list"}) == [[1, 2]]
    assert call.parse_value("0x0aff", {"type": "bytes"}) == b"\x0a\xff"
    arr = call.parse_value("[1, 2]", {"type": "array"})
    assert isinstance(arr, np.ndarray) and arr.tolist() == [1, 2]
    assert call.parse_value('{"a": 1}', None) == {"a": 1}
    assert call.parse_value("hello", None) == "hello"
    with pytest.raises(call.ParseError):
        call.parse_value("maybe", {"type": "bool"})
    with pytest.raises(call.ParseError):
        call.parse_value("[1]", {"type": "dict"})


async def test_monitor_lines_live_and_errors() -> None:
    async with reference_server("OpticalSwitch") as server:
        a = server.address

        async def change_routes() -> None:
            for out_port in range(1, 9):  # until the monitor has seen its events
                await asyncio.sleep(0.02)
                await asyncio.wait_for(call.run(build_parser().parse_args(
                    ["call", a, "set_route", "input_port=1", f"output_port={out_port}"]),
                    io.StringIO(), io.StringIO()), 5)

        task = asyncio.get_running_loop().create_task(change_routes())
        try:
            code, out, err = await _run(monitor, ["monitor", a, "route_changes", "--count", "3",
                                                  "--mode", "lossless", "--lines",
                                                  "--duration", "10"])
        finally:
            await task
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith("#") and "@host" in lines[0] and "routes: [[1, " in lines[0]
        assert lines[-1].startswith("route_changes: 3 events") and "0 missed" in lines[-1]
        code, out, _ = await _run(monitor, ["monitor", a, "route_changes", "--duration",
                                            "0.15", "--interval", "0.05", "--live"])
        assert code == 0 and "\x1b[H\x1b[J" in out and "rate 0.0/s" in out
        assert "(waiting for events)" in out
        code, _, err = await _run(monitor, ["monitor", a, "nope", "--count", "1"])
        assert code == 1 and "bad_params (1)" in err and "no stream named 'nope'" in err


async def test_cli_subprocess_smoke() -> None:
    async with reference_server("QPU", "tcp://127.0.0.1:0") as server:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qnhw.cli", "call", server.address, "run",
            'circuit=OPENQASM 2.0; include "qelib1.inc"; qreg q[1]; creg c[1]; x q[0]; '
            "measure q -> c;", "shots=10", "--json", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["counts"] == {"1": 10}
