"""The async runtime: :class:`Client` and :class:`DeviceServer`, streams, liveness, auth."""

from qnhw.runtime.auth import CurveClient, CurveServer, generate_keypair
from qnhw.runtime.client import Client
from qnhw.runtime.server import DeviceServer, host_clock_ps
from qnhw.runtime.state import ConnectionState
from qnhw.runtime.streams import StreamEvent, StreamMode, Subscription

__all__ = [
    "Client",
    "ConnectionState",
    "CurveClient",
    "CurveServer",
    "DeviceServer",
    "StreamEvent",
    "StreamMode",
    "Subscription",
    "generate_keypair",
    "host_clock_ps",
]
