"""Links: the client's message channel to one endpoint, chosen by the address scheme.

A link carries whole messages (lists of frames) both ways, never blocks, and reports its own
loss. ``tcp://``, ``ipc://`` and ``inproc://`` open a ZeroMQ DEALER link
(:mod:`qnhw.transport.zmq_link`); other schemes (``serial://``) are registered by their
modules with :func:`register_link`. The client code above does not know which it has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qnhw.errors import BadParams, QnhwError
from qnhw.protocol.limits import DEFAULT_LIMITS, Limits

OnFrames = Callable[[list[Any]], None]
OnLost = Callable[[QnhwError], None]


class Link(Protocol):
    """What a client needs of a transport. ``oob``: whether messages may have array frames."""

    oob: bool

    def send(self, frames: Sequence[Any]) -> None:
        """Queue one message without blocking. Raises :class:`qnhw.Busy` when the outgoing
        queue is full and :class:`qnhw.ConnectionLost` when the link is down."""

    def close(self) -> None:
        """Release the link; idempotent. No callback fires afterwards."""


@dataclass(frozen=True)
class LinkOptions:
    """Settings every link factory receives. ``curve`` is a
    :class:`qnhw.runtime.auth.CurveClient` or ``None``; ``context`` a ``zmq.Context``."""

    limits: Limits = DEFAULT_LIMITS
    curve: Any = None
    context: Any = None


LinkFactory = Callable[[str, OnFrames, OnLost, LinkOptions], Link]
_FACTORIES: dict[str, LinkFactory] = {}


def register_link(scheme: str, factory: LinkFactory) -> None:
    """Make ``scheme://`` addresses open links through ``factory``."""
    _FACTORIES[scheme] = factory


def open_link(address: str, on_frames: OnFrames, on_lost: OnLost,
              options: LinkOptions) -> Link:
    """Open a link to ``address``; ``on_frames`` gets each message, ``on_lost`` the loss.

    Must be called on the event loop thread. Raises :class:`BadParams` for an unknown scheme.
    """
    scheme = address.partition(":")[0]  # "serial:loop://" is a serial address
    if scheme not in _FACTORIES:
        _load_builtin(scheme)
    try:
        factory = _FACTORIES[scheme]
    except KeyError:
        raise BadParams(f"no transport for address {address!r} (known schemes: "
                        f"{', '.join(sorted(_FACTORIES))})", {"address": address}) from None
    return factory(address, on_frames, on_lost, options)


def _load_builtin(scheme: str) -> None:
    if scheme in ("tcp", "ipc", "inproc"):
        import qnhw.transport.zmq_link
    elif scheme == "serial":
        with contextlib.suppress(ImportError):
            import qnhw.transport.serial_link  # noqa: F401  (registers itself)
