"""Quiet dependencies: no notices when they are imported, no colour codes in log files."""

from __future__ import annotations

import sys


def drop_gym_notice() -> None:
    """d3rlpy 2.8 imports the unmaintained ``gym``, whose import prints a four-line deprecation
    notice to stderr. vlgor runs on gymnasium and never calls ``gym``, so the notice is emptied
    before ``gym`` is imported (a no-op where ``gym_notices`` is absent)."""
    try:
        from gym_notices import notices
    except ImportError:
        return
    notices.notices.clear()


def plain_logs_off_terminal() -> None:
    """d3rlpy configures structlog to colour every line, which leaves escape codes in files
    that its output is redirected to: colours stay for a terminal only."""
    import structlog

    try:
        renderer = structlog.dev.ConsoleRenderer.get_active()
    except (
        structlog.exceptions.NoConsoleRendererConfiguredError,
        structlog.exceptions.MultipleConsoleRenderersConfiguredError,
    ):
        return
    renderer.colors = sys.stdout.isatty()
