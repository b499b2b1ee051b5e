"""pytest plugin: emulated labs as fixtures, or the same tests against a real lab.

Enabled by the ``pytest11`` entry point ``qnhw = "emulators.pytest_plugin"`` (or
``-p emulators.pytest_plugin``). It adds:

Marker ``@pytest.mark.qnhw_lab(config, *, transport=None, time=None, seed=None)``
    The lab a test runs against: ``config`` is a TOML path (relative to the test file, then
    the rootdir) or a dict shaped like the TOML file.

Fixture ``qnhw_lab``
    Starts the marked lab in the test's event loop (inproc by default; ``--qnhw-transport``
    or the marker choose ipc or tcp), yields a :class:`LabHandle`, and tears everything down
    afterwards (drivers closed, endpoints stopped, sockets closed)::

        @pytest.mark.qnhw_lab("labs/nv_link.toml")
        async def test_herald(qnhw_lab):
            alice = await qnhw_lab.driver("alice.memory")
            await alice.initialize(0)

Fixture ``qnhw_lab_factory``
    For several labs or labs built inside the test:
    ``async with qnhw_lab_factory({"nodes": {...}}) as lab: ...``.

Option ``--qnhw-real-lab=FILE``
    Run every ``qnhw_lab`` test against a lab that already runs (real hardware or a
    ``qnhw emulate`` elsewhere): ``FILE`` is TOML with ``[devices]`` mapping device names to
    addresses and an optional ``admin`` address. Handles then connect drivers to those
    addresses; tests that need the emulator itself call :meth:`LabHandle.require_emulated`
    (skipped against a real lab), tests that inject faults need an ``admin`` endpoint.

Labs are seeded (the config's ``seed``; the marker's ``seed``; ``--qnhw-seed``), so tests in
virtual time are deterministic.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from qnhw.devices import Driver, driver_for
from qnhw.runtime import Client

MARKER = "qnhw_lab"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qnhw", "qnhw emulated labs")
    group.addoption("--qnhw-transport", choices=("inproc", "ipc", "tcp"), default=None,
                    help="how plugin-started labs bind (default: the marker's, else inproc)")
    group.addoption("--qnhw-real-lab", metavar="FILE", default=None,
                    help="run qnhw_lab tests against the lab whose addresses FILE lists "
                         "(TOML: [devices] name = address, optional admin = address)")
    group.addoption("--qnhw-seed", type=int, default=None,
                    help="override the seed of every plugin-started lab")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(config, *, transport=None, time=None, seed=None): the emulated "
        "lab (TOML path or dict) the qnhw_lab fixture starts for this test")


class LabHandle:
    """A running lab as a test sees it: addresses, drivers, time, faults.

    ``lab``: the :class:`emulators.lab.Lab` (``None`` against a real lab); ``emulated``:
    whether it is emulated. Drivers from :meth:`driver` are closed at teardown.
    """

    def __init__(self, addresses: Mapping[str, str], lab: Any = None,
                 admin: str | None = None) -> None:
        self.lab = lab
        self._addresses = dict(addresses)
        self.admin_address = admin
        self._drivers: list[Driver] = []
        self._clients: list[Client] = []
        self._admin: Client | None = None

    @property
    def emulated(self) -> bool:
        return self.lab is not None

    @property
    def addresses(self) -> dict[str, str]:
        """Device name -> address."""
        return dict(self._addresses)

    def address(self, name: str) -> str:
        try:
            return self._addresses[name]
        except KeyError:
            raise KeyError(f"no device {name!r} in this lab ({', '.join(self._addresses)})") \
                from None

    def require_emulated(self) -> Any:
        """The emulated lab; skips the test against a real lab."""
        if self.lab is None:
            pytest.skip("needs the emulated lab (running against a real lab)")
        return self.lab

    async def driver(self, name: str, **client_opts: Any) -> Any:
        """A connected typed driver of device ``name`` (closed at teardown)."""
        address = self.address(name)
        if self.lab is not None:
            cls = driver_for(self.lab.entries[name].contract.name)
        else:
            async with Client(address, timeout=10.0) as probe:
                contract = (await probe.describe()).get("contract") or {}
            cls = driver_for(str(contract.get("name")))
        drv = await cls.connect(address, **client_opts)
        self._drivers.append(drv)
        return drv

    async def admin(self) -> Client:
        """A client of the lab's admin endpoint (time service, faults); skips the test when
        the lab has none."""
        if self._admin is None:
            if not self.admin_address:
                pytest.skip("this lab has no admin endpoint (time service, fault injection)")
            self._admin = await Client(self.admin_address, timeout=30.0).connect()
        return self._admin

    async def inject(self, kind: str, target: str, **params: Any) -> int:
        """Inject a fault through the admin endpoint; returns its id."""
        fault: dict[str, Any] = await (await self.admin()).call(
            "inject", kind=kind, target=target, params=params)
        return int(fault["id"])

    async def clear(self, fault_id: int | None = None) -> None:
        """Clear a fault (``None``: all)."""
        await (await self.admin()).call("clear", id=fault_id)

    async def advance(self, seconds: float) -> float:
        """Let ``seconds`` of lab time pass (virtual: at once); returns lab time (s)."""
        result: dict[str, Any] = await (await self.admin()).call("advance", seconds=seconds)
        return float(result["lab_time"])

    async def aclose(self) -> None:
        for drv in reversed(self._drivers):
            with contextlib.suppress(Exception):
                await drv.close()
        self._drivers.clear()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


def _resolve(config: Any, request: pytest.FixtureRequest) -> Any:
    if isinstance(config, Mapping):
        return config
    path = Path(str(config))
    if path.is_absolute():
        return path
    candidates = [Path(str(request.node.path)).parent / path, Path(str(request.config.rootpath))
                  / path, Path.cwd() / path]
    for c in candidates:
        if c.exists():
            return c
    raise pytest.UsageError(f"qnhw_lab: config {config!r} not found (looked in "
                            f"{', '.join(str(c.parent) for c in candidates)})")


@contextlib.asynccontextmanager
async def _emulated(config: Any, *, transport: str, time: str | None,
                    seed: int | None) -> AsyncIterator[LabHandle]:
    from emulators.lab import Lab

    if isinstance(config, Mapping):
        lab = Lab.from_dict(config, transport=transport, time=time, seed=seed)
    else:
        lab = Lab.from_file(config, transport=transport, time=time, seed=seed)
    handle: LabHandle | None = None
    async with lab:
        handle = LabHandle({n: lab.address(n) for n in lab.entries}, lab,
                           lab.admin_address or None)
        try:
            yield handle
        finally:
            await handle.aclose()


def _real(path: str) -> LabHandle:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"--qnhw-real-lab {path}: {exc}") from None
    devices = data.get("devices")
    if not isinstance(devices, dict) or not all(isinstance(v, str) for v in devices.values()):
        raise pytest.UsageError(f"--qnhw-real-lab {path}: needs a [devices] table of "
                                "name = address")
    admin = data.get("admin")
    return LabHandle(devices, None, admin if isinstance(admin, str) else None)


@pytest_asyncio.fixture
async def qnhw_lab_factory(request: pytest.FixtureRequest) -> AsyncIterator[
        Callable[..., contextlib.AbstractAsyncContextManager[LabHandle]]]:
    """``async with qnhw_lab_factory(config, transport=..., time=..., seed=...) as lab``:
    an emulated lab for the block (a real lab with ``--qnhw-real-lab``)."""
    opts = request.config.option
    real = getattr(opts, "qnhw_real_lab", None)  # options exist once the plugin is registered
    transport_opt = getattr(opts, "qnhw_transport", None)
    seed_opt = getattr(opts, "qnhw_seed", None)

    @contextlib.asynccontextmanager
    async def factory(config: Any, *, transport: str | None = None, time: str | None = None,
                      seed: int | None = None) -> AsyncIterator[LabHandle]:
        if real:
            handle = _real(real)
            try:
                yield handle
            finally:
                await handle.aclose()
            return
        async with _emulated(_resolve(config, request),
                             transport=transport_opt or transport or "inproc",
                             time=time, seed=seed_opt if seed_opt is not None else seed
                             ) as handle:
            yield handle

    yield factory


@pytest_asyncio.fixture
async def qnhw_lab(request: pytest.FixtureRequest,
                   qnhw_lab_factory: Callable[..., contextlib.AbstractAsyncContextManager[
                       LabHandle]]) -> AsyncIterator[LabHandle]:
    """The lab of the test's ``qnhw_lab`` marker, started and torn down around the test."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        raise pytest.UsageError("the qnhw_lab fixture needs @pytest.mark.qnhw_lab(config)")
    async with qnhw_lab_factory(marker.args[0], **marker.kwargs) as handle:
        yield handle


__all__ = ["MARKER", "LabHandle", "qnhw_lab", "qnhw_lab_factory"]
