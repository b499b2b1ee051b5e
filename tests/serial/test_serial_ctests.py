"""The C side's own tests, run from pytest so that ``make test`` at the top exercises them:
host unit tests (codec, framing, engine), the freestanding check, and a bounded random-input
run under ASan/UBSan."""

from __future__ import annotations

import subprocess
from pathlib import Path

from serial_fw_support import FIRMWARE_DIR


def _make(*targets: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(FIRMWARE_DIR), *targets], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_c_unit_tests(firmware_binary: Path) -> None:
    result = _make("test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 failed" in result.stdout
    # the core, built freestanding, needs only these four C library functions
    assert "freestanding core needs: memcmp memcpy memset strlen" in result.stdout


def test_c_frame_decoder_fuzz_under_sanitizers(firmware_binary: Path) -> None:
    result = _make("fuzz", "FUZZ_SECONDS=2", "FUZZ_SEED=11")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all well-formed" in result.stdout
    assert "runtime error" not in result.stderr and "AddressSanitizer" not in result.stderr
