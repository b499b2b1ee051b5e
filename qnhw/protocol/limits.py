"""Size and shape bounds that every decoder enforces (docs/protocol.md, "Limits")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one decoded message. All sizes in bytes.

    ``max_message``: total of all frames of one message.
    ``max_str``: one string (method names, keys, text values).
    ``max_items``: elements of one msgpack array or entries of one map.
    ``max_depth``: nesting of arrays and maps (the message map itself is depth 1).
    ``max_ndim``: dimensions of one numpy array.
    ``max_frames``: frames of one message (header included).
    """

    max_message: int = 64 * 1024 * 1024
    max_str: int = 1024 * 1024
    max_items: int = 1_000_000
    max_depth: int = 32
    max_ndim: int = 32
    max_frames: int = 256


DEFAULT_LIMITS = Limits()
