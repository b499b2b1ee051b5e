"""The end-to-end proof: examples/heralded_entanglement.py in virtual time agrees with the
analytic rate and fidelity, and a seeded run is reproducible."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from emulators.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "heralded_entanglement.py"
NV = ROOT / "examples" / "labs" / "nv_link.toml"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qnhw_heralded_entanglement", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_example_agrees_with_theory_in_virtual_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    ex = _example()
    code = await ex.main(["--pairs", "300", "--transport", "inproc", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "agree within 3 standard errors" in out
    assert "heralding rate" in out and "fidelity with Psi+" in out
    assert "virtual time" in out


async def _run(ex: ModuleType, seed: int) -> object:
    async with Lab.from_file(NV, transport="inproc", seed=seed) as lab:
        return await ex.run_experiment(lab.address("alice.memory"), lab.address("bob.memory"),
                                       lab.address("mid.bsm"), pairs=60, progress=False)


async def test_seeded_runs_are_reproducible() -> None:
    ex = _example()
    first, second, other = await _run(ex, 9), await _run(ex, 9), await _run(ex, 10)
    assert first.attempts == second.attempts  # type: ignore[attr-defined]
    assert first.lab_seconds == second.lab_seconds  # type: ignore[attr-defined]
    for key, counts in first.counts.items():  # type: ignore[attr-defined]
        assert np.array_equal(counts, second.counts[key])  # type: ignore[attr-defined]
    assert first.attempts != other.attempts  # type: ignore[attr-defined]
