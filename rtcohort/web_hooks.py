"""What the web app's server process runs through the composition root.

``dashboards`` may not import ``rtcohort`` (ARCHITECTURE.md section 1). ``rtcohort
serve`` names this module in ``RTCOHORT_WEB_HOOKS``; :mod:`dashboards.hooks` imports
it by that name, in the server process, where the settings ``serve`` resolved are in
the environment. Each hook gets the app's engine (bound to the audit files), runs
after the page's own transaction has committed and after the page has asked the
permission layer; the acting user is checked again where the CLI checks it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

__all__ = ["after_consent", "after_refusal", "quarantine_retry"]


def after_consent(engine: Engine, centre: str, actor: str) -> int:
    """Load the datasets held for want of consent; return how many loaded."""
    from rtcohort.wiring import after_consent as run

    return int(run(engine, centre, actor).loaded)


def after_refusal(engine: Engine) -> int:
    """Delete the files held for persons who declined or withdrew."""
    from rtcohort.wiring import after_refusal as run

    return int(run(engine))


def quarantine_retry(
    engine: Engine, ids: list[int], centre: str, key_file: Path | None, actor: str
) -> str:
    """Retry quarantine items (as ``rtcohort quarantine retry``); return a summary."""
    from etl.ingest.catalogue import retry_items
    from omop.engine import session_factory
    from rtcohort.wiring import ingest_options

    options = ingest_options(centre, key_file, actor=actor)
    summary = retry_items(session_factory(engine), ids, options)
    held = sum(summary.quarantined.values())
    return f"{summary.loaded} loaded, {summary.unchanged} unchanged, {held} held"
