"""One definition: drivers, docs and the spec extensions agree with the contracts."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path

import numpy as np
import pytest

from qnhw import BadParams, Quantity, Timestamp
from qnhw.contract import REQUIRED, Command, Contract, Field, Param, StreamSpec
from qnhw.devices import CONTRACTS, DRIVERS, Driver, docgen
from qnhw.runtime import Subscription


def test_nine_contracts_version_one() -> None:
    assert sorted(CONTRACTS) == sorted([
        "QuantumMemory", "PhotonSource", "TimeTagger", "HeraldingStation", "OpticalSwitch",
        "Transducer", "TimingCard", "QPU", "TriggerGenerator"])
    for c in CONTRACTS.values():
        assert c.version == "1.0"
        assert c.doc and c.capabilities
        assert any(f.name == "features" for f in c.capabilities)


def _check_method(driver: type[Driver], cmd: Command) -> None:
    fn = getattr(driver, cmd.name)
    assert inspect.iscoroutinefunction(fn), f"{cmd.name} must be async"
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1:]
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword_only = [p for p in params if p.kind is p.KEYWORD_ONLY]
    assert [p.name for p in positional] == [p.name for p in cmd.params]
    assert [p.name for p in keyword_only] == ["timeout"]
    assert keyword_only[0].default is None
    for mp, cp in zip(positional, cmd.params, strict=True):
        if cp.default is REQUIRED:
            assert mp.default is inspect.Parameter.empty, f"{cmd.name}.{cp.name} is required"
        else:
            assert mp.default == cp.default, f"{cmd.name}.{cp.name} default"
    doc = inspect.getdoc(fn) or ""
    for cp in cmd.params:
        assert f"``{cp.name}``" in doc, f"{driver.__name__}.{cmd.name} docstring lacks {cp.name}"
        if cp.unit and cp.unit != "ps":
            assert cp.unit in doc, f"{driver.__name__}.{cmd.name} docstring lacks unit {cp.unit}"
    if cmd.feature is not None:
        assert f"``{cmd.feature}``" in doc


def _check_result_type(driver: type[Driver], cmd: Command) -> None:
    module = inspect.getmodule(driver)
    hints = typing.get_type_hints(getattr(driver, cmd.name), vars(module))
    ret = hints["return"]
    if not cmd.result:
        assert ret is type(None)
        return
    if dataclasses.is_dataclass(ret):
        keys = [f.name for f in dataclasses.fields(ret)]
    else:
        keys = list(typing.get_type_hints(ret))
    assert keys == [f.name for f in cmd.result]


def _check_stream_method(driver: type[Driver], stream: StreamSpec) -> None:
    fn = getattr(driver, stream.name)
    assert not inspect.iscoroutinefunction(fn)
    hints = typing.get_type_hints(fn, vars(inspect.getmodule(driver)))
    assert hints["return"] is Subscription
    assert stream.fields, "every stream declares its payload schema"


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_driver_matches_contract(driver: type[Driver]) -> None:
    """Every command is a typed async method with the contract's parameter names, order and
    defaults, a docstring naming parameters and units, and the result schema's keys; every
    stream is a method returning a Subscription; nothing else is public."""
    for cmd in driver.CONTRACT.commands:
        _check_method(driver, cmd)
        _check_result_type(driver, cmd)
    for stream in driver.CONTRACT.streams:
        _check_stream_method(driver, stream)
    declared = {c.name for c in driver.CONTRACT.commands} | {
        s.name for s in driver.CONTRACT.streams}
    own = {n for n, v in vars(driver).items() if not n.startswith("_") and callable(v)}
    assert own <= declared, own - declared
    assert "__getattr__" not in vars(driver)


def test_docs_are_current() -> None:
    path = Path(__file__).resolve().parents[2] / "docs" / "devices.md"
    assert path.read_text(encoding="utf-8") == docgen.render(), (
        "docs/devices.md is out of date: run python -m qnhw.devices.docgen")


def test_docgen_check_mode(tmp_path: Path) -> None:
    out = tmp_path / "devices.md"
    assert docgen.main(["--output", str(out), "--check"]) == 1
    assert docgen.main(["--output", str(out)]) == 0
    assert docgen.main(["--output", str(out), "--check"]) == 0
    assert "## QPU 1.0" in out.read_text()


# --- spec extensions ----------------------------------------------------------------------


def test_param_nullable_items_domain() -> None:
    p = Param("x", "float", unit="s", min=0, nullable=True, default=None)
    assert p.validate(None) is None
    assert p.validate(Quantity(5, "us")) == pytest.approx(5e-6)
    with pytest.raises(BadParams) as err:
        p.validate(Quantity(5, "V"))
    assert err.value.details["param"] == "x"
    q = Param("qubits", "list", items=Param("qubit", "int", min=0), max=2)
    assert q.validate((1, np.int64(2))) == [1, 2]
    with pytest.raises(BadParams, match=r"'qubits'\[1\]"):
        q.validate([0, -1])
    t = Param("at", "timestamp", unit="ps", domain="node-a")
    assert t.validate(Timestamp(7, "node-a")) == 7
    assert t.validate(Quantity(1, "ns")) == 1000
    with pytest.raises(BadParams, match="node-b"):
        t.validate(Timestamp(7, "node-b"))
    assert q.describe()["items"]["min"] == 0
    assert "domain" in t.describe() and p.describe()["nullable"] is True


def test_field_checks() -> None:
    f = Field("m", "dict", fields=(
        Field("a", "array", dtype="int64"),
        Field("t", "timestamp"),
        Field("peer", "timestamp", domain=None),
        Field("xs", "list", items=Field("x", "float"), required=False),
        Field("c", "str", choices=("p", "q"), nullable=True)))
    good = {"a": np.zeros(2, np.int64), "t": Timestamp(1, "d"), "peer": Timestamp(2, "e"),
            "c": None, "extra": 1}
    assert f.check(good, device_domain="d") == []
    bad = {"a": np.zeros(2, np.int32), "t": Timestamp(1, "z"), "peer": 3, "xs": ["x"],
           "c": "r"}
    problems = f.check(bad, device_domain="d")
    assert len(problems) == 4, problems
    assert f.check({"t": 1, "peer": 1, "a": np.zeros(1, np.int64)}) == ["m.c: missing"]


def test_contract_capabilities_features_and_bind() -> None:
    c = Contract("Thing", "1.0", commands=(
        Command("go", (Param("at", "timestamp", unit="ps"),), feature="fast"),
        Command("stop")),
        features=("fast",), capabilities=(Field("n", "int"),))
    assert [x.name for x in c.commands_for([])] == ["stop"]
    assert [x.name for x in c.commands_for(["fast"])] == ["go", "stop"]
    assert c.check_capabilities({"n": 1, "features": ["fast"]}) == []
    assert c.check_capabilities({"n": "1", "features": ["slow"]}) != []
    bound = c.bind_domain("dom")
    assert bound.command("go").params[0].domain == "dom"
    assert c.command("go").params[0].domain is None
    with pytest.raises(ValueError, match="undeclared feature"):
        Contract("Bad", "1.0", commands=(Command("x", feature="nope"),))
    assert c.describe()["features"] == [{"name": "fast", "doc": ""}]


def test_result_and_payload_checks() -> None:
    cmd = Command("m", result=(Field("outcome", "int"),))
    assert cmd.check_result({"outcome": 1}) == []
    assert cmd.check_result(None) != []
    assert Command("n").check_result(None) == []
    assert Command("n").check_result(5) != []
    s = StreamSpec("s", fields=(Field("v", "int"),))
    assert s.check_payload({"v": True}) != []
