"""``qnhw emulate``: validation, the endpoint table, a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from emulators.lab import cli as emulate
from qnhw.cli import build_parser
from qnhw.devices import QuantumMemory

NV = Path(__file__).resolve().parents[2] / "examples" / "labs" / "nv_link.toml"


def test_check_lists_devices(capsys: pytest.CaptureFixture[str]) -> None:
    # emulate.run, not qnhw.cli.main: main() reconfigures logging for the whole process
    assert emulate.run(build_parser().parse_args(["emulate", "--check", str(NV)])) == 0
    out = capsys.readouterr().out
    assert "is valid: 3 devices" in out and "alice.memory" in out and "HeraldingStation" in out


def test_bad_config_exits_2_naming_file_key_and_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[nodes.a.devices.m]\nkind = 'memory'\nt2 = 'long'\n")
    assert emulate.run(build_parser().parse_args(["emulate", str(bad)])) == 2
    err = capsys.readouterr().err
    assert f"{bad}: nodes.a.devices.m.t2:" in err


async def test_emulate_serves_until_sigterm_then_closes() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qnhw.cli", "emulate", str(NV), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        info = json.loads(line)
        assert info["lab"] == "nv-link" and info["time"] == "virtual"
        async with QuantumMemory.connect(info["endpoints"]["alice.memory"]) as mem:
            assert (await mem.ping())["domain"] == "alice"
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
