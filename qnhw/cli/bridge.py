"""``qnhw bridge SERIAL --bind ADDRESS``: serve a serial-attached device on ZeroMQ.

``SERIAL`` is a ``serial:`` address (``serial:///dev/ttyUSB0?baudrate=115200``,
``serial:socket://host:port``), or just a port path or pyserial URL. The bridge describes the
device, then serves its commands and streams at ``--bind`` (and the fan-out streams at
``--pub``, by default the next port) until interrupted. See :mod:`qnhw.bridge`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from qnhw.bridge import SerialBridge
from qnhw.errors import QnhwError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bridge`` sub-command."""
    p = subparsers.add_parser(
        "bridge", help="serve a serial-attached device on ZeroMQ",
        description="Expose a device on a serial line (e.g. a microcontroller running the "
                    "qnhw firmware stubs) as a ZeroMQ endpoint: same commands, streams and "
                    "contract.")
    p.add_argument("serial", metavar="SERIAL",
                   help="serial:///dev/ttyUSB0?baudrate=115200, a port path, or a pyserial URL")
    p.add_argument("--bind", default="tcp://127.0.0.1:5555",
                   help="ZeroMQ endpoint to serve on (default: tcp://127.0.0.1:5555)")
    p.add_argument("--pub", default="auto",
                   help="fan-out stream endpoint: 'auto' (next port), 'none', or an address")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="per-call deadline on the serial side, seconds (default: 5)")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="how long to wait for the device at start, seconds (default: 10)")
    p.add_argument("--heartbeat", type=float, default=1.0,
                   help="serial heartbeat period, seconds (default: 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the bridge until SIGINT/SIGTERM; 0 on a clean stop, 1 if the device is unreachable."""
    pub = None if args.pub == "none" else args.pub
    bridge = SerialBridge(args.serial, args.bind, pub_address=pub, timeout=args.timeout,
                          connect_timeout=args.connect_timeout, heartbeat=args.heartbeat)
    return asyncio.run(_serve(bridge))


async def _serve(bridge: SerialBridge) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await bridge.start()
    except (QnhwError, OSError) as exc:
        print(f"qnhw bridge: cannot bridge {bridge.serial}: {exc}", file=sys.stderr)
        return 1
    desc = bridge.description
    contract = desc.get("contract")
    what = f"{contract['name']} {contract['version']}" if isinstance(contract, dict) else "-"
    print(f"bridging {bridge.serial} (device {desc.get('device')}, contract {what}) "
          f"at {bridge.address}" + (f", streams at {bridge.pub_address}"
                                    if bridge.pub_address else ""), flush=True)
    try:
        await stop.wait()
    finally:
        await bridge.stop()
    return 0
