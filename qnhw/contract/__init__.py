"""Declarative, typed, unit-carrying definitions of commands, streams and device contracts."""

from qnhw.contract.spec import (
    REQUIRED,
    Command,
    Contract,
    Field,
    Param,
    StreamSpec,
    check_contract_compatible,
    check_fields,
)
from qnhw.contract.units import convert_unit

__all__ = [
    "REQUIRED",
    "Command",
    "Contract",
    "Field",
    "Param",
    "StreamSpec",
    "check_contract_compatible",
    "check_fields",
    "convert_unit",
]
