"""Typed errors of the physics core.

Every bad input (a probability outside [0, 1], a negative efficiency, an array of the
wrong shape, a missing random generator) raises one of these. They subclass
:class:`ValueError`, so callers that only know ``ValueError`` still catch them.
"""

from __future__ import annotations

__all__ = ["ParameterError", "PhysicsError", "ShapeError"]


class PhysicsError(ValueError):
    """Base class of every error raised by :mod:`emulators.physics`."""


class ParameterError(PhysicsError):
    """A parameter is out of its physical range (e.g. an efficiency above 1)."""


class ShapeError(PhysicsError):
    """An array has the wrong shape, or is not a valid state / operator."""
