"""The composition root's operations, named by `rtcohort serve` (RTCOHORT_WEB_HOOKS).

Loading held data after consent, deleting held files after a refusal and retrying
quarantine items need the installation's file store and import options, which only
``rtcohort`` assembles. ``dashboards`` does not import ``rtcohort``; ``serve`` passes
the module's name (``rtcohort.web_hooks``) and this module imports it by name. Without
it (the app started some other way) the pages say the step was not run.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from dashboards.ui.resources import engine

__all__ = ["HooksMissingError", "after_consent", "after_refusal", "quarantine_retry"]


class HooksMissingError(RuntimeError):
    """The server was not started by ``rtcohort serve`` (no hooks module named)."""


def _hooks() -> ModuleType:
    name = os.environ.get("RTCOHORT_WEB_HOOKS", "").strip()
    if not name:
        raise HooksMissingError("RTCOHORT_WEB_HOOKS not set; start with rtcohort serve")
    return importlib.import_module(name)


def after_consent(centre: str, actor: str) -> int:
    """Load held datasets of ``centre`` now that consent is recorded; return count."""
    return int(_hooks().after_consent(engine(), centre, actor))


def after_refusal() -> int:
    """Delete held files of persons who declined or withdrew; return count."""
    return int(_hooks().after_refusal(engine()))


def quarantine_retry(
    ids: list[int], centre: str, key_file: Path | None, actor: str
) -> str:
    """Retry quarantine items; return a one-line summary."""
    return str(_hooks().quarantine_retry(engine(), ids, centre, key_file, actor))
