"""Fixtures of the serial tests: the C firmware is built once per session and run on ptys."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serial_fw_support import HOST_BINARY, Firmware, build_firmware, c_compiler

_SKIPPED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say why the firmware tests were skipped, whatever the -r options."""
    for reason in _SKIPPED:
        terminalreporter.write_line(f"SKIPPED serial firmware tests: {reason}", yellow=True)


@pytest.fixture(scope="session")
def firmware_binary() -> Path:
    """``make -C firmware_stubs`` once; skips (saying why) only without a C compiler or make."""
    reason = None
    if c_compiler() is None:
        reason = "no C compiler (cc/gcc) found: the C firmware cannot be built"
    elif shutil.which("make") is None:
        reason = "no make found: the C firmware cannot be built"
    if reason is not None:
        _SKIPPED.append(reason)
        pytest.skip(reason)
    result = build_firmware()
    if result.returncode != 0:
        pytest.fail(f"firmware build failed:\n{result.stdout}\n{result.stderr}")
    assert HOST_BINARY.exists()
    return HOST_BINARY


@pytest.fixture
def firmware(firmware_binary: Path, tmp_path: Path) -> Iterator[Firmware]:
    """A fresh TriggerGenerator firmware process on a pty, with a stable symlink."""
    fw = Firmware(tmp_path / "ttyTGEN")
    fw.start()
    try:
        yield fw
    finally:
        fw.stop()


@pytest.fixture
def bare_firmware(firmware_binary: Path) -> Iterator[Firmware]:
    """A firmware process addressed by its /dev/pts/N path (no symlink)."""
    fw = Firmware()
    fw.start()
    try:
        yield fw
    finally:
        fw.stop()
