"""The outcome of each patient: a CTCAE toxicity in a window, or a QLQ-C30 change.

See :mod:`ntcp.dataset` for the rules (baseline toxicity, follow-up, competing death).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from cohort.vital import vital_status
from instruments.store import read_latest_scores, read_toxicity
from ntcp.dataset.selection import Row
from ntcp.dataset.spec import DatasetSpec, Exclusion, ExclusionReason
from ntcp.endpoints import CtcaeEndpoint, QlqC30Endpoint
from ntcp.survival import CensorAt, competing_risks_outcome

__all__ = [
    "BASELINE",
    "QLQ_C30",
    "ctcae_outcomes",
    "qlq_outcomes",
]


BASELINE = "baseline"


QLQ_C30 = "QLQ-C30"


_CHUNK = 2000


def _chunks(items: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _tox_frame(session: Session, ids: Sequence[int]) -> pd.DataFrame:
    frames = [read_toxicity(session, chunk) for chunk in _chunks(sorted(ids))]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


_Grading = tuple[datetime.date, str, int, str | None]


def _gradings_by_person(
    session: Session, ids: Sequence[int]
) -> dict[int, list[_Grading]]:
    """Return ``(day, term, grade, timepoint)`` of every CTCAE grading per person."""
    tox = _tox_frame(session, ids)
    by_person: dict[int, list[_Grading]] = {}
    for pid, day, term, grade, tp in (
        tox[["person_id", "assessed_on", "term", "grade", "timepoint"]].itertuples(
            index=False
        )
        if len(tox)
        else []
    ):
        by_person.setdefault(int(pid), []).append((day, str(term), int(grade), tp))
    return by_person


def ctcae_outcomes(  # noqa: PLR0917
    session: Session,
    endpoint: CtcaeEndpoint,
    spec: DatasetSpec,
    rows: list[Row],
    ids: Sequence[int],
    exclusions: list[Exclusion],
) -> tuple[list[Row], list[int], pd.DataFrame]:
    """Return the kept rows, their outcomes and the time-to-event table."""
    by_person = _gradings_by_person(session, ids)
    vital = vital_status(session, list(ids)) if ids else {}
    wanted = {t.casefold() for t in endpoint.terms}
    window = endpoint.window_days
    needed = window - spec.followup_slack_days
    use_contact = CensorAt(spec.censor_at) is CensorAt.LAST_CONTACT
    kept: list[Row] = []
    outcome: list[int] = []
    tte: dict[str, list[Any]] = {"patient_id": [], "start": [], "event": []}
    tte.update({"death": [], "contact": [], "assessed": []})
    for r in rows:
        p, start = r.patient, r.start
        gradings = by_person.get(p.person_id, [])
        hits = sorted(
            d
            for d, term, g, tp in gradings
            if term.casefold() in wanted
            and g >= endpoint.min_grade
            and (d >= start and tp != BASELINE)
        )
        before = [
            d
            for d, term, g, tp in gradings
            if term.casefold() in wanted
            and g >= endpoint.min_grade
            and (d < start or tp == BASELINE)
        ]
        if before and spec.exclude_baseline_toxicity:
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.BASELINE_TOXICITY,
                    f"grade >= {endpoint.min_grade} before RT start",
                )
            )
            continue
        first = hits[0] if hits else None
        status = vital.get(p.person_id)
        death = status.death_date if status else None
        contact = status.last_contact_date if status else None
        later = [d for d, *_ in gradings if d >= start]
        assessed = max(later) if later else None
        contact = contact if contact is not None and contact >= start else None
        if death is not None and death < start:
            death = None
        if first is not None or death is not None or assessed or contact:
            tte["patient_id"].append(p.pseudonym)
            tte["start"].append(start)
            tte["event"].append(first)
            tte["death"].append(death)
            # Without a recorded contact, the last assessment is the last contact.
            tte["contact"].append(contact or assessed)
            tte["assessed"].append(assessed)
        if first is not None and (first - start).days <= window:
            kept.append(r)
            outcome.append(1)
            continue
        if death is not None and (death - start).days < needed:
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.DIED_IN_WINDOW,
                    f"died on day {(death - start).days} without the event",
                )
            )
            continue
        end = (contact or assessed) if use_contact else (assessed or contact)
        followed = (end - start).days if end is not None else None
        if followed is None or followed < needed:
            what = "no follow-up" if followed is None else f"followed {followed} days"
            exclusions.append(
                Exclusion(
                    p.pseudonym,
                    ExclusionReason.SHORT_FOLLOWUP,
                    f"{what} < {needed} without the event",
                )
            )
            continue
        kept.append(r)
        outcome.append(0)
    return kept, outcome, _tte_frame(tte, spec, window)


def _tte_frame(
    data: dict[str, list[Any]], spec: DatasetSpec, window: int
) -> pd.DataFrame:
    if not data["patient_id"]:
        return pd.DataFrame(columns=["patient_id", "duration_days", "status"])

    def iso(values: list[datetime.date | None]) -> pd.Series:
        return pd.Series([None if v is None else v.isoformat() for v in values])

    duration, status = competing_risks_outcome(
        iso(data["start"]),
        iso(data["event"]),
        iso(data["death"]),
        iso(data["contact"]),
        iso(data["assessed"]),
        censor_at=spec.censor_at,
        horizon_days=float(window),
    )
    return pd.DataFrame(
        {"patient_id": data["patient_id"], "duration_days": duration, "status": status}
    )


def qlq_outcomes(
    session: Session,
    endpoint: QlqC30Endpoint,
    rows: list[Row],
    ids: Sequence[int],
    exclusions: list[Exclusion],
) -> tuple[list[Row], list[int], list[float]]:
    """Return the kept rows, their outcomes and baseline scores."""
    latest = _scale_scores(session, ids, endpoint.scale)
    kept: list[Row] = []
    outcome: list[int] = []
    baseline: list[float] = []
    for r in rows:
        pid = r.patient.person_id
        base = latest.get((pid, BASELINE))
        follow = latest.get((pid, endpoint.timepoint))
        if base is None or follow is None:
            reason = (
                ExclusionReason.NO_PROM_EITHER
                if base is None and follow is None
                else ExclusionReason.NO_PROM_BASELINE
                if base is None
                else ExclusionReason.NO_PROM_AT_TIMEPOINT
            )
            exclusions.append(
                Exclusion(r.patient.pseudonym, reason, f"QLQ-C30 {endpoint.scale}")
            )
            continue
        kept.append(r)
        outcome.append(int(endpoint.is_deterioration(base, follow)))
        baseline.append(base)
    return kept, outcome, baseline


def _scale_scores(
    session: Session, ids: Sequence[int], scale: str
) -> dict[tuple[int, str], float]:
    """Score of one QLQ-C30 scale per (person, timepoint); the last completed wins."""
    code = "SUMMARY" if scale == "SUMSC" else scale
    return read_latest_scores(session, ids, code, instrument=QLQ_C30)
