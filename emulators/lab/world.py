"""The physical world of one emulated lab: nodes, clocks, fibers, switches, photons, qubits.

Devices are coupled only through the :class:`World` (``env.world``):

* **Clock domains** -- one :class:`~emulators.lab.clocks.NodeClock` per node; every device of
  a node timestamps in its node's domain.
* **Optics** -- fibers join device *ports* (``"node.device:port"``). :meth:`World.trace`
  follows light from a port through fibers and the settled routes of optical switches to the
  port at the other end, multiplying transmissions (fiber loss, switch insertion loss) and
  adding delays. Photon streams (pair sources) are thinned and delayed along that path and
  handed to the *sink* registered at the far port (a time tagger channel).
* **Qubits** -- one :class:`~emulators.lab.quantum.QubitRegistry`: the joint state of an
  entangled pair lives here and both memories refer to their half.
* **Heralded links** -- two emitters (memory communication qubits) whose optical ports lead
  to the two inputs of one heralding station form a link. ``entangle`` requests from both
  sides meet here (:meth:`World.entangle`); the attempts until the first herald are sampled
  (geometric), never looped, with the heralding probability and the heralded two-memory state
  that :mod:`emulators.physics.heralding` computes from the parameters along both paths
  (emitter collection efficiency, fiber and switch transmission, detector efficiency and dark
  counts, two-photon visibility, interferometer phase noise, and light of other switch inputs
  leaking into an arm by the switch's crosstalk, counted like dark counts:
  :func:`crosstalk_click_probability`). Single ``emit`` photons meeting
  at a station are evaluated one by one with the same measurement operators
  (:meth:`World.emit`).
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from emulators.physics.fiber import Fiber
from emulators.physics.heralding import (
    HeraldOutcomes,
    barrett_kok,
    click_instrument,
    drifted_phase_sigma,
    single_click,
)
from emulators.physics.optics import lorentzian_overlap

from .clocks import DomainClock
from .quantum import Qubit, QubitRegistry
from .time import LabClock, Timer, to_ps

IntArray = npt.NDArray[np.int64]
ComplexArray = npt.NDArray[np.complex128]

#: Hops (fibers plus switches) a trace follows before it gives up (a loop of fibers).
MAX_HOPS = 32

#: Planck constant (J s) and speed of light (m/s), for the photon energy of leaked light.
PLANCK = 6.62607015e-34
SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True, order=True)
class PortRef:
    """A device port: ``device`` is the lab-wide device name ``"node.device"``."""

    device: str
    port: str

    def __str__(self) -> str:
        return f"{self.device}:{self.port}"


@dataclass(frozen=True)
class Path:
    """Where light from a port ends up: the far port (``None``: nowhere -- an open fiber,
    an unrouted switch port), the power transmission, the delay, the switches crossed and
    the phase diffusion of the fibers along it (their sum, rad^2/s). ``crossings``: per switch
    crossed from an input to an output (the direction light of an emitter takes to a station),
    ``(switch, input, output, transmission from the start through that output)``."""

    end: PortRef | None
    transmission: float = 0.0
    delay_ps: int = 0
    via: tuple[str, ...] = ()
    phase_diffusion: float = 0.0
    crossings: tuple[tuple[str, int, int, float], ...] = ()


@runtime_checkable
class Router(Protocol):
    """What the world needs of an optical switch (ports ``in1..inN``, ``out1..outM``)."""

    def route_of(self, input_port: int) -> int | None: ...
    def input_of(self, output_port: int) -> int | None: ...
    def transmission(self, input_port: int, output_port: int) -> float: ...


@dataclass(frozen=True)
class StationModel:
    """The optical parameters of a heralding station at the moment of use."""

    scheme: str
    window_s: float
    detection_efficiency: float
    dark_count_rate_hz: float
    visibility: float
    phase_mean: float
    phase_sigma: float
    #: seconds between phase stabilizations while locked (``inf``: only at ``lock_phase``)
    phase_stabilization_interval_s: float = math.inf
    #: lab time (s) of the last lock (``None``: not locked, no phase reference)
    stabilized_at_s: float | None = None

    @property
    def dark_count_probability(self) -> float:
        """Probability of a dark count per detector per detection window."""
        return -math.expm1(-self.dark_count_rate_hz * self.window_s)

    def phase_sigma_at(self, t_s: float, diffusion: float) -> float:
        """rms interferometer phase at lab time ``t_s`` for arms of total phase diffusion
        ``diffusion`` (rad^2/s): see :func:`residual_phase_sigma`."""
        return residual_phase_sigma(self.phase_sigma, diffusion, t_s, self.stabilized_at_s,
                                    self.phase_stabilization_interval_s)


def residual_phase_sigma(phase_sigma: float, diffusion: float, t_s: float,
                         stabilized_at_s: float | None, interval_s: float) -> float:
    """rms phase of the two-arm interferometer at lab time ``t_s``.

    The phase difference of the arms is a Wiener process of diffusion ``diffusion`` (the sum
    of both arms' fiber ``phase_diffusion``); a stabilization at ``stabilized_at_s`` (the lock)
    and then every ``interval_s`` resets it to the residual error ``phase_sigma``. At ``t_s``
    the variance is ``phase_sigma^2 + 2 D tau`` with ``tau`` the time since the last
    stabilization (:func:`emulators.physics.heralding.drifted_phase_sigma`). Unlocked
    (``stabilized_at_s is None``) the phase is already random: ``phase_sigma`` unchanged.
    """
    if diffusion <= 0.0 or stabilized_at_s is None:
        return phase_sigma
    tau = max(0.0, t_s - stabilized_at_s)
    if math.isfinite(interval_s):
        tau = math.fmod(tau, interval_s)
    return drifted_phase_sigma(phase_sigma, diffusion, tau)


def crosstalk_click_probability(photons: float, detection_efficiency: float) -> float:
    """Probability that one of the station's two detectors clicks in a window on leaked light
    of mean ``photons`` per window at the station (both arms' sum): the light is incoherent
    with the emitters' photons (Poissonian), the beam splitter sends half of it to each
    detector, so ``1 - exp(-photons * detection_efficiency / 2)``. It enters the physics core
    like a dark count: ``p_dark' = 1 - (1 - p_dark)(1 - this)``."""
    if photons <= 0.0:
        return 0.0
    return -math.expm1(-photons * detection_efficiency / 2)


class Station(Protocol):
    """What the world needs of a heralding station emulator."""

    def station_model(self) -> StationModel: ...
    def record_attempts(self, n: int) -> None: ...
    def record_herald(self, attempt: int, outcome: str, detectors: list[int],
                      lab_ps: int) -> None: ...


@dataclass(frozen=True)
class EmitterModel:
    """What the world needs of a photon emitter (a memory's optical interface)."""

    collection_efficiency: float
    optical_lifetime_s: float
    #: wavelength of its photons (m): the photon energy of in-band light leaking into its arm
    wavelength_m: float = 1550e-9


class Emitter(Protocol):
    def emitter_model(self) -> EmitterModel: ...


@dataclass(frozen=True)
class LinkParameters:
    """Everything that sets a heralded link's rate and state (for analysis and tests).

    ``eta_a``/``eta_b``: detection probability of a photon from each side (collection x
    fibers x switches x detector); ``delay_a_ps``/``delay_b_ps``: one-way delay from each
    emitter to the station; ``a``/``b``: the two emitter devices (sorted by name, the tensor
    order of heralded states). ``phase_sigma`` is the station's residual rms phase right
    after a stabilization; ``phase_diffusion`` the diffusion of the arms' phase difference
    (sum of both paths' fiber ``phase_diffusion``, rad^2/s), which grows the rms phase between
    stabilizations (``stabilized_at``: lab s of the lock, ``None`` unlocked;
    ``phase_stabilization_interval``: s, ``inf`` = only at the lock) -- single click only:
    Barrett-Kok is insensitive to it to first order (the phase cancels between its two rounds).
    ``crosstalk_probability``: probability per detector per window of a click from light of
    other switch inputs leaking into the arms (:func:`crosstalk_click_probability`); it is
    already part of ``dark_count_probability``.
    """

    station: str
    a: str
    b: str
    scheme: str
    eta_a: float
    eta_b: float
    visibility: float
    phase_mean: float
    phase_sigma: float
    dark_count_probability: float
    delay_a_ps: int
    delay_b_ps: int
    phase_diffusion: float = 0.0
    phase_stabilization_interval: float = math.inf
    stabilized_at: float | None = None
    crosstalk_probability: float = 0.0

    def phase_sigma_at(self, t_s: float) -> float:
        """rms interferometer phase for photons meeting at the station at lab time ``t_s``."""
        return residual_phase_sigma(self.phase_sigma, self.phase_diffusion, t_s,
                                    self.stabilized_at, self.phase_stabilization_interval)

    @property
    def herald_delay_s(self) -> tuple[float, float]:
        """Time from an attempt to each side learning its herald (photon flight to the
        station of the farther side, then the classical signal back), seconds."""
        d = max(self.delay_a_ps, self.delay_b_ps)
        return (d + self.delay_a_ps) * 1e-12, (d + self.delay_b_ps) * 1e-12

    def outcomes(self, alpha_a: float, alpha_b: float | None = None, *,
                 at_s: float | None = None) -> HeraldOutcomes:
        """The heralding outcomes (probabilities and states) of one attempt; ``at_s``: lab
        time (s) its photons meet at the station, for the phase drift since the last
        stabilization (``None``: the residual phase noise alone). The probabilities do not
        depend on the phase, only the states' coherence does."""
        if self.scheme == "barrett_kok":
            return barrett_kok(self.eta_a, self.eta_b, visibility=self.visibility,
                               dark_count_probability=self.dark_count_probability)
        sigma = self.phase_sigma if at_s is None else self.phase_sigma_at(at_s)
        return single_click(alpha_a, self.eta_a, self.eta_b, alpha_b=alpha_b,
                            visibility=self.visibility, phase_mean=self.phase_mean,
                            phase_sigma=sigma,
                            dark_count_probability=self.dark_count_probability)


@dataclass(frozen=True)
class EntangleOutcome:
    """One side's result of an entanglement batch (``lab_ps``: when it learns it)."""

    success: bool
    attempts: int
    lab_ps: int
    bell_state: str | None
    label: str | None = None


#: Herald label -> (Bell state produced, detectors that clicked).
HERALD_LABELS: dict[str, tuple[str, list[int]]] = {
    "+": ("psi+", [0]), "-": ("psi-", [1]),
    "++": ("psi+", [0, 0]), "--": ("psi+", [1, 1]),
    "+-": ("psi-", [0, 1]), "-+": ("psi-", [1, 0]),
}


@dataclass(eq=False)
class _Request:
    device: str
    node: str
    remote: str
    qubit: Qubit
    index: int | None
    alpha: float
    start_ps: int
    period_ps: int
    attempts: int
    path: Path
    future: asyncio.Future[EntangleOutcome]
    timer: Timer | None = None

    @property
    def end_ps(self) -> int:
        return self.start_ps + self.attempts * self.period_ps


@dataclass(eq=False)
class _Photon:
    device: str
    qubit: Qubit
    input: str
    arrival_ps: int
    eta: float
    timer: Timer | None = None
    phase_diffusion: float = 0.0


@dataclass
class _Node:
    name: str
    clock: DomainClock
    devices: list[str] = field(default_factory=list)


class World:
    """The coupling hub of one lab (module docstring). ``seed``: the lab seed."""

    def __init__(self, clock: LabClock, seed: int = 0, *, max_cluster: int = 10) -> None:
        self.clock = clock
        self.seed = seed
        self.registry = QubitRegistry(max_cluster)
        self.nodes: dict[str, _Node] = {}
        self.devices: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.device_node: dict[str, str] = {}
        self._fibers: dict[PortRef, tuple[PortRef, Fiber]] = {}
        self._fiber_list: list[tuple[PortRef, PortRef, Fiber]] = []
        self._sinks: dict[PortRef, Callable[[IntArray], None]] = {}
        self._pending: list[_Request] = []
        self._photons: dict[str, list[_Photon]] = {}
        self._rngs: dict[str, np.random.Generator] = {}
        self.emitters: dict[str, Any] = {}

    # --- structure ------------------------------------------------------------------------

    def rng(self, name: str) -> np.random.Generator:
        """The generator of ``name`` (a device, a link): seeded from the lab seed and the
        name, so adding a device never changes another's draws."""
        gen = self._rngs.get(name)
        if gen is None:
            gen = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            self._rngs[name] = gen
        return gen

    def add_node(self, name: str, clock: DomainClock) -> None:
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        self.nodes[name] = _Node(name, clock)

    def node_clock(self, node: str) -> DomainClock:
        return self.nodes[node].clock

    def add_device(self, name: str, node: str, kind: str, emulator: Any) -> None:
        """Register ``emulator`` as device ``name`` (``"node.device"``) of ``kind``."""
        if name in self.devices:
            raise ValueError(f"device {name!r} exists")
        self.devices[name] = emulator
        self.kinds[name] = kind
        self.device_node[name] = node
        self.nodes[node].devices.append(name)
        if kind == "memory":
            self.emitters[name] = emulator

    def add_emitter(self, name: str, emitter: Any) -> None:
        """Make device ``name`` an emitter of heralded links (a transducer in front of a QPU
        communication qubit, :class:`emulators.lab.qnu.TransducerEmitter`)."""
        self.emitters[name] = emitter

    def node_of(self, device: str) -> str:
        return self.device_node[device]

    def connect(self, a: PortRef, b: PortRef, fiber: Fiber) -> None:
        """Join ports ``a`` and ``b`` with ``fiber`` (light goes both ways)."""
        for p in (a, b):
            if p in self._fibers:
                raise ValueError(f"port {p} already has a fiber")
        self._fibers[a] = (b, fiber)
        self._fibers[b] = (a, fiber)
        self._fiber_list.append((a, b, fiber))

    @property
    def fibers(self) -> list[tuple[PortRef, PortRef, Fiber]]:
        return list(self._fiber_list)

    def register_sink(self, port: PortRef, sink: Callable[[IntArray], None]) -> None:
        """Photons arriving at ``port`` are handed to ``sink(arrival_times_lab_ps)``."""
        self._sinks[port] = sink

    def unregister_sink(self, port: PortRef) -> None:
        self._sinks.pop(port, None)

    # --- optics ---------------------------------------------------------------------------

    def _router(self, device: str) -> Router | None:
        dev = self.devices.get(device)
        return dev if self.kinds.get(device) == "switch" and isinstance(dev, Router) else None

    def trace(self, port: PortRef) -> Path:
        """Follow light leaving ``port`` to where it ends now (see :class:`Path`)."""
        trans, delay, diffusion = 1.0, 0, 0.0
        via: list[str] = []
        crossings: list[tuple[str, int, int, float]] = []
        cur = port
        for _ in range(MAX_HOPS):
            link = self._fibers.get(cur)
            if link is None:
                return Path(None, 0.0, delay, tuple(via))
            other, fiber = link
            trans *= fiber.transmission
            delay += fiber.delay_ps
            diffusion += fiber.phase_diffusion_rad2_per_s
            router = self._router(other.device)
            if router is None:
                return Path(other, trans, delay, tuple(via), diffusion, tuple(crossings))
            nxt = _through_switch(router, other.port)
            if nxt is None:
                return Path(None, 0.0, delay, tuple(via))
            (i, o), out_port = nxt
            trans *= router.transmission(i, o)
            via.append(other.device)
            if out_port.startswith("out"):
                crossings.append((other.device, i, o, trans))
            cur = PortRef(other.device, out_port)
        return Path(None, 0.0, delay, tuple(via))

    def reachable(self, port: PortRef) -> set[PortRef]:
        """Every port light from ``port`` could reach under *some* switch setting."""
        found: set[PortRef] = set()
        frontier = [port]
        seen: set[PortRef] = set()
        while frontier:
            cur = frontier.pop()
            if cur in seen:
                continue
            seen.add(cur)
            link = self._fibers.get(cur)
            if link is None:
                continue
            other = link[0]
            if self.kinds.get(other.device) == "switch":
                dev = self.devices[other.device]
                side, _, _ = _split_switch_port(other.port)
                n = getattr(dev, "outputs" if side == "in" else "inputs", 0)
                nxt = "out" if side == "in" else "in"
                frontier += [PortRef(other.device, f"{nxt}{k}") for k in range(1, int(n) + 1)]
            else:
                found.add(other)
        return found

    def send_photons(self, port: PortRef, times_ps: IntArray,
                     rng: np.random.Generator) -> int:
        """Photons leave ``port`` at lab times ``times_ps``; those that survive the path reach
        the sink at its end (if any) delayed. Returns how many arrived."""
        if times_ps.size == 0:
            return 0
        path = self.trace(port)
        if path.end is None:
            return 0
        sink = self._sinks.get(path.end)
        if sink is None:
            return 0
        keep = rng.random(times_ps.size) < path.transmission
        arrivals = times_ps[keep] + path.delay_ps
        if arrivals.size:
            sink(np.asarray(arrivals, dtype=np.int64))
        return int(arrivals.size)

    # --- heralded links -------------------------------------------------------------------

    def optical_port(self, device: str, qubit: int | None = None) -> PortRef:
        """The port a photon of ``device`` (of its communication ``qubit``) leaves by:
        ``optical<qubit>`` if a fiber is attached there, else ``optical``."""
        if qubit is not None:
            own = PortRef(device, f"optical{qubit}")
            if own in self._fibers:
                return own
        return PortRef(device, "optical")

    def _emitter_ports(self, device: str) -> list[PortRef]:
        return [p for p in self._fibers if p.device == device and p.port.startswith("optical")]

    def _station_input(self, device: str, qubit: int | None = None
                       ) -> tuple[Path, Any] | None:
        path = self.trace(self.optical_port(device, qubit))
        if path.end is None or self.kinds.get(path.end.device) != "heralding":
            return None
        return path, self.devices[path.end.device]

    def _stations_reachable(self, device: str) -> set[PortRef]:
        return {p for port in self._emitter_ports(device) for p in self.reachable(port)
                if self.kinds.get(p.device) == "heralding"}

    def neighbours(self, device: str) -> list[str]:
        """Nodes whose emitters share a heralding station with ``device`` under some switch
        setting (sorted)."""
        mine = self._stations_reachable(device)
        out: set[str] = set()
        for other in self.emitters:
            if other == device:
                continue
            theirs = self._stations_reachable(other)
            if any(a.device == b.device and a.port != b.port for a in mine for b in theirs):
                out.add(self.device_node[other])
        out.discard(self.device_node[device])
        return sorted(out)

    def _noise(self, device: str) -> float:
        emitter = self.emitters.get(device)
        noise = getattr(emitter, "noise_probability", None)
        return float(noise()) if callable(noise) else 0.0

    def link_parameters(self, device_a: str, device_b: str, qubit_a: int | None = None,
                        qubit_b: int | None = None) -> LinkParameters | None:
        """The link between two emitters now (``None``: their light does not meet at the
        two inputs of one station). ``qubit_a``/``qubit_b`` choose per-qubit optical ports."""
        ends = [self._station_input(d, q) for d, q in ((device_a, qubit_a),
                                                        (device_b, qubit_b))]
        if ends[0] is None or ends[1] is None:
            return None
        (pa, station), (pb, station_b) = ends[0], ends[1]
        assert pa.end is not None and pb.end is not None
        if station is not station_b or pa.end.port == pb.end.port:
            return None
        station_name = pa.end.device
        if device_b < device_a:
            device_a, device_b, pa, pb = device_b, device_a, pb, pa
        model: StationModel = station.station_model()
        ea: EmitterModel = self.emitters[device_a].emitter_model()
        eb: EmitterModel = self.emitters[device_b].emitter_model()
        overlap = lorentzian_overlap(1.0 / ea.optical_lifetime_s, 1.0 / eb.optical_lifetime_s)
        det = model.detection_efficiency
        # noise photons (transducers) click like dark counts; each detector gets half of them
        noise_a = self._noise(device_a) * pa.transmission * det / 2
        noise_b = self._noise(device_b) * pb.transmission * det / 2
        # light of other switch inputs leaking into either arm: clicks like dark counts
        own = {(sw, i) for path in (pa, pb) for sw, i, _, _ in path.crossings}
        xt_a = self._crosstalk_photons(pa, own, ea.wavelength_m, model.window_s)
        xt_b = self._crosstalk_photons(pb, own, eb.wavelength_m, model.window_s)
        xt = crosstalk_click_probability(xt_a + xt_b, det)
        pd = 1 - (1 - model.dark_count_probability) * (1 - noise_a) * (1 - noise_b) * (1 - xt)
        return LinkParameters(
            station=station_name, a=device_a, b=device_b, scheme=model.scheme,
            eta_a=ea.collection_efficiency * pa.transmission * det,
            eta_b=eb.collection_efficiency * pb.transmission * det,
            visibility=model.visibility * float(overlap), phase_mean=model.phase_mean,
            phase_sigma=model.phase_sigma, dark_count_probability=pd,
            delay_a_ps=pa.delay_ps, delay_b_ps=pb.delay_ps,
            phase_diffusion=pa.phase_diffusion + pb.phase_diffusion,
            phase_stabilization_interval=model.phase_stabilization_interval_s,
            stabilized_at=model.stabilized_at_s, crosstalk_probability=xt)

    def _crosstalk_photons(self, path: Path, own: set[tuple[str, int]], wavelength_m: float,
                           window_s: float) -> float:
        """Mean number of leaked photons per detection window at the end of ``path``: at
        every switch it crosses (route ``i -> o``), each other input ``k`` -- not one of the
        link's own arms (``own``: ``(switch, input)``) -- leaks its power (the switch's
        ``input_power(k)``, W, taken as in-band light at ``wavelength_m``) times
        ``transmission(k, o)`` (the crosstalk ``10^(crosstalk/10)``) into ``o``, which then
        travels the rest of the path to the station."""
        if path.end is None or path.transmission <= 0.0:
            return 0.0
        watts = 0.0
        for sw, _, o, through in path.crossings:
            router = self._router(sw)
            power = getattr(router, "input_power", None)
            if router is None or not callable(power) or through <= 0.0:
                continue
            n_in = int(getattr(router, "inputs", 0))
            leaked = sum(float(power(k)) * router.transmission(k, o)
                         for k in range(1, n_in + 1) if (sw, k) not in own)
            watts += leaked * path.transmission / through
        if watts <= 0.0:
            return 0.0
        return watts * window_s * wavelength_m / (PLANCK * SPEED_OF_LIGHT)

    async def entangle(self, device: str, qubit: Qubit, remote: str, attempts: int,
                       period_s: float, start_ps: int, alpha: float,
                       index: int | None = None) -> EntangleOutcome:
        """One side of a batch of heralded attempts with node ``remote``; returns when this
        side learns the result (lab time).

        Both sides must ask: the first waits (in lab time, until its batch would end) for
        the other. The batch runs from the later start, at the longer period, until the
        first side's batch ends; the attempts up to the first herald are geometric with the
        link's heralding probability. Without a partner (or without an optical path to one)
        the batch runs out without a herald.
        """
        clock = self.clock
        node = self.device_node[device]
        now = clock.now_ps()
        loop = asyncio.get_running_loop()
        req = _Request(device, node, remote, qubit, index, alpha, max(now, int(start_ps)),
                       max(1, to_ps(period_s)), attempts,
                       self.trace(self.optical_port(device, index)), loop.create_future())
        partner = next((r for r in self._pending if r.node == remote and r.remote == node
                        and self.link_parameters(device, r.device, index, r.index)
                        is not None), None)
        if partner is not None:
            self._pending.remove(partner)
            mine = self._resolve(partner, req)
            await clock.until(mine.lab_ps)
            return mine
        self._pending.append(req)
        req.timer = clock.call_at(req.end_ps, lambda: self._alone(req))
        try:
            with clock.blocked():
                result = await req.future
            await clock.until(result.lab_ps)
            return result
        finally:
            if req in self._pending:
                self._pending.remove(req)
            if req.timer is not None:
                req.timer.cancel()

    def _alone(self, req: _Request) -> None:
        """``req``'s batch ended without a partner: every attempt failed."""
        if req in self._pending:
            self._pending.remove(req)
        path = req.path
        if path.end is not None and self.kinds.get(path.end.device) == "heralding":
            self.devices[path.end.device].record_attempts(req.attempts)
        self.registry.reset(req.qubit, req.end_ps)
        if not req.future.done():
            req.future.set_result(EntangleOutcome(False, req.attempts,
                                                  req.end_ps + 2 * path.delay_ps, None))

    def _resolve(self, first: _Request, second: _Request) -> EntangleOutcome:
        """Both sides are here: sample the batch, set the pair state, schedule results."""
        if first.timer is not None:
            first.timer.cancel()
        link = self.link_parameters(first.device, second.device, first.index, second.index)
        assert link is not None
        a, b = (first, second) if first.device == link.a else (second, first)
        station = self.devices[link.station]
        t_s = max(a.start_ps, b.start_ps, self.clock.now_ps())
        period = max(a.period_ps, b.period_ps)
        n = max(0, (min(a.end_ps, b.end_ps) - t_s) // period)
        outcomes = link.outcomes(a.alpha, b.alpha)
        rng = self.rng(f"link:{link.station}:{link.a}:{link.b}")
        p = outcomes.success_probability
        k = int(rng.geometric(p)) if p > 0 and n > 0 else n + 1
        d = max(link.delay_a_ps, link.delay_b_ps)
        results: dict[str, EntangleOutcome] = {}
        if k <= n:
            t_emit = t_s + (k - 1) * period
            t_arr = t_emit + d
            j = _pick(rng, outcomes)
            label = outcomes.labels[j]
            bell, detectors = HERALD_LABELS[label]
            if link.phase_diffusion > 0.0:  # the phase drifted since the last stabilization
                outcomes = link.outcomes(a.alpha, b.alpha, at_s=t_arr / 1e12)
            self.registry.set_joint([a.qubit, b.qubit], outcomes.states[j], t_emit)
            self.clock.call_at(t_arr, _record(station, k, label, detectors, t_arr))
            for r, delay in ((a, link.delay_a_ps), (b, link.delay_b_ps)):
                results[r.device] = EntangleOutcome(True, k, t_arr + delay, bell, label)
        else:
            t_end = t_s + n * period
            self.clock.call_at(t_end, _record(station, n, None, [], t_end))
            for r, delay in ((a, link.delay_a_ps), (b, link.delay_b_ps)):
                self.registry.reset(r.qubit, t_end)
                results[r.device] = EntangleOutcome(False, n, t_end + d + delay, None)
        res_first = results[first.device]
        self.clock.call_at(res_first.lab_ps, lambda: _resolve(first.future, res_first))
        mine = results[second.device]
        return EntangleOutcome(mine.success, mine.attempts,
                               max(mine.lab_ps, res_first.lab_ps), mine.bell_state, mine.label)

    # --- station-driven links (QNUs: QPU + transducer) ----------------------------------

    def station_emitters(self, station: str) -> dict[str, str]:
        """Input port -> the emitter device whose light reaches it now."""
        out: dict[str, str] = {}
        for dev in self.emitters:
            for port in self._emitter_ports(dev):
                path = self.trace(port)
                if path.end is not None and path.end.device == station:
                    out[path.end.port] = dev
        return out

    def qnu_link(self, station: str) -> LinkParameters | None:
        """The link the station drives itself: QNU emitters (they hold a qubit and attempt
        on the station's timing) at both inputs now; ``None`` otherwise."""
        ems = self.station_emitters(station)
        if set(ems) != {"0", "1"} or not all(
                hasattr(self.emitters[d], "registry_qubit") for d in ems.values()):
            return None
        return self.link_parameters(ems["0"], ems["1"])

    def qnu_sample(self, link: LinkParameters, n: int | None, alpha: float
                   ) -> tuple[int, int | None]:
        """Attempts of a QNU link until its first herald among ``n`` (``None``: unbounded):
        ``(k, outcome index)`` for a herald at attempt ``k`` (1-based), ``(n, None)`` if none
        comes (sampled, not looped)."""
        outcomes = link.outcomes(alpha, alpha)
        p = outcomes.success_probability
        rng = self.rng(f"link:{link.station}:{link.a}:{link.b}")
        if p <= 0:
            return (n if n is not None else 0), None
        k = int(rng.geometric(p))
        if n is not None and k > n:
            return n, None
        return k, _pick(rng, outcomes)

    def qnu_deliver(self, link: LinkParameters, alpha: float, index: int,
                    t_emit_ps: int) -> tuple[str, list[int]]:
        """Leave the two QPUs' communication qubits in heralded outcome ``index`` (emitted
        at ``t_emit_ps``); returns the Bell state and the detectors that clicked."""
        t_arr = t_emit_ps + max(link.delay_a_ps, link.delay_b_ps)
        outcomes = link.outcomes(alpha, alpha, at_s=t_arr / 1e12)
        ea, eb = self.emitters[link.a], self.emitters[link.b]
        self.registry.set_joint([ea.registry_qubit(), eb.registry_qubit()],
                                outcomes.states[index], t_emit_ps)
        for e in (ea, eb):
            e.register.delivered(e.qubit, t_emit_ps / 1e12)
        bell, detectors = HERALD_LABELS[outcomes.labels[index]]
        return bell, list(detectors)

    def cancel_requests(self, device: str) -> None:
        """Withdraw ``device``'s waiting entanglement requests (its handler was cancelled)."""
        for r in [r for r in self._pending if r.device == device]:
            self._pending.remove(r)
            if r.timer is not None:
                r.timer.cancel()

    # --- single photons (emit) ------------------------------------------------------------

    def emit(self, device: str, qubit: Qubit, lab_ps: int, rng: np.random.Generator,
             index: int | None = None) -> None:
        """Communication qubit ``qubit`` of ``device`` has just emitted (its bright state
        ``|1>`` emits one photon). The photon follows the optical path: to a station input
        it waits for a partner within the detection window, to a tagger it may be detected,
        anywhere else it is lost. The spin keeps the back-action."""
        emitter: EmitterModel = self.emitters[device].emitter_model()
        port = self.optical_port(device, index)
        path = self.trace(port)
        if path.end is not None and self.kinds.get(path.end.device) == "heralding":
            model: StationModel = self.devices[path.end.device].station_model()
            eta = emitter.collection_efficiency * path.transmission * \
                model.detection_efficiency
            self._photon_at_station(path.end, _Photon(device, qubit, path.end.port,
                                                      lab_ps + path.delay_ps, eta,
                                                      phase_diffusion=path.phase_diffusion),
                                    model)
            return
        # not at a station: the photon leaves into the fiber with probability c (bright)
        c = emitter.collection_efficiency
        emitted = np.array([[0, 0], [0, c]], dtype=np.complex128)
        p = self.registry.schur([qubit], emitted, lab_ps, normalize=False)
        if p > 0 and rng.random() < p:
            self.registry.prepare(qubit, np.diag([0.0, 1.0]).astype(np.complex128), lab_ps)
            self.send_photons(port, np.array([lab_ps], dtype=np.int64), rng)
        else:
            # undo the unnormalized multiplier: apply "no photon collected" instead
            q_rho = self.registry.density([qubit], lab_ps)
            none = np.diag([1.0, 1.0 - c])
            rho = np.diag(np.real(np.diag(q_rho)) * none.diagonal()).astype(np.complex128)
            total = float(np.real(np.trace(rho)))
            if total <= 0:
                rho = np.diag([1.0, 0.0]).astype(np.complex128)
                total = 1.0
            self.registry.prepare(qubit, rho / total, lab_ps)

    def _photon_at_station(self, end: PortRef, photon: _Photon, model: StationModel) -> None:
        pending = self._photons.setdefault(end.device, [])
        window = to_ps(model.window_s)
        for other in pending:
            if other.input != photon.input and abs(other.arrival_ps - photon.arrival_ps) <= \
                    window:
                pending.remove(other)
                if other.timer is not None:
                    other.timer.cancel()
                self._evaluate_pair(end.device, other, photon, model)
                return
        pending.append(photon)
        photon.timer = self.clock.call_at(photon.arrival_ps + window,
                                          lambda: self._evaluate_alone(end.device, photon))

    def _evaluate_pair(self, station_name: str, p1: _Photon, p2: _Photon,
                       model: StationModel) -> None:
        a, b = (p1, p2) if p1.device < p2.device else (p2, p1)
        now = self.clock.now_ps()
        rho = self.registry.density([a.qubit, b.qubit], now)
        sigma = model.phase_sigma_at(max(a.arrival_ps, b.arrival_ps) / 1e12,
                                     a.phase_diffusion + b.phase_diffusion)
        plus = click_instrument(1, a.eta, b.eta, model.visibility,
                                model.dark_count_probability, model.phase_mean, sigma)
        minus = click_instrument(-1, a.eta, b.eta, model.visibility,
                                 model.dark_count_probability, model.phase_mean, sigma)
        none = np.diag(1.0 - np.real(np.diag(plus)) - np.real(np.diag(minus))
                       ).astype(np.complex128)
        self._apply_instrument(station_name, [a.qubit, b.qubit], rho, [plus, minus, none],
                               max(a.arrival_ps, b.arrival_ps))

    def _evaluate_alone(self, station_name: str, photon: _Photon) -> None:
        pending = self._photons.get(station_name, [])
        if photon in pending:
            pending.remove(photon)
        station = self.devices[station_name]
        model: StationModel = station.station_model()
        now = self.clock.now_ps()
        pd = model.dark_count_probability
        dark = pd * (1 - pd)
        bright = (1 - pd) * photon.eta / 2 + (1 - photon.eta) * dark
        click = np.diag([dark, bright]).astype(np.complex128)
        none = np.diag([1 - 2 * dark, 1 - 2 * bright]).astype(np.complex128)
        rho = self.registry.density([photon.qubit], now)
        self._apply_instrument(station_name, [photon.qubit], rho, [click, click, none],
                               photon.arrival_ps)

    def _apply_instrument(self, station_name: str, qubits: list[Qubit], rho: ComplexArray,
                          multipliers: list[ComplexArray], arrival_ps: int) -> None:
        probs = np.array([max(0.0, float(np.real(np.sum(m * rho)))) for m in multipliers])
        probs /= probs.sum()
        rng = self.rng(f"station:{station_name}")
        k = min(int(np.searchsorted(np.cumsum(probs), rng.random(), side="right")), 2)
        self.registry.schur(qubits, multipliers[k], self.clock.now_ps())
        station = self.devices[station_name]
        if k < 2:
            label = "+" if k == 0 else "-"
            _record(station, 1, label, HERALD_LABELS[label][1], arrival_ps)()
        else:
            station.record_attempts(1)


def _pick(rng: np.random.Generator, outcomes: HeraldOutcomes) -> int:
    """An outcome index drawn with the outcomes' conditional probabilities."""
    probs = outcomes.probabilities / outcomes.success_probability
    j = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
    return min(j, probs.size - 1)


def _resolve(fut: asyncio.Future[EntangleOutcome], value: EntangleOutcome) -> None:
    if not fut.done():
        fut.set_result(value)


def _record(station: Any, attempts: int, label: str | None, detectors: list[int],
            lab_ps: int) -> Callable[[], None]:
    def fire() -> None:
        if label is None:
            station.record_attempts(attempts)
            return
        station.record_attempts(attempts)
        station.record_herald(attempts - 1, HERALD_LABELS[label][0], list(detectors), lab_ps)
    return fire


def _split_switch_port(port: str) -> tuple[str, int, bool]:
    """``"in3"`` -> ("in", 3, True); anything else -> ("", 0, False)."""
    for side in ("in", "out"):
        if port.startswith(side) and port[len(side):].isdigit():
            return side, int(port[len(side):]), True
    return "", 0, False


def _through_switch(router: Router, port: str) -> tuple[tuple[int, int], str] | None:
    side, k, ok = _split_switch_port(port)
    if not ok:
        return None
    if side == "in":
        o = router.route_of(k)
        return None if o is None else ((k, o), f"out{o}")
    i = router.input_of(k)
    return None if i is None else ((i, k), f"in{i}")


def parse_port(spec: str, default_port: str | None = None) -> PortRef:
    """``"node.device:port"`` (or ``"node.device"`` with ``default_port``) as a PortRef."""
    device, sep, port = spec.partition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"{spec!r} names no port (write 'node.device:port')")
        port = default_port
    if device.count(".") != 1 or not all(device.split(".")) or not port:
        raise ValueError(f"{spec!r} is not 'node.device:port'")
    return PortRef(device, port)


__all__ = ["HERALD_LABELS", "MAX_HOPS", "EmitterModel", "EntangleOutcome", "LinkParameters",
           "Path", "PortRef", "Router", "Station", "StationModel", "World",
           "crosstalk_click_probability", "parse_port", "residual_phase_sigma"]
