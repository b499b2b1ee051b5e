"""``qnhw call ADDRESS COMMAND key=value ...``: call one command of a device.

Values are parsed by the parameter types the device describes: ``int`` (``42``, ``0x2a``),
``float`` (``1e-6``), numbers with a unit (``5us``, ``80 mV``: sent as a quantity the device
converts), ``bool`` (``true``/``false``), ``null``, lists (``[0, 1]`` or ``0,1``), maps (JSON),
timestamps (int picoseconds or ``1.5s``), arrays (JSON lists), bytes (``0x`` hex). Anything
the device does not describe is sent as JSON when it parses, else as a string. Errors are shown
with their code (``error: bad_params (1): ...``) and set exit code 1; a local parse error exits
with 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any, TextIO

import numpy as np

from qnhw.cli.describe import add_connection_args, error_line, format_value, to_json
from qnhw.errors import QnhwError
from qnhw.protocol.types import Quantity
from qnhw.runtime.client import Client

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z\u00b5%/]+)\s*$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ParseError(ValueError):
    """A ``key=value`` argument that cannot be parsed for its parameter."""


def _number(text: str, kind: str) -> Any:
    try:
        return int(text, 0) if kind == "int" else float(text)
    except ValueError:
        pass
    if kind == "int":
        try:
            as_float = float(text)
        except ValueError:
            as_float = None
        if as_float is not None and as_float.is_integer():
            return int(as_float)
    m = _QUANTITY.match(text)
    if m:
        num = float(m.group(1))
        return Quantity(int(num) if num.is_integer() and kind != "float" else num, m.group(2))
    raise ParseError(f"{text!r} is not a{'n int' if kind == 'int' else ' number'} "
                     "(a unit may follow, e.g. 5us)")


def parse_value(text: str, param: dict[str, Any] | None) -> Any:
    """Parse one value for a described parameter (``None``: guess from the text)."""
    if text.lower() in ("null", "none"):
        return None
    kind = param.get("type", "any") if param else "any"
    if kind in ("int", "float"):
        return _number(text, kind)
    if kind == "timestamp":
        return _number(text, "int")
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ParseError(f"{text!r} is not a bool (true/false)")
    if kind == "str":
        return text
    if kind == "bytes":
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                raise ParseError(f"{text!r} is not hex") from None
        return text.encode()
    if kind in ("list", "array"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            items = param.get("items") if param else None
            value = [parse_value(t.strip(), items if isinstance(items, dict) else None)
                     for t in text.split(",") if t.strip()]
        if not isinstance(value, list):
            value = [value]
        return np.asarray(value) if kind == "array" else value
    if kind == "dict":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ParseError(f"{text!r} is not a JSON map") from None
        if not isinstance(value, dict):
            raise ParseError(f"{text!r} is not a JSON map")
        return value
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(pairs: list[str], command: dict[str, Any] | None) -> dict[str, Any]:
    """``key=value`` strings to call parameters, typed by the described ``command``."""
    described = {p["name"]: p for p in (command or {}).get("params", [])}
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ParseError(f"expected key=value, got {pair!r}")
        try:
            params[key] = parse_value(text, described.get(key))
        except ParseError as exc:
            raise ParseError(f"{key}: {exc}") from None
    return params


async def run(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Call ``args.command`` with ``args.params``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        async with Client(args.address, timeout=args.timeout, connect_timeout=args.timeout,
                          reconnect=False, name="qnhw-cli") as client:
            command = None
            if not args.command.startswith("qnhw."):
                described = await client.describe()
                command = next((c for c in described.get("commands", [])
                                if c.get("name") == args.command), None)
            try:
                params = parse_params(args.params, command)
            except ParseError as exc:
                err.write(f"error: {exc}\n")
                return 2
            result = await client.call(args.command, timeout=args.call_timeout or args.timeout,
                                       **params)
    except QnhwError as exc:
        err.write(error_line(exc))
        return 1
    if args.json:
        out.write(to_json(result) + "\n")
    elif result is None:
        out.write("ok\n")
    else:
        out.write("\n".join(format_value(result)) + "\n")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "call", help="call one command of a device",
        description="Call one command; values are parsed by the device's parameter types "
                    "(units like 5us allowed).")
    add_connection_args(parser)
    parser.add_argument("command", metavar="COMMAND", help="command name (see describe)")
    parser.add_argument("params", metavar="key=value", nargs="*", help="parameters")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--call-timeout", type=float, default=None,
                        help="seconds the command may take (default: --timeout)")
    parser.set_defaults(func=lambda args: asyncio.run(run(args)))
