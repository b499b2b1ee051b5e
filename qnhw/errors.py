"""Typed errors with stable wire codes.

Every remote error travels as an ``err`` message carrying one of the integer codes of
:class:`ErrorCode`; the client raises the matching subclass of :class:`QnhwError`. Codes are
stable: new codes may be added, existing ones never change meaning.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """Stable error codes of the wire protocol (see docs/protocol.md, "Error codes")."""

    BAD_PARAMS = 1
    UNKNOWN_COMMAND = 2
    BUSY = 3
    DEVICE_FAULT = 4
    TIMEOUT = 5
    UNAUTHORIZED = 6
    VERSION = 7
    PROTOCOL = 8
    TOO_LARGE = 9
    INTERNAL = 10
    CANCELLED = 11
    NO_SESSION = 12
    CONNECTION = 13
    CONTRACT = 14


class QnhwError(Exception):
    """Base of every qnhw error; ``code`` is the stable wire code, ``details`` a plain dict."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"[{self.code.name.lower()}] {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.details))


class BadParams(QnhwError, ValueError):
    """A parameter is missing, unknown, of the wrong type or unit, or out of range."""

    code = ErrorCode.BAD_PARAMS


class UnknownCommand(QnhwError, LookupError):
    """The endpoint has no command of that name."""

    code = ErrorCode.UNKNOWN_COMMAND


class Busy(QnhwError):
    """The device cannot take the request now (resource held, queue full); retry later."""

    code = ErrorCode.BUSY


class DeviceFault(QnhwError):
    """The hardware (or emulated hardware) reported a fault."""

    code = ErrorCode.DEVICE_FAULT


class DeadlineExceeded(QnhwError, TimeoutError):
    """The request's deadline passed before a reply arrived (or before the handler finished)."""

    code = ErrorCode.TIMEOUT


class Unauthorized(QnhwError, PermissionError):
    """The peer is not allowed to use this endpoint."""

    code = ErrorCode.UNAUTHORIZED


class VersionMismatch(QnhwError):
    """The peers speak incompatible major protocol versions."""

    code = ErrorCode.VERSION


class ProtocolError(QnhwError, ValueError):
    """Bytes or a message that do not follow the protocol (malformed, bad types, bad ext)."""

    code = ErrorCode.PROTOCOL


class MessageTooLarge(ProtocolError):
    """A message, frame or field is larger than the configured limits."""

    code = ErrorCode.TOO_LARGE


class InternalError(QnhwError):
    """The handler raised an unexpected exception; the endpoint keeps serving."""

    code = ErrorCode.INTERNAL


class Cancelled(QnhwError):
    """The request was cancelled (by the caller or because the endpoint is shutting down)."""

    code = ErrorCode.CANCELLED


class NoSession(QnhwError):
    """The server has no session for this peer: it restarted or the handshake was skipped."""

    code = ErrorCode.NO_SESSION


class ConnectionLost(QnhwError, ConnectionError):
    """The connection to the peer was lost while the call was in flight (client side)."""

    code = ErrorCode.CONNECTION


class ContractMismatch(QnhwError):
    """The device implements another contract, or an incompatible version of it."""

    code = ErrorCode.CONTRACT


_BY_CODE: dict[int, type[QnhwError]] = {
    cls.code: cls
    for cls in (
        BadParams,
        UnknownCommand,
        Busy,
        DeviceFault,
        DeadlineExceeded,
        Unauthorized,
        VersionMismatch,
        ProtocolError,
        MessageTooLarge,
        InternalError,
        Cancelled,
        NoSession,
        ConnectionLost,
        ContractMismatch,
    )
}


def error_from_code(code: int, message: str, details: dict[str, Any] | None = None) -> QnhwError:
    """Build the exception for a wire error code; unknown codes become :class:`QnhwError`."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = QnhwError(message, details)
        err.details.setdefault("code", code)
        return err
    return cls(message, details)
