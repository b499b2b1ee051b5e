"""The ``qnhw`` command line: one sub-command per module of this package.

Each sub-command module defines ``register(subparsers) -> None``, which adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Other installed packages add sub-commands through the ``qnhw.cli`` entry-point group (the
emulators' ``emulate`` does), so that ``qnhw`` never imports them by name.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

#: Sub-command modules, in the order ``qnhw --help`` lists them. Missing ones are skipped.
SUBCOMMANDS = ("describe", "call", "monitor", "bridge")
ENTRY_POINT_GROUP = "qnhw.cli"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qnhw", description="Talk to quantum-network lab devices and their emulators.")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="structlog level for qnhw's own logs (default: warning)")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"qnhw.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"qnhw.cli.{name}":
                raise
            continue
        module.register(sub)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            ep.load().register(sub)
        except Exception as exc:  # a broken plug-in must not take the CLI down
            sys.stderr.write(f"qnhw: sub-command {ep.name!r} unavailable: {exc}\n")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qnhw`` console script; returns the process exit code."""
    from qnhw.log import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level, json=args.log_json)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
