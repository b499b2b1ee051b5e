"""Public API, hardware profiles, and the rules of the physics core: pure numpy, no I/O,
no asyncio, no print, every random draw from a caller's Generator."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import emulators.physics as phys
from emulators.physics import profiles

PACKAGE = Path(phys.__file__).parent
REQUIRED_PROFILES = {
    "nv-delft", "ion-oxford", "ensemble-rb", "snspd", "spad", "transducer-2022",
    "ocxo", "rubidium", "smf28-1550", "fiber-637",
}  # fmt: skip


def test_public_names_exist() -> None:
    for name in phys.__all__:
        assert hasattr(phys, name), name


def test_profiles_have_values_and_sources() -> None:
    assert set(profiles.profile_names()) >= REQUIRED_PROFILES
    for name in profiles.profile_names():
        for key, p in profiles.describe(name).items():
            assert p.source.strip(), (name, key)
            assert p.quality in {"reported", "derived", "representative"}, (name, key)
            assert not math.isnan(p.value), (name, key)
    sahu = profiles.profile("transducer-2022")
    assert (sahu["efficiency"], sahu["added_noise"]) == (0.087, 0.16)
    with pytest.raises(phys.ParameterError):
        profiles.profile("nv-paris")
    with pytest.raises(TypeError):
        profiles.PROFILES["snspd"]["efficiency"] = profiles.Param(1.0, "1", "x")  # type: ignore[index]


FORBIDDEN_MODULES = {
    "asyncio",
    "scipy",
    "socket",
    "zmq",
    "os",
    "io",
    "subprocess",
    "threading",
    "random",
}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        assert not set(names) & FORBIDDEN_MODULES, f"{path.name} imports {names}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "open", "input"}, (
                f"{path.name} calls {node.func.id}"
            )
        if isinstance(node, ast.Attribute) and node.attr in {"default_rng", "seed", "RandomState"}:
            raise AssertionError(
                f"{path.name} uses numpy.random.{node.attr}: take a Generator instead"
            )
