"""The qnhw wire protocol, sans-I/O: messages, codec, limits and versions.

Nothing in this package touches a socket: encoding turns a message into a list of frames and
decoding turns frames back into a message, raising :class:`qnhw.errors.ProtocolError` (and only
that) for anything that does not follow ``docs/protocol.md``.
"""

from qnhw.protocol.codec import pack, unpack
from qnhw.protocol.limits import DEFAULT_LIMITS, Limits
from qnhw.protocol.messages import (
    Cancel,
    Credit,
    ErrorReply,
    Event,
    EventBatch,
    Goodbye,
    Heartbeat,
    Hello,
    Message,
    Reply,
    Request,
    Welcome,
    decode_message,
    encode_message,
)
from qnhw.protocol.types import Quantity, Timestamp
from qnhw.protocol.version import FEATURES, PROTOCOL_VERSION

__all__ = [
    "DEFAULT_LIMITS",
    "FEATURES",
    "PROTOCOL_VERSION",
    "Cancel",
    "Credit",
    "ErrorReply",
    "Event",
    "EventBatch",
    "Goodbye",
    "Heartbeat",
    "Hello",
    "Limits",
    "Message",
    "Quantity",
    "Reply",
    "Request",
    "Timestamp",
    "Welcome",
    "decode_message",
    "encode_message",
    "pack",
    "unpack",
]
