"""``qnhw emulate LAB.toml``: run an emulated lab until interrupted.

Builds the lab described by the TOML file (``docs/lab.md``), serves one endpoint per device
plus the lab's admin endpoint, prints a table of endpoints and devices, and runs until Ctrl-C
or SIGTERM, then stops every endpoint (sockets closed) and exits 0. A bad configuration is
reported as ``FILE: KEY: REASON`` lines on standard error with exit code 2.

``qnhw`` never imports ``emulators``: this sub-command lives here and reaches the ``qnhw``
command line through the ``qnhw.cli`` entry-point group (see pyproject.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulate`` sub-command."""
    p = subparsers.add_parser(
        "emulate", help="run an emulated lab from a TOML config",
        description="Start the emulated lab described by LAB.toml: one endpoint per device "
                    "plus the lab admin endpoint (time service, fault injection). Prints the "
                    "endpoints; Ctrl-C or SIGTERM stops it cleanly.")
    p.add_argument("config", metavar="LAB.toml", help="lab configuration file")
    p.add_argument("--time", choices=("virtual", "wall"), help="override the time mode")
    p.add_argument("--transport", choices=("tcp", "ipc"),
                   help="override how endpoints bind (inproc is for in-process use only)")
    p.add_argument("--seed", type=int, help="override the lab seed")
    p.add_argument("--check", action="store_true",
                   help="validate and build the lab, print its devices, do not serve")
    p.add_argument("--json", action="store_true",
                   help="print the endpoints as one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the lab and serve it until SIGINT/SIGTERM."""
    import emulators.lab as lab_mod
    import emulators.lab.config as config_mod

    try:
        lab = lab_mod.Lab.from_file(args.config, time=args.time, transport=args.transport,
                                    seed=args.seed)
    except config_mod.ConfigError as exc:
        print(f"qnhw emulate: invalid lab configuration\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: lab {lab.config.name!r} is valid: {len(lab.entries)} devices, "
              f"{len(lab.config.nodes)} nodes, {len(lab.config.fibers)} fibers")
        for name, entry in lab.entries.items():
            print(f"  {name:24} {entry.contract.name:18} {entry.config.kind}")
        return 0
    return asyncio.run(_serve(lab, args.json))


async def _serve(lab: Any, as_json: bool) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await lab.start()
    except OSError as exc:
        print(f"qnhw emulate: cannot start the lab: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__name__ == "ConfigError":
            print(f"qnhw emulate: invalid lab configuration\n{exc}", file=sys.stderr)
            return 2
        raise
    try:
        cfg = lab.config
        if as_json:
            print(json.dumps({"lab": cfg.name, "time": cfg.time, "seed": cfg.seed,
                              "endpoints": lab.addresses}), flush=True)
        else:
            print(f"lab {cfg.name!r}: {len(lab.entries)} devices, {cfg.time} time, seed "
                  f"{cfg.seed}, {cfg.transport}\n\n{lab.table()}\n\n"
                  "Ctrl-C or SIGTERM stops the lab.", flush=True)
        await stop.wait()
    finally:
        await lab.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if not as_json:
        print("lab stopped: every endpoint closed", flush=True)
    return 0
