"""The one way an emulator becomes a protocol endpoint: its contract on a DeviceServer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qnhw.contract.spec import Contract
from qnhw.devices.base import implement_contract
from qnhw.runtime.server import DeviceServer


def contract_server(device: object, contract: Contract, *, name: str, address: str,
                    capabilities: dict[str, Any], available: Sequence[str],
                    features: Sequence[str] | None, clock: Callable[[], int],
                    clock_domain: str, server_cls: type[DeviceServer] = DeviceServer,
                    **server_opts: Any) -> DeviceServer:
    """A (not yet started) server for ``device``'s handlers of ``contract``.

    ``features``: the optional contract features to offer (``None``: all of ``available``);
    asking for one outside ``available`` raises ``ValueError``. Timestamps are ``clock()``
    picoseconds in ``clock_domain``. Does not block.
    """
    offered = list(available) if features is None else list(features)
    missing = [f for f in offered if f not in available]
    if missing:
        raise ValueError(f"features {missing} are not available on {name} "
                         f"(available: {list(available)})")
    server = server_cls(name, address, contract=contract, capabilities=capabilities,
                        clock=clock, clock_domain=clock_domain, **server_opts)
    implement_contract(server, device, features=offered)
    return server
