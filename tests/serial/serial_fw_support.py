"""Support for the serial tests: build the C firmware, run it on a pty, talk raw frames."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import msgpack

from qnhw.transport.serial_framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware_stubs"
BUILD_DIR = FIRMWARE_DIR / "build"
HOST_BINARY = BUILD_DIR / "tgen-host"


def c_compiler() -> str | None:
    """The C compiler make will use ($CC, cc or gcc), or None when there is none."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    return None


def build_firmware() -> subprocess.CompletedProcess[str]:
    """``make -C firmware_stubs all`` (bounded to 120 s)."""
    return subprocess.run(["make", "-C", str(FIRMWARE_DIR), "all"], capture_output=True,
                          text=True, timeout=120, check=False)


class Firmware:
    """The TriggerGenerator host firmware as a child process on a pseudo-terminal.

    ``link``: a path the firmware keeps as a symlink to its pty (stable across restarts).
    """

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.proc: subprocess.Popen[bytes] | None = None
        self.pty = ""

    @property
    def path(self) -> str:
        """The port path clients use: the symlink when there is one, else the pty."""
        return str(self.link) if self.link is not None else self.pty

    def address(self, **options: Any) -> str:
        opts = {"baudrate": 115200, **options}
        query = "&".join(f"{k}={v}" for k, v in opts.items())
        return f"serial://{self.path}?{query}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the firmware; return its pty path once it is serving."""
        cmd = [str(HOST_BINARY)]
        if self.link is not None:
            cmd += ["--link", str(self.link)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.kill()
                raise TimeoutError("firmware did not report its pty in time")
            chunk = os.read(self.proc.stdout.fileno(), 256)
            if not chunk:
                raise RuntimeError(f"firmware exited: {self.stderr()}")
            line += chunk
        assert line.startswith(b"PTY "), line
        self.pty = line.split()[1].decode()
        return self.pty

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (an unplug: no goodbye, the pty vanishes) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 3 s; reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None or self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")


class RawPort:
    """A second, raw handle on a pty: write any bytes, read back decoded frames."""

    def __init__(self, path: str) -> None:
        import termios
        import tty

        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)
        self.decoder = FrameDecoder(1 << 20)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 5
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view:
                if time.monotonic() > deadline:
                    raise TimeoutError("pty not writable")
                select.select([], [self.fd], [], 0.1)

    def send(self, message: dict[str, Any]) -> None:
        self.write(encode_frame(msgpack.packb(message)))

    def read_messages(self, want: int = 1, timeout: float = 2.0) -> list[Any]:
        """Frames decoded until ``want`` arrived or ``timeout`` seconds passed."""
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            for payload in self.decoder.feed(data):
                out.append(msgpack.unpackb(payload, raw=False))
        return out

    def close(self) -> None:
        os.close(self.fd)
