"""Write check results in DQD's JSON result layout and as a self-contained HTML page.

The JSON has DQD's top-level keys (``startTimestamp``, ``endTimestamp``,
``executionTime``, ``CheckResults``, ``Metadata``, ``Overview``) and DQD's fields per
check result, so OHDSI's DataQualityDashboard viewer can open it.
"""

from __future__ import annotations

import datetime
import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omop.cdm import CdmSource
from omop.quality.run import CheckResult

__all__ = ["QualityReport", "cdm_source_metadata", "summary_by_category"]

_CATEGORIES = ("Plausibility", "Conformance", "Completeness")


@dataclass(frozen=True)
class QualityReport:
    """All results of one run, with its timing and the CDM_SOURCE rows."""

    results: list[CheckResult]
    started: datetime.datetime
    ended: datetime.datetime
    metadata: list[dict[str, Any]]

    @property
    def failed(self) -> list[CheckResult]:
        """Results that fail their threshold and are not known failures."""
        return [r for r in self.results if r.failed]

    def overview(self) -> dict[str, Any]:
        """Return DQD's ``Overview`` counts."""
        counted = [r for r in self.results if not r.not_applicable]
        threshold = sum(r.failed for r in counted)
        errors = sum(r.is_error for r in counted)
        passed = sum(r.passed for r in counted)
        total = len(counted)
        out: dict[str, Any] = {
            "countTotal": total,
            "countThresholdFailed": threshold,
            "countErrorFailed": errors,
            "countOverallFailed": threshold + errors,
            "countPassed": passed,
            "countNotApplicable": len(self.results) - total,
            "countKnownFailures": sum(bool(r.known_failure) for r in counted),
            "percentPassed": round(100 * passed / total) if total else 0,
            "percentFailed": round(100 * (threshold + errors) / total) if total else 0,
        }
        for category in _CATEGORIES:
            mine = [r for r in counted if r.check.category == category]
            out[f"countTotal{category}"] = len(mine)
            out[f"countFailed{category}"] = sum(r.failed or r.is_error for r in mine)
            out[f"countPassed{category}"] = sum(r.passed for r in mine)
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the DQD result document."""
        seconds = (self.ended - self.started).total_seconds()
        return {
            "startTimestamp": self.started.isoformat(sep=" ", timespec="seconds"),
            "endTimestamp": self.ended.isoformat(sep=" ", timespec="seconds"),
            "executionTime": f"{seconds:.0f} secs",
            "executionTimeSeconds": round(seconds, 3),
            "CheckResults": [_result_json(r) for r in self.results],
            "Metadata": self.metadata,
            "Overview": self.overview(),
        }

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        path.write_text(json.dumps(self.to_json(), indent=2, default=str), "utf-8")

    def write_html(self, path: Path) -> None:
        """Write a self-contained HTML report (no scripts, no external files)."""
        path.write_text(render_html(self), "utf-8")


def _result_json(r: CheckResult) -> dict[str, Any]:
    c = r.check
    return {
        "numViolatedRows": r.num_violated_rows,
        "pctViolatedRows": r.pct_violated_rows,
        "numDenominatorRows": r.num_denominator_rows,
        "executionTime": f"{r.execution_seconds:.3f} secs",
        "queryText": f"-- numerator\n{c.numerator}\n-- denominator\n{c.denominator}"
        if c.numerator
        else "",
        "checkName": c.name,
        "checkLevel": c.level,
        "checkDescription": c.description,
        "cdmTableName": c.table.upper(),
        "cdmFieldName": (c.field or "").upper() or None,
        "conceptId": c.concept_id,
        "unitConceptId": c.unit_concept_id,
        "sqlFile": c.sql_file,
        "category": c.category,
        "subcategory": c.subcategory,
        "context": c.context,
        "severity": c.severity,
        "warning": None,
        "error": r.error,
        "checkId": c.check_id,
        "failed": int(r.failed),
        "passed": int(r.passed),
        "isError": int(r.is_error),
        "notApplicable": int(r.not_applicable),
        "notApplicableReason": r.not_applicable_reason,
        "threshold": c.threshold,
        "thresholdValue": c.threshold,
        "notesValue": c.notes or None,
        "knownFailure": r.known_failure,
    }


def cdm_source_metadata(session: Session) -> list[dict[str, Any]]:
    """Return the CDM_SOURCE rows with upper-case keys, as DQD's ``Metadata``."""
    rows = session.execute(select(CdmSource)).scalars().all()
    columns = [col.name for col in CdmSource.__table__.columns]
    return [{k.upper(): getattr(row, k) for k in columns} for row in rows]


def summary_by_category(
    results: Sequence[CheckResult],
) -> dict[str, Counter[str]]:
    """Return per category the count of each status (passed, failed, ...)."""
    out: dict[str, Counter[str]] = {}
    for r in results:
        out.setdefault(r.check.category or "Other", Counter())[r.status] += 1
    return out


def _cell(value: object) -> str:
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def render_html(report: QualityReport) -> str:
    """Return the HTML page: overview, summary by category and every check."""
    ov = report.overview()
    statuses = ("passed", "failed", "known failure", "not applicable", "error")
    summary = summary_by_category(report.results)
    rows = "".join(
        f"<tr>{_cell(cat)}{''.join(_cell(n[s]) for s in statuses)}</tr>"
        for cat, n in sorted(summary.items())
    )
    order = {"failed": 0, "error": 1, "known failure": 2, "passed": 3}
    detail = "".join(
        f'<tr class="{r.status.replace(" ", "-")}">'
        + "".join(
            _cell(v)
            for v in (
                r.status,
                r.check.category,
                r.check.name,
                r.check.table,
                r.check.field,
                r.check.concept_id,
                r.num_violated_rows,
                r.num_denominator_rows,
                f"{100 * r.pct_violated_rows:.2f}",
                r.check.threshold,
                r.error or r.known_failure or r.not_applicable_reason or "",
            )
        )
        + "</tr>"
        for r in sorted(report.results, key=lambda r: order.get(r.status, 4))
    )
    head = "".join(f"<th>{s}</th>" for s in ("category", *statuses))
    cols = [
        "status",
        "category",
        "check",
        "table",
        "field",
        "concept",
        "violated",
        "rows",
        "%",
        "threshold",
        "note",
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>rtcohort data quality</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        ".failed{background:#fdd}.error{background:#fec}.known-failure{background:#ffd}"
        "</style></head><body><h1>Data quality (DQD v5.4 checks + rtcohort)</h1>"
        f"<p>{html.escape(report.started.isoformat(timespec='seconds'))}: "
        f"{ov['countPassed']} passed, {ov['countThresholdFailed']} failed, "
        f"{ov['countErrorFailed']} errors, {ov['countNotApplicable']} not applicable, "
        f"{ov['countKnownFailures']} known failures.</p>"
        f"<h2>By category</h2><table><tr>{head}</tr>{rows}</table>"
        "<h2>Checks</h2><table><tr>"
        + "".join(f"<th>{c}</th>" for c in cols)
        + f"</tr>{detail}</table></body></html>"
    )
