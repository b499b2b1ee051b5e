"""Lab tests: the qnhw pytest plugin's fixtures, even before its entry point is installed."""

from __future__ import annotations

import pytest

from emulators.pytest_plugin import MARKER, qnhw_lab, qnhw_lab_factory

__all__ = ["qnhw_lab", "qnhw_lab_factory"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(config, **options): lab for qnhw_lab")
