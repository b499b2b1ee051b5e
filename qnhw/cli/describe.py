"""``qnhw describe ADDRESS``: what a device is and what it accepts.

Prints the device name, its contract and version, protocol features, clock domain, every
command with its parameters (type, unit, range or choices, default), every stream and the
capabilities -- as a readable table, or the raw ``describe`` reply as JSON with ``--json``.
Works against any endpoint of the protocol. This module also holds the value formatting the
``call`` and ``monitor`` sub-commands share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from typing import Any, TextIO

import numpy as np

from qnhw.errors import QnhwError
from qnhw.protocol.types import Quantity, Timestamp
from qnhw.runtime.client import Client

# --- shared formatting --------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """``value`` made JSON-serializable: arrays to lists, timestamps to ``{ps, domain}``."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, Timestamp):
        return {"ps": value.ps, "domain": value.domain}
    if isinstance(value, Quantity):
        return {"value": value.value, "unit": value.unit}
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def to_json(value: Any, indent: int | None = 2) -> str:
    """JSON text of ``value`` (see :func:`to_plain`)."""
    return json.dumps(to_plain(value), indent=indent, sort_keys=False)


def short(value: Any, width: int = 120) -> str:
    """One-line summary of a value: arrays as dtype[shape] with their first elements."""
    if isinstance(value, np.ndarray):
        head = ", ".join(str(x) for x in value.reshape(-1)[:6].tolist())
        more = ", ..." if value.size > 6 else ""
        text = f"{value.dtype}{list(value.shape)} [{head}{more}]"
    elif isinstance(value, Timestamp):
        text = f"{value.ps} ps @{value.domain}"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {short(v, width)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(short(v, width) for v in value[:16]) + (
            ", ..." if len(value) > 16 else "") + "]"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def format_value(value: Any, indent: int = 0) -> list[str]:
    """Readable multi-line rendering of a result (maps one key per line)."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines: list[str] = []
        for k, v in value.items():
            if (isinstance(v, dict) and v) or (isinstance(v, list) and v and isinstance(
                    v[0], dict)):
                lines.append(f"{pad}{k}:")
                lines += format_value(v, indent + 2)
            else:
                lines.append(f"{pad}{k}: {short(v)}")
        return lines
    if isinstance(value, list) and value and isinstance(value[0], dict):
        lines = []
        for item in value:
            sub = format_value(item, indent + 2)
            lines.append(f"{pad}- " + sub[0].lstrip())
            lines += sub[1:]
        return lines
    return [pad + short(value)]


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def param_range(p: dict[str, Any]) -> str:
    """``[min, max]``, ``length [min, max]`` or the choices of a described parameter."""
    if "choices" in p:
        return "{" + ", ".join(_num(c) for c in p["choices"]) + "}"
    if "min" not in p and "max" not in p:
        inner = p.get("items")
        return f"items {param_range(inner)}" if isinstance(inner, dict) and param_range(
            inner) else ""
    sized = p.get("type") in ("str", "bytes", "list", "array")
    text = f"[{_num(p.get('min', 0 if sized else '-inf'))}, {_num(p.get('max', 'inf'))}]"
    return ("length " if sized else "") + text


def _table(rows: list[list[str]], indent: int = 4) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [" " * indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)
                                     ).rstrip() for r in rows]


def render(described: dict[str, Any]) -> str:
    """The readable form of a ``describe`` reply."""
    contract = described.get("contract") or {}
    proto = described.get("protocol") or []
    lines = [
        f"device        {described.get('device', '')}",
        f"contract      {contract.get('name', '(none)')} {contract.get('version', '')}".rstrip(),
        f"protocol      {'.'.join(str(x) for x in proto)}",
        f"clock domain  {described.get('clock_domain', '')}",
        f"features      {' '.join(described.get('features', []))}",
    ]
    caps = described.get("capabilities") or {}
    if isinstance(caps, dict) and caps.get("features"):
        lines.append(f"optional      {' '.join(map(str, caps['features']))}")
    lines += ["", "commands"]
    for c in described.get("commands", []):
        params = c.get("params", [])
        sig = ", ".join(p["name"] if p.get("required") else f"{p['name']}?" for p in params)
        head = f"  {c.get('name')}({sig})"
        if c.get("feature"):
            head += f"  [feature {c['feature']}]"
        lines.append(head)
        if c.get("doc"):
            lines.append(f"      {c['doc']}")
        rows = []
        for p in params:
            t = p.get("type", "")
            if isinstance(p.get("items"), dict):
                t = f"list[{p['items'].get('type')}]"
            if p.get("nullable"):
                t += "|null"
            default = "required" if p.get("required") else f"= {_num(p.get('default'))}"
            rows.append([p.get("name", ""), t, p.get("unit", "") or "-", param_range(p) or "-",
                         default, p.get("doc", "")])
        lines += _table(rows, 6)
        if c.get("returns"):
            keys = ", ".join(f["name"] for f in c.get("result", []))
            lines.append(f"      -> {c['returns']}" + (f" {{{keys}}}" if keys else ""))
    lines += ["", "streams"]
    domain = described.get("clock_domain", "")
    rows = [[s.get("name", ""), "@" + (domain if s.get("clock_domain") == "device"
                                        else str(s.get("clock_domain", ""))),
             s.get("payload", ""), s.get("doc", "")] for s in described.get("streams", [])]
    lines += _table(rows, 2) or ["  (none)"]
    lines += ["", "capabilities"]
    if isinstance(caps, dict) and caps:
        lines += format_value(caps, 2)
    else:
        lines.append("  (none)")
    return "\n".join(lines) + "\n"


# --- the sub-command ----------------------------------------------------------------------


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """ADDRESS and ``--timeout``, shared by describe, call and monitor."""
    parser.add_argument("address", metavar="ADDRESS",
                        help="device endpoint, e.g. tcp://127.0.0.1:5601 or serial:///dev/ttyUSB0")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for the connection and each reply (default 5)")


def error_line(exc: QnhwError) -> str:
    """``error: bad_params (1): message`` plus the details when there are any."""
    text = f"error: {exc.code.name.lower()} ({int(exc.code)}): {exc.message}"
    if exc.details:
        text += f"\n  details: {to_json(exc.details, indent=None)}"
    return text + "\n"


async def run(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Describe the device at ``args.address``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        async with Client(args.address, timeout=args.timeout, connect_timeout=args.timeout,
                          reconnect=False, name="qnhw-cli") as client:
            described = await client.describe()
    except QnhwError as exc:
        err.write(error_line(exc))
        return 1
    out.write(to_json(described) + "\n" if args.json else render(described))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "describe", help="show a device's contract, commands, streams and capabilities",
        description="Show a device's contract, commands (with units and ranges), streams and "
                    "capabilities.")
    add_connection_args(parser)
    parser.add_argument("--json", action="store_true", help="print the raw describe reply")
    parser.set_defaults(func=lambda args: asyncio.run(run(args)))
