"""Device contracts and their async drivers: one module per device class.

Each module defines the contract once (:data:`CONTRACT`: commands with typed, unit-carrying,
range-checked parameters and result schemas; streams with payload schemas; a capability
schema; optional features) and a :class:`Driver` subclass with one typed ``async`` method per
command and one method per stream::

    async with QuantumMemory.connect("tcp://127.0.0.1:5601") as mem:
        caps = mem.capabilities
        await mem.initialize(qubit=0)

Device servers register their handlers with :func:`implement_contract`. ``docs/devices.md``
is generated from these definitions by ``python -m qnhw.devices.docgen``.
"""

from qnhw.contract.spec import Contract
from qnhw.devices.base import Connecting, Driver, error_summary, implement_contract
from qnhw.devices.heralding import HeraldingStation
from qnhw.devices.memory import QuantumMemory
from qnhw.devices.qpu import QPU, CircuitResult
from qnhw.devices.source import PhotonSource
from qnhw.devices.switch import OpticalSwitch
from qnhw.devices.timetagger import TimeTagger
from qnhw.devices.timing import TimingCard, two_way_offset
from qnhw.devices.transducer import Transducer
from qnhw.devices.trigger_generator import TriggerGenerator

#: Every driver class, in documentation order.
DRIVERS: tuple[type[Driver], ...] = (
    QuantumMemory, PhotonSource, TimeTagger, HeraldingStation, OpticalSwitch, Transducer,
    TimingCard, TriggerGenerator, QPU,
)
#: Every contract by name.
CONTRACTS: dict[str, Contract] = {d.CONTRACT.name: d.CONTRACT for d in DRIVERS}


def driver_for(contract_name: str) -> type[Driver]:
    """The driver class of a contract name; ``KeyError`` when there is none."""
    for d in DRIVERS:
        if d.CONTRACT.name == contract_name:
            return d
    raise KeyError(contract_name)


__all__ = [
    "CONTRACTS",
    "DRIVERS",
    "QPU",
    "CircuitResult",
    "Connecting",
    "Driver",
    "HeraldingStation",
    "OpticalSwitch",
    "PhotonSource",
    "QuantumMemory",
    "TimeTagger",
    "TimingCard",
    "Transducer",
    "TriggerGenerator",
    "driver_for",
    "error_summary",
    "implement_contract",
    "two_way_offset",
]
