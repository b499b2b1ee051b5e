"""Lab configuration: a TOML file (stdlib :mod:`tomllib`) or a dict with the same shape.

The schema, with every key, is in ``docs/lab.md``. In short::

    [lab]                         # all optional
    name = "nv-link"              # default: the file's stem
    seed = 7                      # every random draw of the lab derives from it
    time = "virtual"              # or "wall"
    transport = "tcp"             # tcp | ipc | inproc: how endpoints bind by default
    host = "127.0.0.1"            # tcp bind host (loopback by default)
    port_base = 0                 # 0: free ports; N: device k binds N + k
    tick = 0.01                   # s of lab time per stream batch
    idle_advance = 0.005          # s of idle wall time before virtual time jumps (0: never)
    admin = true                  # serve the lab endpoint (time service, faults)

    [nodes.alice]
    clock = "ocxo"                # an oscillator profile, or a table of its parameters

    [nodes.alice.devices.memory]
    kind = "memory"               # memory heralding source tagger switch transducer timing qpu
    profile = "nv-delft"          # realistic defaults; every other key overrides one
    t2 = 1.0

    [[fibers]]
    a = "alice.memory:optical"
    b = "mid.bsm:0"
    length = 10.0                 # m
    profile = "fiber-637"

    [[faults]]
    kind = "latency"
    target = "alice.memory"
    latency = 0.01

Errors are :class:`ConfigError` naming the file, the dotted key and the reason, e.g.
``lab.toml: nodes.alice.devices.memory.t2: must be > 0, got -1``.
"""

from __future__ import annotations

import inspect
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from emulators.physics.profiles import PROFILES

#: Device kinds, their emulator class (module, class name) and contract.
KINDS: dict[str, tuple[str, str, str]] = {
    "memory": ("emulators.devices.memory", "QuantumMemoryEmulator", "QuantumMemory"),
    "heralding": ("emulators.devices.heralding", "HeraldingStationEmulator",
                  "HeraldingStation"),
    "source": ("emulators.devices.source", "PhotonSourceEmulator", "PhotonSource"),
    "tagger": ("emulators.devices.timetagger", "TimeTaggerEmulator", "TimeTagger"),
    "switch": ("emulators.devices.switch", "SwitchEmulator", "OpticalSwitch"),
    "transducer": ("emulators.devices.transducer", "TransducerEmulator", "Transducer"),
    "timing": ("emulators.devices.timing", "TimingCardEmulator", "TimingCard"),
    "qpu": ("emulators.devices.qpu", "QPUEmulator", "QPU"),
}
TRANSPORTS = ("tcp", "ipc", "inproc")
TIME_MODES = ("virtual", "wall")
FAULT_KINDS = ("latency", "drop", "disconnect", "device_fault", "latch", "lose_state",
               "clock_slip", "phase_unlock")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ConfigError(ValueError):
    """A lab configuration is wrong. ``path``: the file (or ``"<dict>"``); ``key``: the
    dotted key; ``reason``: what is wrong; ``problems``: every ``(key, reason)`` found."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        self.key, self.reason = self.problems[0]
        lines = [f"{path}: {k}: {r}" for k, r in self.problems]
        super().__init__("\n".join(lines))


# --- profiles: profile values -> emulator parameters --------------------------------------


def _memory_profile(p: Mapping[str, float], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "wavelength_nm" in p:
        out["wavelength"] = p["wavelength_nm"] * 1e-9
    if "t1_s" in p:
        out["t1"] = p["t1_s"]
    if name == "nv-delft":
        out.update(platform="nv", t2=p["t2_s"], dephasing="exponential",
                   optical_lifetime=p["optical_lifetime_s"],
                   readout_error_0=1 - p["readout_fidelity_0"],
                   readout_error_1=1 - p["readout_fidelity_1"])
    elif name == "ion-oxford":
        e = 1 - p["readout_fidelity"]
        out.update(platform="ion", t2=p["t2_star_s"], dephasing="gaussian",
                   memory_t1=p["t1_s"], memory_t2=p["t2_star_s"],
                   memory_dephasing="gaussian", readout_error_0=e, readout_error_1=e,
                   gate_error_2q=p["gate_error_2q"])
    return out


def _detector_profile(p: Mapping[str, float], name: str, *, station: bool) -> dict[str, Any]:
    if station:
        return {"detection_efficiency": p["efficiency"],
                "dark_count_rate": p["dark_count_rate_hz"]}
    out: dict[str, Any] = {"detector_type": name, "efficiency": p["efficiency"],
                           "dark_count_rate": p["dark_count_rate_hz"],
                           "dead_time": p["dead_time_s"], "jitter": p["jitter_fwhm_s"],
                           "afterpulse_probability": p["afterpulse_probability"]}
    if "afterpulse_time_constant_s" in p:
        out["afterpulse_time_constant"] = p["afterpulse_time_constant_s"]
    return out


#: kind -> {profile name -> function(profile values, name) -> emulator parameters}.
DEVICE_PROFILES: dict[str, dict[str, Callable[[Mapping[str, float], str], dict[str, Any]]]] = {
    "memory": {"nv-delft": _memory_profile, "ion-oxford": _memory_profile},
    "heralding": {n: lambda p, name: _detector_profile(p, name, station=True)
                  for n in ("snspd", "spad")},
    "tagger": {n: lambda p, name: _detector_profile(p, name, station=False)
               for n in ("snspd", "spad")},
    "transducer": {"transducer-2022": lambda p, name: {}},  # its defaults are this profile
}
CLOCK_PROFILES = ("ocxo", "rubidium")
FIBER_PROFILES = ("smf28-1550", "fiber-637")
#: Clock table keys -> OscillatorModel fields.
CLOCK_KEYS = {"offset": "offset_s", "frequency_offset": "frequency_offset",
              "drift": "drift_per_s", "white_pm": "white_pm_s",
              "white_fm": "white_fm_adev_1s", "random_walk_fm": "random_walk_fm_adev_1s"}


def profile_parameters(kind: str, name: str) -> dict[str, Any]:
    """Emulator parameters of device profile ``name`` for ``kind`` (``KeyError``: none)."""
    return DEVICE_PROFILES[kind][name](dict(_values(name)), name)


def _values(name: str) -> dict[str, float]:
    return {k: p.value for k, p in PROFILES[name].items()}


def clock_parameters(name: str) -> dict[str, float]:
    """OscillatorModel fields of clock profile ``name``."""
    v = _values(name)
    return {f: v[f] for f in ("white_fm_adev_1s", "random_walk_fm_adev_1s", "white_pm_s",
                              "drift_per_s") if f in v}


# --- the parsed configuration --------------------------------------------------------------


@dataclass
class DeviceConfig:
    """One device: ``name`` is ``"node.device"``; ``params`` the emulator keywords (profile
    applied, overrides on top); ``key`` its dotted key in the file."""

    name: str
    node: str
    kind: str
    params: dict[str, Any]
    key: str
    profile: str | None = None
    address: str | None = None
    features: list[str] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeConfig:
    name: str
    clock: dict[str, float]
    clock_profile: str | None = None
    devices: list[DeviceConfig] = field(default_factory=list)


@dataclass
class FiberConfig:
    a: str
    b: str
    length: float
    loss_db_per_km: float
    group_index: float
    key: str
    name: str = ""
    phase_diffusion: float = 0.0
    profile: str | None = None


@dataclass
class FaultConfig:
    kind: str
    target: str
    params: dict[str, Any]
    key: str
    at: float | None = None


@dataclass
class LabConfig:
    """A validated lab configuration (see the module docstring and ``docs/lab.md``)."""

    name: str = "lab"
    seed: int = 0
    time: str = "virtual"
    transport: str = "tcp"
    host: str = "127.0.0.1"
    port_base: int = 0
    tick: float = 0.01
    idle_advance: float = 0.005
    admin: bool = True
    admin_address: str | None = None
    ipc_dir: str | None = None
    max_cluster: int = 10
    nodes: dict[str, NodeConfig] = field(default_factory=dict)
    fibers: list[FiberConfig] = field(default_factory=list)
    faults: list[FaultConfig] = field(default_factory=list)
    source: str = "<dict>"

    @property
    def devices(self) -> list[DeviceConfig]:
        return [d for n in self.nodes.values() for d in n.devices]

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


# --- parsing -------------------------------------------------------------------------------


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, reason: str) -> None:
        self.items.append((key, reason))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.path, self.items)


def _typed(problems: _Problems, key: str, value: Any, kind: type | tuple[type, ...],
           what: str) -> bool:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in (
        kind if isinstance(kind, tuple) else (kind,)))
    if not ok:
        problems.add(key, f"must be {what}, got {type(value).__name__} {value!r}")
    return ok


def _number(problems: _Problems, key: str, value: Any, *, minimum: float | None = None,
            positive: bool = False) -> float | None:
    if not _typed(problems, key, value, (int, float), "a number"):
        return None
    x = float(value)
    if not math.isfinite(x):
        problems.add(key, f"must be finite, got {value!r}")
        return None
    if positive and not x > 0:
        problems.add(key, f"must be > 0, got {value!r}")
        return None
    if minimum is not None and x < minimum:
        problems.add(key, f"must be >= {minimum:g}, got {value!r}")
        return None
    return x


def _unknown(problems: _Problems, prefix: str, table: Mapping[str, Any],
             known: set[str]) -> None:
    for k in table:
        if k not in known:
            problems.add(f"{prefix}.{k}" if prefix else k,
                         f"unknown key (known: {', '.join(sorted(known))})")


def _emulator_parameters(kind: str) -> set[str] | None:
    """Keyword parameters of ``kind``'s emulator (``None``: emulator not importable)."""
    import importlib

    module, cls_name, _ = KINDS[kind]
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return None
    sig = inspect.signature(cls.__init__)
    return {n for n, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


_LAB_KEYS = {"name", "seed", "time", "transport", "host", "port_base", "tick", "idle_advance",
             "admin", "admin_address", "ipc_dir", "max_cluster"}
_DEVICE_META = {"kind", "profile", "address", "features"}
#: Lab-level keys of some kinds (not emulator parameters): a transducer names the QPU whose
#: communication ``qubit`` it serves (its QNU link).
KIND_META: dict[str, set[str]] = {"transducer": {"qpu", "qubit"}}
_FIBER_KEYS = {"a", "b", "length", "loss_db_per_km", "group_index", "profile", "name",
               "phase_diffusion"}


def parse_config(data: Mapping[str, Any], *, source: str = "<dict>",
                 default_name: str = "lab") -> LabConfig:
    """Validate ``data`` (a parsed TOML document or a dict of the same shape)."""
    problems = _Problems(source)
    cfg = LabConfig(name=default_name, source=source)
    if not isinstance(data, Mapping):
        raise ConfigError(source, [("(document)", "must be a table")])
    _unknown(problems, "", data, {"lab", "nodes", "fibers", "faults"})
    _parse_lab(problems, data.get("lab", {}), cfg)
    nodes = data.get("nodes", {})
    if not isinstance(nodes, Mapping) or not nodes:
        problems.add("nodes", "must be a table with at least one node")
        nodes = {}
    for node_name, node in nodes.items():
        _parse_node(problems, str(node_name), node, cfg)
    fibers = data.get("fibers", [])
    if not isinstance(fibers, list):
        problems.add("fibers", "must be an array of tables ([[fibers]])")
        fibers = []
    for i, f in enumerate(fibers):
        _parse_fiber(problems, f"fibers[{i}]", f, cfg)
    faults = data.get("faults", [])
    if not isinstance(faults, list):
        problems.add("faults", "must be an array of tables ([[faults]])")
        faults = []
    for i, f in enumerate(faults):
        _parse_fault(problems, f"faults[{i}]", f, cfg)
    problems.raise_if_any()
    return cfg


def _parse_lab(problems: _Problems, lab: Any, cfg: LabConfig) -> None:
    if not isinstance(lab, Mapping):
        problems.add("lab", "must be a table")
        return
    _unknown(problems, "lab", lab, _LAB_KEYS)
    if "name" in lab and _typed(problems, "lab.name", lab["name"], str, "a string"):
        if not _NAME.match(lab["name"]):
            problems.add("lab.name", "must start with a letter and use only letters, digits, "
                         "'-' and '_'")
        else:
            cfg.name = lab["name"]
    if "seed" in lab and _typed(problems, "lab.seed", lab["seed"], int, "an int"):
        if lab["seed"] < 0:
            problems.add("lab.seed", f"must be >= 0, got {lab['seed']}")
        else:
            cfg.seed = lab["seed"]
    for key, choices in (("time", TIME_MODES), ("transport", TRANSPORTS)):
        if key in lab and _typed(problems, f"lab.{key}", lab[key], str, "a string"):
            if lab[key] not in choices:
                problems.add(f"lab.{key}", f"must be one of {', '.join(choices)}, got "
                             f"{lab[key]!r}")
            else:
                setattr(cfg, key, lab[key])
    for key in ("host", "admin_address", "ipc_dir"):
        if key in lab and _typed(problems, f"lab.{key}", lab[key], str, "a string"):
            setattr(cfg, key, lab[key])
    if "port_base" in lab and _typed(problems, "lab.port_base", lab["port_base"], int,
                                     "an int"):
        if not (lab["port_base"] == 0 or 1024 <= lab["port_base"] <= 65000):
            problems.add("lab.port_base", "must be 0 (free ports) or in 1024..65000")
        else:
            cfg.port_base = lab["port_base"]
    if "tick" in lab:
        t = _number(problems, "lab.tick", lab["tick"], positive=True)
        if t is not None:
            cfg.tick = t
    if "idle_advance" in lab:
        t = _number(problems, "lab.idle_advance", lab["idle_advance"], minimum=0.0)
        if t is not None:
            cfg.idle_advance = t
    if "admin" in lab and _typed(problems, "lab.admin", lab["admin"], bool, "true or false"):
        cfg.admin = lab["admin"]
    if "max_cluster" in lab and _typed(problems, "lab.max_cluster", lab["max_cluster"], int,
                                       "an int"):
        if not 2 <= lab["max_cluster"] <= 12:
            problems.add("lab.max_cluster", "must be in 2..12 (a 2^n x 2^n density matrix)")
        else:
            cfg.max_cluster = lab["max_cluster"]


def _parse_clock(problems: _Problems, key: str, clock: Any, node: NodeConfig) -> None:
    if isinstance(clock, str):
        clock = {"profile": clock}
    if not isinstance(clock, Mapping):
        problems.add(key, "must be a clock profile name or a table")
        return
    _unknown(problems, key, clock, {"profile", *CLOCK_KEYS})
    model: dict[str, float] = {}
    if "profile" in clock and _typed(problems, f"{key}.profile", clock["profile"], str,
                                     "a string"):
        if clock["profile"] not in CLOCK_PROFILES:
            problems.add(f"{key}.profile", f"unknown clock profile {clock['profile']!r} "
                         f"(known: {', '.join(CLOCK_PROFILES)})")
        else:
            node.clock_profile = clock["profile"]
            model.update(clock_parameters(clock["profile"]))
    for k, field_name in CLOCK_KEYS.items():
        if k in clock:
            x = _number(problems, f"{key}.{k}", clock[k],
                        minimum=0.0 if k.startswith(("white", "random")) else None)
            if x is not None:
                model[field_name] = x
    node.clock = model


def _parse_node(problems: _Problems, name: str, node: Any, cfg: LabConfig) -> None:
    key = f"nodes.{name}"
    if not _NAME.match(name):
        problems.add(key, "node names start with a letter and use only letters, digits, "
                     "'-' and '_'")
        return
    if not isinstance(node, Mapping):
        problems.add(key, "must be a table")
        return
    _unknown(problems, key, node, {"clock", "devices"})
    nc = NodeConfig(name, {})
    if "clock" in node:
        _parse_clock(problems, f"{key}.clock", node["clock"], nc)
    devices = node.get("devices", {})
    if not isinstance(devices, Mapping):
        problems.add(f"{key}.devices", "must be a table of devices")
        devices = {}
    for dev_name, dev in devices.items():
        d = _parse_device(problems, name, str(dev_name), dev)
        if d is not None:
            nc.devices.append(d)
    cfg.nodes[name] = nc


def _parse_device(problems: _Problems, node: str, name: str, dev: Any) -> DeviceConfig | None:
    key = f"nodes.{node}.devices.{name}"
    if not _NAME.match(name):
        problems.add(key, "device names start with a letter and use only letters, digits, "
                     "'-' and '_'")
        return None
    if not isinstance(dev, Mapping):
        problems.add(key, "must be a table")
        return None
    kind = dev.get("kind")
    if kind is None:
        problems.add(f"{key}.kind", f"missing (one of {', '.join(KINDS)})")
        return None
    if not isinstance(kind, str) or kind not in KINDS:
        problems.add(f"{key}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        return None
    params: dict[str, Any] = {}
    profile = dev.get("profile")
    if profile is not None:
        known = DEVICE_PROFILES.get(kind, {})
        if not isinstance(profile, str) or profile not in known:
            problems.add(f"{key}.profile", f"no profile {profile!r} for a {kind} (known: "
                         f"{', '.join(sorted(known)) or 'none'})")
            profile = None
        else:
            params.update(profile_parameters(kind, profile))
    meta = _DEVICE_META | KIND_META.get(kind, set())
    overrides = {k: v for k, v in dev.items() if k not in meta}
    links = {k: dev[k] for k in KIND_META.get(kind, set()) if k in dev}
    if "qpu" in links:
        q = links["qpu"]
        if not isinstance(q, str) or not q:
            problems.add(f"{key}.qpu", "must name a QPU device ('qpu' or 'node.qpu')")
        else:
            links["qpu"] = q if "." in q else f"{node}.{q}"
    if "qubit" in links and (not isinstance(links["qubit"], int) or
                             isinstance(links["qubit"], bool) or links["qubit"] < 0):
        problems.add(f"{key}.qubit", "must be a qubit index (int >= 0)")
    allowed = _emulator_parameters(kind)
    if allowed is None:
        problems.add(f"{key}.kind", f"the {kind} emulator ({KINDS[kind][0]}) is not "
                     "available in this installation")
        return None
    for k in overrides:
        if k not in allowed:
            problems.add(f"{key}.{k}", f"unknown parameter of a {kind} (known: "
                         f"{', '.join(sorted(allowed | meta))})")
    params.update({k: _plain(v) for k, v in overrides.items() if k in allowed})
    address = dev.get("address")
    if address is not None and (not isinstance(address, str) or not address.startswith(
            ("tcp://", "ipc://", "inproc://"))):
        problems.add(f"{key}.address", "must be a tcp://, ipc:// or inproc:// endpoint")
        address = None
    features = dev.get("features")
    if features is not None and (not isinstance(features, list) or not all(
            isinstance(f, str) for f in features)):
        problems.add(f"{key}.features", "must be a list of feature names")
        features = None
    return DeviceConfig(f"{node}.{name}", node, kind, params, key, profile, address,
                        features, overrides, links)


def _plain(value: Any) -> Any:
    """TOML values as emulator arguments: tables with integer-like keys get int keys."""
    if isinstance(value, Mapping):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): _plain(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_fiber(problems: _Problems, key: str, f: Any, cfg: LabConfig) -> None:
    if not isinstance(f, Mapping):
        problems.add(key, "must be a table")
        return
    _unknown(problems, key, f, _FIBER_KEYS)
    ends: list[str] = []
    for end in ("a", "b"):
        v = f.get(end)
        if v is None:
            problems.add(f"{key}.{end}", "missing: a port 'node.device:port'")
        elif _typed(problems, f"{key}.{end}", v, str, "a port 'node.device:port'"):
            ends.append(v)
    loss, index, profile = 0.2, 1.468, None
    if "profile" in f:
        if f["profile"] not in FIBER_PROFILES:
            problems.add(f"{key}.profile", f"unknown fiber profile {f['profile']!r} (known: "
                         f"{', '.join(FIBER_PROFILES)})")
        else:
            profile = f["profile"]
            v = _values(profile)
            loss, index = v["loss_db_per_km"], v["group_index"]
    length = None
    if "length" not in f:
        problems.add(f"{key}.length", "missing: fiber length in metres")
    else:
        length = _number(problems, f"{key}.length", f["length"], minimum=0.0)
    if "loss_db_per_km" in f:
        x = _number(problems, f"{key}.loss_db_per_km", f["loss_db_per_km"], minimum=0.0)
        loss = loss if x is None else x
    if "group_index" in f:
        x = _number(problems, f"{key}.group_index", f["group_index"], minimum=1.0)
        index = index if x is None else x
    diffusion = 0.0
    if "phase_diffusion" in f:
        x = _number(problems, f"{key}.phase_diffusion", f["phase_diffusion"], minimum=0.0)
        diffusion = diffusion if x is None else x
    name = f.get("name", "")
    if len(ends) == 2 and length is not None:
        cfg.fibers.append(FiberConfig(ends[0], ends[1], length, loss, index, key,
                                      str(name), diffusion, profile))


def _parse_fault(problems: _Problems, key: str, f: Any, cfg: LabConfig) -> None:
    if not isinstance(f, Mapping):
        problems.add(key, "must be a table")
        return
    kind = f.get("kind")
    if kind not in FAULT_KINDS:
        problems.add(f"{key}.kind", f"must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        return
    target = f.get("target")
    if not isinstance(target, str) or not target:
        problems.add(f"{key}.target", "missing: a device 'node.device' (or a node for "
                     "clock_slip)")
        return
    at = None
    if "at" in f:
        at = _number(problems, f"{key}.at", f["at"], minimum=0.0)
    params = {k: v for k, v in f.items() if k not in ("kind", "target", "at")}
    cfg.faults.append(FaultConfig(kind, target, params, key, at))


def load_config(path: str | FsPath) -> LabConfig:
    """Read and validate a TOML lab file; raises :class:`ConfigError`."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [("(file)", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [("(syntax)", f"not valid TOML: {exc}")]) from None
    return parse_config(data, source=str(p), default_name=_stem_name(p))


def _stem_name(p: FsPath) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", p.stem) or "lab"
    return stem if stem[0].isalpha() else f"lab-{stem}"


__all__ = ["CLOCK_PROFILES", "DEVICE_PROFILES", "FAULT_KINDS", "FIBER_PROFILES", "KINDS",
           "ConfigError", "DeviceConfig", "FaultConfig", "FiberConfig", "LabConfig",
           "NodeConfig", "clock_parameters", "load_config", "parse_config",
           "profile_parameters"]
