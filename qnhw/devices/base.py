"""The driver base class and the server-side helper every contract implementation uses.

A driver is a thin, typed face of one :class:`qnhw.contract.Contract`: each contract command is
an ``async def`` method that validates its arguments against the contract (fast, before
anything is sent) and awaits :meth:`qnhw.runtime.Client.call`; each stream is a method returning
a :class:`qnhw.runtime.Subscription`. Connecting performs the protocol handshake with the
contract's name and version (an incompatible device raises :class:`qnhw.ContractMismatch`), then
reads the ``describe`` reply once for the capabilities, the device's clock domain and the
optional features it offers.

On the device side, :func:`implement_contract` registers a handler object on a
:class:`qnhw.runtime.DeviceServer`, with the server re-validating every parameter (never trust
a client), timestamp parameters pinned to the server's clock domain, and the capability map
checked against the contract's schema.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any, ClassVar, Generic, Self, TypeVar

from qnhw.contract.spec import Command, Contract, check_contract_compatible
from qnhw.errors import QnhwError, UnknownCommand
from qnhw.log import get_logger
from qnhw.runtime.client import Client
from qnhw.runtime.server import DeviceServer
from qnhw.runtime.streams import StreamMode, Subscription

D = TypeVar("D", bound="Driver")

#: Capability key listing the optional contract features a device offers.
FEATURES_KEY = "features"


class Connecting(Generic[D]):
    """What :meth:`Driver.connect` returns: ``await`` it, or use it with ``async with``.

    ``async with QuantumMemory.connect(addr) as mem:`` closes the driver on exit;
    ``mem = await QuantumMemory.connect(addr)`` leaves closing (``await mem.close()``) to you.
    """

    def __init__(self, cls: type[D], address: str, client_opts: dict[str, Any]) -> None:
        self._cls = cls
        self._address = address
        self._opts = client_opts
        self._driver: D | None = None

    async def _open(self) -> D:
        if "contract" in self._opts:
            raise TypeError("the contract comes from the driver class; do not pass contract=")
        client = Client(self._address, contract=self._cls.CONTRACT.ref, **self._opts)
        await client.connect()
        try:
            driver = self._cls(client)
            await driver._setup()
        except BaseException:
            await client.close()
            raise
        self._driver = driver
        return driver

    def __await__(self) -> Generator[Any, None, D]:
        return self._open().__await__()

    async def __aenter__(self) -> D:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self._driver is not None:
            await self._driver.close()


class Driver:
    """Base of every device driver. Subclasses set :attr:`CONTRACT` and add typed methods.

    Attributes after connecting: :attr:`capabilities` (the device's capability map, see the
    contract's capability schema), :attr:`clock_domain` (the domain of the device's
    timestamps), :attr:`device` (its name), :attr:`features` (protocol features of the
    handshake plus the optional contract features the device offers).
    """

    CONTRACT: ClassVar[Contract]

    def __init__(self, client: Client) -> None:
        self._client = client
        self._contract = type(self).CONTRACT
        self._commands: dict[str, Command] = {c.name: c for c in self._contract.commands}
        self._device_features: frozenset[str] = frozenset()
        self.capabilities: dict[str, Any] = {}
        self.clock_domain = ""
        self.description: dict[str, Any] = {}
        self._log = get_logger("driver", contract=self._contract.name, endpoint=client.address)

    @classmethod
    def connect(cls, address: str, **client_opts: Any) -> Connecting[Self]:
        """Connect to the device at ``address`` (tcp://, ipc://, inproc://, serial://).

        ``client_opts`` go to :class:`qnhw.runtime.Client` (``timeout``, ``connect_timeout``,
        ``heartbeat``, ``reconnect``, ``curve``, ...). Raises :class:`qnhw.ContractMismatch`
        when the device implements another contract or an incompatible version,
        :class:`qnhw.ConnectionLost` when nothing answers within ``connect_timeout``.
        """
        return Connecting(cls, address, client_opts)

    @classmethod
    async def attach(cls, client: Client) -> Self:
        """A driver over an existing client (connected here if it is not yet).

        The client must have been created with ``contract=cls.CONTRACT.ref`` or none.
        """
        if client.expected_contract is None:
            client.expected_contract = dict(cls.CONTRACT.ref)
        if client.welcome is None:
            await client.connect()
        driver = cls(client)
        await driver._setup()
        return driver

    async def _setup(self) -> None:
        welcome = self._client.welcome
        if welcome is not None:
            check_contract_compatible(self._contract.ref, welcome.contract)
        described = await self._client.describe()
        offered = described.get("contract")
        check_contract_compatible(self._contract.ref, offered)
        self.description = described
        caps = described.get("capabilities")
        self.capabilities = dict(caps) if isinstance(caps, dict) else {}
        domain = described.get("clock_domain")
        self.clock_domain = domain if isinstance(domain, str) else ""
        feats = self.capabilities.get(FEATURES_KEY, [])
        declared = set(self._contract.features)
        self._device_features = frozenset(
            f for f in feats if isinstance(f, str) and f in declared) if isinstance(
            feats, list | tuple) else frozenset()
        contract = self._contract.bind_domain(self.clock_domain) if self.clock_domain else \
            self._contract
        self._commands = {c.name: c for c in contract.commands}
        self._log.debug("driver ready", device=self.device, features=sorted(self.features))

    async def close(self) -> None:
        """Close the connection (pending calls fail with :class:`qnhw.ConnectionLost`)."""
        await self._client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- introspection --------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The underlying :class:`qnhw.runtime.Client` (state, watch_state, raw calls)."""
        return self._client

    @property
    def contract(self) -> Contract:
        """The contract this driver speaks (timestamp parameters bound to the device domain)."""
        return self._contract

    @property
    def device(self) -> str:
        """The device's name from the handshake."""
        return self._client.device

    @property
    def offered_contract(self) -> dict[str, str]:
        """The contract name and version the device declared."""
        welcome = self._client.welcome
        return dict(welcome.contract) if welcome is not None and welcome.contract else {}

    @property
    def features(self) -> frozenset[str]:
        """Protocol features of the handshake plus the optional contract features offered."""
        welcome = self._client.welcome
        proto = frozenset(welcome.features) if welcome is not None else frozenset()
        return proto | self._device_features

    def has_feature(self, name: str) -> bool:
        """Whether the device offers ``name`` (a contract feature or a protocol feature)."""
        return name in self.features

    async def ping(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Round trip; returns the device clock reading ``{"time_ps", "domain"}``."""
        return await self._client.ping(timeout=timeout)

    # --- plumbing for subclasses ----------------------------------------------------------

    def _command(self, name: str) -> Command:
        cmd = self._commands[name]
        if cmd.feature is not None and cmd.feature not in self._device_features:
            raise UnknownCommand(
                f"{self.device or self._contract.name} does not offer the optional feature "
                f"{cmd.feature!r} that {name!r} needs",
                {"command": name, "feature": cmd.feature})
        return cmd

    async def _call(self, name: str, timeout: float | None, /, **params: Any) -> Any:
        """Validate ``params`` against the contract command ``name``, then call the device."""
        checked = self._command(name).validate(params)
        return await self._client.call(name, timeout=timeout, **checked)

    def _subscribe(self, stream: str, mode: StreamMode | str, maxsize: int,
                   credit: int) -> Subscription:
        if not any(s.name == stream for s in self._contract.streams):
            raise KeyError(stream)
        return self._client.subscribe(stream, mode=mode, maxsize=maxsize, credit=credit)


def implement_contract(server: DeviceServer, handlers: object, *,
                       features: Iterable[str] = ()) -> None:
    """Register ``handlers``' methods for every command of ``server.contract``.

    Commands gated by an optional feature are registered only for the ``features`` offered,
    which are also advertised as ``capabilities["features"]``. Timestamp parameters are bound to
    ``server.clock_domain``. Raises ``ValueError`` for a missing handler method, an undeclared
    feature, or a capability map that does not fit the contract's schema.
    """
    contract = server.contract
    if contract is None:
        raise ValueError("implement_contract() needs a server created with a contract")
    offered = list(dict.fromkeys(features))
    unknown = [f for f in offered if f not in contract.features]
    if unknown:
        raise ValueError(f"{contract.name} declares no features {unknown}")
    bound = contract.bind_domain(server.clock_domain)
    commands = bound.commands_for(offered)
    missing = [c.name for c in commands if not callable(getattr(handlers, c.name, None))]
    if missing:
        raise ValueError(f"{type(handlers).__name__} lacks commands {missing}")
    server.capabilities[FEATURES_KEY] = offered
    problems = contract.check_capabilities(server.capabilities)
    if problems:
        raise ValueError(f"capabilities do not fit {contract.name}: " + "; ".join(problems))
    for c in commands:
        server.add_command(c, getattr(handlers, c.name))


def error_summary(exc: QnhwError) -> str:
    """``"bad_params (1): message"``: how CLIs and logs show a typed error."""
    return f"{exc.code.name.lower()} ({int(exc.code)}): {exc.message}"


__all__ = ["FEATURES_KEY", "Connecting", "Driver", "error_summary", "implement_contract"]
