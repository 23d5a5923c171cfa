"""An older DVH engine beside the current one, for before/after accuracy tables.

``dvh_accuracy.py --baseline DIR`` (DIR: a checkout, or any folder holding an older
``etl/dose`` package) copies that ``etl/dose`` into a temporary package
``baseline_dose`` (its ``etl.dose`` imports rewritten) so that both engines run on the
same phantoms in one process.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE = "baseline_dose"


def install(checkout: Path) -> None:
    """Make ``baseline_dose`` importable from the ``etl/dose`` of ``checkout``."""
    source = checkout / "etl" / "dose"
    if not (source / "dvh.py").exists():
        raise SystemExit(f"--baseline {checkout}: no etl/dose/dvh.py there")
    root = Path(tempfile.mkdtemp(prefix="dvhbase"))
    target = root / PACKAGE
    target.mkdir()
    for py in source.glob("*.py"):
        text = py.read_text(encoding="utf-8").replace("etl.dose", PACKAGE)
        (target / py.name).write_text(text, encoding="utf-8")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()


def engine() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``compute_dvh`` and ``evaluate`` of the baseline engine."""
    dvh = importlib.import_module(f"{PACKAGE}.dvh")
    metrics = importlib.import_module(f"{PACKAGE}.metrics")
    return dvh.compute_dvh, metrics.evaluate


def rate(rows: list[dict[str, object]], key: str) -> str:
    n = len(rows)
    k = sum(bool(r[key]) for r in rows)
    return f"{100.0 * k / n:5.1f}% ({k}/{n})" if n else "-"


def _line(label: str, rows: list[dict[str, object]]) -> None:
    print(f"{label:<26}{rate(rows, 'baseline_pass'):>18}{rate(rows, 'pass'):>18}")


def _line(label: str, rows: list[dict[str, object]]) -> None:
    print(f"{label:<26}{rate(rows, 'baseline_pass'):>18}{rate(rows, 'pass'):>18}")


def print_before_after(
    rows: list[dict[str, object]], goal_metrics: tuple[str, ...]
) -> None:
    """Pass rates (3 % / 0.5 Gy) of the baseline and the current engine, by group."""
    sel = [r for r in rows if r["metric"] in goal_metrics]
    print(
        "\nbefore (baseline) / after, goal metrics (volume, D99, D95, D5, D1, D0.03cc)"
    )
    print(f"{'placement shape':<26}{'before':>18}{'after':>18}")
    groups = sorted({(str(r["placement"]), str(r["shape"])) for r in sel})
    for place, shape in groups:
        g = [r for r in sel if (r["placement"], r["shape"]) == (place, shape)]
        _line(place + " " + shape, g)
    for few in (False, True):
        g = [r for r in sel if (int(r["planes"]) < 4) == few]
        label = "< 4 planes" if few else ">= 4 planes"
        _line("all, " + label, g)
    for spacing in sorted({float(r["spacing_mm"]) for r in sel}):
        g = [r for r in sel if float(r["spacing_mm"]) == spacing]
        _line(f"spacing {spacing:g} mm", g)
