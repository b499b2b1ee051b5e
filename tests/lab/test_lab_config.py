"""Lab configs: profiles with overrides, and errors that name the file, the key and why."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from emulators.lab import Lab
from emulators.lab.config import ConfigError, load_config, parse_config
from emulators.physics.profiles import profile

LABS = Path(__file__).resolve().parents[2] / "examples" / "labs"


def _base() -> dict[str, Any]:
    return {"nodes": {"a": {"devices": {"mem": {"kind": "memory"}}}}}


def _error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Lab.from_dict(data)
    return info.value


@pytest.mark.parametrize("path", sorted(LABS.glob("*.toml")), ids=lambda p: p.stem)
def test_example_labs_are_valid(path: Path) -> None:
    cfg = load_config(path)
    lab = Lab(cfg)
    assert lab.entries and cfg.name


def test_profiles_give_defaults_and_keys_override_them() -> None:
    cfg = parse_config({"nodes": {"a": {"clock": "rubidium", "devices": {
        "mem": {"kind": "memory", "profile": "nv-delft", "t2": 0.5},
        "det": {"kind": "tagger", "profile": "spad", "dark_count_rate": 25.0}}}}})
    nv = profile("nv-delft")
    mem = cfg.device("a.mem")
    assert mem.params["t1"] == nv["t1_s"] and mem.params["t2"] == 0.5
    assert mem.params["readout_error_0"] == pytest.approx(1 - nv["readout_fidelity_0"])
    assert mem.params["wavelength"] == pytest.approx(637e-9)
    det = cfg.device("a.det")
    assert det.params["efficiency"] == profile("spad")["efficiency"]
    assert det.params["dark_count_rate"] == 25.0 and det.params["detector_type"] == "spad"
    assert cfg.nodes["a"].clock["white_fm_adev_1s"] == profile("rubidium")["white_fm_adev_1s"]
    lab = Lab(cfg)
    assert lab.emulator("a.mem").comm_model.t2_s == 0.5
    assert lab.emulator("a.det").models[1].efficiency == profile("spad")["efficiency"]


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[lab\nseed = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.path == str(bad) and info.value.key == "(syntax)"
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("mutate, key, reason", [
    (lambda d: d.setdefault("lab", {}).update(time="fast"), "lab.time", "virtual, wall"),
    (lambda d: d.setdefault("lab", {}).update(seed=-1), "lab.seed", ">= 0"),
    (lambda d: d.setdefault("lab", {}).update(colour="red"), "lab.colour", "unknown key"),
    (lambda d: d["nodes"]["a"]["devices"]["mem"].update(kind="toaster"),
     "nodes.a.devices.mem.kind", "must be one of"),
    (lambda d: d["nodes"]["a"]["devices"]["mem"].update(profile="snspd"),
     "nodes.a.devices.mem.profile", "no profile 'snspd' for a memory"),
    (lambda d: d["nodes"]["a"]["devices"]["mem"].update(t3=1.0),
     "nodes.a.devices.mem.t3", "unknown parameter of a memory"),
    (lambda d: d["nodes"]["a"].update(clock={"profile": "sundial"}),
     "nodes.a.clock.profile", "unknown clock profile"),
    (lambda d: d["nodes"]["a"].update(clock={"white_fm": -1.0}),
     "nodes.a.clock.white_fm", ">= 0"),
    (lambda d: d.update(fibers=[{"a": "a.mem:optical", "b": "a.mem:x"}]),
     "fibers[0].length", "missing"),
    (lambda d: d.update(fibers=[{"a": "a.mem:optical", "b": "b.mem:optical", "length": 1.0}]),
     "fibers[0].b", "no device 'b.mem'"),
    (lambda d: d.update(fibers=[{"a": "a.mem:laser", "b": "a.mem:optical", "length": 1.0}]),
     "fibers[0].a", "has no port 'laser'"),
    (lambda d: d.update(faults=[{"kind": "gremlins", "target": "a.mem"}]),
     "faults[0].kind", "must be one of"),
])
def test_bad_keys_are_named_with_path_and_reason(mutate: Any, key: str, reason: str) -> None:
    data = _base()
    mutate(data)
    err = _error(data)
    assert err.path == "<dict>"
    assert (key, ) in [(k,) for k, _ in err.problems], err.problems
    assert reason in dict(err.problems)[key]
    assert f"<dict>: {key}: " in str(err)


def test_bad_parameter_values_are_named_by_the_emulator() -> None:
    data = _base()
    data["nodes"]["a"]["devices"]["mem"]["t2"] = -3.0
    err = _error(data)
    assert err.key == "nodes.a.devices.mem.t2" and "t2" in err.reason
    data = _base()
    data["nodes"]["a"]["devices"]["mem"]["readout_error_0"] = 1.5
    assert _error(data).key == "nodes.a.devices.mem.readout_error_0"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('[lab]\ntime = "soon"\n\n[nodes.a.devices.m]\nkind = "memory"\nt9 = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = [k for k, _ in info.value.problems]
    assert keys == ["lab.time", "nodes.a.devices.m.t9"]
    text = str(info.value)
    assert f"{path}: lab.time: must be one of virtual, wall" in text
    assert math.isfinite(len(text))
