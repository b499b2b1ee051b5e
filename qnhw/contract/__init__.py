"""Declarative, typed, unit-carrying definitions of commands, streams and device contracts."""

from qnhw.contract.spec import (
    REQUIRED,
    Command,
    Contract,
    Param,
    StreamSpec,
    check_contract_compatible,
)
from qnhw.contract.units import convert_unit

__all__ = [
    "REQUIRED",
    "Command",
    "Contract",
    "Param",
    "StreamSpec",
    "check_contract_compatible",
    "convert_unit",
]
