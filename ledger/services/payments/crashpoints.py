"""Named points around each provider call and its commit, where the fault tests crash the process.

Nothing happens at them unless a hook is installed (only tests/payments/fault_worker.py does).
"""

from __future__ import annotations

from collections.abc import Callable

_hook: Callable[[str], None] | None = None


def install(hook: Callable[[str], None] | None) -> None:
    global _hook  # noqa: PLW0603 - one process-wide hook, set once by the fault worker
    _hook = hook


def reached(point: str) -> None:
    if _hook is not None:
        _hook(point)
