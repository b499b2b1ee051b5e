"""qnhw: one message protocol for quantum-network lab hardware and its emulators.

Layers (each depends only on those below it):

* :mod:`qnhw.protocol` -- messages, codec, limits, versions; sans-I/O.
* :mod:`qnhw.transport` -- ZeroMQ sockets driven from the asyncio loop; serial framing.
* :mod:`qnhw.runtime` -- async :class:`Client` and :class:`DeviceServer`, streams, auth.
* :mod:`qnhw.contract` -- declarative, typed, unit-carrying command definitions.
"""

from qnhw.errors import (
    BadParams,
    Busy,
    Cancelled,
    ConnectionLost,
    ContractMismatch,
    DeadlineExceeded,
    DeviceFault,
    ErrorCode,
    InternalError,
    MessageTooLarge,
    NoSession,
    ProtocolError,
    QnhwError,
    Unauthorized,
    UnknownCommand,
    VersionMismatch,
)
from qnhw.protocol.types import Quantity, Timestamp

__version__ = "0.1.0"

__all__ = [
    "BadParams",
    "Busy",
    "Cancelled",
    "ConnectionLost",
    "ContractMismatch",
    "DeadlineExceeded",
    "DeviceFault",
    "ErrorCode",
    "InternalError",
    "MessageTooLarge",
    "NoSession",
    "ProtocolError",
    "QnhwError",
    "Quantity",
    "Timestamp",
    "Unauthorized",
    "UnknownCommand",
    "VersionMismatch",
    "__version__",
]
