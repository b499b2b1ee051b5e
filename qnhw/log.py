"""structlog loggers with endpoint, device and request context.

Library code only logs; applications decide where logs go. If the application has not
configured structlog when qnhw first logs, qnhw installs a default that writes warnings and
errors to standard error (never standard output). :func:`configure` is a convenience for
scripts and the CLI (human-readable console lines, or JSON lines).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def get_logger(component: str, **context: Any) -> Any:
    """A structlog logger bound to ``component`` and extra context (endpoint, device, ...)."""
    if not structlog.is_configured():
        configure("warning")
    return structlog.get_logger("qnhw").bind(component=component, **context)


def configure(level: str = "info", *, json: bool = False) -> None:
    """Configure structlog: lines at ``level`` (debug, info, warning, error) to stderr."""
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S.%f", utc=False),
    ]
    processors.append(structlog.processors.JSONRenderer() if json
                      else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
