"""The pytest plugin: labs from files or dicts, several at once, and the same test against a
lab that runs elsewhere (``--qnhw-real-lab``)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import pytest

from emulators.lab import Lab
from emulators.pytest_plugin import LabHandle

ROOT = Path(__file__).resolve().parents[2]
SMALL: dict[str, Any] = {"lab": {"seed": 4},
                         "nodes": {"n": {"devices": {"mem": {"kind": "memory", "qubits": 3}}}}}


@pytest.mark.qnhw_lab(SMALL)
async def test_marker_with_a_dict_gives_connected_drivers(qnhw_lab: LabHandle) -> None:
    assert qnhw_lab.emulated and qnhw_lab.address("n.mem").startswith("inproc://")
    mem = await qnhw_lab.driver("n.mem")
    assert mem.capabilities["qubits"] == 3 and mem.clock_domain == "n"
    await mem.initialize(1)
    assert await qnhw_lab.advance(2.5) == pytest.approx(2.5 + 2e-6)  # after initialize
    with pytest.raises(KeyError, match="no device"):
        qnhw_lab.address("n.nothing")


async def test_factory_runs_several_labs_over_other_transports(qnhw_lab_factory: Any) -> None:
    async with qnhw_lab_factory(SMALL, transport="ipc") as one, \
            qnhw_lab_factory("examples/labs/nv_link.toml", transport="tcp", seed=1) as two:
        assert one.address("n.mem").startswith("ipc://")
        assert two.address("mid.bsm").startswith("tcp://")
        a = await one.driver("n.mem")
        b = await two.driver("alice.memory")
        assert (await a.status())["busy"] is False and b.capabilities["neighbours"] == ["bob"]
        assert two.lab.config.seed == 1


def _plugin_args() -> list[str]:
    installed = any(ep.value == "emulators.pytest_plugin"
                    for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "emulators.pytest_plugin"]


async def test_the_same_test_runs_against_a_real_lab(tmp_path: Path) -> None:
    test = tmp_path / "test_remote.py"
    test.write_text(
        "import pytest\n\n"
        "@pytest.mark.qnhw_lab('does-not-matter.toml')\n"
        "async def test_remote(qnhw_lab):\n"
        "    assert not qnhw_lab.emulated\n"
        "    mem = await qnhw_lab.driver('alice.memory')\n"
        "    await mem.initialize(0)\n"
        "    assert (await mem.status())['qubits'][0]['state'] == 'initialized'\n"
        "    await qnhw_lab.advance(1.0)\n\n"
        "@pytest.mark.qnhw_lab('x.toml')\n"
        "async def test_white_box(qnhw_lab):\n"
        "    qnhw_lab.require_emulated()\n")
    async with Lab.from_file(ROOT / "examples" / "labs" / "nv_link.toml") as lab:
        real = tmp_path / "real_lab.toml"
        real.write_text("admin = '{}'\n[devices]\n{}\n".format(lab.admin_address, "\n".join(
            f"'{n}' = '{a}'" for n, a in lab.addresses.items() if n != "lab")))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *_plugin_args(), "-o", "asyncio_mode=auto", f"--qnhw-real-lab={real}",
            f"--rootdir={tmp_path}", str(test), cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert lab.clock.now() >= 1.0  # the remote test moved this lab's time
    text = out.decode()
    assert proc.returncode == 0, text
    assert "1 passed, 1 skipped" in text
