"""Build and run an emulated lab: one world, one clock, one endpoint per device.

::

    async with Lab.from_file("examples/labs/nv_link.toml") as lab:
        async with lab.driver("alice.memory") as mem:
            await mem.initialize(0)

:class:`Lab` builds the :class:`~emulators.lab.world.World` (node clocks, devices, fibers),
constructs every emulator with its :class:`~emulators.devices.env.EmulatorEnv`, and on
:meth:`Lab.start` serves each through a :class:`qnhw.runtime.DeviceServer` (tcp, ipc or
inproc), plus the lab's own *admin* endpoint (the lab time service and fault injection, see
:mod:`emulators.lab.admin`). Every handler is wrapped so the lab clock knows which tasks are
requests (virtual time) and so transport faults can delay or drop replies.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from emulators.devices.env import EmulatorEnv
from emulators.physics import OscillatorModel
from emulators.physics.errors import PhysicsError
from emulators.physics.fiber import Fiber
from qnhw.contract.spec import Command, Contract
from qnhw.devices import CONTRACTS, Connecting, Driver, driver_for
from qnhw.log import get_logger
from qnhw.runtime.server import DeviceServer
from qnhw.runtime.tasks import BackgroundTasks

from .clocks import CardClock, NodeClock
from .config import KINDS, ConfigError, DeviceConfig, LabConfig, load_config, parse_config
from .faults import FaultError, FaultInjector
from .time import LabClock, make_clock, to_ps
from .world import LinkParameters, PortRef, World, parse_port

_instances = itertools.count(1)


@dataclass
class DeviceEntry:
    """One device of a running lab."""

    config: DeviceConfig
    emulator: Any
    contract: Contract
    env: EmulatorEnv
    bind: str
    pub_bind: str | None = None
    server: DeviceServer | None = None
    address: str = ""
    pub_address: str | None = None
    up: bool = False

    @property
    def name(self) -> str:
        return self.config.name



def ports_of(kind: str, emulator: Any) -> list[str] | None:
    """The optical ports of a device (``None``: any port name is accepted)."""
    if kind == "memory":
        return ["optical"] + [f"optical{q}" for q in emulator.communication]
    if kind == "heralding":
        return ["0", "1"]
    if kind == "source":
        return list(emulator.ports)
    if kind == "tagger":
        return [str(c) for c in emulator.channels]
    if kind == "switch":
        return [f"in{i}" for i in range(1, emulator.inputs + 1)] + \
            [f"out{o}" for o in range(1, emulator.outputs + 1)]
    if kind == "transducer":
        return ["optical"]
    return None


class Lab:
    """An emulated lab built from a :class:`~emulators.lab.config.LabConfig`.

    ``transport``: override the config's transport (``"tcp"``, ``"ipc"``, ``"inproc"``);
    ``time``: override its time mode; ``seed``: override its seed. Construction builds the
    world and the emulators (raising :class:`ConfigError` for a bad parameter); :meth:`start`
    binds the endpoints.
    """

    def __init__(self, config: LabConfig, *, transport: str | None = None,
                 time: str | None = None, seed: int | None = None) -> None:
        self.config = config
        if transport is not None:
            config.transport = transport
        if time is not None:
            config.time = time
        if seed is not None:
            config.seed = seed
        self.instance = next(_instances)
        self._log = get_logger("lab", lab=config.name)
        self._tasks = BackgroundTasks(self._log)
        self.clock: LabClock = make_clock(config.time, tick=config.tick,  # type: ignore[arg-type]
                                          idle_advance=config.idle_advance)
        self.world = World(self.clock, config.seed, max_cluster=config.max_cluster)
        self.entries: dict[str, DeviceEntry] = {}
        self.faults = FaultInjector(self)
        self.admin_server: DeviceServer | None = None
        self.admin_address = ""
        self._ipc_dir: str | None = None
        self._own_ipc_dir = False
        self.started = False
        self._qnu_qpus: set[str] = set()
        self._build()

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Lab:
        """Load, validate and build the lab in TOML file ``path``."""
        return cls(load_config(FsPath(path)), **overrides)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "lab",
                  **overrides: Any) -> Lab:
        """Validate and build a lab from a dict shaped like the TOML file."""
        return cls(parse_config(data, default_name=name), **overrides)

    def _error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.config.source, [(key, reason)])

    def _build(self) -> None:
        cfg = self.config
        problems: list[tuple[str, str]] = []
        for node in cfg.nodes.values():
            try:
                model = OscillatorModel(**node.clock)
            except (PhysicsError, TypeError) as exc:
                problems.append((f"nodes.{node.name}.clock", str(exc)))
                model = OscillatorModel()
            self.world.add_node(node.name, NodeClock(
                node.name, model, self.world.rng(f"clock:{node.name}")))
        if problems:
            raise ConfigError(cfg.source, problems)
        self._qnu_qpus = {d.links["qpu"] for d in cfg.devices if "qpu" in d.links}
        for k, dev in enumerate(cfg.devices):
            try:
                self._build_device(dev, k)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(cfg.source, problems)
        for dev in cfg.devices:
            if "qpu" in dev.links:
                try:
                    self._link_qnu(dev)
                except ConfigError as exc:
                    problems += exc.problems
        if problems:
            raise ConfigError(cfg.source, problems)
        for f in cfg.fibers:
            try:
                self._connect(f.a, f.b, f.length, f.loss_db_per_km, f.group_index,
                              f.phase_diffusion, f.key)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(cfg.source, problems)

    def _addresses(self, dev: DeviceConfig, k: int) -> tuple[str, str | None]:
        cfg = self.config
        if dev.address is not None:
            return dev.address, "auto"
        name = dev.name
        if cfg.transport == "inproc":
            return f"inproc://qnhw-{cfg.name}-{self.instance}/{name}", "auto"
        if cfg.transport == "ipc":
            return f"ipc://{self._ipc()}/{name}", "auto"
        if cfg.port_base:
            base = cfg.port_base + 2 * k
            return f"tcp://{cfg.host}:{base}", f"tcp://{cfg.host}:{base + 1}"
        return f"tcp://{cfg.host}:0", "auto"

    def _ipc(self) -> str:
        if self._ipc_dir is None:
            if self.config.ipc_dir:
                self._ipc_dir = self.config.ipc_dir
                os.makedirs(self._ipc_dir, exist_ok=True)
            else:
                self._ipc_dir = tempfile.mkdtemp(prefix=f"qnhw-{self.config.name}-")
                self._own_ipc_dir = True
        return self._ipc_dir

    def _build_device(self, dev: DeviceConfig, k: int) -> None:
        module, cls_name, contract_name = KINDS[dev.kind]
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise self._error(f"{dev.key}.kind", f"the {dev.kind} emulator is not available "
                              f"({exc})") from None
        world, clock = self.world, self.clock
        env = EmulatorEnv(dev.name, world.rng(dev.name), dev.node,
                          _domain_reader(world, dev.node, clock), clock.now, clock.spend, world)
        params = dict(dev.params)
        if dev.kind == "qpu" and dev.name in self._qnu_qpus:
            params["register"] = self._qpu_register(cls, dev, params)
        try:
            emulator = cls(env, **params)
        except (ValueError, TypeError) as exc:
            raise self._error(self._param_key(dev, str(exc)), str(exc)) from None
        world.add_device(dev.name, dev.node, dev.kind, emulator)
        if dev.kind == "timing":  # the card's clock is the node's domain from now on
            node = self.config.nodes[dev.node]
            if node.clock or node.clock_profile:
                raise self._error(f"nodes.{dev.node}.clock", "this node has a timing card "
                                  f"({dev.name}): its clock is the card's; set oscillator, "
                                  "offset and frequency_offset on the card instead")
            if isinstance(world.node_clock(dev.node), CardClock):
                raise self._error(dev.key, f"node {dev.node!r} already has a timing card")
            world.nodes[dev.node].clock = CardClock(dev.node, emulator)
        bind, pub = self._addresses(dev, k)
        self.entries[dev.name] = DeviceEntry(dev, emulator, CONTRACTS[contract_name], env,
                                             bind, pub)

    def _qpu_register(self, cls: Any, dev: DeviceConfig, params: dict[str, Any]) -> Any:
        """A live register in the lab's qubit registry for a QPU on a QNU link."""
        from .qnu import WorldLiveRegister

        defaults = {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()}
        n = params.get("n_qubits", defaults.get("n_qubits", 5))
        if not isinstance(n, int) or not 1 <= n <= self.config.max_cluster:
            raise self._error(f"{dev.key}.n_qubits", f"a QPU on a network link is simulated in "
                              f"the lab's registry: at most lab.max_cluster = "
                              f"{self.config.max_cluster} qubits")

        def per_qubit(key: str) -> list[float]:
            v: Any = params.get(key, defaults.get(key))
            return [float(v)] * n if isinstance(v, int | float) else [float(x) for x in v]

        return WorldLiveRegister(self.world.registry, dev.name, n, per_qubit("t1"),
                                 per_qubit("t2"), str(params.get("dephasing", "exponential")),
                                 self.clock.now(), self.clock.now_ps)

    def _link_qnu(self, dev: DeviceConfig) -> None:
        """Make transducer ``dev`` the optical interface of its QPU's communication qubit."""
        from .qnu import TransducerEmitter

        qpu_name = dev.links["qpu"]
        qpu = self.entries.get(qpu_name)
        if qpu is None or qpu.config.kind != "qpu":
            raise self._error(f"{dev.key}.qpu", f"no QPU {qpu_name!r}")
        comm = list(qpu.emulator.communication_qubits)
        qubit = dev.links.get("qubit", comm[0] if comm else 0)
        if qubit not in comm:
            raise self._error(f"{dev.key}.qubit", f"qubit {qubit} is not a communication "
                              f"qubit of {qpu_name} ({comm})")
        self.world.add_emitter(dev.name, TransducerEmitter(self.entries[dev.name].emulator,
                                                           qpu.emulator, qubit))

    @staticmethod
    def _param_key(dev: DeviceConfig, message: str) -> str:
        """The dotted key a constructor's error message is about (best effort)."""
        words = message.replace("(", " ").replace(":", " ").replace("[", " ").split()
        for w in words[:3]:
            if w in dev.params:
                return f"{dev.key}.{w}"
        return dev.key

    def _connect(self, a: str, b: str, length: float, loss: float, index: float,
                 diffusion: float, key: str) -> None:
        refs: list[PortRef] = []
        for end, spec in (("a", a), ("b", b)):
            try:
                ref = parse_port(spec)
            except ValueError as exc:
                raise self._error(f"{key}.{end}", str(exc)) from None
            entry = self.entries.get(ref.device)
            if entry is None:
                raise self._error(f"{key}.{end}", f"no device {ref.device!r} (devices: "
                                  f"{', '.join(self.entries)})")
            ports = ports_of(entry.config.kind, entry.emulator)
            if ports is not None and ref.port not in ports:
                raise self._error(f"{key}.{end}", f"{ref.device} ({entry.config.kind}) has no "
                                  f"port {ref.port!r} (ports: {', '.join(ports) or 'none'})")
            refs.append(ref)
        try:
            fiber = Fiber(length, loss, index, diffusion)
            self.world.connect(refs[0], refs[1], fiber)
        except (ValueError, PhysicsError) as exc:
            raise self._error(key, str(exc)) from None
        a_entry, b_entry = self.entries[refs[0].device], self.entries[refs[1].device]
        if a_entry.config.kind == b_entry.config.kind == "timing":
            # a White Rabbit link: each card can exchange with the other over the fiber
            for mine, other in ((a_entry, b_entry), (b_entry, a_entry)):
                mine.emulator.connect_peer(other.config.node, other.emulator,
                                           delay=fiber.delay_s)

    # --- handlers -----------------------------------------------------------------------

    def _commands(self, entry: DeviceEntry) -> list[Command]:
        assert entry.server is not None
        feats = entry.server.capabilities.get("features", [])
        bound = entry.contract.bind_domain(entry.server.clock_domain)
        return list(bound.commands_for([f for f in feats if isinstance(f, str)]))

    def _wrap(self, entry: DeviceEntry, handler: Callable[..., Any],
              faulty: bool) -> Callable[..., Any]:
        clock = self.clock
        if faulty:
            faults = self.faults
            name = entry.name

            async def with_faults(**params: Any) -> Any:
                wait, drop = faults.delay(name)
                if wait > 0:
                    await asyncio.sleep(wait)
                with clock.request():
                    result = handler(**params)
                    if inspect.isawaitable(result):
                        result = await result
                if drop:
                    with clock.blocked():
                        await asyncio.Event().wait()  # the reply is lost: the caller times out
                return result

            return with_faults
        if inspect.iscoroutinefunction(handler):
            async def request(**params: Any) -> Any:
                with clock.request():
                    return await handler(**params)
            return request

        def inline(**params: Any) -> Any:
            clock.note_activity()
            return handler(**params)
        return inline

    def reinstall_handlers(self, name: str) -> None:
        """(Re)register the handlers of device ``name`` (``"*"``: all), with the fault
        wrapper while it has transport faults."""
        for entry in self.entries.values():
            if name not in ("*", entry.name) or entry.server is None:
                continue
            faulty = self.faults.has_transport_faults(entry.name)
            for spec in self._commands(entry):
                entry.server.add_command(spec, self._wrap(
                    entry, getattr(entry.emulator, spec.name), faulty))

    # --- lifecycle ------------------------------------------------------------------------

    async def _serve(self, entry: DeviceEntry, bind: str, pub: str | None) -> None:
        opts: dict[str, Any] = {"name": entry.name}
        if entry.config.features is not None:
            opts["features"] = entry.config.features
        try:
            server = entry.emulator.build_server(bind, pub_address=pub, **opts)
        except ValueError as exc:
            raise self._error(f"{entry.config.key}.features", str(exc)) from None
        entry.server = server
        self.reinstall_handlers(entry.name)
        await server.start()
        entry.address, entry.pub_address = server.address, server.pub_address
        entry.up = True
        attached = getattr(entry.emulator, "attached", None)
        if callable(attached):
            attached()

    async def start(self) -> Lab:
        """Start the clock and serve every device (and the admin endpoint); returns self."""
        if self.started:
            return self
        self.started = True
        await self.clock.start()
        try:
            for entry in self.entries.values():
                await self._serve(entry, entry.bind, entry.pub_bind)
            if self.config.admin:
                from .admin import build_admin_server

                self.admin_server = build_admin_server(self, self._admin_bind())
                await self.admin_server.start()
                self.admin_address = self.admin_server.address
            for f in self.config.faults:
                self._schedule_config_fault(f.kind, f.target, f.params, f.at, f.key)
        except BaseException:
            await self.stop()
            raise
        self._log.info("lab started", devices=len(self.entries), time=self.config.time,
                       transport=self.config.transport)
        return self

    def _admin_bind(self) -> str:
        cfg = self.config
        if cfg.admin_address:
            return cfg.admin_address
        if cfg.transport == "inproc":
            return f"inproc://qnhw-{cfg.name}-{self.instance}/lab"
        if cfg.transport == "ipc":
            return f"ipc://{self._ipc()}/lab"
        if cfg.port_base:
            return f"tcp://{cfg.host}:{cfg.port_base + 2 * len(self.entries)}"
        return f"tcp://{cfg.host}:0"

    def _schedule_config_fault(self, kind: str, target: str, params: dict[str, Any],
                               at: float | None, key: str) -> None:
        try:
            self.faults._check(kind, target, params)
        except FaultError as exc:
            raise self._error(key, str(exc)) from None

        def fire() -> None:
            self.track(asyncio.get_running_loop().create_task(
                self.faults.inject(kind, target, **params)))

        if at is None:
            fire()
        else:
            self.clock.call_at(to_ps(at), fire)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep a lab-owned task until it ends (cancelled on stop)."""
        self._tasks.track(task)

    async def stop(self) -> None:
        """Stop every endpoint and background task; close every socket."""
        if not self.started:
            return
        self.started = False
        await self.faults.close()
        await self._tasks.cancel_all()
        if self.admin_server is not None:
            await self.admin_server.stop()
            self.admin_server = None
        for entry in self.entries.values():
            if entry.server is not None:
                await entry.server.stop()
            entry.up = False
            await entry.emulator.aclose()
        await self.clock.stop()
        if self._own_ipc_dir and self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None
        self._log.info("lab stopped")

    async def __aenter__(self) -> Lab:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def take_down(self, name: str) -> None:
        """Close device ``name``'s endpoint (fault injection: disconnect)."""
        entry = self.entries[name]
        if entry.server is not None and entry.up:
            await entry.server.stop()
            entry.up = False

    async def bring_up(self, name: str) -> None:
        """Serve device ``name`` again at the address it had."""
        entry = self.entries[name]
        if entry.up:
            return
        await self._serve(entry, entry.address, "auto")  # tcp fan-out: a new free port

    # --- access -------------------------------------------------------------------------

    def address(self, name: str) -> str:
        """The bound address of device ``name`` (``"node.device"``) or ``"lab"``."""
        if name == "lab":
            return self.admin_address
        entry = self.entries.get(name)
        if entry is None:
            raise KeyError(f"no device {name!r} (devices: {', '.join(self.entries)})")
        return entry.address or entry.bind

    @property
    def addresses(self) -> dict[str, str]:
        """Every device's address (and ``"lab"``: the admin endpoint, if served)."""
        out = {n: e.address for n, e in self.entries.items()}
        if self.admin_address:
            out["lab"] = self.admin_address
        return out

    def driver(self, name: str, **client_opts: Any) -> Connecting[Driver]:
        """A typed driver of device ``name``: ``async with lab.driver("a.memory") as m:``."""
        entry = self.entries[name]
        cls = driver_for(entry.contract.name)
        return cls.connect(self.address(name), **client_opts)

    def emulator(self, name: str) -> Any:
        """The emulator object of device ``name`` (white-box access for tests)."""
        return self.entries[name].emulator

    def link_parameters(self, a: str, b: str, qubit_a: int | None = None,
                        qubit_b: int | None = None) -> LinkParameters | None:
        """The physical parameters of the heralded link between emitters ``a`` and ``b``
        (their communication qubits ``qubit_a``/``qubit_b`` when they have several ports)."""
        return self.world.link_parameters(a, b, qubit_a, qubit_b)

    def table(self) -> str:
        """A table of the endpoints: device, contract, clock domain, address, fan-out."""
        rows = [("device", "contract", "domain", "address", "fan-out")]
        for name, e in self.entries.items():
            rows.append((name, e.contract.name, e.env.domain, e.address or e.bind,
                         e.pub_address or "-"))
        if self.admin_address:
            rows.append(("lab", "(admin: time, faults)", "lab", self.admin_address, "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _domain_reader(world: World, node: str, clock: LabClock) -> Callable[[], int]:
    def now_ps() -> int:  # looked up each time: a timing card may take over the domain
        return world.node_clock(node).read(clock.now_ps())
    return now_ps


async def start_lab(source: str | os.PathLike[str] | Mapping[str, Any] | LabConfig,
                    **overrides: Any) -> Lab:
    """Build and start a lab from a TOML path, a dict or a :class:`LabConfig`."""
    if isinstance(source, LabConfig):
        lab = Lab(source, **overrides)
    elif isinstance(source, Mapping):
        lab = Lab.from_dict(source, **overrides)
    else:
        lab = Lab.from_file(source, **overrides)
    return await lab.start()


__all__ = ["DeviceEntry", "Lab", "ports_of", "start_lab"]
