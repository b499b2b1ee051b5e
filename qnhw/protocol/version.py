"""Protocol version and feature names exchanged in the handshake."""

from __future__ import annotations

from qnhw.errors import VersionMismatch

#: (major, minor). Peers with another major version refuse each other with error code VERSION.
PROTOCOL_VERSION: tuple[int, int] = (1, 0)

#: Features this implementation offers; a peer uses an optional feature only if both list it.
FEATURES: tuple[str, ...] = ("oob-arrays", "lossless-streams", "cancel", "heartbeat", "describe",
                             "event-batch")


def check_compatible(peer: tuple[int, int]) -> None:
    """Raise :class:`VersionMismatch` unless ``peer`` has our major version."""
    if peer[0] != PROTOCOL_VERSION[0]:
        raise VersionMismatch(
            f"peer speaks protocol {peer[0]}.{peer[1]}, this end speaks "
            f"{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}; major versions must match",
            {"peer": list(peer), "local": list(PROTOCOL_VERSION)},
        )
